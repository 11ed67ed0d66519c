"""``kedro run --pipeline detection``: retrain the exported backbone for COCO detection."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.detection.nodes import train_detector


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_detector,
                ["backbone_weights", "backbone_card", "coco", "params:detection"],
                ["detection_metrics", "detection_plot", "detection_results", "detection_config"],
                name="train_detector",
            )
        ]
    )
