"""``kedro run --pipeline compare``: the searched network against latency-matched baselines."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.compare.nodes import compare_models


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                compare_models,
                {
                    "adapt_best": "adapt_best",
                    "source": "imagenet_source",
                    "params": "params:compare",
                    "adapt": "params:adapt",
                    "subdatasets": "params:subdatasets",
                    "trained_task": "params:trained_task",
                    "executor": "params:executor",
                    "searchers": "params:searchers",
                },
                ["compare_results", "compare_results_md", "compare_plot", "compare_metrics"],
                name="compare_models",
            )
        ]
    )
