"""What every target kind of ``adapt`` / ``search`` does (the ``task`` key of their blocks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from transfernas.tasks.base import Task

if TYPE_CHECKING:
    from transfernas.stages import StageInputs, TargetSearchParams

Row = dict[str, Any]  # a history row; the fields a kind adds to the search's answer
Table200 = pd.DataFrame | None  # NB201's 200-epoch accuracies, read only for the report


def found(best: Row, task: Task) -> Row:
    """The fields every trained or scored kind reports: task, space and the best's metrics."""
    return {"dataset": task.name, "space": task.space.name, "metrics": best["metrics"]}


class TargetKind(Protocol):
    """A kind of target task: builds it, keys its durable run, describes its best result."""

    name: str

    def task(self, params: TargetSearchParams, inputs: StageInputs) -> Task:
        """The task the search evaluates candidates on."""
        ...

    def run_parts(self, task: Task, inputs: StageInputs) -> Any:
        """What the task's rewards depend on beyond its name (keys the durable run folder)."""
        ...

    def space_identity(self, task: Task, inputs: StageInputs) -> dict[str, Any]:
        """The search space as a meta-trained checkpoint records it (they must match)."""
        ...

    def describe(self, best: Row, params: TargetSearchParams, task: Task, t200: Table200) -> Row:
        """The kind's fields of the search's answer (``adapt_best`` / ``search_best``)."""
        ...
