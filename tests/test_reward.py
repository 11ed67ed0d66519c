"""R = P·(LAT/T)^w and the hardware-aware NB201 task built on the shipped latency table."""

import numpy as np
import pandas as pd
import pytest

from transfernas.tasks.reward import latency_reward
from transfernas.tasks.tabular import TabularTask, hardware_aware_task

from .conftest import NB201_DIR


@pytest.fixture(scope="module")
def latency() -> pd.DataFrame:
    return pd.read_parquet(NB201_DIR / "nb201_latency.parquet")


def test_reward_formula():
    assert latency_reward(80.0, 10.0, 10.0) == pytest.approx(80.0)  # on target: R = P
    assert latency_reward(80.0, 20.0, 10.0) == pytest.approx(80.0 * 2**-0.05)  # 3.4 % less
    assert latency_reward(80.0, 5.0, 10.0) > 80.0  # faster than the target: rewarded
    r = latency_reward(np.array([70.0, 70.0]), np.array([5.0, 50.0]), 10.0, w=-0.5)
    assert r[0] > r[1]
    with pytest.raises(ValueError, match="target latency"):
        latency_reward(1.0, 1.0, 0.0)


def test_hardware_aware_task(table, latency):
    task = hardware_aware_task(table, "cifar100", latency, "pixel3", target_ms=10.0, w=-0.5)
    plain = TabularTask(table, "cifar100")
    i = plain.optimum_index
    ev = task.evaluate(plain.space.from_code(int(np.flatnonzero(table.index_of_code == i)[0])))
    assert ev.metrics["arch_index"] == i and ev.metrics["val_acc"] == plain.val[i]
    assert ev.metrics["latency_ms"] == latency["pixel3"][i]
    assert ev.reward == pytest.approx(plain.val[i] * (latency["pixel3"][i] / 10.0) ** -0.5)
    assert task.optimum_index != plain.optimum_index  # a strong latency weight moves the optimum
    with pytest.raises(ValueError, match="unknown latency device 'tpu'; allowed: 1080ti_1"):
        hardware_aware_task(table, "cifar100", latency, "tpu", 10.0)


def test_latency_table_rows_match_the_accuracy_table(nb201_12, latency):
    assert (latency["arch_str"] == nb201_12["arch_str"]).all()
    assert len([c for c in latency.columns if c not in ("arch_index", "arch_str")]) == 27
