"""ImageNet sub-datasets."""

from transfernas.pipelines.subdatasets.pipeline import create_pipeline

__all__ = ["create_pipeline"]
