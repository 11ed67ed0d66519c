"""The searched backbone and the latency-matched ResNet-18 in the same detector, several seeds."""

from transfernas.pipelines.detection_compare.pipeline import create_pipeline

__all__ = ["create_pipeline"]
