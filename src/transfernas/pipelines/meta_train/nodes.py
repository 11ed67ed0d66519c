"""Kedro nodes of ``meta_train``: meta-train a meta-learning searcher on NB201 tables."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from transfernas.config import searcher_config, validate_params, validate_searchers
from transfernas.plots import meta_training_figure
from transfernas.stages import MetaTrainParams, run_meta_training

CURVE_METRICS = ("best_reward", "loss_controller", "loss_evaluator", "kl", "entropy")


def meta_train_agent(
    nb201_12epoch: pd.DataFrame, params: dict[str, Any], searchers: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """Checkpoint (networks + config + task list), per-epoch curves, and a JSON manifest."""
    config = validate_params(MetaTrainParams, params, "meta_train")
    settings = validate_searchers(searchers)
    checkpoint, curves = run_meta_training(
        nb201_12epoch, config, searcher_config(settings, config.searcher)
    )
    manifest = {k: v for k, v in checkpoint.items() if k != "networks"}
    return checkpoint, curves, manifest


def meta_train_report(curves: pd.DataFrame) -> tuple[dict[str, Any], Figure]:
    metrics = {
        name: [
            {"step": int(e), "value": float(v)}
            for e, v in zip(curves["epoch"], curves[name], strict=True)
        ]
        for name in CURVE_METRICS
        if name in curves
    }
    return metrics, meta_training_figure(curves)
