"""Nodes shared by ``meta_train``, ``adapt`` and ``search``: parameters → stage inputs, one
durable search on the target task, and its report."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from transfernas.config import validate_params, validate_searchers
from transfernas.data.build import SubdatasetParams
from transfernas.downstream import KINDS
from transfernas.executors import ExecutorConfig
from transfernas.plots import search_figure
from transfernas.stages import (
    StageInputs,
    TargetSearchParams,
    best_architecture,
    run_target_search,
    stage_searcher_config,
)
from transfernas.tasks.subdataset import Source, TrainedTaskParams

# per-evaluation columns logged as MLflow metric histories when the history has them
EVALUATION_METRICS = ("reward", "val_acc", "score", "latency_ms", "gflops", "train_s")


def stage_inputs(
    nb201_12epoch: pd.DataFrame | None,
    source: Source,
    subdatasets: dict[str, Any],
    trained_task: dict[str, Any],
    executor: dict[str, Any],
    downstream: dict[str, Any] | None = None,
) -> StageInputs:
    """``downstream``: per downstream kind its catalog dataset and its parameter block (adapt
    and search accept the kinds as tasks)."""
    extra: dict[str, Any] = {}
    if downstream is not None:
        extra["downstream"] = {
            name: (downstream[k.dataset], validate_params(k.params, downstream[name], name))
            for name, k in KINDS.items()
        }
    return StageInputs(
        nb201_12epoch,
        source,
        validate_params(SubdatasetParams, subdatasets, "subdatasets"),
        validate_params(TrainedTaskParams, trained_task, "trained_task"),
        validate_params(ExecutorConfig, executor, "executor"),
        **extra,
    )


# node inputs of the downstream tasks, as keyword arguments of adapt/search nodes
DOWNSTREAM_INPUTS = {
    key: value
    for k in KINDS.values()
    for key, value in ((k.dataset, k.dataset), (k.name, f"params:{k.name}"))
}


def target_search(
    key: str,
    checkpoint: dict[str, Any] | None,
    inputs: StageInputs,
    nb201_200epoch: pd.DataFrame,
    params: dict[str, Any],
    searchers: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    config = validate_params(TargetSearchParams, params, key)
    settings = validate_searchers(searchers)
    hyper = stage_searcher_config(settings, config.searcher)
    history, task = run_target_search(config, hyper, inputs, checkpoint)
    return history.to_frame(), best_architecture(history, config, task, nb201_200epoch)


def metric_histories(frame: pd.DataFrame, step: pd.Series) -> dict[str, Any]:
    """kedro-mlflow metric histories of the per-evaluation columns a history has."""
    return {
        name: [
            {"step": int(s), "value": float(v)}
            for s, v in zip(step, frame[name], strict=True)
            if pd.notna(v)
        ]
        for name in EVALUATION_METRICS
        if name in frame
    }


def cache_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    """Evaluation-cache hits and misses per kind (``cache.trained.hits`` …), for MLflow."""
    out = {}
    for column in (c for c in frame.columns if c.startswith("cache_")):
        kind = column.removeprefix("cache_")
        for outcome in ("hit", "miss"):
            count = int((frame[column] == outcome).sum())
            out[f"cache.{kind}.{outcome}{'es' if outcome == 'miss' else 's'}"] = {
                "step": 0,
                "value": float(count),
            }
    return out


def search_report(history: pd.DataFrame, best: dict[str, Any]) -> tuple[dict[str, Any], Figure]:
    metrics = metric_histories(history, history["step"]) | cache_metrics(history)
    metrics["best_so_far"] = [
        {"step": int(s), "value": float(v)}
        for s, v in zip(history["step"], history["reward"].cummax(), strict=True)
    ]
    if "test_acc_200epoch" in best:
        metrics["best_test_acc_200epoch"] = {"step": 0, "value": best["test_acc_200epoch"]}
    title = f"{best['searcher']} on {best['task']} ({best['evaluations']} evaluations)"
    if "test_acc_200epoch" in best:
        ylabel = "12-epoch validation acc. (%)"
    elif best["task"].split("/")[0] in KINDS:  # a downstream kind: its score, e.g. mAP
        score = KINDS[best["task"].split("/")[0]].score.split("/")[-1]
        ylabel = f"reward ({score} %; × (LAT/T)^w with a target)"
    else:
        ylabel = "reward (val. acc. %; × (LAT/T)^w with a target)"
    return metrics, search_figure(history, title, ylabel)
