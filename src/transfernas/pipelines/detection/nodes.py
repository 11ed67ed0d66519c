"""Kedro nodes of ``detection``: RetinaNet + FPN on the exported backbone, trained by mmdet."""

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
from transfernas.tasks.detection import DetectionParams, coco_classes, detection_cfg


def train_detector(
    weights: dict[str, torch.Tensor],
    card: dict[str, Any],
    coco: dict[str, str],
    params: dict[str, Any],
) -> tuple[dict[str, Any], Figure, dict[str, Any], str]:
    """MLflow metrics (COCO mAP, latency, losses), loss plot, results, the mmdet config."""
    config = validate_params(DetectionParams, params, "detection")
    work_dir = run_dir(config, card, coco)
    config = config.model_copy(update={"work_dir": work_dir})
    backbone = exported_backbone(weights, card, work_dir)
    cfg = detection_cfg(backbone, card["stage_channels"][1:4], coco, coco_classes(coco), config)
    metrics, figure, results = train_and_report("detection", cfg, config.latency, card)
    return metrics, figure, results, config_text(cfg)
