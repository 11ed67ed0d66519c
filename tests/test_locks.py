"""One process at a time on a durable state folder, checked with two real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from transfernas.history import History
from transfernas.locks import StateLockedError, owned
from transfernas.search import run_search
from transfernas.searchers import make_searcher
from transfernas.spaces.nb201 import NB201Space
from transfernas.tasks.tabular import TabularTask

HOLD = textwrap.dedent(
    """
    import sys, time
    from transfernas.locks import owned
    with owned(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
    """
)


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_fails_at_once_naming_the_holder(tmp_path):
    proc = _holder(tmp_path / "state")
    try:
        locked = pytest.raises(StateLockedError, match=rf"state is in use by pid {proc.pid}\b")
        with locked, owned(tmp_path / "state"):
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with owned(tmp_path / "state") as folder:  # kill -9 released it: a resume may start
        assert (folder / ".lock").read_text().strip() == str(os.getpid())


def test_the_lock_is_reentrant_within_a_process_and_released_after(tmp_path):
    with owned(tmp_path / "s"), owned(tmp_path / "s"):
        pass
    proc = _holder(tmp_path / "s")  # released: another process can take it
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_search_on_state_another_process_holds_is_refused(tmp_path, table):
    run_dir = tmp_path / "run"
    proc = _holder(run_dir)
    space = NB201Space()
    try:
        task = TabularTask(table, "cifar100")
        with pytest.raises(StateLockedError, match=str(proc.pid)):
            run_search(
                space,
                task,
                make_searcher("random", space, None, 0),
                3,
                history=History(run_dir / "history.jsonl"),
                checkpoint=run_dir / "searcher.pt",
            )
        assert not (run_dir / "history.jsonl").exists()  # nothing written beside the holder
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
