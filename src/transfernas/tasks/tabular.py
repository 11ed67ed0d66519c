"""NAS-Bench-201 as a tabular task: the reward is a lookup of the 12-epoch validation accuracy.

The table (``data/01_raw/nb201/nb201_12epoch.parquet``) holds, for each of the 15,625 cells,
the 12-epoch accuracies NB201 reports under ``hp='12'`` — CATCH's reward signal. Test
accuracies ride along as report-only metrics. The 200-epoch table is *not* read here: it is
for reporting only and never reaches a searcher.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

import numpy as np
import pandas as pd

from transfernas.errors import UserError
from transfernas.spaces.nb201 import N_ARCHS, NB201Space
from transfernas.tasks.base import Evaluation
from transfernas.tasks.reward import PAPER_W, latency_reward

NB201Dataset = Literal["cifar10-valid", "cifar100", "ImageNet16-120"]
DATASETS: tuple[str, ...] = get_args(NB201Dataset)
# dataset -> (12-epoch validation column, 12-epoch test column) of the converted table
COLUMNS_12: dict[str, tuple[str, str]] = {
    "cifar10-valid": ("cifar10-val", "cifar10-test"),
    "cifar100": ("cifar100-val", "cifar100-test"),
    "ImageNet16-120": ("imagenet-val", "imagenet-test"),
}
# dataset -> 200-epoch test column (NB201 reports cifar10 test for cifar10-valid searches)
COLUMNS_200: dict[str, str] = {
    "cifar10-valid": "cifar10",
    "cifar100": "cifar100",
    "ImageNet16-120": "ImageNet16-120",
}


def table_checksum(df: pd.DataFrame) -> str:
    """sha256 of a table's content (column names, strings, little-endian numbers).

    Independent of the file format, so the parquet file can be rewritten by another pyarrow
    without changing the checksum recorded in the manifest.
    """
    h = hashlib.sha256()
    for col in sorted(df.columns):
        h.update(col.encode())
        values = df[col].to_numpy()
        if values.dtype.kind in "iuf":
            h.update(
                np.ascontiguousarray(values, dtype="<f8" if values.dtype.kind == "f" else "<i8")
            )
        else:
            h.update("\n".join(map(str, values)).encode())
    return h.hexdigest()


class TableError(UserError, ValueError):
    """An NB201 table that is not what its name says: the message names the table and column."""


def _check_frame(
    df: pd.DataFrame, needed: Sequence[str], what: str, low: float, high: float | None
) -> None:
    """All 15,625 cells in index order, and every ``needed`` value a finite number in
    [low, high]: a NaN or a stray percent-as-fraction would become a reward without a word."""
    missing = [c for c in ("arch_index", "arch_str", *needed) if c not in df.columns]
    if missing:
        raise TableError(f"{what}: missing columns {missing}; has {list(df.columns)}")
    index = df["arch_index"].to_numpy()
    if (
        len(df) != N_ARCHS
        or index.dtype.kind not in "iu"
        or not np.array_equal(index, np.arange(N_ARCHS))
    ):
        raise TableError(f"{what}: expected {N_ARCHS} rows with arch_index 0..{N_ARCHS - 1}")
    for col in needed:
        values = df[col].to_numpy()
        if values.dtype.kind not in "iuf":
            raise TableError(f"{what}: column {col!r} is {values.dtype}, not numbers")
        bad = ~np.isfinite(values) | (values < low) | (values > (np.inf if high is None else high))
        if bad.any():
            rows = np.flatnonzero(bad)
            bounds = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
            raise TableError(
                f"{what}: column {col!r} has {len(rows)} value(s) not finite in {bounds}, "
                f"e.g. arch_index {int(rows[0])}: {values[rows[0]]!r}"
            )


def _index_of_code(df: pd.DataFrame, what: str) -> np.ndarray:
    """NB201 index of each cell's dense code: every arch string parses, each cell once."""
    try:
        index_of_code = _parsed(tuple(str(s) for s in df["arch_str"]))
    except ValueError as e:
        raise TableError(f"{what}: column 'arch_str': {e}") from None
    if (index_of_code < 0).any():
        raise TableError(f"{what}: arch strings do not cover all 15,625 cells")
    return index_of_code.copy()


@lru_cache(maxsize=4)
def _parsed(arch_strs: tuple[str, ...]) -> np.ndarray:
    """Parsing 15,625 strings takes ~0.2 s; both tables (and every benchmark worker) load the
    same column again and again."""
    space = NB201Space()
    codes = space.codes(np.array([space.encode(s) for s in arch_strs]))
    index_of_code = np.full(N_ARCHS, -1, dtype=np.int64)
    index_of_code[codes] = np.arange(len(arch_strs))
    return index_of_code


def check_test200(df: pd.DataFrame) -> pd.DataFrame:
    """The 200-epoch table, checked as the 12-epoch one is before a report reads it: every
    cell once in index order, every test accuracy a finite percentage."""
    _check_frame(df, list(COLUMNS_200.values()), "NB201 200-epoch table", 0.0, 100.0)
    _index_of_code(df, "NB201 200-epoch table")
    return df


@dataclass(frozen=True)
class NB201Table:
    """The 12-epoch table as arrays, addressable by the space's dense code.

    It may hold a subset of the datasets: leave-one-dataset-out meta-training gets a table
    whose held-out columns were dropped before it was built, so they cannot be read.
    """

    arch_str: np.ndarray  # (15625,) by NB201 index
    index_of_code: np.ndarray  # (15625,) NB201 index of each base-5 code
    columns: dict[str, np.ndarray]  # accuracy column -> (15625,) by NB201 index

    @classmethod
    def from_frame(cls, df: pd.DataFrame, datasets: Sequence[str] | None = None) -> NB201Table:
        """Build from the parquet frame, keeping only ``datasets`` (default: all three)."""
        datasets = list(DATASETS if datasets is None else datasets)
        unknown = [d for d in datasets if d not in COLUMNS_12]
        if unknown or not datasets:
            raise ValueError(
                f"NB201 datasets {unknown or datasets!r}; allowed: {', '.join(DATASETS)}"
            )
        acc_cols = [c for d in datasets for c in COLUMNS_12[d]]
        _check_frame(df, acc_cols, "NB201 12-epoch table", 0.0, 100.0)
        index_of_code = _index_of_code(df, "NB201 12-epoch table")
        columns = {c: df[c].to_numpy(dtype=np.float64) for c in acc_cols}
        return cls(df["arch_str"].to_numpy(dtype=object), index_of_code, columns)

    @property
    def datasets(self) -> list[str]:
        return [d for d, (val, _) in COLUMNS_12.items() if val in self.columns]

    def without(self, dataset: str) -> NB201Table:
        """The same table with ``dataset``'s columns removed (leave-one-dataset-out)."""
        drop = set(COLUMNS_12[dataset])
        kept = {c: v for c, v in self.columns.items() if c not in drop}
        return NB201Table(self.arch_str, self.index_of_code, kept)


class LookupTask:
    """Reward = a precomputed value per NB201 cell; evaluation is an array lookup.

    ``extra`` holds more per-cell report-only metrics (e.g. latency), by NB201 index.
    """

    def __init__(
        self,
        name: str,
        table: NB201Table,
        reward: np.ndarray,
        test: np.ndarray | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ):
        self.name = name
        self.space = NB201Space()
        self.table = table
        self.val = np.asarray(reward, dtype=np.float64)
        self.test = self.val if test is None else np.asarray(test, dtype=np.float64)
        self.extra = extra or {}
        # rank 0 = best reward; ties broken by NB201 index (stable sort)
        order = np.argsort(-self.val, kind="stable")
        self.rank = np.empty(N_ARCHS, dtype=np.int64)
        self.rank[order] = np.arange(N_ARCHS)
        self.optimum_index = int(order[0])

    @property
    def optimum_reward(self) -> float:
        return float(self.val[self.optimum_index])

    def index(self, actions: Sequence[int]) -> int:
        return int(self.table.index_of_code[self.space.key(actions)])

    def evaluate(self, actions: Sequence[int]) -> Evaluation:
        start = time.perf_counter()
        i = self.index(actions)
        metrics = {"arch_index": i, "test_acc": float(self.test[i])}
        metrics |= {k: float(v[i]) for k, v in self.extra.items()}
        return Evaluation(float(self.val[i]), metrics, time.perf_counter() - start)


class TabularTask(LookupTask):
    """Reward = 12-epoch validation accuracy (percent) of the cell on ``dataset``."""

    def __init__(self, table: NB201Table, dataset: str):
        if dataset not in COLUMNS_12:
            raise ValueError(f"unknown NB201 dataset {dataset!r}; allowed: {', '.join(DATASETS)}")
        val_col, test_col = COLUMNS_12[dataset]
        if val_col not in table.columns:
            raise KeyError(f"NB201 dataset {dataset!r} is not in this table (held out?)")
        val = table.columns[val_col]
        super().__init__(f"nb201/{dataset}", table, val, table.columns[test_col], {"val_acc": val})
        self.dataset = dataset


def mixture_task(table: NB201Table, a: str, b: str, weight: float) -> LookupTask:
    """Task augmentation: reward = weight·std(val_a) + (1 − weight)·std(val_b).

    Standardising first puts both datasets on one scale, so the mixture interpolates their
    rankings; the reward stays in standard units (searchers normalise rewards anyway).
    """
    va, vb = TabularTask(table, a).val, TabularTask(table, b).val
    reward = weight * (va - va.mean()) / va.std() + (1 - weight) * (vb - vb.mean()) / vb.std()
    return LookupTask(f"nb201/mix({a},{b},{weight:.2f})", table, reward)


def meta_tasks(table: NB201Table, mixtures: int, seed: int) -> list[LookupTask]:
    """Meta-training pool: one task per dataset in ``table`` plus ``mixtures`` seeded mixtures."""
    tasks: list[LookupTask] = [TabularTask(table, d) for d in table.datasets]
    rng = np.random.default_rng([seed, 0x3117])
    for _ in range(mixtures if len(tasks) > 1 else 0):
        a, b = rng.choice(table.datasets, size=2, replace=False)
        tasks.append(mixture_task(table, str(a), str(b), float(rng.uniform(0.2, 0.8))))
    return tasks


def hardware_aware_task(
    table: NB201Table,
    dataset: str,
    latency: pd.DataFrame,
    device: str,
    target_ms: float,
    w: float = PAPER_W,
) -> LookupTask:
    """Reward = 12-epoch validation accuracy · (latency on ``device`` / target)^w.

    ``latency`` is the shipped measured-latency table (``nb201_latency.parquet``: one column per
    device, ms, same row order as the accuracy table): hardware-aware search without measuring.
    """
    devices = [c for c in latency.columns if c not in ("arch_index", "arch_str")]
    if device not in devices:
        raise ValueError(f"unknown latency device {device!r}; allowed: {', '.join(devices)}")
    _check_frame(latency, [device], "NB201 latency table", 0.0, None)
    base = TabularTask(table, dataset)
    lat = latency[device].to_numpy(dtype=np.float64)
    reward = latency_reward(base.val, lat, target_ms, w)
    extra = {"val_acc": base.val, "latency_ms": lat}
    name = f"nb201/{dataset}@{device}<{target_ms:g}ms"
    return LookupTask(name, table, reward, base.test, extra)
