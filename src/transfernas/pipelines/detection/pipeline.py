"""``kedro run --pipeline detection``: retrain the exported backbone for COCO detection."""

from kedro.pipeline import Pipeline

from transfernas.pipelines.downstream_nodes import downstream_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    return downstream_pipeline("detection", "train_detector")
