"""Every searcher proposes exactly what it proposed before its hot paths were optimised.

``tests/data/golden_histories.json`` holds, per searcher, the architectures (as action tuples)
of one seeded search on NB201 cifar10-valid, recorded with the library before #20's speed-ups
(meta-learners from a brief leave-one-out meta-training, itself part of what is checked). An
optimisation that changes what a searcher computes — a reordered float sum that flips an
argmax, a different random draw — changes a history and fails here. Regenerate only for an
intended change of behaviour:

    .venv/bin/python -m tests.test_golden_histories
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from transfernas.benchmark import NB201BenchmarkConfig, meta_train_for
from transfernas.search import run_search
from transfernas.searchers import SEARCHERS, make_searcher
from transfernas.tasks.latency import torch_threads
from transfernas.tasks.tabular import NB201Table, TabularTask

from .conftest import NB201_DIR

GOLDEN = Path(__file__).parent / "data" / "golden_histories.json"
QUERIES = 150  # past PNAS's first beam rounds, TNAS's and L2NAS's first refits
BATCH = {"catch-sfs": 3, "rea": 3}  # two searchers also asked in batches
CONFIG = NB201BenchmarkConfig(meta={"n_epochs": 1, "n_search": 10})


def history_of(table: NB201Table, method: str) -> list[list[int]]:
    """The actions of one seeded ``QUERIES``-long search of ``method`` on cifar10-valid."""
    task = TabularTask(table, "cifar10-valid")
    searcher = make_searcher(method, task.space, CONFIG.searcher_config(method), seed=11)
    if SEARCHERS[method].meta_trained:
        searcher.load_network_state(meta_train_for(table, CONFIG, method, "cifar10-valid"))
    history = run_search(task.space, task, searcher, QUERIES, batch_size=BATCH.get(method, 1))
    return [list(task.space.encode(rec["arch"])) for rec in history]


@pytest.fixture
def one_thread():
    """As recorded: intra-op threads may reorder float sums. Restored after, since other
    tests compare with work done in child processes at the default thread count."""
    with torch_threads(1):
        yield


@pytest.mark.parametrize("method", sorted(SEARCHERS))
def test_history_equals_the_recorded_one(method, table, one_thread):
    golden = json.loads(GOLDEN.read_text())
    assert history_of(table, method) == golden[method]


if __name__ == "__main__":
    torch.set_num_threads(1)
    nb201 = NB201Table.from_frame(pd.read_parquet(NB201_DIR / "nb201_12epoch.parquet"))
    GOLDEN.parent.mkdir(exist_ok=True)
    recorded = {m: history_of(nb201, m) for m in sorted(SEARCHERS)}
    GOLDEN.write_text(json.dumps(recorded, separators=(",", ":")) + "\n")
    print(f"wrote {GOLDEN}: {len(recorded)} searchers × {QUERIES} queries")
