"""Export of the searched backbone for mmdet / mmseg."""

from transfernas.pipelines.export_backbone.pipeline import create_pipeline

__all__ = ["create_pipeline"]
