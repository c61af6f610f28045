#!/usr/bin/env python3
"""Train one of the four GANs with the fashion-gans training loop (Hugging Face Accelerate).

    python scripts/train.py --task style --data synthetic --max-steps 2000 --output-dir runs/style
    accelerate launch --num_processes 2 scripts/train.py --task generation --data fashion-mnist ...
    accelerate launch --multi_gpu --num_processes 2 scripts/train.py --cpu ...   # 2 CPU processes (gloo)
    python scripts/train.py --task pose --resume latest --hub-repo user/pgpg-run ...
    python scripts/train.py --task generation --data fashion-mnist ...   # picks the 1-channel stylegan_fmnist preset
    python scripts/train.py ... --hub-repo file:/tmp/hub       # a local folder stands in for the Hub repo
    python scripts/train.py ... --hub-repo file:/tmp/hub --resume latest --output-dir NEW   # resume from it
    python scripts/train.py --task garment --dry-run          # print the resolved configuration as JSON

A finished run is published (``final/`` with model cards, plots, metrics, README) with
``fashion_gans.training.hub_sync.publish_run(RUN_DIR, "user/name" or "file:/folder")``.

Every ``TrainConfig`` field is an option (``--output-dir``, ``--max-steps``...; help = the field's
documentation); ``--set key=value`` sets any field too (value parsed as JSON, else taken as a string), and
``--config run/config.json`` starts from a saved run configuration.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import sys
import typing
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each annotated field of a dataclass (read from its source)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser() -> argparse.ArgumentParser:
    from fashion_gans.training.config import TrainConfig

    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    docs = field_docs(TrainConfig)
    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group("training options (TrainConfig)")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        origin = typing.get_origin(kind)
        help_text = docs.get(f.name, "").replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is tuple:
            kwargs.update(nargs=len(typing.get_args(kind)), type=typing.get_args(kind)[0], metavar="X")
        elif origin is dict or kind is dict:
            kwargs.update(type=json.loads, metavar="JSON")
        else:
            kwargs["type"] = kind
        group.add_argument(flag, **kwargs)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="set any TrainConfig field (VALUE parsed as JSON, else a string); repeatable")
    parser.add_argument("--config", type=Path, default=None,
                        help="start from a saved configuration (a run's config.json or a TrainConfig JSON)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved configuration (TrainConfig, model config, dataset sizes) and exit")
    return parser


def resolve_config(args: argparse.Namespace):
    from fashion_gans.training.config import TrainConfig, TrainingError

    values: dict[str, Any] = {}
    if args.config is not None:
        data = json.loads(args.config.read_text(encoding="utf-8"))
        values.update(data.get("train", data))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values.update({k: v for k, v in vars(args).items() if k in known})
    for item in args.set:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise TrainingError(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(known)}")
        values[key] = _json_value(value)
    return TrainConfig.from_dict(values)


def main(argv: list[str] | None = None, *, task_class: type | None = None) -> int:
    from fashion_gans.training.config import TrainingError
    from fashion_gans.training.trainer import Preempted, Trainer

    args = build_parser().parse_args(argv)
    try:
        config = resolve_config(args)
        trainer = Trainer(config, task_class=task_class)
        if args.dry_run:
            print(json.dumps(trainer.describe(), indent=2, sort_keys=True))
            return 0
        metrics = trainer.fit()
    except Preempted as exc:
        print(f"pre-empted: {exc}", file=sys.stderr)
        return 128 + 15  # the conventional status of a process ended by SIGTERM
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if trainer.is_main:
        print(json.dumps({"final_metrics": metrics}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
