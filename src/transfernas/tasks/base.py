"""What evaluating an architecture returns, and the task contract."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: the reward the searcher optimises plus everything worth recording.

    ``metrics`` holds report-only numbers (e.g. test accuracy) that a searcher never sees.
    ``cost_s`` is the evaluation's own cost (training time, or lookup time for a table; for a
    result read from the evaluation cache, what computing it cost). ``cached``: which parts
    were looked up in the evaluation cache (kind → found there).
    """

    reward: float
    metrics: dict[str, float] = field(default_factory=dict)
    cost_s: float = 0.0
    cached: dict[str, bool] = field(default_factory=dict)


class Task(Protocol):
    name: str

    def evaluate(self, actions: Sequence[int]) -> Evaluation: ...
