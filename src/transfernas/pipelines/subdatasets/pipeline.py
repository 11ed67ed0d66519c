"""``kedro run --pipeline subdatasets``: ImageNet sub-datasets for meta-training tasks."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.subdatasets.nodes import build_subdatasets


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_subdatasets,
                ["imagenet_source", "params:subdatasets"],
                ["subdataset_manifests", "subdataset_contact_sheet"],
                name="build_subdatasets",
            )
        ]
    )
