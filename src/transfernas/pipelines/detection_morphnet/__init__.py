"""``detection`` on the MorphNet-resized backbone."""

from transfernas.pipelines.detection_morphnet.pipeline import create_pipeline

__all__ = ["create_pipeline"]
