"""``kedro run --pipeline segmentation``: retrain the exported backbone for Cityscapes."""

from kedro.pipeline import Pipeline

from transfernas.pipelines.downstream_nodes import downstream_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    return downstream_pipeline("segmentation", "train_segmenter")
