"""``task: nb201``: rewards are NB201 table lookups; the 200-epoch accuracy is read only for the
report, after the search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transfernas.targets.base import Row, Table200
from transfernas.tasks.base import Task
from transfernas.tasks.tabular import COLUMNS_200, NB201Table, TabularTask, check_test200

if TYPE_CHECKING:
    from transfernas.stages import StageInputs, TargetSearchParams


class NB201Target:
    name = "nb201"

    def task(self, params: TargetSearchParams, inputs: StageInputs) -> Task:
        table = NB201Table.from_frame(inputs.nb201_12epoch, datasets=[params.dataset])
        return TabularTask(table, params.dataset)

    def run_parts(self, task: Task, inputs: StageInputs) -> Any:
        return None  # the table and the dataset's name say it all

    def space_identity(self, task: Task, inputs: StageInputs) -> dict[str, Any]:
        return {"name": "nb201"}

    def describe(self, best: Row, params: TargetSearchParams, task: Task, t200: Table200) -> Row:
        check_test200(t200)
        index = int(best["metrics"]["arch_index"])
        return {
            "dataset": params.dataset,
            "arch_index": index,
            "val_acc_12epoch": best["reward"],
            "test_acc_12epoch": best["metrics"]["test_acc"],
            "test_acc_200epoch": float(t200[COLUMNS_200[params.dataset]].iloc[index]),
        }
