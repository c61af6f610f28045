"""Helpers for the notebooks in ``colab/``: platform detection, Hub login, data, training and inline display.

The notebooks run on Google Colab, Kaggle, a rented vast.ai box or a local Jupyter.  Each platform differs in
three ways that matter here, and this module hides them behind one call each:

* **where the Hub token lives** -- Colab's secret store (``google.colab.userdata``), Kaggle's
  (``kaggle_secrets.UserSecretsClient``) or the ``HF_TOKEN`` environment variable (vast.ai, local).  The token
  is put into this process' ``HF_TOKEN`` so that ``huggingface_hub`` and any ``accelerate launch`` child pick it
  up; it is never printed or written into a notebook.
* **how training is launched** -- in this kernel on one device (imports paid once, outputs inline), or with
  ``accelerate launch --multi_gpu`` when the machine has several GPUs (Kaggle's 2x T4, multi-GPU vast.ai boxes).
* **where data comes from** -- the synthetic world (default), Fashion-MNIST, a Hugging Face dataset repo, a
  prepared folder, or a raw archive the user uploaded (unpacked once next to the runs).

Everything here is also usable from a plain Python session.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "PLATFORMS",
    "detect_platform",
    "hub_token",
    "hub_login",
    "repo_root",
    "load_script",
    "resolve_data",
    "TrainResult",
    "prepare_hub_repo",
    "train",
    "train_command",
    "run_step",
    "show_images",
    "show_markdown",
    "show_pil",
    "show_run",
    "model_available",
    "SYNTHETIC_DATASETS",
    "eval_data",
    "evaluate",
]

#: Platform names returned by :func:`detect_platform`.
PLATFORMS = ("colab", "kaggle", "vastai", "local")

_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def detect_platform(environ: Mapping[str, str] | None = None) -> str:
    """``colab``, ``kaggle``, ``vastai`` or ``local``, from the variables each platform sets in its containers.

    Colab sets ``COLAB_RELEASE_TAG`` (older runtimes ``COLAB_GPU``), Kaggle ``KAGGLE_KERNEL_RUN_TYPE`` and
    vast.ai ``VAST_CONTAINERLABEL`` (or ``CONTAINER_ID`` with ``VAST_TCP_PORT_*`` mappings).
    """
    env = os.environ if environ is None else environ
    if env.get("COLAB_RELEASE_TAG") or env.get("COLAB_GPU") is not None:
        return "colab"
    if env.get("KAGGLE_KERNEL_RUN_TYPE") or env.get("KAGGLE_URL_BASE"):
        return "kaggle"
    if env.get("VAST_CONTAINERLABEL") or any(k.startswith("VAST_TCP_PORT_") for k in env):
        return "vastai"
    return "local"


def hub_token(platform: str | None = None) -> str | None:
    """The Hugging Face token from the platform's secret store, else ``HF_TOKEN``; ``None`` when there is none.

    The secret is named ``HF_TOKEN`` on every platform (Colab: the key icon in the left bar; Kaggle: Add-ons ->
    Secrets; vast.ai: an environment variable of the instance template).
    """
    platform = platform or detect_platform()
    token = None
    if platform == "colab":
        try:
            from google.colab import userdata  # type: ignore[import-not-found]

            token = userdata.get("HF_TOKEN")
        except Exception:  # secret missing, access not granted, or not actually on Colab
            token = None
    elif platform == "kaggle":
        try:
            from kaggle_secrets import UserSecretsClient  # type: ignore[import-not-found]

            token = UserSecretsClient().get_secret("HF_TOKEN")
        except Exception:
            token = None
    token = token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    return token.strip() if token else None


def hub_login(platform: str | None = None, *, required: bool = False) -> bool:
    """Make the platform's Hub token available to this process and its children; True if there is one.

    ``required``: raise ``RuntimeError`` (saying where to put the token) instead of returning False -- set it
    when the notebook will push to a Hub repo.  No network call is made here; the first upload checks the token.
    """
    platform = platform or detect_platform()
    token = hub_token(platform)
    if token:
        os.environ["HF_TOKEN"] = token
        print(f"Hugging Face token found ({platform}); Hub uploads are enabled.")
        return True
    where = {
        "colab": "add a secret named HF_TOKEN (key icon in the left bar) and allow this notebook to read it",
        "kaggle": "add a secret named HF_TOKEN (Add-ons -> Secrets) and attach it to this notebook",
    }.get(platform, "export HF_TOKEN=... before starting Jupyter (on vast.ai: in the instance's environment)")
    if required:
        raise RuntimeError(f"no Hugging Face token found on {platform}: {where}; or use a local folder "
                           "(HUB_REPO = 'file:/some/dir') instead of a Hub repo")
    print(f"No Hugging Face token ({where}); public downloads still work.")
    return False


def repo_root() -> Path:
    """The source checkout this package runs from (it holds ``scripts/train.py``)."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here, Path.cwd(), *Path.cwd().parents):
        if (candidate / "scripts" / "train.py").is_file() and (candidate / "fashion_gans").is_dir():
            return candidate
    raise FileNotFoundError("scripts/train.py not found: install the package from a clone of the repository "
                            "(git clone ... && pip install -e .), not from a wheel")


def load_script(name: str, module_name: str | None = None) -> ModuleType:
    """Import ``scripts/<name>.py`` of the checkout afresh as the module ``module_name`` (default
    ``fashion_gans_script_<name>``; the scripts are not part of the package), registered in ``sys.modules`` before
    it runs: a script's dataclasses resolve their annotations through its module."""
    path = repo_root() / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(module_name or f"fashion_gans_script_{name}", path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has a loader
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(spec.name, None)  # no half-run module left behind
        raise
    return module


# ------------------------------------------------------------------------------------------------------ data
def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(_ARCHIVE_SUFFIXES)


def _unpack(archive: Path, target: Path) -> Path:
    """Unpack ``archive`` into ``target`` once (atomically); a single top-level folder is stepped into."""
    from fashion_gans.data.io import atomic_directory

    if not target.is_dir():
        with atomic_directory(target) as tmp:
            if archive.name.lower().endswith(".zip"):
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp)
            else:
                with tarfile.open(archive) as tf:
                    tf.extractall(tmp, filter="data")
    entries = [p for p in target.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target


def _fashion_mnist(work_dir: Path) -> str:
    """``fashion-mnist`` when the Debian package's files are here, else ``fashion-mnist:DIR`` with the idx files
    downloaded once by torchvision into ``work_dir/data`` (Colab and Kaggle images do not carry the package)."""
    from fashion_gans.data.fashion_mnist import FILES
    from fashion_gans.training.data import FASHION_MNIST_DEFAULT

    def complete(folder: Path) -> bool:
        stems = [stem for pair in FILES.values() for stem in pair]
        return all((folder / f"{s}.gz").is_file() or (folder / s).is_file() for s in stems)

    if complete(Path(FASHION_MNIST_DEFAULT)):
        return "fashion-mnist"
    folder = work_dir / "data" / "FashionMNIST" / "raw"
    if not complete(folder):
        from torchvision.datasets import FashionMNIST

        for train in (True, False):
            FashionMNIST(str(work_dir / "data"), train=train, download=True)
    return f"fashion-mnist:{folder}"


def resolve_data(data: str, work_dir: str | os.PathLike) -> str:
    """Turn the notebook's ``DATA`` parameter into a ``--data`` value of ``scripts/train.py``.

    ``synthetic``, ``fashion-mnist:DIR`` and ``hf:REPO_ID_OR_PATH`` pass through; ``fashion-mnist`` is the
    Debian package's copy when installed, else downloaded once (torchvision) into ``work_dir/data``; a bare
    ``user/name`` Hub id becomes ``hf:user/name``; a folder passes through; an archive (``.zip``, ``.tar.gz``...)
    is unpacked once into ``work_dir/data/<name>`` and that folder is used.  Anything else is a ``ValueError``
    naming it.
    """
    data = (data or "").strip()
    if not data:
        raise ValueError("DATA is empty: use 'synthetic', 'fashion-mnist', 'hf:user/dataset', a folder or an archive")
    if data == "fashion-mnist":
        return _fashion_mnist(Path(work_dir))
    if data == "synthetic" or data.startswith(("fashion-mnist:", "hf:")):
        return data
    path = Path(data).expanduser()
    if path.is_dir():
        return str(path)
    if _is_archive(path):
        stem = re.sub(r"(\.tar)?\.[A-Za-z0-9]+$", "", path.name)
        folder = _unpack(path, Path(work_dir) / "data" / stem)
        print(f"unpacked {path.name} into {folder}")
        return str(folder)
    if path.exists():
        raise ValueError(f"DATA={data!r}: not a folder or a known archive ({', '.join(_ARCHIVE_SUFFIXES)})")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", data):
        return f"hf:{data}"
    raise ValueError(f"DATA={data!r}: no such file or folder, and not 'synthetic', 'fashion-mnist' or 'hf:REPO'")


# -------------------------------------------------------------------------------------------------- training
def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # pragma: no cover - torch always imports where this package does
        return 0


def train_command(args: Sequence[str], *, processes: int = 1) -> list[str]:
    """The shell command that runs ``scripts/train.py args`` (under ``accelerate launch`` for several processes)."""
    script = str(repo_root() / "scripts" / "train.py")
    if processes <= 1:
        return [sys.executable, script, *args]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            script, *args]


@dataclass
class TrainResult:
    """What :func:`train` did: the final held-out metrics, the step it resumed from (None: a fresh start) and
    the step it reached."""

    metrics: dict[str, Any]
    resumed_from: int | None
    step: int


class _Tee(io.TextIOBase):
    """A text stream that writes to ``stream`` and keeps a copy (to find the trainer's resume message)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


_RESUMED_RE = re.compile(r"^resumed from .+ at step (\d+)", re.MULTILINE)


def _resumed_step(output: str) -> int | None:
    found = _RESUMED_RE.findall(output)
    return int(found[-1]) if found else None


def train(args: Sequence[str], *, processes: int | None = None) -> TrainResult:
    """Train with ``scripts/train.py`` options; returns a :class:`TrainResult`.

    ``processes`` None: one process per GPU when there are several, else this kernel.  In this kernel the
    imports are paid once and progress shows inline; with several processes the command runs under
    ``accelerate launch --multi_gpu`` and its output is streamed here.  A bad option or bad data raises the
    training kit's ``TrainingError`` (its message names the problem); a failed child process ``RuntimeError``.
    """
    args = [str(a) for a in args]
    processes = processes if processes is not None else max(1, _gpu_count())
    script = load_script("train")
    parsed = script.build_parser().parse_args(args)
    config = script.resolve_config(parsed)
    if processes <= 1:
        from fashion_gans.training.trainer import Trainer

        tee = _Tee(sys.stdout)
        with contextlib.redirect_stdout(tee):
            Trainer(config).fit()
        output = "".join(tee.parts)
    else:
        command = train_command(args, processes=processes)
        print("$", " ".join(command), flush=True)
        lines = []
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              bufsize=1) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                print(line, end="", flush=True)
        if proc.returncode != 0:
            raise RuntimeError(f"training exited with status {proc.returncode}: {' '.join(command)}")
        output = "".join(lines)
    run = Path(config.output_dir)
    metrics_path = run / "final_metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    return TrainResult(metrics=metrics, resumed_from=_resumed_step(output), step=run_step(run))


def prepare_hub_repo(repo_id: str, *, private: bool = True) -> None:
    """Create ``repo_id`` (a Hub repo id or a ``file:`` folder) if it does not exist, so that the first
    ``--resume latest`` finds an empty repo (no checkpoint: a fresh start) rather than a missing one."""
    from fashion_gans.training.hub_sync import hub_api_for

    hub_api_for(repo_id).create_repo(repo_id, private=private, exist_ok=True)


def run_step(run_dir: str | os.PathLike) -> int:
    """The step a run folder reached: its newest checkpoint, or ``final_metrics.json``; 0 for an empty folder."""
    from fashion_gans.training.checkpoint import latest_checkpoint

    run = Path(run_dir)
    steps = [0]
    ckpt = latest_checkpoint(run / "checkpoints")
    if ckpt is not None:
        steps.append(int(ckpt.name.split("-")[-1]))
    final = run / "final_metrics.json"
    if final.is_file():
        steps.append(int(json.loads(final.read_text(encoding="utf-8")).get("step", 0)))
    return max(steps)


# --------------------------------------------------------------------------------------------------- display
def show_images(paths: Sequence[str | os.PathLike], *, width: int | None = None) -> int:
    """Display image files inline (with their names) in a notebook, or print their paths elsewhere."""
    shown = 0
    try:
        from IPython.display import Image, Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with every notebook kernel
        display = None
    for path in paths:
        path = Path(path)
        if not path.is_file():
            continue
        if display is None:
            print(path)
        else:
            display(Markdown(f"`{path.parent.name}/{path.name}`"))
            display(Image(filename=str(path), width=width))
        shown += 1
    return shown


def show_markdown(path: str | os.PathLike) -> str:
    """Display a Markdown file (e.g. an evaluation's ``metrics.md``) rendered in a notebook; returns its text."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:  # pragma: no cover
        print(text)
    return text


def show_pil(images: Sequence[Any], captions: Sequence[str] = (), *, min_side: int = 128) -> Any:
    """Display PIL images side by side (small ones enlarged to ``min_side``, captions underneath); returns the
    composed image (also when there is no notebook to display it in)."""
    from PIL import Image, ImageDraw

    images = [im.convert("RGB") for im in images]
    if not images:
        raise ValueError("show_pil: no images")
    scaled = []
    for im in images:
        factor = max(1, -(-min_side // min(im.size)))
        scaled.append(im.resize((im.width * factor, im.height * factor), Image.NEAREST) if factor > 1 else im)
    caption_h = 16 if captions else 0
    height = max(im.height for im in scaled) + caption_h
    canvas = Image.new("RGB", (sum(im.width for im in scaled) + 4 * (len(scaled) - 1), height), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for i, im in enumerate(scaled):
        canvas.paste(im, (x, 0))
        if i < len(captions):
            draw.text((x + 2, height - caption_h + 2), str(captions[i]), fill=(0, 0, 0))
        x += im.width + 4
    try:
        from IPython.display import display

        display(canvas)
    except ImportError:  # pragma: no cover
        pass
    return canvas


def model_available(source: str | os.PathLike) -> bool:
    """Whether ``source`` can be loaded here: a bundled model name, an existing folder, or a Hub repo id
    (assumed reachable unless ``HF_HUB_OFFLINE`` is set and the repo is not in the local Hub cache)."""
    from fashion_gans.models.sources import list_bundled

    text = str(source)
    if text in list_bundled() or Path(text).expanduser().is_dir():
        return True
    if re.fullmatch(r"[\w.-]+/[\w.-]+", text):
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            try:
                from huggingface_hub import snapshot_download

                snapshot_download(text, local_files_only=True)
                return True
            except Exception:
                return False
        return True
    return False


def show_run(run_dir: str | os.PathLike, *, samples: int = 1) -> dict[str, list[Path]]:
    """Show the newest ``samples`` sample grids and every plot of a run folder; returns what was shown."""
    run = Path(run_dir)
    grids = sorted((run / "samples").glob("*.png"))[-samples:] if samples > 0 else []
    plots = sorted((run / "plots").glob("*.png"))
    show_images(grids)
    show_images(plots, width=640)
    return {"samples": grids, "plots": plots}


# ------------------------------------------------------------------------------------------------ evaluation
#: The synthetic-world datasets each task trains on (what ``--data synthetic`` renders for it).
SYNTHETIC_DATASETS = {"pose": ("inshop",), "garment": ("lookbook",), "style": ("bags_shoes",),
                      "generation": ("fisb",)}


def eval_data(run_dir: str | os.PathLike) -> str:
    """The ``--data`` of ``scripts/evaluate.py`` for a run: the folder its data came from.

    A ``synthetic`` run's world is the one rendered next to the run (the same options, so nothing is rendered
    again); ``fashion-mnist`` and folders pass through.  A ``hf:`` dataset has no folder to evaluate on: a
    ``ValueError`` says to prepare one (``scripts/prepare_data.py`` / the dataset's root).
    """
    from fashion_gans.training.config import TrainConfig
    from fashion_gans.training.data import resolve_data as resolve_train_data
    from fashion_gans.training.data import synthetic_root

    config_path = Path(run_dir) / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: not a training run folder (no config.json)")
    config = TrainConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8"))["train"])
    kind, location = resolve_train_data(config)
    if kind == "synthetic":
        return str(synthetic_root(config, SYNTHETIC_DATASETS[config.task]))
    if kind == "fashion-mnist":
        return "fashion-mnist" if not location else location
    if kind == "hf":
        raise ValueError(f"{run_dir} trained on the Hugging Face dataset {location!r}; evaluate on the dataset's "
                         "folder (its original root or scripts/prepare_data.py output) instead")
    return location


def evaluate(model: str | os.PathLike, *, data: str, count: int, out: str | os.PathLike,
             task: str | None = None, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Evaluate ``model`` (a run folder, model folder or repo id) with ``scripts/evaluate.py`` in this process;
    returns its ``metrics.json``.  A failed evaluation raises ``RuntimeError`` (the script prints why)."""
    out = Path(out)
    argv = ["--model", str(model), "--data", str(data), "--count", str(count), "--out", str(out), *map(str, extra)]
    if task:
        argv += ["--task", task]
    print("$ python scripts/evaluate.py", " ".join(argv), flush=True)
    status = load_script("evaluate").main(argv)
    if status:
        raise RuntimeError(f"evaluation failed (status {status}): scripts/evaluate.py {' '.join(argv)}")
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))
