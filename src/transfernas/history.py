"""Append-only, crash-safe logs of search results.

One JSON object per line, each append flushed and fsync'ed before it returns, so after
``kill -9`` every record that was acknowledged is on disk. A torn final line (the process died
mid-write) is dropped on read and cut off before the next append: it was never acknowledged.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from transfernas.errors import UserError


class StateWriteError(UserError, OSError):
    """Durable state could not be written (disk full, read-only folder); the state on disk is
    the one before the write."""

    def __init__(self, path: Path, cause: OSError | RuntimeError):
        reason = getattr(cause, "strerror", None) or str(cause)
        super().__init__(f"{path}: cannot write ({reason}); the state before it is kept")


class AppendLog:
    """Durable JSON-lines log; ``path=None`` keeps records in memory only."""

    def __init__(self, path: str | Path | None = None, *, fsync: bool = True):
        self.path = Path(path) if path is not None else None
        self.fsync = fsync
        self._records: list[dict[str, Any]] = []
        if self.path is not None and self.path.exists():
            self._records = self._read_and_repair(self.path)

    @staticmethod
    def _read_and_repair(path: Path) -> list[dict[str, Any]]:
        data = path.read_bytes()
        good_end = data.rfind(b"\n") + 1  # everything after the last newline is torn
        records = [json.loads(line) for line in data[:good_end].splitlines() if line.strip()]
        if good_end < len(data):
            with open(path, "r+b") as f:
                f.truncate(good_end)
                os.fsync(f.fileno())
        return records

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append durably, or leave the file as it was (a full disk, a read-only folder)."""
        records = list(records)
        if self.path is not None and records:
            payload = "".join(json.dumps(r) + "\n" for r in records).encode()  # key order kept
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "ab") as f:
                    start = f.seek(0, os.SEEK_END)
                    try:
                        f.write(payload)
                        f.flush()
                        if self.fsync:
                            os.fsync(f.fileno())
                    except OSError:
                        f.truncate(start)  # no half-written, unacknowledged records
                        raise
            except OSError as exc:
                raise StateWriteError(self.path, exc) from exc
        self._records.extend(records)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._records[i]


class History(AppendLog):
    """Search history: one record per evaluation (step, actions, key, reward, metrics, ...).

    Parallel evaluations finish (and are appended) in any order; the history reads in step
    order, so it is the same whichever executor wrote it.
    """

    def __init__(self, path: str | Path | None = None, *, fsync: bool = True):
        super().__init__(path, fsync=fsync)
        self._records.sort(key=_order)

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        before = len(self._records)
        super().append(records)
        tail = self._records[max(before - 1, 0) :]
        if any(_order(a) > _order(b) for a, b in itertools.pairwise(tail)):
            self._records.sort(key=_order)

    def rewards(self) -> list[float]:
        return [r["reward"] for r in self]

    def best(self) -> dict[str, Any]:
        """First record with the highest reward."""
        if not len(self):
            raise ValueError("empty history has no best record")
        return max(self, key=lambda r: r["reward"])

    def to_frame(self) -> pd.DataFrame:
        return self.frame_of(self)

    @staticmethod
    def frame_of(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
        """One row per record, metrics flattened into columns."""
        rows = [
            {k: v for k, v in r.items() if k != "metrics"} | r.get("metrics", {}) for r in records
        ]
        return pd.DataFrame(rows)


def _order(record: dict[str, Any]) -> tuple[int, int]:
    return record.get("trial", 0), record.get("step", 0)
