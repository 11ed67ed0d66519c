"""COCO detection with the exported backbone (mmdet)."""

from transfernas.pipelines.detection.pipeline import create_pipeline

__all__ = ["create_pipeline"]
