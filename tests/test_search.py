"""The search loop: determinism, and resume after kill -9 without losing or repeating anything."""

import os
import signal
import subprocess
import sys
import time

import pytest

from transfernas.history import History
from transfernas.search import ResumeMismatchError, run_search
from transfernas.searchers import SEARCHERS, make_searcher
from transfernas.tasks.tabular import TabularTask

from .conftest import NB201_DIR, ROOT

NAMES = sorted(SEARCHERS)


class CountingTask(TabularTask):
    def __init__(self, *args):
        super().__init__(*args)
        self.calls = 0

    def evaluate(self, actions):
        self.calls += 1
        return super().evaluate(actions)


def _trace(history):
    return [(r["step"], tuple(r["actions"]), r["reward"]) for r in history]


def _search(table, name, budget, seed=11, **kw):
    task = CountingTask(table, "cifar100")
    history = run_search(
        task.space, task, make_searcher(name, task.space, None, seed), budget, **kw
    )
    return history, task


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_history(table, name):
    a, _ = _search(table, name, 40)
    b, _ = _search(table, name, 40)
    c, _ = _search(table, name, 40, seed=12)
    assert _trace(a) == _trace(b)
    assert _trace(a) != _trace(c)
    assert [r["step"] for r in a] == list(range(40))


@pytest.mark.parametrize("name", NAMES)
def test_resume_when_history_is_ahead_of_checkpoint(table, name, tmp_path):
    """Crash after the row was fsync'ed but before the searcher checkpoint: no re-evaluation."""
    reference, _ = _search(table, name, 30)
    _search(table, name, 12, history=History(tmp_path / "h.jsonl"), checkpoint=tmp_path / "s.pt")
    History(tmp_path / "h.jsonl").append([reference[12], reference[13]])  # two rows, no tell
    resumed, task = _search(
        table, name, 30, history=History(tmp_path / "h.jsonl"), checkpoint=tmp_path / "s.pt"
    )
    assert _trace(resumed) == _trace(reference)
    assert task.calls == 30 - 14


@pytest.mark.parametrize("name", NAMES)
def test_resume_without_checkpoint_replays(table, name, tmp_path):
    reference, _ = _search(table, name, 25)
    History(tmp_path / "h.jsonl").append(list(reference)[:10])
    resumed, task = _search(table, name, 25, history=History(tmp_path / "h.jsonl"))
    assert _trace(resumed) == _trace(reference)
    assert task.calls == 15


def test_resume_refuses_a_different_search(table, tmp_path):
    _search(table, "rea", 10, history=History(tmp_path / "h.jsonl"))
    with pytest.raises(ResumeMismatchError, match="step"):
        _search(table, "rea", 20, seed=99, history=History(tmp_path / "h.jsonl"))
    _search(table, "rea", 10, history=History(tmp_path / "h2.jsonl"), checkpoint=tmp_path / "s.pt")
    with pytest.raises(ResumeMismatchError, match="checkpoint"):
        _search(
            table,
            "random",
            20,
            history=History(tmp_path / "h2.jsonl"),
            checkpoint=tmp_path / "s.pt",
        )


@pytest.mark.parametrize("name", NAMES)
def test_sigkill_mid_search_then_resume_equals_uninterrupted(table, name, tmp_path):
    budget = 60
    reference, _ = _search(table, name, budget)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "tests._kill_target",
        str(NB201_DIR / "nb201_12epoch.parquet"),
        str(tmp_path),
        name,
        str(budget),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    history_file = tmp_path / "history.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if history_file.exists() and history_file.read_text().count("\n") >= 15:
            break
        assert proc.poll() is None, "search finished or died before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    survived = len(History(history_file))
    assert 15 <= survived < budget
    resumed, task = _search(
        table, name, budget, history=History(history_file), checkpoint=tmp_path / "searcher.pt"
    )
    assert _trace(resumed) == _trace(reference)
    assert task.calls == budget - survived  # nothing finished was evaluated again
    steps = [r["step"] for r in History(history_file)]
    assert steps == list(range(budget))  # nothing lost, nothing duplicated on disk


def test_invalid_budget(table):
    with pytest.raises(ValueError, match="budget"):
        _search(table, "random", -1)
