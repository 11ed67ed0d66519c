"""Kedro nodes of ``export_backbone``: best searched architecture → pretrained mmlab backbone."""

from __future__ import annotations

from typing import Any

import torch

from transfernas.config import validate_params
from transfernas.data.build import SubdatasetParams
from transfernas.downstream.backbone import backbone_cfg
from transfernas.export.backbone import (
    ExportParams,
    card_markdown,
    config_snippet,
    pretrain_once,
)
from transfernas.spaces.resblock import ResBlockSpaceParams
from transfernas.tasks.subdataset import (
    Source,
    TrainedTaskParams,
    subdataset_data,
    target_spec,
)
from transfernas.tasks.trained import ImageData

WEIGHTS_FILE = "backbone.pth"  # the snippet loads the weights from next to itself


def export_backbone(
    adapt_best: dict[str, Any],
    source: Source,
    params: dict[str, Any],
    subdatasets: dict[str, Any],
    trained_task: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any], str, str, dict[str, Any]]:
    """Weights (state dict), model card (JSON and markdown), config snippet, MLflow metrics."""
    config = validate_params(ExportParams, params, "export_backbone")
    sub = validate_params(SubdatasetParams, subdatasets, "subdatasets")
    space = validate_params(TrainedTaskParams, trained_task, "trained_task").space
    if config.arch is not None:
        arch = config.arch
    elif adapt_best.get("space") == "resblock":
        arch = adapt_best["arch"]
    else:
        raise ValueError(
            f"export_backbone.arch is null and the adapt stage searched {adapt_best.get('task')} "
            f"({adapt_best.get('space', 'nb201 table')}), not the resblock space: set "
            "export_backbone.arch to a residual architecture such as '64_111-2111-1211-12'"
        )
    searched = space if isinstance(space, ResBlockSpaceParams) else ResBlockSpaceParams()
    cfg = backbone_cfg(
        arch,
        config.block or searched.block,
        config.stem,
        config.channel_scale or searched.channel_scale,
        config.out_indices,
    )
    spec = target_spec(source, sub, config.pretrain)

    def data() -> tuple[ImageData, ImageData, int]:  # ImageNet at 224 px takes a while
        return (*subdataset_data(spec, sub, progress=True), len(spec.classes))

    state, card = pretrain_once(arch, cfg, spec.sample_id, data, config)
    card["source"] = {k: adapt_best.get(k) for k in ("searcher", "task", "reward")}
    snippet = config_snippet(cfg, "{{ fileDirname }}/" + WEIGHTS_FILE)
    flops = next(k for k in card if k.startswith("gflops_"))
    metrics = {
        "params_m": {"value": card["params_m"], "step": 0},
        flops: {"value": card[flops], "step": 0},
        "latency_ms": {"value": card["latency"]["median_ms"], "step": 0},
        "pretrain_val_acc": {"value": card["pretrain"]["val_acc"], "step": 0},
    }
    return state, card, card_markdown(card), snippet, metrics
