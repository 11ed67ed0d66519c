"""Kedro node of ``compare``: train and rank the models, log one MLflow child run per model."""

from __future__ import annotations

from typing import Any

import mlflow
from matplotlib.figure import Figure

from transfernas.compare import CompareParams, markdown, run_comparison
from transfernas.config import validate_params, validate_searchers
from transfernas.pipelines.search_nodes import stage_inputs
from transfernas.plots import compare_figure
from transfernas.stages import TargetSearchParams, stage_searcher_config
from transfernas.tasks.subdataset import Source


def compare_models(
    adapt_best: dict[str, Any],
    source: Source,
    params: dict[str, Any],
    adapt: dict[str, Any],
    subdatasets: dict[str, Any],
    trained_task: dict[str, Any],
    executor: dict[str, Any],
    searchers: dict[str, Any],
) -> tuple[dict[str, Any], str, Figure, dict[str, Any]]:
    """Results (JSON and markdown), the accuracy-vs-latency plot and the summary metrics."""
    config = validate_params(CompareParams, params, "compare")
    target = validate_params(TargetSearchParams, adapt, "adapt")
    random_config = stage_searcher_config(validate_searchers(searchers), "random")
    inputs = stage_inputs(None, source, subdatasets, trained_task, executor)
    results = run_comparison(config, target, adapt_best, random_config, inputs)
    log_model_runs(results)
    metrics = {
        f"{row['model']}.{name}": {"value": float(value), "step": 0}
        for row in results["models"]
        for name, value in (
            ("top1_mean", row["top1"]["mean"]),
            ("top1_ci95", row["top1"]["ci95"]),
            ("latency_ms", row["latency_ms"]),
        )
    }
    metrics["searched_margin"] = {"value": results["searched_margin"], "step": 0}
    if "equal_latency" in results:  # against the best baseline of the searched latency
        margin = results["equal_latency"]["searched_margin"]
        metrics["searched_margin_equal_latency"] = {"value": margin, "step": 0}
    return results, markdown(results), compare_figure(results), metrics


def log_model_runs(results: dict[str, Any]) -> None:
    """One nested MLflow run per model under the stage's run: what it is, its per-seed curves
    (train loss/accuracy and held-out accuracy per epoch) and its summary."""
    active = mlflow.active_run()
    if active is None:  # tracking switched off
        return
    stage_tags = mlflow.get_run(active.info.run_id).data.tags  # with the hook's, set later
    tags = {k: v for k, v in stage_tags.items() if k.startswith("transfernas.")}
    for row in results["models"]:
        with mlflow.start_run(run_name=f"compare/{row['model']}", nested=True, tags=tags):
            mlflow.log_params(
                {"model": row["model"], "what": row["what"], "seeds": str(results["seeds"])}
            )
            for seed in row["seeds"]:
                for point in seed["curve"]:
                    mlflow.log_metrics(
                        {
                            f"seed{seed['seed']}.{k}": float(point[k])
                            for k in ("train_loss", "train_acc", "heldout_acc")
                        },
                        step=int(point["epoch"]),
                    )
            mlflow.log_metrics(
                {
                    "top1_mean": row["top1"]["mean"],
                    "top1_ci95": row["top1"]["ci95"],
                    "latency_ms": row["latency_ms"],
                    "latency_iqr_ms": row["latency_iqr_ms"],
                    "mflops": row["mflops"],
                    "params_m": row["params_m"],
                }
            )
