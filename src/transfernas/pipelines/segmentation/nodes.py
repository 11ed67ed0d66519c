"""Kedro nodes of ``segmentation``: FCN on the exported backbone, trained by mmseg."""

from __future__ import annotations

from typing import Any

import torch
from matplotlib.figure import Figure

from transfernas.config import validate_params
from transfernas.pipelines.downstream_nodes import (
    config_text,
    run_setup,
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
    prepared = prepare_cityscapes(cityscapes)  # bad masks stop the run before training
    config, backbone = run_setup(config, weights, card, cityscapes)
    cfg = segmentation_cfg(backbone, card["out_channels"], cityscapes, config)
    metrics, figure, results = train_and_report("segmentation", cfg, config.latency, card)
    return metrics, figure, results | {"data": prepared}, config_text(cfg)
