"""Cityscapes segmentation with the exported backbone (mmseg)."""

from transfernas.pipelines.segmentation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
