"""Kedro nodes of ``segmentation``: FCN on the exported backbone, trained by mmseg."""

from __future__ import annotations

from typing import Any

import torch
from matplotlib.figure import Figure

from transfernas.config import validate_params
from transfernas.pipelines.downstream_nodes import (
    config_text,
    exported_backbone,
    run_dir,
    train_and_report,
)
from transfernas.tasks.segmentation import (
    SegmentationParams,
    prepare_cityscapes,
    segmentation_cfg,
)


def train_segmenter(
    weights: dict[str, torch.Tensor],
    card: dict[str, Any],
    cityscapes: dict[str, str],
    params: dict[str, Any],
) -> tuple[dict[str, Any], Figure, dict[str, Any], str]:
    """MLflow metrics (mIoU, latency, losses), loss plot, results, the mmseg config."""
    config = validate_params(SegmentationParams, params, "segmentation")
    work_dir = run_dir(config, card, cityscapes)
    config = config.model_copy(update={"work_dir": work_dir})
    backbone = exported_backbone(weights, card, work_dir)
    prepared = prepare_cityscapes(cityscapes)
    cfg = segmentation_cfg(backbone, card["out_channels"], cityscapes, config)
    metrics, figure, results = train_and_report("segmentation", cfg, config.latency, card)
    return metrics, figure, results | {"data": prepared}, config_text(cfg)
