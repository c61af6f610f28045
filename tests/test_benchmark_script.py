"""``scripts/benchmark.py demo`` and ``eval`` end to end with tiny counts: the JSON result has the documented fields
and sane values, the demo's server is stopped afterwards, and bad options are refused with a clear message."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark.py"


def _run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _check_header(result: dict, benchmark: str, out: Path) -> None:
    assert result["benchmark"] == benchmark
    assert result["command"].startswith(f"python scripts/benchmark.py {benchmark} ") and str(out) in result["command"]
    assert result["date"][:2] == "20" and "T" in result["date"]
    assert result["machine"]["cpu_model"] and result["machine"]["logical_cores"] >= 1
    assert result["machine"]["load_average_1min_at_start"] >= 0
    assert result["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert result["versions"]["torch"]
    assert not list(out.parent.glob(f".{out.name}*")), "a temporary file of the atomic write was left behind"


def test_demo_benchmark_tiny(tmp_path):
    out = tmp_path / "demo.json"
    tools = ["extract_garment", "generate_1"]
    res = _run("demo", "--tools", ",".join(tools), "--calls", "2", "--warmup", "1", "--clients", "2",
               "--requests", "4", "--load-rounds", "2", "--out", str(out))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    result = json.loads(out.read_text())
    _check_header(result, "demo", out)
    assert result["versions"]["gradio"].startswith("6.") and result["versions"]["gradio_client"]
    assert result["server_startup_seconds"] > 0
    # the server subprocess was stopped (and reaped) before the script exited
    assert result["server_exit_code"] is not None
    assert not psutil.pid_exists(result["server_pid"]) or \
        psutil.Process(result["server_pid"]).status() == psutil.STATUS_ZOMBIE
    assert sorted(result["per_tool"]) == sorted(tools)
    for tool in tools:
        row = result["per_tool"][tool]
        http, pipe = row["http"], row["pipeline"]
        assert http["calls"] == 2 and pipe["calls"] == 2
        assert 0 < http["min_ms"] <= http["median_ms"] <= http["p95_ms"] <= http["max_ms"] < 60_000
        assert 0 < pipe["median_ms"] <= pipe["p95_ms"]
        assert math.isclose(row["http_overhead_median_ms"], http["median_ms"] - pipe["median_ms"], abs_tol=0.02)
    load = result["load"]
    assert load["clients"] == 2 and load["requests"] == 4
    assert load["completed"] + load["errors"] == 4 and load["errors"] == 0, load["error_messages"]
    assert load["throughput_requests_per_second"] > 0 and load["latency"]["calls"] == 4
    assert sum(v["calls"] for v in load["per_tool"].values()) == 4
    mem = result["memory"]
    assert 50 < mem["rss_idle_mib"] and 50 < mem["rss_before_load_mib"] and 50 < mem["rss_after_load_mib"]
    assert math.isclose(mem["growth_percent"],
                        100 * (mem["rss_after_load_mib"] - mem["rss_before_load_mib"]) / mem["rss_before_load_mib"],
                        abs_tol=0.01)
    first, last = mem["rss_after_each_load_round_mib"]  # two rounds: the first is the headline
    assert first == mem["rss_after_load_mib"] and len(result["later_load_rounds"]) == 1
    assert result["later_load_rounds"][0]["errors"] == 0 and result["later_load_rounds"][0]["rss_after_mib"] == last
    assert math.isclose(mem["later_rounds_growth_percent"], 100 * (last - first) / first, abs_tol=0.01)
    targets = result["targets"]
    assert targets["zero_errors"]["passed"] is True
    slow = [t for t in tools if result["per_tool"][t]["http"]["median_ms"] >= 300]
    assert targets["median_under_ms"]["tools_over"] == slow and targets["median_under_ms"]["passed"] == (not slow)
    assert result["all_targets_passed"] == all(t["passed"] for t in targets.values())


def test_demo_benchmark_refuses_unknown_tool(tmp_path):
    res = _run("demo", "--tools", "extract_garment,teleport", "--out", str(tmp_path / "x.json"), timeout=60)
    assert res.returncode != 0 and "teleport" in res.stderr and "transfer_pose" in res.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.fixture(scope="module")
def generator_eval(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("eval") / "eval.json"
    res = _run("eval", "--count", "100", "--repeats", "1", "--batch-size", "50", "--generation-batch-size", "40",
               "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(out.read_text()), out


def test_eval_benchmark_with_generator_tiny(generator_eval):
    result, out = generator_eval
    _check_header(result, "eval", out)
    assert result["config"]["count"] == 100 and result["config"]["generator"] == "generation-fmnist"
    gen = result["generation"]
    assert gen["source"] == "generation-fmnist" and gen["channels"] == 1 and gen["resolution"] == 32
    assert gen["seconds"] > 0 and math.isclose(gen["images_per_second"], 100 / gen["seconds"], rel_tol=0.02)
    ours, tm = result["fashion_gans"], result["torchmetrics"]
    # both implementations see the same images through the same extractor: the metric values agree
    assert math.isclose(ours["values"]["fid"], tm["values"]["fid"], rel_tol=1e-3)
    assert math.isclose(ours["values"]["kid_mean"], tm["values"]["kid_mean"], rel_tol=0.05, abs_tol=1e-3)
    assert 1.0 < ours["values"]["is_mean"] <= 10.0 and 1.0 < tm["values"]["is_mean"] <= 10.0
    assert 0.0 <= ours["values"]["precision"] <= 1.0 and 0.0 <= ours["values"]["recall"] <= 1.0
    # end to end = generation + features + all metrics
    assert math.isclose(ours["end_to_end_seconds"], gen["seconds"] + ours["fid_kid_is_pr_total_seconds"], abs_tol=0.01)
    assert math.isclose(ours["end_to_end_images_per_second"], 100 / ours["end_to_end_seconds"], rel_tol=0.02)
    assert math.isclose(tm["end_to_end_seconds"], gen["seconds"] + tm["fid_kid_is_total_seconds"], abs_tol=0.01)
    assert result["speedup_end_to_end"] > 0


def test_eval_benchmark_without_generator_and_bad_generator(tmp_path, generator_eval):
    out = tmp_path / "eval.json"
    res = _run("eval", "--count", "100", "--repeats", "1", "--generator", "none", "--no-torchmetrics",
               "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["generation"] is None and result["config"]["fake"].startswith("Fashion-MNIST train")
    assert "torchmetrics" not in result and result["fashion_gans"]["feature_pass_images_per_second"] > 0
    # real test images vs real training images: closer than the bundled (briefly trained) generator's images
    assert 0 < result["fashion_gans"]["values"]["fid"] < generator_eval[0]["fashion_gans"]["values"]["fid"]
    assert result["fashion_gans"]["values"]["recall"] > generator_eval[0]["fashion_gans"]["values"]["recall"]
    bad = _run("eval", "--count", "60", "--generator", "style-fmnist", "--out", str(tmp_path / "bad.json"), timeout=60)
    assert bad.returncode != 0 and "style-fmnist" in bad.stderr and "generation" in bad.stderr
    assert not (tmp_path / "bad.json").exists()
