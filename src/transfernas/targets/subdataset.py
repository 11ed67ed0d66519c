"""``task: subdataset`` (candidates trained on a split of the target's ``train/``, CATCH §4.3)
and ``task: zero_cost`` (the same split, candidates scored untrained by a zero-cost proxy)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from transfernas.environment import device_name
from transfernas.targets.base import Row, Table200, found
from transfernas.tasks.base import Task
from transfernas.tasks.subdataset import target_splits, trained_task, zero_cost_task
from transfernas.tasks.tabular import COLUMNS_200, check_test200
from transfernas.tasks.trained import TrainedTask
from transfernas.tasks.zero_cost import ZeroCostTask

if TYPE_CHECKING:
    from transfernas.stages import StageInputs, TargetSearchParams


def _nb201_cell(best: dict[str, Any], task: Task, t200: pd.DataFrame | None) -> dict[str, Any]:
    """An NB201 cell found on a sub-dataset: its table accuracies, read only for the report."""
    if task.space.name != "nb201":
        return {}
    check_test200(t200)
    row = t200[t200["arch_str"] == best["arch"]].iloc[0]
    return {"nb201_test_acc_200epoch": {d: float(row[c]) for d, c in COLUMNS_200.items()}}


class SubdatasetTarget:
    name = "subdataset"
    make = staticmethod(trained_task)  # the task on the target's search split

    def task(self, params: TargetSearchParams, inputs: StageInputs) -> Task:
        spec = target_splits(inputs.image_source(), inputs.subdatasets, params.target).search
        return self.make(spec, inputs.subdatasets, inputs.trained_task, params.seed)

    def run_parts(self, task: Task, inputs: StageInputs) -> Any:
        return inputs.trained_task.identity()

    def space_identity(self, task: Task, inputs: StageInputs) -> dict[str, Any]:
        return inputs.trained_task.space.model_dump()

    def describe(self, best: Row, params: TargetSearchParams, task: Task, t200: Table200) -> Row:
        assert isinstance(task, TrainedTask)
        return {
            **found(best, task),
            "latency_device": device_name(torch.device(task.latency.device)),
            "latency_input": [task.latency.batch_size, 3, *task.latency.input_size],
        } | _nb201_cell(best, task, t200)


class ZeroCostTarget(SubdatasetTarget):
    name = "zero_cost"
    make = staticmethod(zero_cost_task)

    def describe(self, best: Row, params: TargetSearchParams, task: Task, t200: Table200) -> Row:
        assert isinstance(task, ZeroCostTask)
        return {
            **found(best, task),
            "zero_cost": task.params.model_dump(),
        } | _nb201_cell(best, task, t200)
