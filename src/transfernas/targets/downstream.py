"""``task: detection`` / ``segmentation``: each candidate trained briefly as the backbone (or,
for detection, the NAS-FPN neck) of the downstream kind's model, rewarded with mAP / mIoU."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transfernas.downstream import KINDS, DownstreamKind
from transfernas.downstream.runner import DownstreamParams
from transfernas.downstream.search import DownstreamTask
from transfernas.spaces import SPACES, SearchSpace
from transfernas.spaces.nasfpn import NASFPNSpace
from transfernas.spaces.resblock import ResBlockSpace
from transfernas.targets.base import Row, Table200, found
from transfernas.tasks.base import Task

if TYPE_CHECKING:
    from transfernas.stages import StageInputs, TargetSearchParams


def downstream_space(config: DownstreamParams, inputs: StageInputs) -> SearchSpace:
    """What a downstream candidate is: a NAS-FPN neck (``detection.search.space: nasfpn``) or
    a backbone of ``trained_task.space`` (which must be resblock)."""
    if getattr(config.search, "space", "resblock") == "nasfpn":
        return SPACES["nasfpn"](cells=config.search.nasfpn.cells).build()
    space = inputs.trained_task.space.build()
    if not isinstance(space, ResBlockSpace):
        raise ValueError(
            "downstream tasks search backbones of trained_task.space name: resblock "
            "(or the detection neck: detection.search.space: nasfpn)"
        )
    return space


class DownstreamTarget:
    def __init__(self, kind: DownstreamKind) -> None:
        self.kind = kind
        self.name = kind.name

    def task(self, params: TargetSearchParams, inputs: StageInputs) -> Task:
        if self.name not in inputs.downstream:
            raise ValueError(f"task: {self.name} needs its catalog dataset {self.kind.dataset!r}")
        data, config = inputs.downstream[self.name]
        return DownstreamTask(self.kind, downstream_space(config, inputs), data, config)

    def run_parts(self, task: Task, inputs: StageInputs) -> Any:
        assert isinstance(task, DownstreamTask)
        return [inputs.trained_task.identity(), task.data, task.params.model_dump()]

    def space_identity(self, task: Task, inputs: StageInputs) -> dict[str, Any]:
        space = task.space
        if isinstance(space, NASFPNSpace):  # a neck, not trained_task.space
            return {"name": space.name, "cells": space.cells, "levels": list(space.levels)}
        return inputs.trained_task.space.model_dump()

    def describe(self, best: Row, params: TargetSearchParams, task: Task, t200: Table200) -> Row:
        assert isinstance(task, DownstreamTask)
        return {
            **found(best, task),
            "latency_input": [1, 3, *task.search.latency_size],
        }


DOWNSTREAM_TARGETS = tuple(DownstreamTarget(kind) for kind in KINDS.values())
