"""The notebooks in ``colab/`` and the vast.ai set-up script.

The notebooks are stored clean (no outputs, no secrets), each has a papermill ``parameters`` cell, and each runs
headless in smoke mode (``SMOKE = True`` injected after the parameters cell, as papermill does): the training
notebooks train a few steps with a local folder standing in for the Hub, delete the local run, resume from that
folder, evaluate and publish -- their own cells assert each result; the quick start runs every bundled tool and
starts, queries and stops the Gradio demo.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from fashion_gans import notebook as nbh

REPO = Path(__file__).resolve().parent.parent
COLAB = REPO / "colab"
SETUP = REPO / "scripts" / "vastai_setup.sh"
NOTEBOOKS = {p.stem: p for p in sorted(COLAB.glob("*.ipynb"))}
TRAINING = ("pose", "garment", "style", "generation")
#: What a token or secret looks like: Hugging Face, GitHub, OpenAI-style, AWS, Slack keys, private keys, and any
#: quoted value of 16+ characters assigned to a name that says key/token/secret/password.
SECRET_PATTERNS = [
    re.compile(r"hf_[A-Za-z0-9]{20,}"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),
    re.compile(r"sk-[A-Za-z0-9_-]{20,}"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"xox[abpr]-[A-Za-z0-9-]{10,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)(api[_-]?key|token|secret|passw(or)?d)\w*[\"']?\s*[:=]\s*[\"'][A-Za-z0-9_\-+/=.]{16,}[\"']"),
]
# A token-shaped value put into the kernels' environment: it must never show up in any output.
FAKE_TOKEN = "hf_" + "Zx9" * 10


def find_secrets(text: str) -> list[str]:
    return [m.group(0) for pattern in SECRET_PATTERNS for m in pattern.finditer(text)]


def code_lines(nb) -> list[str]:
    return [line for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines()]


# ------------------------------------------------------------------------------------------------- stored form
def test_the_five_notebooks_exist():
    assert set(NOTEBOOKS) == {"quickstart", *(f"train_{t}" for t in TRAINING)}


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_stored_without_outputs_with_a_parameters_cell(name):
    nb = nbformat.read(NOTEBOOKS[name], as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: cell {i} is stored with outputs"
            assert cell.execution_count is None, f"{name}: cell {i} is stored with an execution count"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
    assert re.search(r"^SMOKE = False\b", params[0].source, re.M), f"{name}: SMOKE must default to False"
    # requirements.txt pins torch: installing it would replace the platform's CUDA build.
    install = [line for line in code_lines(nb) if "pip" in line and not line.lstrip().startswith("#")]
    assert install and not any("requirements" in line for line in install), install
    assert any('"-e"' in line for line in install), f"{name}: installs with pip install -e"


def test_load_script_imports_a_script_afresh_under_its_module_name():
    """A script's dataclasses resolve their annotations through its module, so ``load_script`` registers the module
    in ``sys.modules`` under the name asked for (``train_bundled``'s ``Bundle`` is such a dataclass); each call
    imports the file again."""
    first = nbh.load_script("train_bundled", "fashion_gans_test_train_bundled")
    try:
        assert sys.modules["fashion_gans_test_train_bundled"] is first
        bundle = first.BUNDLES["style-synthetic"]
        assert dataclasses.replace(bundle, steps=3).steps == 3 and dataclasses.fields(bundle)
        assert nbh.load_script("train_bundled", "fashion_gans_test_train_bundled") is not first
        assert nbh.load_script("evaluate").__name__ == "fashion_gans_script_evaluate"
    finally:
        sys.modules.pop("fashion_gans_test_train_bundled", None)
        sys.modules.pop("fashion_gans_script_evaluate", None)
    with pytest.raises(FileNotFoundError):
        nbh.load_script("no_such_script")
    assert "fashion_gans_script_no_such_script" not in sys.modules


def test_secret_scan_finds_planted_tokens():
    assert find_secrets(f'x = "{FAKE_TOKEN}"') == [FAKE_TOKEN]
    assert find_secrets('HF_API_TOKEN = "abcdefghijklmnop1234"')
    assert not find_secrets('HF_TOKEN = ""  # from the secret store')
    assert not find_secrets('token = userdata.get("HF_TOKEN")')


def test_no_secrets_in_notebooks_and_guides():
    files = [*NOTEBOOKS.values(), COLAB / "README.md", SETUP, REPO / "fashion_gans" / "notebook.py"]
    for path in files:
        found = find_secrets(path.read_text(encoding="utf-8"))
        assert not found, f"{path.name} contains what looks like a secret: {found}"


# -------------------------------------------------------------------------------------------------- smoke runs
def execute(name: str, work: Path) -> nbformat.NotebookNode:
    """Run notebook ``name`` headless with ``SMOKE = True`` and ``WORK_DIR = work`` injected after the
    parameters cell (papermill's convention); the kernel starts in the repository root."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS[name], as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell(f"SMOKE = True\nWORK_DIR = {str(work)!r}")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, injected)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    return nb


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or "")
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


def image_outputs(nb) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


@pytest.fixture()
def kernel_env(monkeypatch):
    """The kernels inherit this environment: offline, one thread per op, and a token they must not print."""
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for var in ("COLAB_RELEASE_TAG", "COLAB_GPU", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "VAST_CONTAINERLABEL"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.slow
@pytest.mark.parametrize("task", TRAINING)
def test_training_notebook_runs_resumes_from_the_hub_stand_in_and_publishes(task, tmp_path, kernel_env):
    nb = execute(f"train_{task}", tmp_path)
    hub = tmp_path / "hub" / task
    run = tmp_path / "runs" / task
    # Smoke: 2 steps, the local run deleted, 2 more steps resumed from the hub folder (the cell asserts the
    # resume step), then evaluation and publishing.
    assert json.loads((run / "final_metrics.json").read_text())["step"] == 4
    assert (hub / "checkpoints" / "step-000000002" / "state.pt").is_file()
    assert (hub / "checkpoints" / "step-000000004" / "state.pt").is_file()
    assert sorted(hub.glob("final/*/model.safetensors")) and (hub / "README.md").is_file()
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics and (run / "eval" / "metrics.md").is_file()
    text = outputs_text(nb)
    assert "continued from step 2 (checkpoint from HUB_REPO) to step 4" in text
    if task == "generation":  # the smoke run fine-tunes the bundled model (INIT_FROM)
        assert "init_from generation-synthetic: generator loaded; discriminator from initialisation" in text
        assert json.loads((run / "config.json").read_text())["train"]["init_from"] == "generation-synthetic"
    assert image_outputs(nb) >= 3  # sample grids and loss plots shown inline
    assert FAKE_TOKEN not in text and not find_secrets(text)


@pytest.mark.slow
def test_quickstart_runs_every_bundled_tool_and_serves_the_demo(tmp_path, kernel_env):
    from fashion_gans.models.sources import list_bundled

    nb = execute("quickstart", tmp_path)
    text = outputs_text(nb)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    defaults: dict = {}
    exec(params.source, {}, defaults)  # noqa: S102 - the notebook's own literal parameters
    bundled = set(list_bundled())
    expected = [tool for tool, source in defaults["MODELS"].items() if source in bundled]
    ran = re.search(r"^ran: (.*)$", text, re.M)
    assert ran and ran.group(1).split(", ") == expected, (ran and ran.group(0), expected)
    assert expected, "no bundled model to run"
    assert image_outputs(nb) >= 1 + len(expected)
    assert "demo answered at http://127.0.0.1:" in text
    assert FAKE_TOKEN not in text


# ----------------------------------------------------------------------------------------------------- helpers
def test_detect_platform():
    assert nbh.detect_platform({"COLAB_RELEASE_TAG": "release-colab_20250101"}) == "colab"
    assert nbh.detect_platform({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}) == "kaggle"
    assert nbh.detect_platform({"VAST_CONTAINERLABEL": "C.12345"}) == "vastai"
    assert nbh.detect_platform({"HOME": "/root"}) == "local"


def test_hub_login_uses_the_environment_token_without_printing_it(monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    assert nbh.hub_login("local") is True
    assert os.environ["HF_TOKEN"] == FAKE_TOKEN
    assert FAKE_TOKEN not in capsys.readouterr().out
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    assert nbh.hub_login("kaggle") is False  # no kaggle_secrets module here: falls back to the environment
    with pytest.raises(RuntimeError, match="HF_TOKEN.*Add-ons"):
        nbh.hub_login("kaggle", required=True)


def test_hub_token_comes_from_the_platform_secret_store(monkeypatch):
    import sys
    import types

    colab = types.ModuleType("google.colab")
    colab.userdata = types.SimpleNamespace(get=lambda name: {"HF_TOKEN": "colab-secret"}[name])
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)

    class Secrets:
        def get_secret(self, name):
            return {"HF_TOKEN": "kaggle-secret"}[name]

    monkeypatch.setitem(sys.modules, "kaggle_secrets", types.SimpleNamespace(UserSecretsClient=Secrets))
    monkeypatch.setenv("HF_TOKEN", "env-token")
    assert nbh.hub_token("colab") == "colab-secret"
    assert nbh.hub_token("kaggle") == "kaggle-secret"
    assert nbh.hub_token("vastai") == "env-token"


def test_model_available(tmp_path, monkeypatch):
    from fashion_gans.models.sources import list_bundled

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in list_bundled():
        assert nbh.model_available(name)
    assert nbh.model_available(tmp_path)
    assert not nbh.model_available("no-such-bundle")
    assert not nbh.model_available("user/not-in-the-cache")  # offline and not cached


def test_train_command_and_run_step(tmp_path):
    one = nbh.train_command(["--task", "style"])
    assert Path(one[1]) == REPO / "scripts" / "train.py" and one[2:] == ["--task", "style"]
    several = nbh.train_command(["--task", "style"], processes=2)
    assert several[1:6] == ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    assert nbh.run_step(tmp_path) == 0  # an empty run folder: nothing trained yet
    (tmp_path / "checkpoints" / "step-000000012").mkdir(parents=True)
    (tmp_path / "final_metrics.json").write_text('{"step": 10}')
    assert nbh.run_step(tmp_path) == 12


def test_resolve_data(tmp_path):
    root = tmp_path / "src" / "inshop"
    root.mkdir(parents=True)
    (root / "a.txt").write_text("x")
    archive = tmp_path / "inshop.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(root / "a.txt", "inshop/a.txt")
    work = tmp_path / "work"
    folder = Path(nbh.resolve_data(str(archive), work))
    assert folder == work / "data" / "inshop" / "inshop" and (folder / "a.txt").read_text() == "x"
    (folder / "a.txt").write_text("kept")  # unpacked once: a second call does not unpack again
    assert Path(nbh.resolve_data(str(archive), work)) == folder and (folder / "a.txt").read_text() == "kept"
    assert nbh.resolve_data("synthetic", work) == "synthetic"
    assert nbh.resolve_data("fashion-mnist", work) == "fashion-mnist"  # the Debian package the suite installs
    assert nbh.resolve_data("user/fashion-inshop", work) == "hf:user/fashion-inshop"
    assert nbh.resolve_data(str(root), work) == str(root)
    with pytest.raises(ValueError, match="no-such-thing"):
        nbh.resolve_data(str(tmp_path / "no-such-thing"), work)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a folder or a known archive"):
        nbh.resolve_data(str(tmp_path / "notes.txt"), work)


# ------------------------------------------------------------------------------------------ vast.ai set-up
def setup_script(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    if token is not None:
        env["HF_TOKEN"] = token
    return subprocess.run(["bash", str(SETUP), *args], capture_output=True, text=True, env=env, timeout=60)


def test_vastai_setup_parses():
    assert subprocess.run(["bash", "-n", str(SETUP)], capture_output=True).returncode == 0


def test_vastai_setup_dry_run_prints_the_commands(tmp_path):
    result = setup_script("--task", "pose", "--hub-repo", "user/pgpg-run", "--preset", "pgpg_thesis", "--gpus", "2",
                          "--src", str(tmp_path / "src"), "--dry-run", "--", "--max-steps", "100", token=FAKE_TOKEN)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"git clone --depth 1 --branch main https://github.com/fashion-gans/fashion-gans {tmp_path / 'src'}" in out
    assert re.search(r"-m pip install -q -e \S*src$", out, re.M)
    assert "requirements" not in out
    launch = next(line for line in out.splitlines() if "accelerate.commands.launch" in line)
    for piece in ("--num_processes\\ 2", "--multi_gpu", "--task\\ pose", "--hub-repo\\ user/pgpg-run",
                  "--resume\\ latest", "--preset\\ pgpg_thesis", "--max-steps\\ 100"):
        assert piece in launch, piece
    assert "whoami" in out and FAKE_TOKEN not in out + result.stderr
    assert not (tmp_path / "src").exists()  # a dry run changes nothing


def test_vastai_setup_updates_a_checkout_and_falls_back_to_nohup(tmp_path):
    """An existing checkout is updated (fast-forward only), and without tmux the run starts under nohup."""
    import shutil

    bin_dir = tmp_path / "bin"  # a PATH with python3 and dirname but no tmux
    bin_dir.mkdir()
    for tool in ("python3", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "WORKSPACE": str(tmp_path / "ws")}
    result = subprocess.run(["/bin/bash", str(SETUP), "--task", "style", "--hub-repo", f"file:{tmp_path / 'hub'}",
                             "--src", str(REPO), "--dry-run"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"git -C {REPO} pull --ff-only origin main" in result.stdout and "git clone" not in result.stdout
    assert "whoami" not in result.stdout  # a file: repo needs no token
    nohup = next(line for line in result.stdout.splitlines() if "nohup" in line)
    assert "--resume latest" in nohup and f"{tmp_path / 'ws'}/fashion-gans.log" in nohup
    assert "--num_processes 1" in nohup and "--multi_gpu" not in nohup


def test_vastai_setup_refuses_bad_input():
    no_token = setup_script("--task", "pose", "--hub-repo", "user/run", "--dry-run")
    assert no_token.returncode == 2 and "HF_TOKEN is not set" in no_token.stderr
    bad_task = setup_script("--task", "posing", "--hub-repo", "file:/tmp/x", "--dry-run")
    assert bad_task.returncode == 2 and "'posing'" in bad_task.stderr
    no_repo = setup_script("--task", "style", "--dry-run")
    assert no_repo.returncode == 2 and "--hub-repo is required" in no_repo.stderr
    bad_gpus = setup_script("--task", "style", "--hub-repo", "file:/tmp/x", "--gpus", "two", "--dry-run")
    assert bad_gpus.returncode == 2 and "--gpus 'two'" in bad_gpus.stderr
    unknown = setup_script("--task", "style", "--hub-repo", "file:/tmp/x", "--frobnicate")
    assert unknown.returncode == 2 and "--frobnicate" in unknown.stderr
