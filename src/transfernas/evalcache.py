"""Content-addressed cache of evaluations, shared by every searcher, trial and rerun on a machine.

Training a candidate is deterministic (seeded, fixed thread count), but its latency is a
wall-clock measurement: two runs of the same seed measured 5.88 and 6.79 ms for the same network
at step 0, so a latency-aware reward made every rerun a different search. Here the first
measurement of a network on a machine *is* its latency: reruns, resumed runs and other
searchers read it back, and a latency-aware search repeats its history to the bit. Trained
results are kept the same way, so a benchmark that trains the same network again (another
method, seed or rerun) pays for it once.

A value is keyed by the digest of everything it depends on (:func:`device_fingerprint` for
where it was measured): an entry written by another device, training setting or data is
simply another key and is never read. One file per kind (``<kind>.jsonl``), one record a line:
``{"key", "value", "check"}``, ``check`` being the digest of key and value.

- Appends take an exclusive ``flock`` on ``<kind>.jsonl.lock``, read what other processes
  appended since, and write only a key that is still missing (the one already there is
  returned instead: two processes that computed the same key use the same value), then
  ``fsync``: no entry is written twice or lost.
- A torn last line (a writer killed mid-append) is cut off by the next writer, under the lock;
  readers stop at the last newline. A line that does not parse, or whose ``check`` does not
  match, is never returned (counted in ``corrupt``).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from transfernas.digest import json_digest
from transfernas.environment import device_name
from transfernas.history import StateWriteError

ENV = "TRANSFERNAS_CACHE"


class CacheParams(BaseModel):
    """``trained_task.cache``: where trained results and latencies are kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="false: train and time every evaluation anew")
    dir: str | None = Field(
        None, description=f"null = ${ENV}, else ~/.cache/transfernas/evaluations"
    )

    def build(self) -> EvaluationCache | None:
        if not self.enabled:
            return None
        default = os.environ.get(ENV) or Path.home() / ".cache/transfernas/evaluations"
        return EvaluationCache(self.dir if self.dir is not None else default)


def device_fingerprint(device: str | torch.device) -> dict[str, Any]:
    """What a measurement on ``device`` depends on besides the network: the device model and
    the torch (and CUDA) build that ran it."""
    device = torch.device(device)
    out: dict[str, Any] = {"device": device_name(device), "torch": torch.__version__}
    if device.type == "cuda":
        out["cuda"] = torch.version.cuda
    return out


class EvaluationCache:
    """The cache folder; values are JSON objects. Picklable (a worker re-reads the files)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._index: dict[str, dict[str, Any]] = {}
        self._offset: dict[str, int] = {}
        self.stats: Counter[str] = Counter()  # "<kind>.hits" / ".misses" / "corrupt"

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The value stored under ``key`` (a :meth:`key` digest), reading new appends first."""
        if key not in self._index.get(kind, {}):
            self._read_new(kind)
        value = self._index.get(kind, {}).get(key)
        self.stats[f"{kind}.{'hits' if value is not None else 'misses'}"] += 1
        return value

    def put(self, kind: str, key: str, value: dict[str, Any]) -> dict[str, Any]:
        """Store ``value`` unless another process stored ``key`` first; the stored value."""
        record = {"key": key, "value": value, "check": json_digest([key, value], length=16)}
        line = (json.dumps(record) + "\n").encode()
        path = self.path(kind)
        try:
            with self._locked(kind):
                self._read_new(kind, repair=True)
                if key in self._index[kind]:
                    return self._index[kind][key]
                with open(path, "ab") as f:
                    start = f.seek(0, os.SEEK_END)
                    try:
                        f.write(line)
                        f.flush()
                        os.fsync(f.fileno())
                    except OSError:
                        f.truncate(start)
                        raise
                self._offset[kind] = start + len(line)
        except OSError as exc:
            raise StateWriteError(path, exc) from exc
        stored = json.loads(line)["value"]  # exactly what a reader gets back
        self._index[kind][key] = stored
        return stored

    @staticmethod
    def key(*parts: Any) -> str:
        return json_digest(list(parts), length=32)

    def path(self, kind: str) -> Path:
        return self.folder / f"{kind}.jsonl"

    @contextmanager
    def _locked(self, kind: str) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / f"{kind}.jsonl.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocking: appends are short
            yield
        finally:
            os.close(fd)

    def _read_new(self, kind: str, repair: bool = False) -> None:
        """Index the complete lines appended since the last read. ``repair`` (under the lock):
        cut a torn last line off the file, since its writer is gone."""
        index = self._index.setdefault(kind, {})
        path, offset = self.path(kind), self._offset.get(kind, 0)
        if not path.exists():
            return
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < offset:  # the file was replaced or truncated: read it from the start
                index.clear()
                offset = 0
            f.seek(offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for raw in data[:end].splitlines():
            record = _valid(raw)
            if record is None:
                self.stats["corrupt"] += 1
            else:
                index.setdefault(record["key"], record["value"])
        self._offset[kind] = offset + end
        if repair and end < len(data):
            with open(path, "r+b") as f:
                f.truncate(offset + end)
                os.fsync(f.fileno())

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder}  # a worker indexes the files itself

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["folder"])  # type: ignore[misc]


def _valid(raw: bytes) -> dict[str, Any] | None:
    """The record of one line, or None if it is not one the cache wrote whole."""
    try:
        record = json.loads(raw)
        ok = json_digest([record["key"], record["value"]], length=16) == record["check"]
    except (ValueError, KeyError, TypeError):
        return None
    return record if ok else None
