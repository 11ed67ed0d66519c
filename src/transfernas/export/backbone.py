"""Export a searched residual architecture as a pretrained OpenMMLab backbone.

The search ranks candidates trained briefly at 16–32 px with a small stem; detection and
segmentation need the ImageNet stem (stride 4) and weights trained at that stem. So the export
builds the architecture with the export's stem and width, pretrains it as a classifier on the
chosen sub-dataset (ImageNet-style pretraining, as mmdet/mmseg backbones are), and writes what
an OpenMMLab config needs: a plain tensor state dict of ``TransferNASResNet`` (keys ``net.…``),
the backbone's config dict, a config snippet and a model card.
"""

from __future__ import annotations

import pprint
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from transfernas.digest import json_digest
from transfernas.downstream.backbone import BACKBONE_TYPE, IMPORTS, with_weights
from transfernas.environment import device_name
from transfernas.search import load_checkpoint, save_checkpoint
from transfernas.spaces.resblock import Classifier, ResArch, ResNetBackbone, Widths
from transfernas.tasks.latency import LatencyConfig, measure_latency, torch_threads
from transfernas.tasks.subdataset import TargetParams
from transfernas.tasks.trained import (
    ImageData,
    TrainingConfig,
    accuracy,
    count_flops,
    seed_for,
    train_model,
    use_channels_last,
)


class ExportParams(BaseModel):
    """``export_backbone``: which architecture, built how, pretrained on what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: str | None = Field(None, description="null = the adapt stage's best architecture")
    block: Literal["basic", "bottleneck"] | None = Field(None, description="null = searched")
    stem: Literal["small", "imagenet"] = "imagenet"
    channel_scale: float | None = Field(None, gt=0, le=4, description="null = searched")
    out_indices: tuple[int, ...] = (0, 1, 2, 3)
    pretrain: TargetParams = Field(
        default_factory=lambda: TargetParams(n_classes=None, image_size=64)
    )
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=2))
    latency: LatencyConfig = Field(
        default_factory=lambda: LatencyConfig(input_size=(224, 224), warmup=2, repeats=10)
    )
    seed: int = Field(0, ge=0)
    workdir: str | None = Field(
        "data/06_models/export_backbone",
        description="durable pretraining: checkpointed per epoch, read back when finished",
    )

    @field_validator("arch")
    @classmethod
    def _parses(cls, arch: str | None) -> str | None:
        if arch is not None:
            ResArch.parse(arch)
        return arch


def config_snippet(cfg: dict[str, Any], checkpoint: str) -> str:
    """A Python config fragment to paste into (or ``_base_`` from) an mmdet/mmseg config."""
    backbone = pprint.pformat(with_weights(cfg, checkpoint), indent=4, sort_dicts=False)
    return (
        "# Exported by transfernas (kedro run --pipeline export_backbone).\n"
        "# Needs `pip install transfernas` (or this repo) importable by mmdet/mmseg.\n"
        f"custom_imports = dict(imports={IMPORTS!r}, allow_failed_imports=False)\n"
        f"backbone = {backbone}\n"
        "# model = dict(..., backbone=backbone, neck=dict(in_channels=<out_channels below>, ...))\n"
    )


def pretrain(
    arch: str,
    cfg: dict[str, Any],
    train: ImageData,
    val: ImageData,
    num_classes: int,
    params: ExportParams,
    checkpoint: Path | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Pretrain the backbone as a classifier; its state dict under ``net.`` and the card.
    ``checkpoint``: the training resumes from there after a kill (``train_model``)."""
    training = params.training
    device = torch.device(training.device)
    with torch_threads(training.threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(params.seed, arch, "export"))
        backbone = ResNetBackbone(
            ResArch.parse(arch),
            cfg["block"],
            cfg["stem"],
            None,
            cfg["channel_scale"],
            widths=Widths.from_dict(cfg["widths"]) if "widths" in cfg else None,
        )
        model = Classifier(backbone, backbone.out_channels[-1], num_classes)
        generator = torch.Generator().manual_seed(seed_for(params.seed, arch, "export-data"))
        train, val = train.to(device), val.to(device)
        start = time.perf_counter()
        fit = train_model(model, train, training, generator, checkpoint=checkpoint)
        train_s = time.perf_counter() - start
        val_acc = accuracy(
            model, val, training.eval_batch_size, use_channels_last(training, device)
        )
        size = params.latency.input_size
        flops = count_flops(backbone, (3, *size), device)
    latency = measure_latency(backbone, params.latency)
    state = {f"net.{k}": v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    out_channels = [backbone.out_channels[i] for i in cfg["out_indices"]]
    card = {
        "arch": arch,
        "backbone": cfg,
        "out_channels": out_channels,
        "stage_channels": list(backbone.out_channels),
        "widths": backbone.widths.to_dict(),
        "stages": len(backbone.stages),
        "params_m": sum(p.numel() for p in backbone.parameters()) / 1e6,
        f"gflops_{size[0]}x{size[1]}": flops / 1e9,
        "latency": latency.as_row(),
        "pretrain": {
            "images": len(train),
            "classes": num_classes,
            "image_size": int(train.images.shape[1]),
            "epochs": training.epochs,
            "val_acc": val_acc,
            "train_s": train_s,
            "device": device_name(device),
        }
        | fit,
    }
    return state, card


def pretrain_once(
    arch: str,
    cfg: dict[str, Any],
    sample_id: str,
    data: Callable[[], tuple[ImageData, ImageData, int]],
    params: ExportParams,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """:func:`pretrain`, durable under ``params.workdir/<digest>`` of everything it depends on
    (architecture, backbone config, the pretraining images' ``sample_id``, the settings).
    The training is checkpointed per epoch; a finished one is read back without loading the
    data (``data()`` gives train, val, number of classes) or building the network."""
    if params.workdir is None:
        return pretrain(arch, cfg, *data(), params)
    folder = Path(params.workdir) / json_digest(
        [arch, cfg, sample_id, params.model_dump(mode="json", exclude={"workdir"})]
    )
    finished = folder / "pretrained.pt"
    done = load_checkpoint(finished)
    if done is not None:
        return done["state"], done["card"]
    folder.mkdir(parents=True, exist_ok=True)
    state, card = pretrain(arch, cfg, *data(), params, checkpoint=folder / "training.pt")
    save_checkpoint(finished, {"state": state, "card": card})  # atomic, fsynced
    return state, card


def card_markdown(card: dict[str, Any]) -> str:
    """The model card as a page a person reads in the MLflow UI."""
    lat, pre = card["latency"], card["pretrain"]
    flops = next(k for k in card if k.startswith("gflops_"))
    rows = [
        ("architecture", f"`{card['arch']}`"),
        (
            "block / stem / width",
            f"{card['backbone']['block']} / {card['backbone']['stem']} / "
            f"×{card['backbone']['channel_scale']}",
        ),
        ("stages", card["stages"]),
        ("out_indices → channels", f"{card['backbone']['out_indices']} → {card['out_channels']}"),
        ("parameters", f"{card['params_m']:.3f} M"),
        (f"FLOPs ({flops.split('_')[1]})", f"{card[flops]:.3f} G"),
        (
            "latency (median, IQR)",
            f"{lat['median_ms']:.2f} ms ± {lat['iqr_ms']:.2f}, input "
            f"{lat['input_shape']}, {lat['threads']} thread(s), {lat['device']}",
        ),
        (
            "pretraining",
            f"{pre['images']} images, {pre['classes']} classes, "
            f"{pre['image_size']} px, {pre['epochs']} epochs on {pre['device']}",
        ),
        ("pretraining val. accuracy", f"{pre['val_acc']:.2f} %"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return (
        f"# Backbone `{BACKBONE_TYPE}`\n\n| | |\n|---|---|\n{table}\n\n"
        "Load it in any mmdet/mmseg config with the snippet `backbone_config.py`.\n"
    )
