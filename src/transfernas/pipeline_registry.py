"""Project pipelines: one per stage, run with ``kedro run --pipeline <stage>``."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = pipelines["nb201_benchmark"]
    return pipelines
