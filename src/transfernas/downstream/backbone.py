"""The ``model.backbone`` dict of an mmdet/mmseg config for a residual architecture.

Plain dicts, no OpenMMLab import: ``export_backbone`` writes them into its config snippet and
the search tasks into each candidate's config; ``transfernas.downstream.models`` (named in
``custom_imports``) registers the class they name.
"""

from __future__ import annotations

from typing import Any

from transfernas.spaces.resblock import Widths

BACKBONE_TYPE = "TransferNASResNet"
# what a config's custom_imports names so that mmdet/mmseg find our backbone and necks
IMPORTS = ["transfernas.downstream.models"]


def backbone_cfg(
    arch: str,
    block: str,
    stem: str,
    channel_scale: float,
    out_indices: tuple[int, ...],
    widths: Widths | None = None,
) -> dict[str, Any]:
    """The ``model.backbone`` dict of an mmdet/mmseg config (without ``init_cfg``)."""
    cfg = {
        "type": BACKBONE_TYPE,
        "arch": arch,
        "block": block,
        "stem": stem,
        "channel_scale": channel_scale,
        "out_indices": list(out_indices),
        "frozen_stages": -1,
        "norm_cfg": {"type": "BN", "requires_grad": True},
        "norm_eval": False,
    }
    return cfg if widths is None else cfg | {"widths": widths.to_dict()}


def with_weights(cfg: dict[str, Any], checkpoint: str) -> dict[str, Any]:
    return cfg | {"init_cfg": {"type": "Pretrained", "checkpoint": checkpoint}}
