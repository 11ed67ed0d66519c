"""Project pipelines: one per stage, run with ``kedro run --pipeline <stage>``."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)  # only the requested ones when --pipeline is set
    if "nb201_benchmark" in pipelines:
        pipelines["__default__"] = pipelines["nb201_benchmark"]
    return pipelines
