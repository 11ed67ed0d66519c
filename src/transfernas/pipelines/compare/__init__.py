"""The searched network against latency-matched baselines on the target's held-out split."""

from transfernas.pipelines.compare.pipeline import create_pipeline

__all__ = ["create_pipeline"]
