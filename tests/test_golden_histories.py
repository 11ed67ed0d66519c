"""Every searcher proposes exactly what it proposed before its hot paths were optimised.

``tests/data/golden_histories.json`` holds, per searcher, the architectures (as action tuples)
of one seeded search on NB201 cifar10-valid, recorded with the library before #20's speed-ups
(meta-learners from a brief leave-one-out meta-training, itself part of what is checked). An
optimisation that changes what a searcher computes — a reordered float sum that flips an
argmax, a different random draw — changes a history and fails here.

The searches run in a child process on one thread with the CPU code paths pinned (ATen's and
MKL's AVX2 kernels), so a machine with other vector units computes the same floats as the one
that recorded them. Regenerate only for an intended change of behaviour:

    .venv/bin/python -m tests.test_golden_histories --write
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "data" / "golden_histories.json"
QUERIES = 150  # past PNAS's first beam rounds, TNAS's and L2NAS's first refits
BATCH = {"catch-sfs": 3, "rea": 3}  # two searchers also asked in batches
PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "OMP_NUM_THREADS": "1"}


def histories() -> dict[str, list[list[int]]]:
    """Every searcher's history, computed in a child process with ``PINNED`` set."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_golden_histories", "--compute"],
        cwd=Path(__file__).parents[1],
        env=os.environ | PINNED,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def _compute() -> dict[str, list[list[int]]]:
    import pandas as pd
    import torch

    from transfernas.benchmark import NB201BenchmarkConfig, meta_train_for
    from transfernas.search import run_search
    from transfernas.searchers import SEARCHERS, make_searcher
    from transfernas.tasks.tabular import NB201Table, TabularTask

    torch.set_num_threads(1)
    table = NB201Table.from_frame(
        pd.read_parquet(Path(__file__).parents[1] / "data/01_raw/nb201/nb201_12epoch.parquet")
    )
    config = NB201BenchmarkConfig(meta={"n_epochs": 1, "n_search": 10})
    out = {}
    for method in sorted(SEARCHERS):
        task = TabularTask(table, "cifar10-valid")
        searcher = make_searcher(method, task.space, config.searcher_config(method), seed=11)
        if SEARCHERS[method].meta_trained:
            searcher.load_network_state(meta_train_for(table, config, method, "cifar10-valid"))
        history = run_search(task.space, task, searcher, QUERIES, batch_size=BATCH.get(method, 1))
        out[method] = [list(task.space.encode(rec["arch"])) for rec in history]
    return out


@pytest.fixture(scope="module")
def computed() -> dict[str, list[list[int]]]:
    return histories()


@pytest.mark.parametrize("method", sorted(json.loads(GOLDEN.read_text())))
def test_history_equals_the_recorded_one(method, computed):
    assert computed[method] == json.loads(GOLDEN.read_text())[method]


def test_every_searcher_has_a_recorded_history(computed):
    assert sorted(computed) == sorted(json.loads(GOLDEN.read_text()))


if __name__ == "__main__":
    if sys.argv[1:] == ["--compute"]:
        print(json.dumps(_compute()))
    elif sys.argv[1:] == ["--write"]:
        recorded = histories()
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(recorded, separators=(",", ":")) + "\n")
        print(f"wrote {GOLDEN}: {len(recorded)} searchers × {QUERIES} queries")
    else:
        sys.exit("usage: python -m tests.test_golden_histories --write")
