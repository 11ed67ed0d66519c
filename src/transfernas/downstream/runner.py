"""What every downstream kind shares: an mmengine Runner schedule, training, latency.

Both retrain the exported backbone inside an OpenMMLab model with mmengine's ``Runner`` (the
toolboxes' own datasets, transforms, losses and metrics — mAP and mIoU are theirs, not ours).
The schedule is iteration-based, checkpoints every ``checkpoint_interval`` iterations and
resumes from the work dir's newest complete checkpoint after a crash or a kill, to the bit
(``resume.py``). Runner checkpoints are loaded with torch's ``weights_only`` unpickler; the few
mmengine types they hold are allow-listed for that load only (DESIGN § Dependencies), never a
global switch.
"""

from __future__ import annotations

import json
import logging
import re
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from transfernas.downstream.backbone import IMPORTS
from transfernas.locks import owned
from transfernas.tasks.latency import Latency, LatencyConfig, measure_latency
from transfernas.tasks.reward import PAPER_W

# ImageNet statistics in 0–255 RGB, as every mmdet/mmseg ImageNet-pretrained backbone uses
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


class ScheduleConfig(BaseModel):
    """A short iteration-based schedule: SGD, linear warm-up, cosine decay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_iters: int = Field(40, ge=1)
    batch_size: int = Field(4, ge=1)
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_iters: int = Field(10, ge=0)
    grad_clip: float | None = Field(35.0, gt=0, description="max grad norm; null = none")
    checkpoint_interval: int = Field(20, ge=1, description="iterations between checkpoints")
    num_workers: int = Field(0, ge=0, description="data-loading processes")
    log_interval: int = Field(5, ge=1)
    seed: int = Field(0, ge=0)
    resume: bool = Field(True, description="continue from the work dir's last checkpoint")


class LatencySizes(BaseModel):
    """Latency of the whole network at the paper's input and at the configured one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sizes: tuple[tuple[int, int], ...] = Field(..., min_length=1, description="(H, W) each")
    warmup: int = Field(1, ge=0)
    repeats: int = Field(5, ge=3)
    threads: int = Field(1, ge=1)
    device: str = "cpu"


class DownstreamSearchParams(BaseModel):
    """The short schedule and reward of one candidate (the ``search`` block of the
    ``detection`` / ``segmentation`` parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: ScheduleConfig = Field(
        default_factory=lambda: ScheduleConfig(max_iters=8, checkpoint_interval=8, resume=False)
    )
    target_ms: float | None = Field(None, gt=0, description="T (ms); null = score alone")
    w: float = Field(PAPER_W, le=0)
    latency_size: tuple[int, int] = Field((128, 128), description="(H, W) timed input")
    latency_repeats: int = Field(3, ge=3)
    threads: int = Field(1, ge=1)


class DownstreamParams(BaseModel):
    """What the ``detection`` and ``segmentation`` blocks share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    search: DownstreamSearchParams = Field(
        default_factory=DownstreamSearchParams, description="adapt/search with this task"
    )
    work_dir: str = Field(..., description="Runner work dirs (checkpoints, logs) go below")


# each toolbox's visualizer: it keeps the per-iteration scalars (no drawing hook: nothing is drawn)
VISUALIZER = {"mmdet": "DetLocalVisualizer", "mmseg": "SegLocalVisualizer"}
# mmengine messages about its own internals, logged on every run whatever the config
MMENGINE_NOISE = (
    '"FileClient" will be deprecated',  # CheckpointHook builds one until mmengine 1.0
    '"HardDiskBackend" is the alias',  # ... and FileClient names its local backend so
    "The prefix is not set in metric class IoUMetric",  # a prefix would rename segmentation.mIoU
)


def _drop_mmengine_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(MMENGINE_NOISE)


def runner_cfg(scope: str, work_dir: Path, schedule: ScheduleConfig) -> dict[str, Any]:
    """Everything of a Runner config but the model, data and evaluator."""
    visualizer = VISUALIZER[scope]
    warmup = min(schedule.warmup_iters, schedule.max_iters - 1)
    schedulers: list[dict[str, Any]] = [
        {
            "type": "CosineAnnealingLR",
            "by_epoch": False,
            "begin": warmup,
            "end": schedule.max_iters,
            "T_max": schedule.max_iters - warmup,
            "eta_min": 0.0,
        }
    ]
    if warmup:
        schedulers.insert(
            0,
            {
                "type": "LinearLR",
                "start_factor": 0.001,
                "by_epoch": False,
                "begin": 0,
                "end": warmup,
            },
        )
    optim: dict[str, Any] = {
        "type": "OptimWrapper",
        "optimizer": {
            "type": "SGD",
            "lr": schedule.lr,
            "momentum": schedule.momentum,
            "weight_decay": schedule.weight_decay,
        },
    }
    if schedule.grad_clip is not None:
        optim["clip_grad"] = {"max_norm": schedule.grad_clip, "norm_type": 2}
    return {
        "default_scope": scope,
        "custom_imports": {"imports": IMPORTS, "allow_failed_imports": False},
        "work_dir": str(work_dir),
        "train_cfg": {
            "type": "IterBasedTrainLoop",
            "max_iters": schedule.max_iters,
            # validate once, after training (train_and_evaluate), also when a resumed run has
            # nothing left to train
            "val_begin": schedule.max_iters + 1,
            "val_interval": schedule.max_iters,
        },
        "val_cfg": {"type": "ValLoop"},
        "optim_wrapper": optim,
        "param_scheduler": schedulers,
        "default_hooks": {
            "timer": {"type": "IterTimerHook"},
            "logger": {"type": "LoggerHook", "interval": schedule.log_interval},
            "param_scheduler": {"type": "ParamSchedulerHook"},
            "checkpoint": {
                "type": "CheckpointHook",
                "interval": schedule.checkpoint_interval,
                "by_epoch": False,
                "max_keep_ckpts": 2,  # the previous one stays while the next is written
            },
            "sampler_seed": {"type": "DistSamplerSeedHook"},
        },
        "env_cfg": {
            "cudnn_benchmark": False,
            "mp_cfg": {"mp_start_method": "fork", "opencv_num_threads": 0},
            "dist_cfg": {"backend": "nccl"},
        },
        "vis_backends": [{"type": "LocalVisBackend"}],
        "visualizer": {
            "type": visualizer,
            "vis_backends": [{"type": "LocalVisBackend"}],
            "name": "visualizer",
        },
        "log_processor": {
            "type": "LogProcessor",
            "window_size": schedule.log_interval,
            "by_epoch": False,
        },
        "log_level": "INFO",
        "load_from": None,
        "resume": schedule.resume,
        "randomness": {"seed": schedule.seed, "deterministic": False},
    }


def loader(
    dataset: dict[str, Any], batch_size: int, num_workers: int, train: bool
) -> dict[str, Any]:
    sampler = {"type": "InfiniteSampler" if train else "DefaultSampler", "shuffle": train}
    return {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "persistent_workers": num_workers > 0,
        "sampler": sampler,
        "dataset": dataset,
    }


@contextmanager
def trusted_runner_checkpoints() -> Iterator[None]:
    """Allow-list, for loads inside this block only, the globals mmengine's own Runner
    checkpoints hold: numpy arrays, dtypes and scalars of the message hub, its
    ``HistoryBuffer``s, and ``getattr`` (a HistoryBuffer pickles its bound ``min``/``max``/
    ``mean`` statistics that way). Found with
    ``torch.serialization.get_unsafe_globals_in_checkpoint``."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    from numpy._core.multiarray import _reconstruct, scalar

    dtypes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    safe = [HistoryBuffer, np.ndarray, np.dtype, *dtypes, scalar, _reconstruct, getattr]
    with torch.serialization.safe_globals(safe):
        yield


def resume_point(work_dir: Path) -> Path | None:
    """The newest checkpoint in ``work_dir`` written to its end, None if there is none.

    Not mmengine's ``last_checkpoint``: a kill can stop mmengine after it deleted the previous
    checkpoint and before it named the new one there (every rerun then fails on a missing file;
    found by tests/test_chaos.py), or in the middle of writing one. A checkpoint is a zip
    file whose directory is written last, so a cut one does not open.
    """

    def step(path: Path) -> int:
        match = re.fullmatch(r"iter_(\d+)\.pth", path.name)
        return int(match.group(1)) if match else -1

    saved = [p for p in work_dir.glob("iter_*.pth") if step(p) >= 0]
    for path in sorted(saved, key=step, reverse=True):
        try:
            with zipfile.ZipFile(path):
                return path
        except (zipfile.BadZipFile, OSError):
            continue
    return None


def train_and_evaluate(cfg: dict[str, Any]) -> tuple[dict[str, float], list[dict[str, Any]], Any]:
    """Run the config: train (resuming if asked), then validate once; metrics, log rows, model."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from transfernas.downstream.models import register
    from transfernas.downstream.resume import TorchRandomState

    register()  # a config dict, unlike a config file, does not run its custom_imports
    with owned(cfg["work_dir"]):
        if cfg.get("resume"):
            point = resume_point(Path(cfg["work_dir"]))
            cfg = cfg | ({"load_from": str(point)} if point else {"resume": False})
        runner = Runner.from_cfg(Config(cfg))
        runner.register_hook(TorchRandomState())
        runner.logger.addFilter(_drop_mmengine_noise)
        with trusted_runner_checkpoints():  # train() resumes, val() loads the last checkpoint
            start = time.perf_counter()
            runner.train()
            train_s = time.perf_counter() - start
            metrics = {k: float(v) for k, v in runner.val().items()}
        metrics["train_s"] = train_s
        return metrics, scalar_log(Path(runner.log_dir).parent), runner.model


def scalar_log(work_dir: Path) -> list[dict[str, Any]]:
    """The LocalVisBackend's per-iteration scalars (loss, lr, …) as rows, over every run in
    ``work_dir``: a resumed training logs only its new iterations, in a new timestamped folder,
    named in each row's ``run`` (a row of the same kind logged twice for a step keeps its
    latest version). A last line cut short by a kill is left out."""
    rows: dict[Any, dict[str, Any]] = {}
    for path in sorted(work_dir.glob("*/vis_data/scalars.json")):  # timestamps sort in time
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        for i, line in enumerate(lines):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if i == len(lines) - 1:
                    break
                raise
            rows[(row.get("step", row.get("iter")), tuple(sorted(row)))] = row | {
                "run": path.parts[-3]
            }
    return sorted(rows.values(), key=lambda r: (r["run"], r.get("step", r.get("iter", 0))))


class TensorForward(nn.Module):
    """An OpenMMLab model's network forward (backbone, neck, head) without pre/post-processing."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(x, mode="tensor")


def model_latency(model: nn.Module, sizes: LatencySizes) -> list[Latency]:
    """Batch-1 latency of the network forward at each (H, W) of ``sizes``."""
    wrapped = TensorForward(model)
    return [
        measure_latency(
            wrapped,
            LatencyConfig(
                input_size=size,
                warmup=sizes.warmup,
                repeats=sizes.repeats,
                threads=sizes.threads,
                device=sizes.device,
                channels_last=False,
            ),
        )
        for size in sizes.sizes
    ]


def latency_metrics(latencies: list[Latency]) -> dict[str, float]:
    """``latency_<W>x<H>_ms`` (the papers write sizes width × height), IQR and CV."""
    return {
        k: v
        for lat in latencies
        for k, v in lat.as_metrics(f"latency_{lat.input_shape[3]}x{lat.input_shape[2]}").items()
    }
