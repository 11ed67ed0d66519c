"""Chaos test of the default chain: `kedro run` SIGKILLed at seeded random moments across its
stages, rerun after each kill, ends with what an uninterrupted run writes.

The kill moments are drawn once from a fixed seed as fractions of each aimed-at node's duration
in the uninterrupted run (so a slower machine scales them). Compared with that run: every durable
history (no evaluation lost or repeated), every checkpoint, the reports, and the MLflow metrics
of the last run (one value per step: nothing trained twice is logged twice). The reward is the
default latency-aware one (``trained_task.reward.target_ms``): the killed runs read the
latencies the uninterrupted run measured from the machine's evaluation cache (only those: every
network is trained again, so kills land in training), so rewards, histories and checkpoints
must match to the bit. Wall-clock values (timings, the latencies reports measure afresh) and
cache bookkeeping (hit or miss) differ from one run to the next and are left out.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from transfernas.downstream.runner import scalar_log

from ._kedro import KEDRO, TINY_CHAIN, copy_project, kedro_env

pytestmark = pytest.mark.slow

STAGE_OF = {
    "build_subdatasets": "subdatasets",
    "meta_train_agent": "meta_train",
    "check_reward_fidelity": "meta_train",
    "report_meta_training": "meta_train",
    "adapt_agent": "adapt",
    "report_adaptation": "adapt",
    "export_backbone": "export_backbone",
    "compare_models": "compare",
    "train_detector": "detection",
    "train_segmenter": "segmentation",
}

# Where the kills aim, in chain order: (node, first line of the window, its last line); no lines
# = the whole node. The moment is a seeded fraction of that window as the uninterrupted run
# took it. The downstream trainings are aimed at their middle iterations (6, checkpoints every
# 2), so a rerun resumes a training half done.
TARGETS = [
    ("meta_train_agent", None, None),
    ("adapt_agent", None, None),
    ("check_reward_fidelity", None, None),
    ("train_detector", "Iter(train) [3/6]", "Iter(train) [5/6]"),
    ("train_segmenter", "Iter(train) [3/6]", "Iter(train) [5/6]"),
]
SEED = 20261204
RUNNING = re.compile(r"Running node: (\w+)")
CLOCK = re.compile(r"latency|time|_s$|_s\.|per_s|machine|_cv$|iqr|^cache")


class KedroRun:
    """``kedro run`` in its own process group, its log read as it comes: when each line came,
    in which node."""

    def __init__(self, project: Path) -> None:
        self.proc = subprocess.Popen(
            [KEDRO, "run"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=kedro_env(project) | {"PYTHONUNBUFFERED": "1"},  # each line as it is logged
            start_new_session=True,  # decoding workers, executors: all in the group killed
        )
        self.lines: list[tuple[float, str | None, str]] = []  # (when, node, line)
        self.node: str | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if match := RUNNING.search(line):
                self.node = match.group(1)
            self.lines.append((time.monotonic(), self.node, line))

    def when(self, node: str, pattern: str | None, after: float = 0.0) -> float | None:
        """When the first line of ``node`` matching ``pattern`` (None: its first line) came."""
        for t, n, line in list(self.lines):
            if n == node and t >= after and (pattern is None or pattern in line):
                return t
        return None

    def window(self, node: str, first: str | None, last: str | None) -> float:
        """How long the window of a target lasted in this (finished) run."""
        start = self.when(node, first)
        assert start is not None, f"{node}: no line {first!r}"
        if last is not None:
            end = self.when(node, last, after=start)
        else:
            end = next((t for t, n, _ in self.lines if t > start and n != node), self.ended)
        assert end is not None, f"{node}: no line {last!r}"
        return end - start

    def wait_for(self, node: str, first: str | None, timeout: float = 600) -> bool:
        """Whether the window of ``node`` opened before the run ended."""
        deadline = time.monotonic() + timeout
        while self.when(node, first) is None and self.proc.poll() is None:
            assert time.monotonic() < deadline, f"{node}: {first!r} never came"
            time.sleep(0.01)
        return self.when(node, first) is not None

    def kill(self) -> str | None:
        """SIGKILL the whole group now; the node that was running, None if it had ended."""
        if self.proc.poll() is not None:
            return None
        node = self.node
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join()
        return node

    def finish(self) -> None:
        self.proc.wait(timeout=900)
        self._reader.join()
        assert self.proc.returncode == 0, "".join(line for _, _, line in self.lines[-60:])
        self.ended = time.monotonic()


def _tiny_project(path: Path, cache: Path) -> Path:
    """The tiny chain at ``path``, its evaluation cache at ``cache``."""
    project = copy_project(path)
    params = json.loads(json.dumps(TINY_CHAIN))
    params["trained_task"]["cache"] = {"dir": str(cache)}
    (project / "conf/local/parameters.yml").write_text(yaml.safe_dump(params))
    return project


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Any]:
    """The uninterrupted run (moved to ``ref``), then the killed-and-rerun one in its place:
    both ran at the same path, as the durable state is keyed by the source tree's path."""
    base = tmp_path_factory.mktemp("chaos")
    project = _tiny_project(base / "project", base / "ref-cache")
    ref = KedroRun(project)
    ref.finish()
    windows = [ref.window(*target) for target in TARGETS]
    project.rename(base / "ref")

    (base / "cache").mkdir()  # the machine's latencies, as the first run measured them
    shutil.copy(base / "ref-cache/latency.jsonl", base / "cache/latency.jsonl")
    _tiny_project(project, base / "cache")
    rng = random.Random(SEED)
    moments = [rng.uniform(0.05, 0.95) * w for w in windows]
    kills = []
    for (node, first, _), moment in zip(TARGETS, moments, strict=True):
        run = KedroRun(project)
        if run.wait_for(node, first):
            time.sleep(moment)
        if (landed := run.kill()) is None:
            run.finish()  # ended before the moment came: nothing left to kill
            break
        kills.append((node, landed))
    KedroRun(project).finish()
    return {"ref": base / "ref", "chaos": project, "kills": kills}


def test_kills_land_in_at_least_four_stages(runs):
    landed = [node for _, node in runs["kills"]]
    assert len(landed) >= 5, runs["kills"]
    assert len({STAGE_OF[n] for n in landed if n is not None}) >= 4, runs["kills"]
    for kind in ("detection", "segmentation"):  # a rerun resumed the training half done
        logs = (runs["chaos"] / "data/06_models" / kind).glob("*/*/*.log")
        text = "".join(log.read_text() for log in logs)
        assert re.search(r"resumed epoch: 0, iter: [24]\b", text), kind


def _strip(value: Any) -> Any:
    """``value`` without its wall-clock entries."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not CLOCK.search(str(k))}
    if isinstance(value, list | tuple):
        return [_strip(v) for v in value]
    return value


def _outputs(project: Path, pattern: str) -> list[Path]:
    return sorted(p.relative_to(project) for p in project.glob(pattern) if p.is_file())


def test_histories_hold_every_evaluation_once(runs):
    ref, chaos = runs["ref"], runs["chaos"]
    logs = _outputs(ref, "data/0[67]_*/**/*.jsonl")
    assert len(logs) >= 4  # meta-training epochs, fidelity references, adaptation
    assert logs == _outputs(chaos, "data/0[67]_*/**/*.jsonl")
    latency_aware = 0
    for log in logs:
        rows = [_strip(json.loads(line)) for line in (ref / log).read_text().splitlines()]
        raw = [json.loads(line) for line in (chaos / log).read_text().splitlines()]
        assert [_strip(r) for r in raw] == rows, log
        if any("cache_latency" in r for r in raw):  # a search's history: rewards hold latency
            assert {r["cache_latency"] for r in raw} == {"hit"}, log
            latency_aware += 1
    assert latency_aware >= 2  # meta-training and adaptation
    for frame in _outputs(ref, "data/07_model_output/*.parquet"):
        a, b = pd.read_parquet(ref / frame), pd.read_parquet(chaos / frame)
        keep = [c for c in a.columns if not CLOCK.search(c)]
        pd.testing.assert_frame_equal(a[keep], b[keep], obj=str(frame))


def _same(a: Any, b: Any, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        a, b = _strip(a), _strip(b)
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_checkpoints_are_the_uninterrupted_runs(runs):
    ref, chaos = runs["ref"], runs["chaos"]
    found = _outputs(ref, "data/0[67]_*/**/*.p[t]*")
    assert any(p.name == "meta.pt" for p in found) and any(p.name == "iter_6.pth" for p in found)
    for path in found:
        a = torch.load(ref / path, map_location="cpu", weights_only=False)
        b = torch.load(chaos / path, map_location="cpu", weights_only=False)
        if "message_hub" in a:  # an mmengine checkpoint: meta and message hub hold timings
            a, b = (
                {k: c[k] for k in ("state_dict", "optimizer", "param_schedulers")} for c in (a, b)
            )
        _same(a, b, str(path))


def test_reports_and_training_logs_are_the_uninterrupted_runs(runs):
    ref, chaos = runs["ref"], runs["chaos"]
    for report in _outputs(ref, "data/08_reporting/*.json"):
        a, b = (json.loads((p / report).read_text()) for p in (ref, chaos))
        _same(a, b, str(report))
    for kind in ("detection", "segmentation"):
        (work_dir,) = (ref / "data/06_models" / kind).iterdir()
        rows = [_strip(r | {"run": ""}) for r in scalar_log(work_dir)]
        again = [_strip(r | {"run": ""}) for r in scalar_log(chaos / work_dir.relative_to(ref))]
        assert sorted(again, key=str) == sorted(rows, key=str), kind


def _metrics(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    run = client.get_run(run_id)
    return {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        for key in run.data.metrics
    }


def _stage_runs(project: Path) -> tuple[MlflowClient, dict[str, str], list[Any]]:
    """The last finished run's stage (child) runs, by stage, and every run of the store."""
    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    exp = client.get_experiment_by_name("transfernas")
    every = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
    parent = next(
        r for r in every if r.info.status == "FINISHED" and "mlflow.parentRunId" not in r.data.tags
    )
    children = {
        r.data.tags["mlflow.runName"]: r.info.run_id
        for r in every
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    return client, children, every


def test_mlflow_metrics_are_the_uninterrupted_runs_once_each(runs):
    client, ref, _ = _stage_runs(runs["ref"])
    chaos_client, chaos, every = _stage_runs(runs["chaos"])
    assert sorted(ref) == sorted(chaos) == sorted(set(STAGE_OF.values()))
    for stage, run_id in ref.items():
        expected, got = _metrics(client, run_id), _metrics(chaos_client, chaos[stage])
        assert got.keys() == expected.keys(), stage
        for key, history in expected.items():
            steps = [s for s, _ in got[key]]
            assert steps == [s for s, _ in history], f"{stage} {key}: steps {steps}"
            if not CLOCK.search(key):
                assert got[key] == history, f"{stage} {key}"
    # the killed runs are marked as such, not left 'RUNNING' forever
    assert {r.info.status for r in every} <= {"FINISHED", "KILLED"}
    killed = [
        r for r in every if r.info.status == "KILLED" and "mlflow.parentRunId" not in r.data.tags
    ]
    assert len(killed) == len(runs["kills"])
