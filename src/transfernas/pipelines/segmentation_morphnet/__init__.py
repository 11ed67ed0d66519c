"""``segmentation`` on the MorphNet-resized backbone."""

from transfernas.pipelines.segmentation_morphnet.pipeline import create_pipeline

__all__ = ["create_pipeline"]
