"""Kedro node of ``morphnet``: exported backbone → MorphNet rounds → retrained, exported."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from transfernas.config import validate_params
from transfernas.data.build import SubdatasetParams
from transfernas.digest import json_digest
from transfernas.export.backbone import config_snippet
from transfernas.morphnet.export import morphnet_markdown, resized_backbone
from transfernas.morphnet.resize import MorphNetParams
from transfernas.plots import morphnet_figure
from transfernas.tasks.subdataset import Source, subdataset_data, target_spec

WEIGHTS_FILE = "backbone.pth"  # the snippet loads the weights from next to itself
log = logging.getLogger(__name__)


def resize_backbone(
    weights: dict[str, torch.Tensor],
    card: dict[str, Any],
    source: Source,
    params: dict[str, Any],
    subdatasets: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any], str, str, dict[str, Any], Figure]:
    """Weights, model card (JSON, markdown), config snippet, MLflow metrics, widths plot."""
    config = validate_params(MorphNetParams, params, "morphnet")
    sub = validate_params(SubdatasetParams, subdatasets, "subdatasets")
    spec = target_spec(source, sub, config.data)
    train, val = subdataset_data(spec, sub, progress=True)
    # a new seed backbone, data or setting starts afresh; the same resumes
    key = [card, spec.spec_id, config.model_dump(mode="json", exclude={"workdir"})]
    workdir = Path(config.workdir) / json_digest(key)
    state, new_card = resized_backbone(
        card, weights, train, val, len(spec.classes), config, workdir, log.info
    )
    m = new_card["morphnet"]
    metrics = {
        "seed_cost": {"value": m["seed_cost"], "step": 0},
        "final_cost": {"value": m["final_cost"], "step": 0},
        "budget": {"value": m["budget"]["value"], "step": 0},
        "params_m": {"value": new_card["params_m"], "step": 0},
        "latency_ms": {"value": new_card["latency"]["median_ms"], "step": 0},
        "pretrain_val_acc": {"value": new_card["pretrain"]["val_acc"], "step": 0},
    }
    for r in m["rounds"]:
        metrics |= {
            f"round{r['round']}.{name}": {"value": r[name], "step": 0}
            for name in ("shrunk_cost", "shrunk_val_acc", "factor", "expanded_cost")
        }
        metrics[f"round{r['round']}.cost_fraction"] = [  # one MLflow history per round
            {"step": int(row["epoch"]), "value": float(row["cost_fraction"])}
            for row in r["shrink_curve"]
        ]
    snippet = config_snippet(new_card["backbone"], "{{ fileDirname }}/" + WEIGHTS_FILE)
    return state, new_card, morphnet_markdown(new_card), snippet, metrics, morphnet_figure(new_card)
