"""`make gpu-check` on a machine without CUDA: says so, exits 0, writes nothing; and its checks
themselves run (as a CPU dry run), so the script works when a GPU comes."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

SCRIPT = str(ROOT / "benchmarks/gpu_check.py")


def _run(*args: str, cuda_hidden: bool = True) -> subprocess.CompletedProcess:
    env = os.environ | ({"CUDA_VISIBLE_DEVICES": ""} if cuda_hidden else {})
    return subprocess.run(
        [sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_without_cuda_it_says_so_and_writes_nothing(tmp_path):
    done = _run("--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "no CUDA device here" in done.stdout and "nothing written" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_cpu_dry_run_needs_an_out_folder():
    done = _run("--device", "cpu")
    assert done.returncode == 2 and "--out" in done.stderr


@pytest.mark.slow
def test_its_checks_run_on_the_cpu(tmp_path):
    checks = ["trained_evaluation", "latency", "ray_gpu"]
    done = _run("--device", "cpu", "--quick", "--checks", *checks, "--out", str(tmp_path))
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert done.returncode == 0, json.dumps(report, indent=1)
    assert list(report["checks"]) == checks and all(c["ok"] for c in report["checks"].values())
    assert 0 <= report["checks"]["trained_evaluation"]["reward"] <= 1
    assert report["checks"]["trained_evaluation"]["channels_last"] is False
    (row,) = report["checks"]["latency"]["rows"]
    assert row["size"] == [224, 224] and row["eager_ms"] > 0 and "cuda_graph_ms" not in row
    assert report["checks"]["ray_gpu"]["num_gpus"] == 0
