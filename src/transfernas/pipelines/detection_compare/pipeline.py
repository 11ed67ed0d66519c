"""``kedro run --pipeline detection_compare``: the searched backbone beside a ResNet-18 as fast.

Both in the ``detection`` stage's RetinaNet with its schedule, on several seeds.
"""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.detection_compare.nodes import detection_side_by_side


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                detection_side_by_side,
                {
                    "card": "backbone_card",
                    "compare_results": "compare_results",
                    "data": "coco",
                    "params": "params:detection",
                    "config": "params:detection_compare",
                },
                [
                    "detection_compare_results",
                    "detection_compare_results_md",
                    "detection_compare_metrics",
                ],
                name="detection_side_by_side",
            )
        ]
    )
