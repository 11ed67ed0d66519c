"""MorphNet: the exported backbone resized to a FLOPs, size or latency budget."""

from transfernas.pipelines.morphnet.pipeline import create_pipeline

__all__ = ["create_pipeline"]
