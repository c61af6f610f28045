"""fashion-gans web demo (also the Hugging Face Space's app file).

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--model NAME=FOLDER ...] [--model-root DIR ...]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import sys

#: glibc's ``mallopt`` parameter number of ``M_ARENA_MAX`` (malloc.h).
_M_ARENA_MAX = -8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Start the fashion-gans Gradio demo.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="interface to bind")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), help="port")
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link (off by default)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                        help="offer an extra model folder (a model, training run or checkpoint folder) under NAME")
    parser.add_argument("--model-root", action="append", default=[], metavar="DIR",
                        help="let visitors type local model folders inside DIR (none by default)")
    parser.add_argument("--no-hub", action="store_true", help="refuse Hub repo ids typed into the model boxes")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--max-file-size", default="10mb", help="largest accepted upload (default 10mb)")
    parser.add_argument("--concurrency", type=int, default=2, help="requests processed at once (default 2)")
    return parser.parse_args(argv)


def model_args(specs: list[str]) -> dict[str, str]:
    """``["name=FOLDER", ...]`` (one per ``--model``) -> ``{name: folder}``; a folder may contain commas or ``=``."""
    models = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise ValueError(f"--model {spec!r}: expected NAME=FOLDER")
        models[name.strip()] = folder.strip()
    return models


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Let glibc's malloc use at most ``arenas`` arenas; True when set (False off glibc, e.g. macOS or musl).

    glibc gives threads that allocate at the same time arenas of their own, up to 8 per core, and keeps the memory
    freed in each for later use there.  The server handles requests on a pool of worker threads (image decoding,
    tensors, PNG encoding), so under concurrent load every arena grows to its own high-water mark and the resident
    memory keeps creeping up with the number of threads that happened to run a request (``scripts/benchmark.py
    demo --load-rounds 4``: +19% in the first load round and still +8% over three more at glibc's default; with two
    arenas +7%, then +1.5%).  Must run before those threads start; ``MALLOC_ARENA_MAX`` in the environment takes precedence.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):  # not glibc
        return False


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    args = parse_args(argv)
    limit_malloc_arenas()
    from fashion_gans.ui.app import build_demo, launch_demo

    try:
        models = model_args(args.model)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    demo = build_demo(models, model_roots=args.model_root, allow_hub=not args.no_hub, device=args.device)
    launch_demo(demo, host=args.host, port=args.port, share=args.share, max_file_size=args.max_file_size,
                concurrency=args.concurrency)


if __name__ == "__main__":
    main()
