"""The shipped NB201 tables are the converted sources, unchanged."""

import json

import numpy as np
import pandas as pd
import pytest

from transfernas.spaces.nb201 import N_ARCHS
from transfernas.tasks.tabular import NB201Table, TabularTask, table_checksum

from .conftest import NB201_DIR


@pytest.mark.parametrize("name", ["nb201_12epoch", "nb201_200epoch", "nb201_latency"])
def test_shipped_tables_match_manifest(name):
    manifest = json.loads((NB201_DIR / "MANIFEST.json").read_text())[f"{name}.parquet"]
    df = pd.read_parquet(NB201_DIR / f"{name}.parquet")
    assert len(df) == manifest["rows"] == N_ARCHS
    assert table_checksum(df) == manifest["content_sha256"]


def test_tables_share_row_order(nb201_12, nb201_200):
    assert (nb201_12["arch_str"] == nb201_200["arch_str"]).all()


@pytest.mark.parametrize(
    ("dataset", "val_max", "test200_of_optimum_range"),
    [
        ("cifar10-valid", 84.892, (90, 95)),
        ("cifar100", 61.32, (65, 74)),
        ("ImageNet16-120", 38.667, (40, 48)),
    ],
)
def test_optimum_matches_published_maxima(
    table, nb201_200, dataset, val_max, test200_of_optimum_range
):
    task = TabularTask(table, dataset)
    assert task.optimum_reward == pytest.approx(val_max, abs=1e-3)
    assert task.rank[task.optimum_index] == 0
    col = {"cifar10-valid": "cifar10"}.get(dataset, dataset)
    lo, hi = test200_of_optimum_range
    assert lo < nb201_200[col][task.optimum_index] < hi


def test_table_rejects_truncated_frame(nb201_12):
    with pytest.raises(ValueError, match="15625 rows"):
        NB201Table.from_frame(nb201_12.iloc[:-1])
    with pytest.raises(ValueError, match="missing columns"):
        NB201Table.from_frame(nb201_12.drop(columns=["cifar100-val"]))


def test_tabular_reward_is_12epoch_validation(table, nb201_12):
    task = TabularTask(table, "cifar100")
    rng = np.random.default_rng(0)
    for i in rng.integers(N_ARCHS, size=20):
        ev = task.evaluate(task.space.encode(nb201_12["arch_str"][i]))
        assert ev.metrics["arch_index"] == i
        assert ev.reward == nb201_12["cifar100-val"][i]
        assert ev.metrics["test_acc"] == nb201_12["cifar100-test"][i]


def test_unknown_dataset_names_allowed(table):
    with pytest.raises(ValueError, match="cifar10-valid, cifar100, ImageNet16-120"):
        TabularTask(table, "cifar10")


def test_mixture_tasks_interpolate_standardised_tables(table):
    from transfernas.tasks.tabular import meta_tasks, mixture_task

    a, b = TabularTask(table, "cifar100"), TabularTask(table, "ImageNet16-120")
    mix = mixture_task(table, "cifar100", "ImageNet16-120", 0.25)
    za = (a.val - a.val.mean()) / a.val.std()
    zb = (b.val - b.val.mean()) / b.val.std()
    assert np.allclose(mix.val, 0.25 * za + 0.75 * zb)
    pool = meta_tasks(table.without("cifar10-valid"), mixtures=3, seed=1)
    assert [t.name for t in pool[:2]] == ["nb201/cifar100", "nb201/ImageNet16-120"]
    assert len(pool) == 5 and all(t.name.startswith("nb201/mix(") for t in pool[2:])
    assert [t.name for t in meta_tasks(table.without("cifar10-valid"), 3, 1)] == [
        t.name for t in pool
    ]
