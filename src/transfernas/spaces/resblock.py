"""Residual-block macro space (CATCH §4.3, after SM-NAS / DetNAS) and the backbone it builds.

Twelve decisions, valid by construction through prefix masks:

====  =====================================================================================
 0    base channel ``C`` ∈ ``base_channels`` (paper: {48, 56, 64, 72})
 1    depth (total blocks) ∈ ``depths`` (paper: {15, 20, 25, 30})
 2    stages ``s`` ∈ {4, 5}
 3–7  blocks in stage 1..5: index = count; a used stage has ≥ 1 block and leaves ≥ 1 for each
      later used stage, the last used stage takes what is left, unused stages take 0
 8–11 which block of stage 2..5 doubles the channels: index = its position in the stage
      (0 for an unused stage)
====  =====================================================================================

Every stage after the first starts with a stride-2 block, and exactly one of its blocks doubles
the channels, so a 4-stage net ends at 8·C planes like ResNet. The CATCH appendix with the exact
encoding is not public; this one follows SM-NAS's strings — ``64_111-2111-1211-12``: base
channel, then one digit per block, ``2`` where the channels double — and is documented in
docs/resblock.md. BasicBlock or Bottleneck is a parameter of the space, not a decision.

The base channels and depths are parameters too: the paper's values are the defaults, and a
wider set (shallower, wider nets such as ResNet-18's 8 blocks) lets a search at a latency target
reach the region where a latency-matched ResNet-18 lies (docs/compare.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field, ValidationInfo, field_validator
from torch import nn

from transfernas.spaces.base import Actions, SearchSpace, SpaceParams

BASE_CHANNELS = (48, 56, 64, 72)
DEPTHS = (15, 20, 25, 30)
STAGES = (4, 5)
MAX_STAGES = max(STAGES)
_STAGE_DECISIONS = range(3, 3 + MAX_STAGES)
_DOUBLE_DECISIONS = range(3 + MAX_STAGES, 3 + MAX_STAGES + MAX_STAGES - 1)
_ARCH = re.compile(r"^(\d+)_([12]+(?:-[12]+)*)$")

Block = Literal["basic", "bottleneck"]
Stem = Literal["small", "imagenet"]


@dataclass(frozen=True)
class ResArch:
    """A decoded architecture: base channel, blocks per stage, doubling position per stage ≥ 2."""

    base_channel: int
    blocks: tuple[int, ...]
    doubling: tuple[int, ...]  # one per stage after the first

    def __str__(self) -> str:
        stages = ["1" * self.blocks[0]]
        for n, pos in zip(self.blocks[1:], self.doubling, strict=True):
            stages.append("".join("2" if i == pos else "1" for i in range(n)))
        return f"{self.base_channel}_" + "-".join(stages)

    @classmethod
    def parse(cls, text: str) -> ResArch:
        m = _ARCH.match(text.strip())
        if m is None:
            raise ValueError(f"not a residual-block arch (e.g. '64_111-2111-1211-12'): {text!r}")
        stages = m.group(2).split("-")
        if "2" in stages[0] or any(s.count("2") != 1 for s in stages[1:]):
            raise ValueError(f"{text!r}: stage 1 has no '2'; every later stage has exactly one")
        doubling = tuple(s.index("2") for s in stages[1:])
        return cls(int(m.group(1)), tuple(map(len, stages)), doubling)


class ResBlockSpace(SearchSpace):
    """The decisions above; ``build`` turns an action sequence into a torch classifier."""

    name = "resblock"

    def __init__(
        self,
        block: Block = "basic",
        stem: Stem = "imagenet",
        channel_scale: float = 1.0,
        base_channels: Sequence[int] = BASE_CHANNELS,
        depths: Sequence[int] = DEPTHS,
    ) -> None:
        if block not in ("basic", "bottleneck") or stem not in ("small", "imagenet"):
            raise ValueError(f"block: basic|bottleneck, stem: small|imagenet; got {block}, {stem}")
        if not 0 < channel_scale <= 4:
            raise ValueError(f"channel_scale must be in (0, 4], got {channel_scale}")
        self.base_channels = _choice_values("base_channels", base_channels, 1)
        self.depths = _choice_values("depths", depths, MAX_STAGES)
        self.block, self.stem, self.channel_scale = block, stem, channel_scale
        # the most blocks one stage can hold: every other used stage keeps one
        self.max_per_stage = max(self.depths) - (min(STAGES) - 1)

    @property
    def choices(self) -> tuple[int, ...]:
        stage = (self.max_per_stage + 1,) * MAX_STAGES
        return (len(self.base_channels), len(self.depths), len(STAGES), *stage, *stage[1:])

    def mask(self, prefix: Sequence[int]) -> np.ndarray:
        i = len(prefix)
        mask = np.zeros(self.choices[i], dtype=bool)
        if i < 3:
            mask[:] = True
        elif i in _STAGE_DECISIONS:
            j, s = i - 3, STAGES[prefix[2]]
            left = self.depths[prefix[1]] - sum(prefix[3:i])
            if j >= s:
                mask[0] = True
            elif j == s - 1:
                mask[left] = True
            else:
                mask[1 : left - (s - 1 - j) + 1] = True
        else:
            n = prefix[3 + i - _DOUBLE_DECISIONS.start + 1]  # blocks of the stage it belongs to
            mask[: max(n, 1)] = True
        return mask

    def decode(self, actions: Sequence[int]) -> ResArch:
        if len(actions) != len(self.choices):
            raise ValueError(f"resblock needs {len(self.choices)} actions, got {len(actions)}")
        s = STAGES[actions[2]]
        blocks = tuple(int(a) for a in actions[3 : 3 + s])
        doubling = tuple(int(a) for a in actions[_DOUBLE_DECISIONS.start :][: s - 1])
        return ResArch(self.base_channels[actions[0]], blocks, doubling)

    def encode(self, arch: ResArch | str) -> Actions:
        arch = ResArch.parse(arch) if isinstance(arch, str) else arch
        depth, s = sum(arch.blocks), len(arch.blocks)
        if (
            arch.base_channel not in self.base_channels
            or depth not in self.depths
            or s not in STAGES
        ):
            raise ValueError(
                f"{arch}: base channel {self.base_channels}, depth {self.depths}, stages {STAGES} "
                "allowed"
            )
        if any(not 0 <= p < n for p, n in zip(arch.doubling, arch.blocks[1:], strict=True)):
            raise ValueError(f"{arch}: a doubling position lies outside its stage")
        pad = MAX_STAGES - s
        return (
            self.base_channels.index(arch.base_channel),
            self.depths.index(depth),
            STAGES.index(s),
            *arch.blocks,
            *(0,) * pad,
            *arch.doubling,
            *(0,) * pad,
        )

    def key(self, actions: Sequence[int]) -> str:
        return str(self.decode(actions))

    def build(self, actions: Sequence[int], num_classes: int) -> nn.Module:
        """Backbone + global-average-pool + linear head (the classification network)."""
        backbone = ResNetBackbone(
            self.decode(actions), self.block, self.stem, channel_scale=self.channel_scale
        )
        return Classifier(backbone, backbone.out_channels[-1], num_classes)


class ResBlockSpaceParams(SpaceParams):
    name: Literal["resblock"] = "resblock"
    block: Literal["basic", "bottleneck"] = "basic"
    stem: Literal["small", "imagenet"] = Field("small", description="small: 16–32 px inputs")
    channel_scale: float = Field(1.0, gt=0, le=4, description="width multiplier (1 = paper)")
    base_channels: list[int] = Field(
        default_factory=lambda: list(BASE_CHANNELS),
        min_length=1,
        description="choices of the base channel (paper: 48, 56, 64, 72), distinct, ascending",
    )
    depths: list[int] = Field(
        default_factory=lambda: list(DEPTHS),
        min_length=1,
        description=f"choices of the total block count (paper: 15, 20, 25, 30), ≥ {MAX_STAGES}",
    )

    @field_validator("base_channels", "depths")
    @classmethod
    def _ascending(cls, values: list[int], info: ValidationInfo) -> list[int]:
        low = 1 if info.field_name == "base_channels" else MAX_STAGES
        return list(_choice_values(str(info.field_name), values, low))

    def build(self) -> ResBlockSpace:
        return ResBlockSpace(
            self.block, self.stem, self.channel_scale, self.base_channels, self.depths
        )


def _choice_values(name: str, values: Sequence[int], low: int) -> tuple[int, ...]:
    """A decision's values: distinct, ascending integers ≥ ``low`` (a 5-stage net needs
    ≥ 5 blocks)."""
    values = tuple(int(v) for v in values)
    if not values or list(values) != sorted(set(values)) or values[0] < low:
        raise ValueError(f"{name}: distinct ascending integers ≥ {low}, got {list(values)}")
    return values


# ---- torch modules ---------------------------------------------------------------------------


NormLayer = Callable[[int], nn.Module]
INNER_CONVS = {"basic": 1, "bottleneck": 2}  # convs before a block's last one
EXPANSION = {"basic": 1, "bottleneck": 4}


@dataclass(frozen=True)
class Widths:
    """Every channel count of a :class:`ResNetBackbone`, for nets resized by MorphNet.

    ``groups``: one width per residual group — the stem's output and every block output that
    an identity shortcut adds to it share one width (a projection shortcut starts a new group);
    ``inner``: per block, the widths of its convs before the last (basic 1, bottleneck 2).
    """

    groups: tuple[int, ...]
    inner: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if any(w < 1 for w in self.groups) or any(w < 1 for ws in self.inner for w in ws):
            raise ValueError(f"every width must be ≥ 1: {self}")

    def scaled(self, factor: float) -> Widths:
        """Every width × ``factor``, rounded, at least 1 (MorphNet's uniform expansion)."""

        def scale(w: int) -> int:
            return max(1, round(w * factor))

        return Widths(
            tuple(map(scale, self.groups)), tuple(tuple(map(scale, ws)) for ws in self.inner)
        )

    def to_dict(self) -> dict[str, list]:
        return {"groups": list(self.groups), "inner": [list(ws) for ws in self.inner]}

    @classmethod
    def from_dict(cls, widths: dict[str, Sequence]) -> Widths:
        return cls(tuple(widths["groups"]), tuple(tuple(ws) for ws in widths["inner"]))


def block_layout(arch: ResArch, block: Block) -> list[tuple[int, int, bool]]:
    """Per block: (stride, residual group of its output, projection shortcut?); group 0 is
    the stem's output. Which blocks project follows from the arch, never from the widths."""
    planes, c_in, group = 1, 1, 0
    layout = []
    for j, n in enumerate(arch.blocks):
        for b in range(n):
            if j > 0 and b == arch.doubling[j - 1]:
                planes *= 2
            stride = 2 if j > 0 and b == 0 else 1
            c_out = planes * EXPANSION[block]
            projection = stride != 1 or c_in != c_out
            group += projection
            layout.append((stride, group, projection))
            c_in = c_out
    return layout


def default_widths(arch: ResArch, block: Block, channel_scale: float = 1.0) -> Widths:
    """The widths of the plain architecture: ResNet's planes, doubled where the arch says."""
    planes = max(8, round(arch.base_channel * channel_scale))
    groups, inner = [planes], []
    for j, n in enumerate(arch.blocks):
        for b in range(n):
            if j > 0 and b == arch.doubling[j - 1]:
                planes *= 2
            inner.append((planes,) * INNER_CONVS[block])
            c_out = planes * EXPANSION[block]
            if c_out != groups[-1] or (j > 0 and b == 0):
                groups.append(c_out)
    return Widths(tuple(groups), tuple(inner))


def _conv_bn(
    c_in: int, c_out: int, k: int, stride: int = 1, norm: NormLayer = nn.BatchNorm2d
) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), norm(c_out)]


class BasicBlock(nn.Module):
    """Two 3×3 convs; ``inner`` is the width between them."""

    def __init__(
        self,
        c_in: int,
        inner: Sequence[int],
        c_out: int,
        stride: int,
        projection: bool,
        norm: NormLayer,
    ) -> None:
        super().__init__()
        (mid,) = inner
        self.body = nn.Sequential(
            *_conv_bn(c_in, mid, 3, stride, norm),
            nn.ReLU(inplace=True),
            *_conv_bn(mid, c_out, 3, 1, norm),
        )
        self.shortcut = _shortcut(c_in, c_out, stride, projection, norm)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class Bottleneck(BasicBlock):
    """1×1 → 3×3 (stride) → 1×1; ``inner`` are the widths of the first two."""

    def __init__(
        self,
        c_in: int,
        inner: Sequence[int],
        c_out: int,
        stride: int,
        projection: bool,
        norm: NormLayer,
    ) -> None:
        nn.Module.__init__(self)
        reduce, mid = inner
        self.body = nn.Sequential(
            *_conv_bn(c_in, reduce, 1, 1, norm),
            nn.ReLU(inplace=True),
            *_conv_bn(reduce, mid, 3, stride, norm),
            nn.ReLU(inplace=True),
            *_conv_bn(mid, c_out, 1, 1, norm),
        )
        self.shortcut = _shortcut(c_in, c_out, stride, projection, norm)
        self.act = nn.ReLU(inplace=True)


def _shortcut(c_in: int, c_out: int, stride: int, projection: bool, norm: NormLayer) -> nn.Module:
    if not projection:
        if c_in != c_out:
            raise ValueError(f"an identity shortcut joins equal widths, got {c_in} → {c_out}")
        return nn.Identity()
    return nn.Sequential(*_conv_bn(c_in, c_out, 1, stride, norm))


class ResNetBackbone(nn.Module):
    """ResNet-style backbone of a :class:`ResArch`; returns the features of ``out_indices``.

    ``stem='imagenet'`` is ResNet's 7×7/2 conv + 3×3/2 max-pool (224 px and detection inputs);
    ``'small'`` a 3×3/1 conv for 16–32 px sub-datasets. ``channel_scale`` shrinks every width
    (CPU smoke runs; 1.0 is the paper's space); ``widths`` sets every width instead (MorphNet).
    ``norm`` makes the normalisation layers (OpenMMLab's ``norm_cfg`` passes SyncBN or GN here).
    """

    def __init__(
        self,
        arch: ResArch,
        block: Block = "basic",
        stem: Stem = "imagenet",
        out_indices: Sequence[int] | None = None,
        channel_scale: float = 1.0,
        in_channels: int = 3,
        norm: NormLayer = nn.BatchNorm2d,
        widths: Widths | None = None,
    ) -> None:
        super().__init__()
        unit = BasicBlock if block == "basic" else Bottleneck
        layout = block_layout(arch, block)
        widths = widths if widths is not None else default_widths(arch, block, channel_scale)
        if len(widths.groups) != layout[-1][1] + 1 or len(widths.inner) != len(layout):
            raise ValueError(
                f"{arch} ({block}) has {layout[-1][1] + 1} residual groups and {len(layout)} "
                f"blocks; widths give {len(widths.groups)} and {len(widths.inner)}"
            )
        if any(len(ws) != INNER_CONVS[block] for ws in widths.inner):
            raise ValueError(f"a {block} block has {INNER_CONVS[block]} inner width(s)")
        c_in = widths.groups[0]
        if stem == "imagenet":
            self.stem = nn.Sequential(
                *_conv_bn(in_channels, c_in, 7, 2, norm),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        else:
            self.stem = nn.Sequential(
                *_conv_bn(in_channels, c_in, 3, 1, norm), nn.ReLU(inplace=True)
            )
        stages, out_channels = [], []
        blocks = iter(zip(layout, widths.inner, strict=True))
        for n in arch.blocks:
            layers = []
            for (stride, group, projection), inner in (next(blocks) for _ in range(n)):
                c_out = widths.groups[group]
                layers.append(unit(c_in, inner, c_out, stride, projection, norm))
                c_in = c_out
            stages.append(nn.Sequential(*layers))
            out_channels.append(c_in)
        self.stages = nn.ModuleList(stages)
        n_stages = len(stages)
        self.out_indices = tuple(range(n_stages) if out_indices is None else out_indices)
        if not self.out_indices or any(not 0 <= i < n_stages for i in self.out_indices):
            raise ValueError(f"out_indices {self.out_indices} must lie in 0..{n_stages - 1}")
        self.out_channels = tuple(out_channels[i] for i in self.out_indices)
        self.arch, self.block, self.stem_kind, self.widths = arch, block, stem, widths
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if isinstance(m, BasicBlock):  # zero-init the residual branch: deep nets train
                nn.init.zeros_(m.body[-1].weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class Classifier(nn.Module):
    """Backbone (last returned feature map) → global average pool → linear."""

    def __init__(self, backbone: nn.Module, channels: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        last = features[-1] if isinstance(features, tuple) else features
        return self.head(last.mean(dim=(2, 3)))
