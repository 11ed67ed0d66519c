"""``kedro run --pipeline segmentation``: retrain the exported backbone for Cityscapes."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.segmentation.nodes import train_segmenter


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_segmenter,
                ["backbone_weights", "backbone_card", "cityscapes", "params:segmentation"],
                [
                    "segmentation_metrics",
                    "segmentation_plot",
                    "segmentation_results",
                    "segmentation_config",
                ],
                name="train_segmenter",
            )
        ]
    )
