"""Kedro nodes of ``detection``: RetinaNet + FPN on the exported backbone, trained by mmdet."""

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
from transfernas.tasks.detection import DetectionParams, coco_classes, detection_cfg


def train_detector(
    weights: dict[str, torch.Tensor],
    card: dict[str, Any],
    coco: dict[str, str],
    params: dict[str, Any],
) -> tuple[dict[str, Any], Figure, dict[str, Any], str]:
    """MLflow metrics (COCO mAP, latency, losses), loss plot, results, the mmdet config."""
    config = validate_params(DetectionParams, params, "detection")
    classes = coco_classes(coco)  # bad files stop the run before anything is written
    config, backbone = run_setup(config, weights, card, coco)
    cfg = detection_cfg(backbone, card["stage_channels"][1:4], coco, classes, config)
    metrics, figure, results = train_and_report("detection", cfg, config.latency, card)
    return metrics, figure, results, config_text(cfg)
