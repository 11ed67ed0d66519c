"""Cityscapes semantic segmentation with the exported backbone, trained by mmseg.

mmseg's ``EncoderDecoder`` with an FCN head (mmseg's ``FCNHead``) on the backbone's last
stage plus an auxiliary FCN head on the stage before, as mmseg's FCN configs do. Our backbones
are not dilated (output stride 32), so the head's logits are coarser than a dilated
ResNet-V1c's; mmseg upsamples them to the label size for the loss and mIoU. Evaluation is
mmseg's ``IoUMetric``. Frames are checked (and ``labelIds`` converted) by
:mod:`transfernas.data.cityscapes` first.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import Field

from transfernas.data.cityscapes import CLASSES, IMG_SUFFIX, TRAIN_IDS, prepare_split
from transfernas.downstream.kind import DownstreamKind
from transfernas.downstream.runner import (
    MEAN,
    STD,
    DownstreamParams,
    LatencySizes,
    loader,
    runner_cfg,
)


class SegmentationParams(DownstreamParams):
    """``segmentation``: head width, crop, schedule and latency sizes."""

    head_channels: int = Field(512, ge=8, description="FCN head width (mmseg: 512)")
    auxiliary: bool = Field(True, description="auxiliary FCN head on the second-last stage")
    img_scale: tuple[int, int] = Field((2048, 1024), description="(W, H) resize target")
    crop_size: tuple[int, int] = Field((512, 1024), description="(H, W) random crop")
    latency: LatencySizes = Field(default_factory=lambda: LatencySizes(sizes=((1024, 1024),)))
    work_dir: str = "data/06_models/segmentation"


def prepare_cityscapes(data: dict[str, str]) -> tuple[None, dict[str, Any]]:
    """Check both splits and fill ``labels_dir`` with their train-id masks (once per run);
    returns (nothing the config needs, what preparing them found). ``data`` has ``root``,
    ``train_split``, ``val_split`` and ``labels_dir``."""
    root, labels = Path(data["root"]), Path(data["labels_dir"])
    found = {
        s: asdict(prepare_split(root, data[f"{s}_split"], labels / s)) for s in ("train", "val")
    }
    return None, found


def fcn_head(
    in_channels: list[int], in_index: int, channels: int, weight: float, convs: int
) -> dict[str, Any]:
    """mmseg's ``FCNHead`` on stage ``in_index`` (decode: 2 convs + input concat; aux: 1)."""
    return {
        "type": "FCNHead",
        "in_channels": in_channels[in_index],
        "in_index": in_index,
        "channels": channels,
        "num_convs": convs,
        "concat_input": convs > 1,
        "dropout_ratio": 0.1,
        "num_classes": len(CLASSES),
        "norm_cfg": {"type": "BN", "requires_grad": True},
        "align_corners": False,
        # the mean over labelled pixels, as torch's cross_entropy (mmseg's default averages over
        # all pixels, ignored ones included, and warns about it)
        "loss_decode": {
            "type": "CrossEntropyLoss",
            "use_sigmoid": False,
            "loss_weight": weight,
            "avg_non_ignore": True,
        },
    }


def cityscapes_dataset(data: dict[str, str], split: str, params: SegmentationParams) -> dict:
    """mmseg's ``CityscapesDataset`` of one split over the prepared train-id masks; training
    augments as mmseg's Cityscapes configs (random resize 0.5–2, crop, flip, photometric)."""
    load = [{"type": "LoadImageFromFile"}, {"type": "LoadAnnotations"}]
    if split == "train":
        pipeline = [
            *load,
            {
                "type": "RandomResize",
                "scale": tuple(params.img_scale),
                "ratio_range": (0.5, 2.0),
                "keep_ratio": True,
            },
            {"type": "RandomCrop", "crop_size": tuple(params.crop_size), "cat_max_ratio": 0.75},
            {"type": "RandomFlip", "prob": 0.5},
            {"type": "PhotoMetricDistortion"},
        ]
    else:
        resize = {"type": "Resize", "scale": tuple(params.img_scale), "keep_ratio": True}
        pipeline = [load[0], resize, load[1]]
    root, labels = Path(data["root"]), Path(data["labels_dir"])
    return {
        "type": "CityscapesDataset",
        "data_root": "",
        "data_prefix": {
            "img_path": str(root / "leftImg8bit" / data[f"{split}_split"]),
            "seg_map_path": str(labels / split),
        },
        "img_suffix": IMG_SUFFIX,
        "seg_map_suffix": TRAIN_IDS,
        "pipeline": [*pipeline, {"type": "PackSegInputs"}],
    }


def segmentation_cfg(
    backbone: dict[str, Any],
    stage_channels: list[int],
    data: dict[str, str],
    prepared: object,
    params: SegmentationParams,
    neck: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete mmseg Runner config on ``data`` (prepared by :func:`prepare_cityscapes`).
    The heads read the backbone's ``out_indices`` stages directly (mmseg's FCN has no neck)."""
    if neck is not None:
        raise ValueError("segmentation: the FCN model has no neck to search")
    channels = [stage_channels[i] for i in backbone["out_indices"]]
    n = len(channels)
    model: dict[str, Any] = {
        "type": "EncoderDecoder",
        "data_preprocessor": {
            "type": "SegDataPreProcessor",
            "mean": MEAN,
            "std": STD,
            "bgr_to_rgb": True,
            "pad_val": 0,
            "seg_pad_val": 255,
            "size": tuple(params.crop_size),
        },
        "backbone": backbone,
        "decode_head": fcn_head(channels, n - 1, params.head_channels, 1.0, 2),
        "train_cfg": {},
        "test_cfg": {"mode": "whole"},
    }
    if params.auxiliary and n > 1:
        model["auxiliary_head"] = fcn_head(
            channels, n - 2, max(8, params.head_channels // 2), 0.4, 1
        )
    schedule = params.schedule
    train, val = (cityscapes_dataset(data, s, params) for s in ("train", "val"))
    return runner_cfg("mmseg", Path(params.work_dir), schedule) | {
        "model": model,
        "train_dataloader": loader(train, schedule.batch_size, schedule.num_workers, True),
        "val_dataloader": loader(val, 1, schedule.num_workers, False),
        "val_evaluator": {"type": "IoUMetric", "iou_metrics": ["mIoU"]},
    }


SEGMENTATION = DownstreamKind(
    name="segmentation",
    dataset="cityscapes",
    params=SegmentationParams,
    score="mIoU",
    scale=1.0,
    prepare=prepare_cityscapes,
    build=segmentation_cfg,
)
