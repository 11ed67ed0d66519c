"""``kedro run --pipeline adapt``: adapt the meta-trained agent to the target task."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.adapt.nodes import adapt_agent
from transfernas.pipelines.search_nodes import search_report


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                adapt_agent,
                [
                    "meta_checkpoint",
                    "nb201_12epoch",
                    "nb201_200epoch",
                    "imagenet_source",
                    "params:adapt",
                    "params:subdatasets",
                    "params:trained_task",
                    "params:executor",
                    "params:searchers",
                ],
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
