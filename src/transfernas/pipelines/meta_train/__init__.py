"""Meta-training of meta-learning searchers."""

from transfernas.pipelines.meta_train.pipeline import create_pipeline

__all__ = ["create_pipeline"]
