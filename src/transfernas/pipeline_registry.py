"""Project pipelines: one per stage, run with ``kedro run --pipeline <stage>``.

``kedro run`` (the default) runs the CATCH chain in order — subdatasets → meta_train → adapt →
export_backbone → compare (the searched network against latency-matched baselines) →
detection and segmentation — one lineage graph in kedro-viz. ``search`` and
``nb201_benchmark`` stand apart (a baseline and the tabular benchmark).
"""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

CHAIN = (
    "subdatasets",
    "meta_train",
    "adapt",
    "export_backbone",
    "compare",
    "detection",
    "segmentation",
)


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)  # only the requested ones when --pipeline is set
    if all(stage in pipelines for stage in CHAIN):
        pipelines["__default__"] = sum((pipelines[s] for s in CHAIN), Pipeline([]))
    return pipelines
