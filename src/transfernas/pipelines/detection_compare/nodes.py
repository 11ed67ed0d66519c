"""Kedro node of ``detection_compare``: both backbones in the detection stage's model."""

from __future__ import annotations

from typing import Any

from transfernas.config import validate_params
from transfernas.downstream import KINDS
from transfernas.downstream.side_by_side import (
    SideBySideParams,
    markdown,
    resnet18_width,
    side_by_side,
)


def detection_side_by_side(
    card: dict[str, Any],
    compare_results: dict[str, Any],
    data: dict[str, str],
    params: dict[str, Any],
    config: dict[str, Any],
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Results (JSON, markdown) and MLflow metrics ``<backbone>.map_mean`` / ``.map_ci95``."""
    kind = KINDS["detection"]
    detection = validate_params(kind.params, params, "detection")
    side = validate_params(SideBySideParams, config, "detection_compare")
    width = resnet18_width(compare_results, side)
    results = side_by_side(kind, data, detection, card, width, side)
    metrics = {
        f"{m['backbone']}.map_{k}": {"value": m["score"][k], "step": 0}
        for m in results["models"]
        for k in ("mean", "ci95")
    }
    return results, markdown(results), metrics
