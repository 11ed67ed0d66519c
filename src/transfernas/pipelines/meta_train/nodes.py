"""Kedro nodes of ``meta_train``: meta-train a meta-learning searcher (sub-datasets or NB201)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from transfernas.config import validate_params, validate_searchers
from transfernas.environment import machine_info
from transfernas.fidelity import meta_reward_fidelity, nb201_spearman
from transfernas.pipelines.search_nodes import cache_metrics, metric_histories, stage_inputs
from transfernas.plots import meta_training_figure
from transfernas.stages import (
    MetaTrainParams,
    run_meta_training,
    stage_searcher_config,
)
from transfernas.tasks.subdataset import Source

log = logging.getLogger(__name__)
CURVE_METRICS = (
    "best_reward",
    "loss_controller",
    "loss_evaluator",
    "kl",
    "entropy",
    "loss_critic",
    "loss_actor",
    "loss",
    "tau",
    "phi_entropy",
)


def meta_train_agent(
    subdataset_manifests: list[dict[str, Any]],
    nb201_12epoch: pd.DataFrame,
    nb201_200epoch: pd.DataFrame,
    source: Source,
    params: dict[str, Any],
    subdatasets: dict[str, Any],
    trained_task: dict[str, Any],
    executor: dict[str, Any],
    searchers: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Checkpoint (networks + config + tasks), per-epoch curves, evaluations, JSON manifest.

    ``subdataset_manifests`` (the ``subdatasets`` stage's output) orders the stages and says
    which meta-training tasks reused a sub-dataset that stage built. When sub-dataset tasks
    search NB201 cells, the manifest says how well their rewards rank the cells by NB201's
    accuracies (``reward_spearman``, report only: no table is read while meta-training).
    """
    config = validate_params(MetaTrainParams, params, "meta_train")
    settings = validate_searchers(searchers)
    inputs = stage_inputs(nb201_12epoch, source, subdatasets, trained_task, executor)
    hyper = stage_searcher_config(settings, config.searcher)
    checkpoint, curves, evaluations = run_meta_training(config, hyper, inputs)
    manifest = {k: v for k, v in checkpoint.items() if k != "networks"}
    manifest["machine"] = machine_info()
    if config.tasks != "nb201":
        manifest["trained_task"] = inputs.trained_task.model_dump()
        # a meta-network (BASE) evaluates nothing while meta-training: its frame is empty
        ok = evaluations[evaluations["status"] == "ok"] if len(evaluations) else None
        if (
            inputs.trained_task.space.name == "nb201"
            and ok is not None
            and ok["arch"].nunique() >= 3
        ):
            manifest["reward_spearman"] = nb201_spearman(
                ok["arch"], ok["reward"], nb201_12epoch, nb201_200epoch
            )
        built = {m.get("task") for m in subdataset_manifests}  # none in manifests of old runs
        manifest["reused_subdatasets"] = [t for t in checkpoint["tasks"] if t in built]
        if not manifest["reused_subdatasets"]:
            log.warning(
                "no meta-training task is a sub-dataset the subdatasets stage built: "
                "were the two stages run with different subdatasets parameters?"
            )
    return checkpoint, curves, evaluations, manifest


def meta_train_fidelity(
    evaluations: pd.DataFrame,
    source: Source,
    params: dict[str, Any],
    subdatasets: dict[str, Any],
    trained_task: dict[str, Any],
    executor: dict[str, Any],
) -> dict[str, Any]:
    """The meta-training rewards' rank correlation with a longer training of the same
    architectures (``meta_train.fidelity``); ``{}`` when nothing is checked."""
    config = validate_params(MetaTrainParams, params, "meta_train")
    inputs = stage_inputs(None, source, subdatasets, trained_task, executor)
    result = meta_reward_fidelity(config, evaluations, inputs)
    if result is None:
        return {}
    rho, ci = result["spearman"], result["spearman_ci95"]
    log.info(
        "meta-training reward vs %s: Spearman %s%s over %d networks of the last %d meta-epoch(s)",
        result["reference"],
        "n/a" if rho is None else f"{rho:.2f}",
        "" if ci is None else f" (95% bootstrap CI {ci[0]:.2f} to {ci[1]:.2f})",
        result["n"],
        len(result["epochs"]),
    )
    return result | {"machine": machine_info()}


def meta_train_report(
    curves: pd.DataFrame,
    evaluations: pd.DataFrame,
    manifest: dict[str, Any],
    fidelity: dict[str, Any],
) -> tuple[dict[str, Any], Figure]:
    """Per-epoch curves, every evaluation at its global step (epoch × n_search + step), and
    the rewards' rank correlation with NB201 (when the manifest has it) and with a longer
    training (``fidelity``, when checked)."""
    metrics = {
        name: [
            {"step": int(e), "value": float(v)}
            for e, v in zip(curves["epoch"], curves[name], strict=True)
        ]
        for name in CURVE_METRICS
        if name in curves
    }
    if len(evaluations):  # a meta-network (BASE) evaluates no candidate while meta-training
        n_search = int(evaluations["step"].max()) + 1
        step = evaluations["trial"] * n_search + evaluations["step"]
        metrics |= {f"evaluation.{k}": v for k, v in metric_histories(evaluations, step).items()}
        metrics |= cache_metrics(evaluations)
    for target, rho in manifest.get("reward_spearman", {}).items():
        metrics[f"reward_spearman.{target.replace('/', '.')}"] = {"step": 0, "value": rho}
    for name in ("spearman", "kendall"):
        if fidelity.get(name) is not None:
            metrics[f"reward_fidelity.{name}"] = {"step": 0, "value": fidelity[name]}
    for bound, value in zip(("low", "high"), fidelity.get("spearman_ci95") or (), strict=False):
        metrics[f"reward_fidelity.spearman_ci95_{bound}"] = {"step": 0, "value": value}
    if "n" in fidelity:
        metrics["reward_fidelity.n"] = {"step": 0, "value": fidelity["n"]}
        by_epoch = [c for c in fidelity.get("epochs", []) if c[name] is not None]
        if by_epoch:
            metrics[f"reward_fidelity.{name}_by_epoch"] = [
                {"step": c["epoch"], "value": c[name]} for c in by_epoch
            ]
    return metrics, meta_training_figure(curves, fidelity)
