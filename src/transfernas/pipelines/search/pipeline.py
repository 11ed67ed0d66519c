"""``kedro run --pipeline search``: any searcher on the target dataset, no meta-training."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.search.nodes import search_from_scratch
from transfernas.pipelines.search_nodes import DOWNSTREAM_INPUTS, search_report


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                search_from_scratch,
                {
                    "nb201_12epoch": "nb201_12epoch",
                    "nb201_200epoch": "nb201_200epoch",
                    "source": "imagenet_source",
                    "params": "params:search",
                    "subdatasets": "params:subdatasets",
                    "trained_task": "params:trained_task",
                    "executor": "params:executor",
                    "searchers": "params:searchers",
                    **DOWNSTREAM_INPUTS,
                },
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
