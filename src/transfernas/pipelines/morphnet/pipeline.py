"""``kedro run --pipeline morphnet``: the exported backbone resized to a budget (MorphNet).

``detection_morphnet`` / ``segmentation_morphnet`` (pipeline_registry.py) retrain its result
downstream, as ``detection`` / ``segmentation`` do the exported backbone.
"""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.morphnet.nodes import resize_backbone


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                resize_backbone,
                [
                    "backbone_weights",
                    "backbone_card",
                    "imagenet_source",
                    "params:morphnet",
                    "params:subdatasets",
                ],
                [
                    "morphnet_weights",
                    "morphnet_card",
                    "morphnet_card_md",
                    "morphnet_config",
                    "morphnet_metrics",
                    "morphnet_plot",
                ],
                name="morphnet",
            )
        ]
    )
