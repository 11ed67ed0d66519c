"""Search from scratch on a target task."""

from transfernas.pipelines.search.pipeline import create_pipeline

__all__ = ["create_pipeline"]
