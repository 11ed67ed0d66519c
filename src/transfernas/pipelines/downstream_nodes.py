"""What the ``detection`` and ``segmentation`` nodes share: the exported backbone in an
mmlab config, one training run, and its report (MLflow metrics, loss plot, results)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from matplotlib.figure import Figure

from transfernas.environment import machine_info
from transfernas.export.backbone import with_weights
from transfernas.plots import training_log_figure
from transfernas.tasks.mmlab import (
    DownstreamParams,
    LatencySizes,
    latency_metrics,
    model_latency,
    train_and_evaluate,
)

P = TypeVar("P", bound=DownstreamParams)


def run_setup(
    config: P, weights: dict[str, torch.Tensor], card: dict[str, Any], data: dict[str, str]
) -> tuple[P, dict[str, Any]]:
    """The run's own work dir and the card's backbone config loading ``weights``.

    The work dir is ``work_dir/<hash>`` of what training depends on (backbone, data, model,
    schedule): a rerun of the same resumes its checkpoints; anything else starts fresh instead
    of resuming another model's. The weights are written into it for ``init_cfg``.
    """
    parts = [card, data, config.model_dump(exclude={"work_dir", "latency", "search"})]
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    work_dir = Path(config.work_dir) / digest.hexdigest()[:12]
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.save(weights, work_dir / "backbone.pth")
    backbone = with_weights(card["backbone"], str((work_dir / "backbone.pth").resolve()))
    return config.model_copy(update={"work_dir": str(work_dir)}), backbone


def config_text(cfg: dict[str, Any]) -> str:
    from mmengine.config import Config

    return Config(cfg).pretty_text


def train_and_report(
    name: str, cfg: dict[str, Any], latency: LatencySizes, card: dict[str, Any]
) -> tuple[dict[str, Any], Figure, dict[str, Any]]:
    """Train + validate with mmengine, time the trained network; MLflow metrics, plot, JSON."""
    scores, rows, model = train_and_evaluate(cfg)
    latencies = model_latency(model, latency)
    final = scores | latency_metrics(latencies)
    metrics: dict[str, Any] = {
        k.replace("/", "."): {"value": v, "step": 0} for k, v in final.items()
    }
    for key in sorted({k for r in rows for k in r if k.startswith("loss")}):
        metrics[f"train.{key}"] = [
            {"step": int(r["step"]), "value": float(r[key])} for r in rows if key in r
        ]
    results = {
        "task": name,
        "metrics": final,
        "latency": [lat.as_row() for lat in latencies],
        "backbone": {k: card[k] for k in ("arch", "params_m", "out_channels")},
        "iterations": cfg["train_cfg"]["max_iters"],
        "machine": machine_info(),
    }
    return metrics, training_log_figure(rows, f"{name}: {card['arch']}"), results
