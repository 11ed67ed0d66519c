"""``kedro run --pipeline meta_train``: meta-train CATCH on sub-dataset tasks (or NB201 tables)."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.meta_train.nodes import (
    meta_train_agent,
    meta_train_fidelity,
    meta_train_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                meta_train_agent,
                [
                    "subdataset_manifests",
                    "nb201_12epoch",
                    "nb201_200epoch",
                    "imagenet_source",
                    "params:meta_train",
                    "params:subdatasets",
                    "params:trained_task",
                    "params:executor",
                    "params:searchers",
                ],
                [
                    "meta_checkpoint",
                    "meta_train_curves",
                    "meta_train_evaluations",
                    "meta_train_manifest",
                ],
                name="meta_train_agent",
            ),
            Node(
                meta_train_fidelity,
                [
                    "meta_train_evaluations",
                    "imagenet_source",
                    "params:meta_train",
                    "params:subdatasets",
                    "params:trained_task",
                    "params:executor",
                ],
                "meta_train_fidelity",
                name="check_reward_fidelity",
            ),
            Node(
                meta_train_report,
                [
                    "meta_train_curves",
                    "meta_train_evaluations",
                    "meta_train_manifest",
                    "meta_train_fidelity",
                ],
                ["meta_train_metrics", "meta_train_plot"],
                name="report_meta_training",
            ),
        ]
    )
