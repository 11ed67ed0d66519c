"""Trained reward: train a candidate network on a sub-dataset, reward its validation accuracy.

Defaults follow NB201's schedule (SGD, Nesterov, lr 0.1 cosine, weight decay 5e-4, batch 256;
12 epochs is CATCH's proxy). The input path has no per-sample Python: a sub-dataset's uint8
images live in memory as one ``(N, H, W, 3)`` tensor (on the training device), and a batch's
random crop and flip are one gather on uint8, followed by one float conversion and
normalisation (channels_last on CUDA). Every evaluation is seeded by the task seed and the
architecture, so an architecture gets the same accuracy whichever process trains it and in
whichever order (deterministic on CPU at a fixed thread count).

With a latency target the reward is R = P·(LAT/T)^w (CATCH §4.3.1); latency is measured on the
configured device and input size (on the network as built: weights do not change its cost) and
recorded with every evaluation. With an evaluation cache (``transfernas.evalcache``) both the
training result and the latency are looked up first and stored after: a rerun gets the same
latency, hence the same reward.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from transfernas.digest import json_digest
from transfernas.evalcache import EvaluationCache, device_fingerprint
from transfernas.spaces.base import SearchSpace
from transfernas.tasks.base import Evaluation
from transfernas.tasks.latency import LatencyConfig, measure_latency, torch_threads
from transfernas.tasks.reward import PAPER_W, latency_reward

# ImageNet statistics: every sub-dataset is drawn from ImageNet
MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


class TrainingConfig(BaseModel):
    """How a candidate is trained (the ``training`` block of the parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(12, ge=1, description="CATCH's proxy: 12 epochs")
    batch_size: int = Field(256, ge=1)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    crop_padding: int = Field(2, ge=0, description="random-crop padding (px); 0 = no crop")
    flip: bool = True
    device: str = Field("cpu", description="cpu | cuda | cuda:N")
    threads: int = Field(1, ge=1, description="CPU threads per evaluation (fix it: determinism)")
    channels_last: bool | None = Field(
        None, description="null = on CUDA only (measured slower for these nets on CPU)"
    )
    eval_batch_size: int = Field(1024, ge=1)


class RewardConfig(BaseModel):
    """R = P·(LAT/T)^w; without ``target_ms`` the reward is the accuracy P alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_ms: float | None = Field(None, gt=0, description="T: latency target (ms)")
    w: float = Field(PAPER_W, le=0, description="latency exponent (CATCH: -0.05)")
    measure_latency: bool = Field(True, description="time every candidate (needed for target)")


@dataclass(frozen=True)
class ImageData:
    """A labelled split held as tensors: images ``(N, H, W, 3)`` uint8, labels int64."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray) -> ImageData:
        images = np.array(images, dtype=np.uint8)  # a private in-memory copy (not the memmap)
        if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels):
            raise ValueError(f"need (N, H, W, 3) images and N labels, got {images.shape}")
        return cls(torch.from_numpy(images), torch.from_numpy(np.asarray(labels, dtype=np.int64)))

    def to(self, device: torch.device) -> ImageData:
        return ImageData(self.images.to(device), self.labels.to(device))

    def __len__(self) -> int:
        return len(self.labels)

    def digest(self) -> str:
        """sha256 of the pixels and labels: what a cached training result was trained on."""
        h = hashlib.sha256()
        for t in (self.images, self.labels):
            h.update(str((tuple(t.shape), t.dtype)).encode())
            h.update(t.cpu().contiguous().numpy().tobytes())
        return h.hexdigest()


def seed_for(*parts: object) -> int:
    """A 63-bit seed from anything printable: stable across processes and Python runs."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


def augment_batch(
    images: torch.Tensor, padding: int, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Random crop (zero padding) and horizontal flip of a uint8 NHWC batch: one gather.

    Every output pixel's position in the padded batch is computed at once, and the pixels
    (3 bytes each) are picked with one ``index_select`` — 5× faster on CPU than 3-tensor
    advanced indexing.
    """
    b, h, w, c = images.shape
    device = images.device
    if padding:
        images = F.pad(images, (0, 0, padding, padding, padding, padding))
    hp, wp = h + 2 * padding, w + 2 * padding
    oy = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator).to(device)
    ox = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator).to(device)
    cols = torch.arange(w, device=device).expand(b, w)
    if flip:
        flipped = (torch.rand(b, 1, generator=generator) < 0.5).to(device)
        cols = torch.where(flipped, w - 1 - cols, cols)
    rows = oy + torch.arange(h, device=device)
    cols = ox + cols
    sample = torch.arange(b, device=device)[:, None, None] * (hp * wp)
    flat = (sample + rows[:, :, None] * wp + cols[:, None, :]).reshape(-1)
    return images.reshape(-1, c).index_select(0, flat).reshape(b, h, w, c)


def to_input(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 NHWC → normalised float NCHW (channels_last memory when asked).

    The layout change, when needed, is done on uint8 (a quarter of the bytes of float32).
    """
    mean = torch.tensor(MEAN, device=images.device)[:, None, None]
    std = torch.tensor(STD, device=images.device)[:, None, None]
    x = images.permute(0, 3, 1, 2)  # NHWC memory is channels_last already
    if not channels_last:
        x = x.contiguous()
    return x.float().sub_(mean).div_(std)


def use_channels_last(config: TrainingConfig, device: torch.device) -> bool:
    if config.channels_last is None:
        return device.type == "cuda"
    return config.channels_last


def train_model(
    model: nn.Module,
    train: ImageData,
    config: TrainingConfig,
    generator: torch.Generator,
    penalty: Callable[[], torch.Tensor] | None = None,
    checkpoint: Path | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """SGD (Nesterov) with a per-step cosine schedule; returns the last epoch's loss/accuracy.

    ``penalty()`` is added to every step's loss (MorphNet's regulariser). ``checkpoint``: the
    model, optimiser, schedule and data generator are saved there after every epoch and a
    rerun continues from the last one (a ``kill -9`` loses at most the epoch in progress and
    gives the same result as an uninterrupted run). ``on_epoch(epoch, metrics)`` runs after
    each epoch, before its checkpoint.
    """
    device = train.images.device
    channels_last = use_channels_last(config, device)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory).train()
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * steps_per_epoch
    )
    first, last = 0, {"train_loss": float("nan"), "train_acc": float("nan")}
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        first, last = state["epoch"] + 1, state["metrics"]
    for epoch in range(first, config.epochs):
        order = torch.randperm(len(train), generator=generator).to(device)
        loss_sum = correct = seen = 0.0
        for start in range(0, len(train), config.batch_size):
            idx = order[start : start + config.batch_size]
            images = augment_batch(train.images[idx], config.crop_padding, config.flip, generator)
            x, y = to_input(images, channels_last), train.labels[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            if penalty is not None:
                loss = loss + penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += float((logits.detach().argmax(1) == y).sum())
            seen += len(idx)
        last = {"train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen}
        if on_epoch is not None:
            on_epoch(epoch, last)
        if checkpoint is not None:
            state = {
                "epoch": epoch,
                "metrics": last,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "generator": generator.get_state(),
            }
            torch.save(state, checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)  # atomic: never half written
    return last


@torch.inference_mode()
def accuracy(model: nn.Module, data: ImageData, batch_size: int, channels_last: bool) -> float:
    """Top-1 accuracy (percent) in eval mode, batched."""
    model.eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        x = to_input(data.images[start : start + batch_size], channels_last)
        correct += int((model(x).argmax(1) == data.labels[start : start + batch_size]).sum())
    return 100.0 * correct / len(data)


def count_flops(model: nn.Module, input_shape: Sequence[int], device: torch.device) -> float:
    """Forward FLOPs (multiply-add = 2) of one input of ``input_shape`` (C, H, W)."""
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, *input_shape, device=device))
    return float(counter.get_total_flops())


class TrainedTask:
    """Evaluate = build the candidate, train it on ``train``, measure accuracy on ``val``."""

    def __init__(
        self,
        name: str,
        space: SearchSpace,
        train: ImageData,
        val: ImageData,
        num_classes: int,
        training: TrainingConfig | None = None,
        reward: RewardConfig | None = None,
        latency: LatencyConfig | None = None,
        seed: int = 0,
        cache: EvaluationCache | None = None,
    ) -> None:
        training = training if training is not None else TrainingConfig()
        reward = reward if reward is not None else RewardConfig()
        latency = latency if latency is not None else LatencyConfig()
        if reward.target_ms is not None and not reward.measure_latency:
            raise ValueError("reward.target_ms needs reward.measure_latency: true")
        self.name, self.space, self.num_classes = name, space, num_classes
        self.train, self.val = train, val
        self.training, self.reward, self.latency = training, reward, latency
        self.seed, self.cache = seed, cache

    @cached_property
    def data_digest(self) -> str:
        return json_digest([self.train.digest(), self.val.digest()])

    def _build(self, actions: Sequence[int], key: object) -> nn.Module:
        """The candidate with its seeded initialisation (the same in every process)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_for(self.seed, self.name, key, "init"))
            return self.space.build(actions, self.num_classes)

    def _cached(
        self, kind: str, parts: list[object], compute: Callable[[], dict], cached: dict
    ) -> dict:
        """``compute()``, or its stored value when the cache has ``parts``' key."""
        if self.cache is None:
            return compute()
        key = self.cache.key(*parts)
        value = self.cache.get(kind, key)
        cached[kind] = value is not None
        return value if value is not None else self.cache.put(kind, key, compute())

    def evaluate(self, actions: Sequence[int]) -> Evaluation:
        key = self.space.key(actions)
        model = self._build(actions, key)
        # the network as built (every layer's shape) identifies it beyond the space's encoding
        arch = [self.space.name, str(key), json_digest([str(model)], length=32), self.num_classes]
        device = torch.device(self.training.device)
        cached: dict[str, bool] = {}
        fit = self._cached(
            "trained",
            [arch, self.name, self.data_digest, self.training.model_dump(), self.seed,
             device_fingerprint(device)],
            lambda: self._train(model, key, device),
            cached,
        )  # fmt: skip
        metrics, cost_s = dict(fit["metrics"]), fit["cost_s"]
        reward = metrics["val_acc"]
        if self.reward.measure_latency:
            lat = self._cached(
                "latency",
                [arch, self.latency.model_dump(), device_fingerprint(self.latency.device)],
                lambda: self._time(actions, key),
                cached,
            )
            metrics |= {k: lat[k] for k in ("latency_ms", "latency_iqr_ms", "latency_cv")}
            cost_s += lat["cost_s"]
            if self.reward.target_ms is not None:
                reward = float(
                    latency_reward(reward, lat["latency_ms"], self.reward.target_ms, self.reward.w)
                )
        return Evaluation(reward, metrics, cost_s, cached)

    def _train(self, model: nn.Module, key: object, device: torch.device) -> dict:
        """Train ``model`` (seeded data order); its metrics and what that cost."""
        start = time.perf_counter()
        with torch_threads(self.training.threads), torch.random.fork_rng(devices=[]):
            generator = torch.Generator().manual_seed(seed_for(self.seed, self.name, key, "data"))
            train, val = self.train.to(device), self.val.to(device)
            params = sum(p.numel() for p in model.parameters())
            t0 = time.perf_counter()
            fit = train_model(model, train, self.training, generator)
            train_s = time.perf_counter() - t0
            val_acc = accuracy(
                model, val, self.training.eval_batch_size, use_channels_last(self.training, device)
            )
            flops = count_flops(model, (3, *train.images.shape[1:3]), device)
        metrics = fit | {
            "val_acc": val_acc,
            "params_m": params / 1e6,
            "mflops": flops / 1e6,
            "train_s": train_s,
            "train_images_per_s": self.training.epochs * len(train) / train_s,
        }
        return {"metrics": metrics, "cost_s": time.perf_counter() - start}

    def _time(self, actions: Sequence[int], key: object) -> dict:
        """Latency of the freshly built network (timing is independent of the weights)."""
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):  # the random input draws from the global RNG
            lat = measure_latency(self._build(actions, key), self.latency)
        return lat.as_metrics() | {"cost_s": time.perf_counter() - start}
