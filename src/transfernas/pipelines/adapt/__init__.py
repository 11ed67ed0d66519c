"""Adaptation of a meta-trained searcher to a target task."""

from transfernas.pipelines.adapt.pipeline import create_pipeline

__all__ = ["create_pipeline"]
