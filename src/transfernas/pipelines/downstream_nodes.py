"""The node of every downstream pipeline (``detection``, ``segmentation``): the exported
backbone in the kind's mmlab config, one training run, and its report (MLflow metrics, loss
plot, results, the config)."""

from __future__ import annotations

import hashlib
import json
from functools import partial, update_wrapper
from pathlib import Path
from typing import Any, TypeVar

import torch
from kedro.pipeline import Node, Pipeline
from matplotlib.figure import Figure

from transfernas.config import validate_params
from transfernas.digest import json_digest
from transfernas.downstream import KINDS
from transfernas.downstream.backbone import with_weights
from transfernas.downstream.runner import (
    DownstreamParams,
    LatencySizes,
    latency_metrics,
    model_latency,
    train_and_evaluate,
)
from transfernas.environment import machine_info
from transfernas.plots import training_log_figure

P = TypeVar("P", bound=DownstreamParams)


def weights_digest(weights: dict[str, torch.Tensor]) -> str:
    """The state dict's names, dtypes, shapes and values, hashed."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        tensor = weights[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def run_dir(
    config: DownstreamParams,
    weights: dict[str, torch.Tensor],
    card: dict[str, Any],
    data: dict[str, str],
) -> Path:
    """``work_dir/<hash>`` of what training depends on (the backbone's config and weights,
    data, model, schedule) — not the card's measurements, which a rerun of
    ``export_backbone`` takes again: a rerun of the same resumes its checkpoints; anything else
    starts fresh instead of resuming another model's."""
    parts = [
        card["backbone"],
        weights_digest(weights),
        data,
        config.model_dump(exclude={"work_dir", "latency", "search"}),
    ]
    return Path(config.work_dir) / json_digest(parts)


def run_setup(
    config: P, weights: dict[str, torch.Tensor], card: dict[str, Any], data: dict[str, str]
) -> tuple[P, dict[str, Any]]:
    """The run's own work dir (:func:`run_dir`) and the card's backbone config loading
    ``weights``, which are written into it for ``init_cfg``."""
    work_dir = run_dir(config, weights, card, data)
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.save(weights, work_dir / "backbone.pth")
    backbone = with_weights(card["backbone"], str((work_dir / "backbone.pth").resolve()))
    return config.model_copy(update={"work_dir": str(work_dir)}), backbone


def config_text(cfg: dict[str, Any]) -> str:
    from mmengine.config import Config

    return Config(cfg).pretty_text


def loss_curves(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """MLflow's ``train.loss*`` histories: the whole training as an uninterrupted run logs it —
    a resumed run's earlier iterations too, an iteration trained again after a kill once (its
    latest value; ``rows`` come in time order)."""
    curves = {}
    for key in sorted({k for r in rows for k in r if k.startswith("loss")}):
        curve = {int(r["step"]): float(r[key]) for r in rows if key in r}
        curves[f"train.{key}"] = [{"step": s, "value": v} for s, v in sorted(curve.items())]
    return curves


def train_and_report(
    name: str, cfg: dict[str, Any], latency: LatencySizes, card: dict[str, Any]
) -> tuple[dict[str, Any], Figure, dict[str, Any], list[dict[str, Any]]]:
    """Train + validate with mmengine, time the trained network; MLflow metrics, plot, JSON,
    the training log's rows."""
    scores, rows, model = train_and_evaluate(cfg)
    latencies = model_latency(model, latency)
    final = scores | latency_metrics(latencies)
    metrics: dict[str, Any] = {
        k.replace("/", "."): {"value": v, "step": 0} for k, v in final.items()
    }
    metrics |= loss_curves(rows)
    results = {
        "task": name,
        "metrics": final,
        "latency": [lat.as_row() for lat in latencies],
        "backbone": {k: card[k] for k in ("arch", "params_m", "out_channels")},
        "iterations": cfg["train_cfg"]["max_iters"],
        "train_device": str(next(model.parameters()).device),  # mmengine picks CUDA if any
        "machine": machine_info(),
    }
    return metrics, training_log_figure(rows, f"{name}: {card['arch']}"), results, rows


def train_downstream(
    kind: str,
    weights: dict[str, torch.Tensor],
    card: dict[str, Any],
    data: dict[str, str],
    params: dict[str, Any],
) -> tuple[dict[str, Any], Figure, dict[str, Any], str]:
    """MLflow metrics (score, latency, losses), loss plot, results, the mmlab config."""
    spec = KINDS[kind]
    config = validate_params(spec.params, params, kind)
    # a finished run (same training, same latency settings) is read back: no data check,
    # runner, validation or latency measurement again
    latency = json_digest(config.latency.model_dump())
    done = run_dir(config, weights, card, data) / f"done-{latency}.json"
    if done.exists():
        record = json.loads(done.read_text())
        figure = training_log_figure(record["rows"], f"{kind}: {card['arch']}")
        return record["metrics"], figure, record["results"], record["config"]
    prepared, summary = spec.prepare(data)  # bad data stop the run before anything is written
    config, backbone = run_setup(config, weights, card, data)
    cfg = spec.build(backbone, card["stage_channels"], data, prepared, config)
    metrics, figure, results, rows = train_and_report(kind, cfg, config.latency, card)
    record = {"metrics": metrics, "results": results | {"data": summary}, "rows": rows}
    record["config"] = config_text(cfg)
    done.with_suffix(".tmp").write_text(json.dumps(record, default=str))
    done.with_suffix(".tmp").replace(done)  # atomic: a kill leaves none or all of it
    return record["metrics"], figure, record["results"], record["config"]


def downstream_pipeline(kind: str, node_name: str) -> Pipeline:
    """``kedro run --pipeline <kind>``: the exported backbone retrained in the kind's model."""
    train = update_wrapper(partial(train_downstream, kind), train_downstream)
    return Pipeline(
        [
            Node(
                train,
                ["backbone_weights", "backbone_card", KINDS[kind].dataset, f"params:{kind}"],
                [f"{kind}_{x}" for x in ("metrics", "plot", "results", "config")],
                name=node_name,
            )
        ]
    )
