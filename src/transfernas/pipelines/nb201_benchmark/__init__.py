"""Searchers compared on NAS-Bench-201."""

from transfernas.pipelines.nb201_benchmark.pipeline import create_pipeline

__all__ = ["create_pipeline"]
