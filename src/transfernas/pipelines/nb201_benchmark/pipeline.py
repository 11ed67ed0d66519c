"""``kedro run --pipeline nb201_benchmark``: searchers compared on NAS-Bench-201 tables."""

from kedro.pipeline import Node, Pipeline

from transfernas.pipelines.nb201_benchmark.nodes import (
    benchmark_metrics,
    plot_benchmark,
    run_benchmark,
    summarize_benchmark,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                run_benchmark,
                ["nb201_12epoch", "params:nb201_benchmark", "params:searchers", "params:executor"],
                "nb201_histories",
                name="run_nb201_trials",
            ),
            Node(
                summarize_benchmark,
                [
                    "nb201_histories",
                    "nb201_12epoch",
                    "nb201_200epoch",
                    "params:nb201_benchmark",
                    "params:searchers",
                ],
                ["nb201_results", "nb201_results_md", "nb201_best_so_far"],
                name="summarize_nb201_trials",
            ),
            Node(
                benchmark_metrics,
                ["nb201_results", "nb201_best_so_far"],
                "nb201_metrics",
                name="log_nb201_metrics",
            ),
            Node(
                plot_benchmark,
                ["nb201_histories", "nb201_results", "nb201_best_so_far"],
                ["nb201_sorted_trials_plot", "nb201_best_so_far_plot"],
                name="plot_nb201_trials",
            ),
        ]
    )
