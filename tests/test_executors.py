"""Executors: failures recorded not dropped, Ray equals serial, trained meta-training survives
SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from transfernas.executors import ExecutorConfig, RayExecutor, SerialExecutor
from transfernas.history import History
from transfernas.search import run_search
from transfernas.searchers import make_searcher
from transfernas.tasks.base import Evaluation

from . import _trained_fixture
from .conftest import ROOT, ToyTask
from .test_catch_agent import _states_equal


class FlakyTask(ToyTask):
    """Fails on one architecture always, on another only the first time."""

    def __init__(self, space, always, once):
        super().__init__(space)
        self.always, self.once, self.calls = tuple(always), tuple(once), []

    def evaluate(self, actions):
        self.calls.append(tuple(actions))
        if tuple(actions) == self.always:
            raise RuntimeError("CUDA out of memory (simulated)")
        if tuple(actions) == self.once and self.calls.count(self.once) == 1:
            raise RuntimeError("worker hiccup")
        return super().evaluate(actions)


def test_failed_evaluations_are_retried_then_recorded(toy_space, tmp_path):
    searcher = make_searcher("random", toy_space, None, seed=0)
    probe = make_searcher("random", toy_space, None, seed=0).ask(6)
    task = FlakyTask(toy_space, always=probe[1], once=probe[3])
    history = run_search(
        toy_space,
        task,
        searcher,
        6,
        history=History(tmp_path / "h.jsonl"),
        executor=SerialExecutor(max_retries=1),
        failed_reward=-1.0,
    )
    by_step = {r["step"]: r for r in History(tmp_path / "h.jsonl")}
    assert len(by_step) == 6 and len(history) == 6
    assert by_step[1]["status"] == "failed" and by_step[1]["reward"] == -1.0
    assert "CUDA out of memory" in by_step[1]["error"] and by_step[1]["attempts"] == 2
    assert by_step[3]["status"] == "ok" and by_step[3]["attempts"] == 2  # retried, then fine
    assert task.calls[1:3] == [probe[1], probe[1]]  # tried twice, then given up


def test_history_reads_in_step_order_whatever_the_completion_order(tmp_path):
    h = History(tmp_path / "h.jsonl")
    for step in (1, 0, 3, 2):
        h.append([{"trial": 0, "step": step, "reward": float(step)}])
    assert [r["step"] for r in h] == [0, 1, 2, 3]
    assert [r["step"] for r in History(tmp_path / "h.jsonl")] == [0, 1, 2, 3]


@pytest.mark.slow
def test_ray_gives_the_same_rewards_as_serial(tmp_path):
    """Two local Ray workers train the candidates of each batch in parallel; deterministic CPU
    training gives them exactly the serial rewards, and the histories are identical."""
    task_at, _ = _trained_fixture.pool(tmp_path / "sd")
    task = task_at(0)

    def search(executor):
        searcher = make_searcher("rea", task.space, None, seed=4)
        return run_search(task.space, task, searcher, 6, batch_size=2, executor=executor)

    serial = search(SerialExecutor())
    ray_executor = RayExecutor(ExecutorConfig(kind="ray", local_cpus=2, parallel=2))
    try:
        parallel = search(ray_executor)
    finally:
        ray_executor.ray.shutdown()
    assert [r["actions"] for r in parallel] == [r["actions"] for r in serial]
    assert [r["reward"] for r in parallel] == [r["reward"] for r in serial]
    assert [r["metrics"]["val_acc"] for r in parallel] == [r["metrics"]["val_acc"] for r in serial]
    assert all(r["status"] == "ok" for r in parallel)


@pytest.mark.slow
def test_ray_records_a_failing_evaluation(toy_space):
    always = make_searcher("random", toy_space, None, seed=0).ask(2)[1]
    executor = RayExecutor(ExecutorConfig(kind="ray", local_cpus=2, max_retries=1))
    try:
        history = run_search(
            toy_space,
            FlakyTask(toy_space, always=always, once=(9, 9, 9)),
            make_searcher("random", toy_space, None, seed=0),
            3,
            batch_size=3,
            executor=executor,
        )
    finally:
        executor.ray.shutdown()
    failed = [r for r in history if r["status"] == "failed"]
    assert 1 in [r["step"] for r in failed] and "CUDA out of memory" in failed[0]["error"]
    assert all(tuple(r["actions"]) == always for r in failed)
    assert len(history) == 3  # nothing dropped


def test_trained_meta_training_sigkill_then_resume(tmp_path):
    """kill -9 inside the second meta-epoch of a trained-task meta-training: the rerun resumes,
    repeats no finished evaluation and loses none; the agent equals an uninterrupted one."""
    reference, ref_curves, ref_records = _trained_fixture.run(None, tmp_path / "sd")
    work = tmp_path / "work"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests._trained_fixture", str(work), str(tmp_path / "sd")],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        epoch1 = work / "epoch_0001.jsonl"
        if (work / "meta.pt").exists() and epoch1.exists() and epoch1.read_text().count("\n") >= 2:
            break
        assert proc.poll() is None, "meta-training ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {
        (r["trial"], r["step"]) for e in range(3) for r in History(work / f"epoch_{e:04d}.jsonl")
    }
    calls = []
    real = Evaluation.__init__

    def counting(self, *args, **kwargs):
        calls.append(1)
        real(self, *args, **kwargs)

    Evaluation.__init__ = counting
    try:
        agent, curves, records = _trained_fixture.run(work, tmp_path / "sd")
    finally:
        Evaluation.__init__ = real
    assert len(calls) == 12 - len(done_before)  # only the missing evaluations ran
    assert [(r["trial"], r["step"]) for r in records] == [
        (e, s) for e in range(3) for s in range(4)
    ]
    assert [r["reward"] for r in records] == [r["reward"] for r in ref_records]
    assert [c["best_reward"] for c in curves] == [c["best_reward"] for c in ref_curves]
    assert _states_equal(agent.network_state(), reference.network_state())
    assert np.isfinite([r["reward"] for r in records]).all()
