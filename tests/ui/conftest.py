"""One demo server (``python app.py``) per test session, serving tiny untrained models next to the bundled ones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "pipelines"))

from tiny_models import make_tiny_models  # noqa: E402


@dataclass
class DemoServer:
    url: str
    models: dict[str, Path]
    startup_seconds: float
    log: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory) -> DemoServer:
    tmp = tmp_path_factory.mktemp("demo")
    models = make_tiny_models(tmp / "models")
    port = _free_port()
    log = tmp / "server.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               GRADIO_TEMP_DIR=str(tmp / "gradio"), OMP_NUM_THREADS="1")
    specs = [arg for name, folder in models.items() for arg in ("--model", f"{name}={folder}")]
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *specs,
                                 "--max-file-size", "10mb"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    started = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - started > 120:
                pytest.fail(f"app.py did not serve within 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield DemoServer(url, models, time.monotonic() - started, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
