"""COCO detection with the exported backbone: RetinaNet + FPN trained by mmdet.

The config is mmdet's RetinaNet (focal loss, 9 anchors per location, P3–P7) around
``TransferNASResNet``: the FPN reads the backbone stages of stride 8/16/32 and adds P6/P7 on
top, as RetinaNet-R50 does. Evaluation is mmdet's ``CocoMetric`` (pycocotools).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from transfernas.data.coco import check_coco
from transfernas.tasks.mmlab import (
    MEAN,
    STD,
    DownstreamParams,
    LatencySizes,
    loader,
    runner_cfg,
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


def detection_cfg(
    backbone: dict[str, Any],
    out_channels: list[int],
    data: dict[str, str],
    classes: tuple[str, ...],
    params: DetectionParams,
) -> dict[str, Any]:
    """A complete mmdet Runner config on ``data`` (checked by :func:`coco_classes`)."""
    root = Path(data["root"])
    backbone = backbone | {"out_indices": [1, 2, 3]}  # strides 8, 16, 32
    width = params.neck_channels
    model = {
        "type": "RetinaNet",
        "data_preprocessor": {
            "type": "DetDataPreprocessor",
            "mean": MEAN,
            "std": STD,
            "bgr_to_rgb": True,
            "pad_size_divisor": 32,
        },
        "backbone": backbone,
        "neck": {
            "type": "FPN",
            "in_channels": out_channels,
            "out_channels": width,
            "start_level": 0,
            "add_extra_convs": "on_input",
            "num_outs": 5,
        },
        "bbox_head": {
            "type": "RetinaHead",
            "num_classes": len(classes),
            "in_channels": width,
            "stacked_convs": params.stacked_convs,
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
        },
        "train_cfg": {
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
        },
        "test_cfg": {
            "nms_pre": 1000,
            "min_bbox_size": 0,
            "score_thr": params.score_thr,
            "nms": {"type": "nms", "iou_threshold": 0.5},
            "max_per_img": 100,
        },
    }
    resize = {"type": "Resize", "scale": tuple(params.img_scale), "keep_ratio": True}
    train_pipeline = [
        {"type": "LoadImageFromFile"},
        {"type": "LoadAnnotations", "with_bbox": True},
        resize,
        {"type": "RandomFlip", "prob": 0.5 if params.flip else 0.0},
        {"type": "PackDetInputs"},
    ]
    val_pipeline = [
        {"type": "LoadImageFromFile"},
        resize,
        {"type": "LoadAnnotations", "with_bbox": True},
        {
            "type": "PackDetInputs",
            "meta_keys": ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"),
        },
    ]

    def dataset(split: str, pipeline: list[dict[str, Any]], test: bool) -> dict[str, Any]:
        return {
            "type": "CocoDataset",
            "data_root": str(root),
            "ann_file": data[f"{split}_ann"],
            "data_prefix": {"img": data[f"{split}_img"]},
            "metainfo": {"classes": classes},
            "filter_cfg": {"filter_empty_gt": not test, "min_size": 1},
            "test_mode": test,
            "pipeline": pipeline,
        }

    schedule = params.schedule
    cfg = runner_cfg("mmdet", Path(params.work_dir), schedule)
    return cfg | {
        "model": model,
        "train_dataloader": loader(
            dataset("train", train_pipeline, False),
            schedule.batch_size,
            schedule.num_workers,
            True,
        ),
        "val_dataloader": loader(
            dataset("val", val_pipeline, True), params.val_batch_size, schedule.num_workers, False
        ),
        "val_evaluator": {
            "type": "CocoMetric",
            "ann_file": str(root / data["val_ann"]),
            "metric": "bbox",
            "format_only": False,
        },
    }
