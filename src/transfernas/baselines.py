"""The networks a user would pick without a search, width-scaled to a latency.

torchvision's ``resnet18`` and ``mobilenet_v3_small`` (no pretrained weights) with one width
multiplier each: ResNet-18's stage widths 64–512 × ``width`` (torchvision fixes them, so the
stages are rebuilt with its own ``_make_layer``), MobileNetV3's ``width_mult``. With the
``small`` stem (16–32 px inputs, as the searched space's) the first convolution keeps the
resolution and ResNet's max-pool goes, as CIFAR ResNets do; ``imagenet`` keeps torchvision's.

:func:`match_width` doubles the multiplier from ``min_width`` until the network is slower than
a reference network, then bisects (on a log scale) until their measured latencies are equal:
each point is timed against the reference in alternation, several rounds, and the median ratio
decides (batch-1 CPU latencies of small nets drift with the host's load).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn
from torchvision import models
from torchvision.models.resnet import BasicBlock

from transfernas.spaces.resblock import Stem
from transfernas.tasks.latency import LatencyConfig, measure_latency

Baseline = Literal["resnet18", "mobilenet_v3_small"]
BASELINES: tuple[Baseline, ...] = ("resnet18", "mobilenet_v3_small")
RESNET18_WIDTHS = (64, 128, 256, 512)


def _resnet18(width: float, num_classes: int, stem: Stem) -> nn.Module:
    net = models.resnet18(weights=None, num_classes=num_classes)
    planes = [max(1, round(c * width)) for c in RESNET18_WIDTHS]
    if stem == "small":
        net.conv1 = nn.Conv2d(3, planes[0], 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    else:
        net.conv1 = nn.Conv2d(3, planes[0], 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(planes[0])
    net.inplanes = planes[0]
    for i, p in enumerate(planes):
        setattr(net, f"layer{i + 1}", net._make_layer(BasicBlock, p, 2, stride=1 if i == 0 else 2))
    net.fc = nn.Linear(planes[-1], num_classes)
    for m in net.modules():  # torchvision's initialisation of the rebuilt layers
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def _mobilenet_v3_small(width: float, num_classes: int, stem: Stem) -> nn.Module:
    net = models.mobilenet_v3_small(weights=None, num_classes=num_classes, width_mult=width)
    if stem == "small":
        net.features[0][0].stride = (1, 1)
    return net


BUILDERS: dict[str, Callable[[float, int, Stem], nn.Module]] = {
    "resnet18": _resnet18,
    "mobilenet_v3_small": _mobilenet_v3_small,
}


def build_baseline(name: Baseline, width: float, num_classes: int, stem: Stem) -> nn.Module:
    """torchvision's ``name`` at width multiplier ``width`` (randomly initialised)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown baseline {name!r}; allowed: {', '.join(BUILDERS)}")
    return BUILDERS[name](width, num_classes, stem)


class MatchParams(BaseModel):
    """``compare.match``: how a baseline's width multiplier is bisected to a latency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerance: float = Field(0.05, gt=0, lt=1, description="|LAT/LAT_searched − 1| accepted")
    min_width: float = Field(0.05, gt=0, description="the bisection's interval")
    max_width: float = Field(4.0, gt=0)
    max_steps: int = Field(12, ge=1, description="bisection steps at most")
    rounds: int = Field(3, ge=1, description="alternated timings per point (median ratio)")

    @model_validator(mode="after")
    def _interval(self) -> MatchParams:
        if self.min_width >= self.max_width:
            raise ValueError(f"min_width {self.min_width} must be < max_width {self.max_width}")
        return self


def latency_ratio(
    model: nn.Module, reference: nn.Module, latency: LatencyConfig, rounds: int
) -> float:
    """Median over ``rounds`` of LAT(model) / LAT(reference), timed in alternation."""
    ratios = [
        measure_latency(model, latency).median_ms / measure_latency(reference, latency).median_ms
        for _ in range(rounds)
    ]
    return float(np.median(ratios))


def match_width(
    build: Callable[[float], nn.Module],
    reference: nn.Module,
    latency: LatencyConfig,
    config: MatchParams,
) -> dict[str, object]:
    """The width whose network is as fast as ``reference``: doubling, then bisection.

    Returns ``width``, its ``ratio`` (LAT / LAT_reference), ``matched`` (within tolerance) and
    every point timed (``trace``). When even ``min_width`` is slower (or ``max_width`` faster)
    than the reference, that end is returned, unmatched: its layer count alone sets a floor.
    """
    trace: list[tuple[float, float]] = []

    def timed(width: float) -> float:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the weights do not matter to a latency; keep them fixed
            model = build(width)
        trace.append((width, latency_ratio(model, reference, latency, config.rounds)))
        return trace[-1][1]

    lo = hi = config.min_width
    r = timed(lo)
    while r < 1 and hi < config.max_width:  # double until slower: wide nets are slow to time
        lo, hi = hi, min(2 * hi, config.max_width)
        r = timed(hi)
    if r > 1 and lo < hi:
        for _ in range(config.max_steps):
            mid = math.sqrt(lo * hi)
            r = timed(mid)
            if abs(r - 1) <= config.tolerance / 2:
                break
            lo, hi = (mid, hi) if r < 1 else (lo, mid)
    width, ratio = min(trace, key=lambda p: abs(p[1] - 1))
    return {
        "width": width,
        "ratio": ratio,
        "matched": abs(ratio - 1) <= config.tolerance,
        "trace": [{"width": w, "ratio": r} for w, r in trace],
    }
