"""``kedro run --pipeline adapt``: adapt the meta-trained agent to the target task."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.adapt.nodes import adapt_agent
from transfernas.pipelines.search_nodes import DOWNSTREAM_INPUTS, search_report


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                adapt_agent,
                {
                    "meta_checkpoint": "meta_checkpoint",
                    "nb201_12epoch": "nb201_12epoch",
                    "nb201_200epoch": "nb201_200epoch",
                    "source": "imagenet_source",
                    "params": "params:adapt",
                    "subdatasets": "params:subdatasets",
                    "trained_task": "params:trained_task",
                    "executor": "params:executor",
                    "searchers": "params:searchers",
                    **DOWNSTREAM_INPUTS,
                },
                ["adapt_history", "adapt_best"],
                name="adapt_agent",
            ),
            Node(
                search_report,
                ["adapt_history", "adapt_best"],
                ["adapt_metrics", "adapt_plot"],
                name="report_adaptation",
            ),
        ]
    )
