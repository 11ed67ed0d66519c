"""Reward fidelity against a longer training: which architectures are re-trained, the rank
correlation, and the durable log a killed check resumes from."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from transfernas.executors import SerialExecutor
from transfernas.fidelity import longer_training_fidelity, spread_by_reward
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
