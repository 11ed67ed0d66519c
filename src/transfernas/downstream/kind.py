"""What a downstream task (detection, segmentation, ...) is to the rest of the project.

Each kind is one module of this package that builds a complete OpenMMLab Runner config and
declares itself with a :class:`DownstreamKind`; the stages, the search task, the Kedro nodes
and the parameter validation read only this record, never ``if detection … else``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transfernas.downstream.runner import DownstreamParams


@dataclass(frozen=True)
class DownstreamKind:
    """``prepare(data)`` checks the dataset once per run (it may convert files) and returns
    what ``build`` needs plus a JSON-able summary; ``build(backbone, stage_channels, data,
    prepared, params, neck)`` returns the Runner config — ``stage_channels`` are the backbone's
    output channels per stage, ``neck`` (None = the kind's default) an mmdet/mmseg neck dict
    whose ``in_channels`` the kind fills."""

    name: str  # the parameters block, the Kedro pipeline and the ``task:`` value
    dataset: str  # the catalog entry of its data
    params: type[DownstreamParams]
    score: str  # the evaluator's key of the score
    scale: float  # × scale = percent
    prepare: Callable[[dict[str, str]], tuple[Any, dict[str, Any]]]
    build: Callable[..., dict[str, Any]]
