"""Nodes shared by ``adapt`` and ``search``: one durable search on the target NB201 dataset."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from transfernas.config import searcher_config, validate_params, validate_searchers
from transfernas.plots import search_figure
from transfernas.stages import TargetSearchParams, best_architecture, run_target_search


def target_search(
    key: str,
    checkpoint: dict[str, Any] | None,
    nb201_12epoch: pd.DataFrame,
    nb201_200epoch: pd.DataFrame,
    params: dict[str, Any],
    searchers: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    config = validate_params(TargetSearchParams, params, key)
    settings = validate_searchers(searchers)
    history = run_target_search(
        nb201_12epoch, config, searcher_config(settings, config.searcher), checkpoint
    )
    best = best_architecture(history, config.dataset, nb201_200epoch) | {
        "searcher": config.searcher
    }
    return history.to_frame(), best


def search_report(history: pd.DataFrame, best: dict[str, Any]) -> tuple[dict[str, Any], Figure]:
    running = history["reward"].cummax()
    metrics = {
        "reward": [
            {"step": int(s), "value": float(v)}
            for s, v in zip(history["step"], history["reward"], strict=True)
        ],
        "best_so_far": [
            {"step": int(s), "value": float(v)}
            for s, v in zip(history["step"], running, strict=True)
        ],
        "best_test_acc_200epoch": {"step": 0, "value": best["test_acc_200epoch"]},
    }
    title = f"{best['searcher']} on NB201 {best['dataset']} ({best['evaluations']} evaluations)"
    return metrics, search_figure(history, title)
