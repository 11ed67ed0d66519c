"""``kedro run --pipeline search``: any searcher on the target dataset, no meta-training."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.search.nodes import search_from_scratch
from transfernas.pipelines.search_nodes import search_report


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                search_from_scratch,
                [
                    "nb201_12epoch",
                    "nb201_200epoch",
                    "imagenet_source",
                    "params:search",
                    "params:subdatasets",
                    "params:trained_task",
                    "params:executor",
                    "params:searchers",
                ],
                ["search_history", "search_best"],
                name="search_from_scratch",
            ),
            Node(
                search_report,
                ["search_history", "search_best"],
                ["search_metrics", "search_plot"],
                name="report_search",
            ),
        ]
    )
