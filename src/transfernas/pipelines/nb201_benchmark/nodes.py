"""Kedro nodes of ``nb201_benchmark``: validate params, call the core library, shape outputs."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from transfernas.benchmark import (
    best_of_trials,
    best_so_far,
    results_markdown,
    run_trials,
    summarize,
)
from transfernas.config import validate_params
from transfernas.executors import ExecutorConfig
from transfernas.pipelines.params import nb201_benchmark_config
from transfernas.plots import best_so_far_figure, sorted_trials_figure
from transfernas.tasks.tabular import NB201Table

SUMMARY_METRICS = (
    "optimum_hit_rate",
    "top5_hit_rate",
    "regret_mean",
    "regret_median",
    "test200_mean",
)


def run_benchmark(
    nb201_12epoch: pd.DataFrame,
    params: dict[str, Any],
    searchers: dict[str, Any],
    executor: dict[str, Any],
) -> pd.DataFrame:
    """Every method × dataset × seeded trial; one row per evaluation (the search histories).
    With ``executor.kind: ray`` the trials are Ray tasks (``n_workers`` is then unused)."""
    return run_trials(
        NB201Table.from_frame(nb201_12epoch),
        nb201_benchmark_config(params, searchers),
        executor=validate_params(ExecutorConfig, executor, "executor"),
    )


def summarize_benchmark(
    histories: pd.DataFrame,
    nb201_12epoch: pd.DataFrame,
    nb201_200epoch: pd.DataFrame,
    params: dict[str, Any],
    searchers: dict[str, Any],
) -> tuple[pd.DataFrame, str, pd.DataFrame]:
    """Results table (csv + markdown) and best-so-far curves."""
    config = nb201_benchmark_config(params, searchers)
    results = summarize(
        histories,
        NB201Table.from_frame(nb201_12epoch),
        nb201_200epoch,
        n_resamples=config.bootstrap_resamples,
        seed=config.seed,
        reference=config.reference,
    )
    return results, results_markdown(results), best_so_far(histories)


def benchmark_metrics(results: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
    """MLflow metrics: summary numbers and the mean best-so-far reward at every step."""
    metrics: dict[str, Any] = {}
    for row in results.itertuples():
        for name in SUMMARY_METRICS:
            metrics[f"{row.dataset}.{row.method}.{name}"] = {
                "value": float(getattr(row, name)),
                "step": 0,
            }
    for (dataset, method), grp in curves.groupby(["dataset", "method"], sort=False):
        metrics[f"{dataset}.{method}.best_so_far_mean"] = [
            {"step": int(s), "value": float(v)}
            for s, v in zip(grp["step"], grp["mean"], strict=True)
        ]
    return metrics


def plot_benchmark(
    histories: pd.DataFrame, results: pd.DataFrame, curves: pd.DataFrame
) -> tuple[Figure, Figure]:
    optimum = dict(zip(results["dataset"], results["optimum_val12"], strict=True))
    budget = int(results["budget"].max())
    return (
        sorted_trials_figure(best_of_trials(histories), optimum, budget),
        best_so_far_figure(curves, optimum),
    )
