"""Reward fidelity against a longer training: which architectures are re-trained, the rank
correlation, and the durable log a killed check resumes from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from transfernas.executors import SerialExecutor
from transfernas.fidelity import bootstrap_spearman, longer_training_fidelity, spread_by_reward
from transfernas.history import AppendLog
from transfernas.tasks.base import Evaluation


class LongerTraining:
    """Reference task: reward = a fixed score per architecture; counts its evaluations."""

    name = "subdataset/abc/10cls@16px"

    def __init__(self, scores: dict[int, float]) -> None:
        self.scores, self.calls = scores, []

    def evaluate(self, actions):
        self.calls.append(actions[0])
        return Evaluation(self.scores[actions[0]], {"val_acc": 2 * self.scores[actions[0]]}, 1.5)


def _evaluations(rewards: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arch": [f"a{i}" for i in range(len(rewards))],
            "actions": [[i] for i in range(len(rewards))],
            "reward": rewards,
        }
    )


def test_spread_by_reward_takes_distinct_archs_at_even_ranks():
    frame = _evaluations([5.0, 1.0, 3.0, 2.0, 4.0, 0.0, 6.0])
    frame = pd.concat([frame, frame.iloc[[0]]])  # a re-evaluated architecture counts once
    picked = spread_by_reward(frame, 3)
    assert list(picked["arch"]) == ["a5", "a2", "a6"]  # rewards 0 (worst), 3 (median), 6 (best)
    assert len(spread_by_reward(frame, 20)) == 7


def test_longer_training_fidelity_correlates_with_the_reference():
    rewards = [5.0, 1.0, 3.0, 2.0, 4.0, 0.0]
    reference = LongerTraining({0: 9.0, 1: 2.0, 2: 1.0, 3: 3.0, 4: 8.0, 5: 0.5})
    result = longer_training_fidelity(
        _evaluations(rewards), reference, 6, AppendLog(), SerialExecutor()
    )
    theirs = [reference.scores[i] for i in range(6)]
    assert result["n"] == 6 and result["task"] == reference.name
    assert result["spearman"] == pytest.approx(stats.spearmanr(rewards, theirs).statistic)
    assert result["kendall"] == pytest.approx(stats.kendalltau(rewards, theirs).statistic)
    row = next(r for r in result["archs"] if r["arch"] == "a4")
    assert row == {
        "arch": "a4",
        "reward": 4.0,
        "reference_reward": 8.0,
        "reference_val_acc": 16.0,
        "reference_s": 1.5,
    }


def test_longer_training_fidelity_resumes_from_its_log(tmp_path):
    evaluations = _evaluations([5.0, 1.0, 3.0, 2.0])
    scores = {0: 4.0, 1: 1.0, 2: 3.0, 3: 2.0}
    first = LongerTraining(scores)
    log = AppendLog(tmp_path / "fidelity.jsonl")
    done = longer_training_fidelity(evaluations, first, 4, log, SerialExecutor())
    assert sorted(first.calls) == [0, 1, 2, 3] and done["spearman"] == pytest.approx(1.0)
    # a killed check: the log holds two reference trainings; only the other two are redone
    lines = (tmp_path / "fidelity.jsonl").read_text().splitlines()
    (tmp_path / "fidelity.jsonl").write_text("\n".join(lines[:2]) + "\n")
    again = LongerTraining(scores)
    resumed = longer_training_fidelity(
        evaluations, again, 4, AppendLog(tmp_path / "fidelity.jsonl"), SerialExecutor()
    )
    assert len(again.calls) == 2 and resumed["archs"] == done["archs"]


def test_longer_training_fidelity_stops_on_a_failed_reference():
    class Broken(LongerTraining):
        def evaluate(self, actions):
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match=r"reference training of a0 .* failed"):
        longer_training_fidelity(
            _evaluations([1.0, 2.0, 3.0]), Broken({}), 3, AppendLog(), SerialExecutor()
        )


def test_bootstrap_spearman_matches_a_loop_over_resamples():
    rng = np.random.default_rng(3)
    x = rng.normal(size=12)
    y = x + rng.normal(scale=1.0, size=12)
    n_boot = 400
    low, high = bootstrap_spearman([(x, y)], n_boot=n_boot, seed=5)
    picks = np.random.default_rng(5).integers(0, 12, size=(n_boot, 12))
    loop = [stats.spearmanr(x[p], y[p]).statistic for p in picks]  # the slow reference
    assert (low, high) == pytest.approx(tuple(np.nanpercentile(loop, [2.5, 97.5])))
    rho = stats.spearmanr(x, y).statistic
    assert low < rho < high and high - low > 0.2  # 12 networks: a wide interval


def test_bootstrap_spearman_averages_groups_and_narrows_with_more_networks():
    rng = np.random.default_rng(0)
    perfect = np.arange(8.0)
    assert bootstrap_spearman([(perfect, perfect * 2)], seed=0) == pytest.approx((1.0, 1.0))
    assert bootstrap_spearman([([1.0, 2.0], [2.0, 1.0])]) is None  # under 3 networks
    x8, x80 = rng.normal(size=8), rng.normal(size=80)
    y8, y80 = x8 + rng.normal(size=8), x80 + rng.normal(size=80)
    wide = bootstrap_spearman([(x8, y8)], seed=1)
    narrow = bootstrap_spearman([(x80, y80)], seed=1)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    both = bootstrap_spearman([(perfect, perfect), (perfect, -perfect)], seed=0)
    assert both == pytest.approx((0.0, 0.0))  # ρ = +1 and −1 in every resample: mean 0
