"""A write that fails — disk full (ENOSPC), read-only file system (EROFS) — leaves the durable
state as it was before the write, readable, and the error names the path."""

from __future__ import annotations

import builtins
import errno
import os

import pytest
import torch

from transfernas import history as history_module
from transfernas import search as search_module
from transfernas.history import AppendLog, History, StateWriteError
from transfernas.search import load_checkpoint, run_search, save_checkpoint
from transfernas.searchers import make_searcher
from transfernas.spaces.nb201 import NB201Space
from transfernas.tasks.tabular import TabularTask


class _FullDisk:
    """A file whose writes stop half-way with ENOSPC, as on a full disk."""

    def __init__(self, f):
        self._f = f

    def write(self, data: bytes) -> int:
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _disk_full_for(module, monkeypatch) -> None:
    real_open = builtins.open
    monkeypatch.setattr(
        module, "open", lambda *a, **k: _FullDisk(real_open(*a, **k)), raising=False
    )


def test_a_failed_append_leaves_the_log_as_it_was(tmp_path, monkeypatch):
    log = AppendLog(tmp_path / "log.jsonl")
    log.append([{"step": 0, "reward": 1.0}, {"step": 1, "reward": 2.0}])
    before = (tmp_path / "log.jsonl").read_bytes()
    _disk_full_for(history_module, monkeypatch)
    with pytest.raises(
        StateWriteError, match=r"log\.jsonl: cannot write \(No space left on device\)"
    ):
        log.append([{"step": 2, "reward": 3.0}])
    assert (tmp_path / "log.jsonl").read_bytes() == before  # the half line was cut off
    assert list(log) == list(AppendLog(tmp_path / "log.jsonl"))  # memory and disk agree


def test_a_read_only_folder_is_named(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(args[0]))

    monkeypatch.setattr(history_module, "open", read_only, raising=False)
    with pytest.raises(StateWriteError, match=r"h\.jsonl: cannot write \(Read-only file system\)"):
        History(tmp_path / "h.jsonl").append([{"step": 0, "reward": 1.0}])


def test_a_failed_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "searcher.pt"
    save_checkpoint(path, {"n_told": 3, "w": torch.arange(4)})
    _disk_full_for(search_module, monkeypatch)
    with pytest.raises(StateWriteError, match=r"searcher\.pt: cannot write"):
        save_checkpoint(path, {"n_told": 4, "w": torch.arange(400)})
    state = load_checkpoint(path)
    assert state["n_told"] == 3 and torch.equal(state["w"], torch.arange(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["searcher.pt"]  # no temp file left


def test_a_search_stopped_by_a_full_disk_resumes_without_losing_or_repeating(
    tmp_path, monkeypatch, table
):
    space, task = NB201Space(), TabularTask(table, "cifar100")
    run = tmp_path / "run"

    def search(budget: int):
        return run_search(
            space, task, make_searcher("rea", space, {"population_size": 4, "sample_size": 2}, 0),
            budget, history=History(run / "history.jsonl"), checkpoint=run / "searcher.pt",
        )  # fmt: skip

    search(5)
    _disk_full_for(history_module, monkeypatch)
    with pytest.raises(StateWriteError):
        search(8)
    monkeypatch.undo()
    resumed = search(8)
    reference = run_search(
        space, task, make_searcher("rea", space, {"population_size": 4, "sample_size": 2}, 0), 8
    )
    assert [r["actions"] for r in resumed] == [r["actions"] for r in reference]
    assert [r["step"] for r in resumed] == list(range(8))
