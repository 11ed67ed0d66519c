"""``kedro run --pipeline detection_morphnet``: ``detection`` on ``morphnet``'s backbone.

The same pipeline with the backbone inputs remapped; every output is prefixed ``morphnet_``
(its own files and MLflow keys), so both backbones' results sit side by side.
"""

from kedro.pipeline import Pipeline, pipeline

from transfernas.pipelines.detection import create_pipeline as detection


def create_pipeline(**kwargs) -> Pipeline:
    base = detection()
    return pipeline(
        base,
        inputs={"backbone_weights": "morphnet_weights", "backbone_card": "morphnet_card"},
        outputs={name: f"morphnet_{name}" for name in base.outputs()},
    )
