"""COCO detection: RetinaNet (P3–P7) on our backbone, trained and evaluated by mmdet.

The config is mmdet's RetinaNet (focal loss, 9 anchors per location) around the backbone: the
neck reads the backbone stages of stride 8/16/32 and returns five levels P3–P7 — mmdet's FPN
with P6/P7 added on its input by default, or a searched NAS-FPN neck
(:mod:`transfernas.spaces.nasfpn`). Evaluation is mmdet's ``CocoMetric`` (pycocotools).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from transfernas.data.coco import check_coco
from transfernas.downstream.kind import DownstreamKind
from transfernas.downstream.runner import (
    MEAN,
    STD,
    DownstreamParams,
    DownstreamSearchParams,
    LatencySizes,
    loader,
    runner_cfg,
)

LEVELS = 5  # P3–P7, RetinaNet's anchor strides 8 … 128
IN_STAGES = [1, 2, 3]  # backbone stages of stride 8, 16, 32


class NASFPNParams(BaseModel):
    """``detection.search.nasfpn``: the merge-cell space (P3–P7, RetinaNet's levels)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cells: int = Field(7, ge=LEVELS, description="merge cells (NAS-FPN: 7; mmdet's neck: 9)")
    stack_times: int = Field(1, ge=1, description="pyramid repeats (mmdet RetinaNet NAS-FPN: 7)")


# the fixed backbone under a searched neck: mmdet's ResNet-18 at a quarter of its width
SMALL_RESNET = {
    "type": "ResNet",
    "depth": 18,
    "base_channels": 16,
    "num_stages": 4,
    "frozen_stages": -1,
    "norm_cfg": {"type": "BN", "requires_grad": True},
    "norm_eval": False,
    "style": "pytorch",
}


class DetectionSearchParams(DownstreamSearchParams):
    """``detection.search``: what a candidate is (the backbone, or the neck over a fixed
    backbone), its short schedule and reward."""

    space: Literal["resblock", "nasfpn"] = Field(
        "resblock",
        description="resblock: search the backbone (trained_task.space); nasfpn: the neck",
    )
    nasfpn: NASFPNParams = Field(default_factory=NASFPNParams)
    backbone: dict[str, Any] = Field(
        default_factory=lambda: dict(SMALL_RESNET),
        description="space: nasfpn — any registered mmdet backbone config (a ResNet, or "
        "TransferNASResNet with init_cfg Pretrained = exported weights)",
    )


class DetectionParams(DownstreamParams):
    """``detection``: model width, input scale, schedule and latency sizes."""

    detector: Literal["retinanet"] = "retinanet"
    neck_channels: int = Field(256, ge=8, description="FPN/head width (mmdet: 256)")
    stacked_convs: int = Field(4, ge=1, description="head convs per branch (RetinaNet: 4)")
    img_scale: tuple[int, int] = Field((1333, 800), description="(W, H) resize target")
    flip: bool = True
    score_thr: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="test-time score threshold (mmdet: 0.05); lower it for "
        "short schedules, whose scores are still near the focal-loss prior 0.01",
    )
    val_batch_size: int = Field(1, ge=1)
    latency: LatencySizes = Field(default_factory=lambda: LatencySizes(sizes=((800, 1333),)))
    work_dir: str = "data/06_models/detection"
    search: DetectionSearchParams = Field(
        default_factory=DetectionSearchParams, description="adapt/search with task: detection"
    )


def coco_classes(data: dict[str, str]) -> tuple[str, ...]:
    """Check both splits (once per run: on COCO this parses ~0.5 GB of JSON) and return the
    class names they share. ``data`` has ``root``, ``train_ann``, ``train_img``, ``val_ann``,
    ``val_img`` (annotation files and image folders, relative to ``root``)."""
    root = Path(data["root"])
    train, val = (
        check_coco(root / data[f"{split}_ann"], root / data[f"{split}_img"])
        for split in ("train", "val")
    )
    if val["classes"] != train["classes"]:
        raise ValueError(f"{root / data['val_ann']}: categories differ from the train file's")
    return train["classes"]


def fpn_neck(width: int) -> dict[str, Any]:
    """RetinaNet's FPN: lateral 1×1 + top-down sum, P6/P7 by stride-2 convs on C5."""
    return {
        "type": "FPN",
        "out_channels": width,
        "start_level": 0,
        "add_extra_convs": "on_input",
        "num_outs": LEVELS,
    }


def retina_head(num_classes: int, width: int, stacked_convs: int) -> dict[str, Any]:
    return {
        "type": "RetinaHead",
        "num_classes": num_classes,
        "in_channels": width,
        "stacked_convs": stacked_convs,
        "feat_channels": width,
        "anchor_generator": {
            "type": "AnchorGenerator",
            "octave_base_scale": 4,
            "scales_per_octave": 3,
            "ratios": [0.5, 1.0, 2.0],
            "strides": [8, 16, 32, 64, 128],
        },
        "bbox_coder": {
            "type": "DeltaXYWHBBoxCoder",
            "target_means": [0.0, 0.0, 0.0, 0.0],
            "target_stds": [1.0, 1.0, 1.0, 1.0],
        },
        "loss_cls": {
            "type": "FocalLoss",
            "use_sigmoid": True,
            "gamma": 2.0,
            "alpha": 0.25,
            "loss_weight": 1.0,
        },
        "loss_bbox": {"type": "L1Loss", "loss_weight": 1.0},
    }


# RetinaNet's assignment (IoU ≥ 0.5 positive, < 0.4 negative) and mmdet's test settings
RETINA_TRAIN = {
    "assigner": {
        "type": "MaxIoUAssigner",
        "pos_iou_thr": 0.5,
        "neg_iou_thr": 0.4,
        "min_pos_iou": 0,
        "ignore_iof_thr": -1,
    },
    "sampler": {"type": "PseudoSampler"},
    "allowed_border": -1,
    "pos_weight": -1,
    "debug": False,
}


def retina_test(score_thr: float) -> dict[str, Any]:
    return {
        "nms_pre": 1000,
        "min_bbox_size": 0,
        "score_thr": score_thr,
        "nms": {"type": "nms", "iou_threshold": 0.5},
        "max_per_img": 100,
    }


def coco_dataset(
    data: dict[str, str], split: str, classes: tuple[str, ...], params: DetectionParams
) -> dict[str, Any]:
    """mmdet's ``CocoDataset`` of one split with its pipeline (flip only when training)."""
    test = split == "val"
    resize = {"type": "Resize", "scale": tuple(params.img_scale), "keep_ratio": True}
    boxes = {"type": "LoadAnnotations", "with_bbox": True}
    if test:
        meta = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")
        pipeline = [{"type": "LoadImageFromFile"}, resize, boxes]
        pipeline.append({"type": "PackDetInputs", "meta_keys": meta})
    else:
        flip = {"type": "RandomFlip", "prob": 0.5 if params.flip else 0.0}
        pipeline = [{"type": "LoadImageFromFile"}, boxes, resize, flip, {"type": "PackDetInputs"}]
    return {
        "type": "CocoDataset",
        "data_root": str(Path(data["root"])),
        "ann_file": data[f"{split}_ann"],
        "data_prefix": {"img": data[f"{split}_img"]},
        "metainfo": {"classes": classes},
        "filter_cfg": {"filter_empty_gt": not test, "min_size": 1},
        "test_mode": test,
        "pipeline": pipeline,
    }


def detection_cfg(
    backbone: dict[str, Any],
    stage_channels: list[int],
    data: dict[str, str],
    classes: tuple[str, ...],
    params: DetectionParams,
    neck: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete mmdet Runner config on ``data`` (checked by :func:`coco_classes`);
    ``neck`` None = RetinaNet's FPN, else a neck dict (its ``in_channels`` is filled here)."""
    width = params.neck_channels
    neck = (fpn_neck(width) if neck is None else neck) | {
        "in_channels": [stage_channels[i] for i in IN_STAGES]
    }
    model = {
        "type": "RetinaNet",
        "data_preprocessor": {
            "type": "DetDataPreprocessor",
            "mean": MEAN,
            "std": STD,
            "bgr_to_rgb": True,
            "pad_size_divisor": 32,
        },
        "backbone": backbone | {"out_indices": IN_STAGES},
        "neck": neck,
        "bbox_head": retina_head(len(classes), width, params.stacked_convs),
        "train_cfg": RETINA_TRAIN,
        "test_cfg": retina_test(params.score_thr),
    }
    schedule = params.schedule
    train, val = (coco_dataset(data, s, classes, params) for s in ("train", "val"))
    return runner_cfg("mmdet", Path(params.work_dir), schedule) | {
        "model": model,
        "train_dataloader": loader(train, schedule.batch_size, schedule.num_workers, True),
        "val_dataloader": loader(val, params.val_batch_size, schedule.num_workers, False),
        "val_evaluator": {
            "type": "CocoMetric",
            "ann_file": str(Path(data["root"]) / data["val_ann"]),
            "metric": "bbox",
            "format_only": False,
        },
    }


def _prepare(data: dict[str, str]) -> tuple[tuple[str, ...], dict[str, Any]]:
    classes = coco_classes(data)
    return classes, {"classes": list(classes)}


DETECTION = DownstreamKind(
    name="detection",
    dataset="coco",
    params=DetectionParams,
    score="coco/bbox_mAP",
    scale=100.0,
    prepare=_prepare,
    build=detection_cfg,
)
