"""``kedro run --pipeline export_backbone``: the adapt stage's best network as an mmlab backbone."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.export_backbone.nodes import export_backbone


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                export_backbone,
                [
                    "adapt_best",
                    "imagenet_source",
                    "params:export_backbone",
                    "params:subdatasets",
                    "params:trained_task",
                ],
                [
                    "backbone_weights",
                    "backbone_card",
                    "backbone_card_md",
                    "backbone_config",
                    "export_backbone_metrics",
                ],
                name="export_backbone",
            )
        ]
    )
