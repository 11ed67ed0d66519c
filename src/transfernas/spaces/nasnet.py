"""NASNet cell space (Zoph et al. 2018, as the NAS overview in shared/papers describes it).

A cell takes two hidden states, ``p1`` (the previous cell's output) and ``p2`` (the one before
it), and builds ``B`` blocks. Each block is predicted in five steps — the overview's Steps 1–5:

====  =====================================================================================
 1    first hidden state: ``p1``, ``p2`` or the output of an earlier block ``b0 … b{j-1}``
 2    second hidden state, from the same options (it may equal the first)
 3    an op of :data:`OPS` applied to the first
 4    an op applied to the second
 5    how the two are combined: element-wise ``add`` or ``cat`` (concatenation; here followed
      by a 1×1 ReLU-conv-BN back to the cell's width so every hidden state has one width)
====  =====================================================================================

A normal cell and a reduction cell are searched: decisions ``0 … 5B-1`` are the normal cell,
``5B … 10B-1`` the reduction cell (two decision groups). Hidden-state decisions have ``B + 1``
options; those naming a block not built yet are masked. The network (:class:`NASNetwork`) is
NASNet's CIFAR skeleton: a 3×3 conv stem, ``stages`` stacks of ``N`` normal cells with a
reduction cell between stacks (channels ×2), and, as in NASNet, every block output that no
block of its cell reads is concatenated into the cell output. In a reduction cell the ops
that read ``p1``/``p2`` have stride 2 (identity becomes a factorized reduction).

Genotype string: ``normal: add(sep_conv_3x3 p1, identity p2) cat(...) ... | reduce: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from transfernas.spaces.base import Actions, SearchSpace, SpaceParams

# the NASNet paper's 13 operations (§3 of Zoph et al. 2018), in its order
OPS = (
    "identity",
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "dil_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)
COMBINE = ("add", "cat")
CELLS = ("normal", "reduce")
STEPS = 5  # decisions per block
_BLOCK = re.compile(r"(add|cat)\((\w+) (\w+), (\w+) (\w+)\)")


def state_name(i: int) -> str:
    """Hidden state ``i``: 0 → p1 (previous cell), 1 → p2 (the one before), 2+j → block j."""
    return ("p1", "p2")[i] if i < 2 else f"b{i - 2}"


def state_index(name: str) -> int:
    if name in ("p1", "p2"):
        return ("p1", "p2").index(name)
    if re.fullmatch(r"b\d+", name) is None:
        raise ValueError(f"hidden state {name!r}: p1, p2 or b<j>")
    return int(name[1:]) + 2


@dataclass(frozen=True)
class Block:
    """One block: two hidden states (indices as :func:`state_name`), an op each, a combiner."""

    input1: int
    input2: int
    op1: str
    op2: str
    combine: str

    def __str__(self) -> str:
        a, b = state_name(self.input1), state_name(self.input2)
        return f"{self.combine}({self.op1} {a}, {self.op2} {b})"


@dataclass(frozen=True)
class NASNetArch:
    """A decoded architecture: the blocks of the normal and of the reduction cell."""

    normal: tuple[Block, ...]
    reduce: tuple[Block, ...]

    def __str__(self) -> str:
        return " | ".join(
            f"{name}: " + " ".join(map(str, cell))
            for name, cell in zip(CELLS, (self.normal, self.reduce), strict=True)
        )

    @classmethod
    def parse(cls, text: str) -> NASNetArch:
        parts = [p.strip() for p in text.split("|")]
        cells = []
        for name, part in zip(CELLS, parts, strict=False):
            if len(parts) != 2 or not part.startswith(f"{name}:"):
                raise ValueError(f"not a NASNet genotype ('normal: ... | reduce: ...'): {text!r}")
            body = part[len(name) + 1 :].strip()
            blocks = _BLOCK.findall(body)
            if (
                not blocks
                or " ".join(f"{c}({o1} {a}, {o2} {b})" for c, o1, a, o2, b in blocks) != body
            ):
                raise ValueError(f"{name} cell of {text!r}: blocks are 'add(op state, op state)'")
            cells.append(
                tuple(
                    Block(state_index(a), state_index(b), o1, o2, c) for c, o1, a, o2, b in blocks
                )
            )
        return cls(*cells)


class NASNetSpace(SearchSpace):
    """``blocks`` blocks per cell; ``channels``/``cells``/``stages`` only shape the network."""

    name = "nasnet"

    def __init__(
        self, blocks: int = 5, channels: int = 16, cells: int = 1, stages: int = 3
    ) -> None:
        if blocks < 1 or channels < 1 or cells < 1 or stages < 1:
            raise ValueError(
                f"nasnet blocks, channels, cells, stages must be >= 1, got "
                f"{blocks}, {channels}, {cells}, {stages}"
            )
        self.blocks, self.channels, self.cells, self.stages = blocks, channels, cells, stages

    @property
    def choices(self) -> tuple[int, ...]:
        states = self.blocks + 1  # p1, p2 and every earlier block: at most B + 1 options
        return (states, states, len(OPS), len(OPS), len(COMBINE)) * self.blocks * len(CELLS)

    def mask(self, prefix: Sequence[int]) -> np.ndarray:
        block, step = divmod(len(prefix), STEPS)
        mask = np.zeros(self.choices[len(prefix)], dtype=bool)
        if step < 2:  # hidden states that exist: p1, p2, blocks before this one
            mask[: 2 + block % self.blocks] = True
        else:
            mask[:] = True
        return mask

    @property
    def decision_kinds(self) -> tuple[str, ...]:
        return ("input", "input", "op", "op", "combine") * self.blocks * len(CELLS)

    def decode(self, actions: Sequence[int]) -> NASNetArch:
        if len(actions) != len(self.choices):
            raise ValueError(f"nasnet needs {len(self.choices)} actions, got {len(actions)}")
        rows = np.reshape(np.asarray(actions, dtype=int), (len(CELLS), self.blocks, STEPS))
        cells = [
            tuple(Block(int(a), int(b), OPS[o1], OPS[o2], COMBINE[c]) for a, b, o1, o2, c in cell)
            for cell in rows
        ]
        return NASNetArch(*cells)

    def encode(self, arch: NASNetArch | str) -> Actions:
        arch = NASNetArch.parse(arch) if isinstance(arch, str) else arch
        out: list[int] = []
        for name, cell in zip(CELLS, (arch.normal, arch.reduce), strict=True):
            if len(cell) != self.blocks:
                raise ValueError(
                    f"{arch}: the {name} cell has {len(cell)} blocks, not {self.blocks}"
                )
            for j, b in enumerate(cell):
                if not (0 <= b.input1 < 2 + j and 0 <= b.input2 < 2 + j):
                    raise ValueError(f"{name} block {j} of {arch} reads a state not built yet")
                if b.op1 not in OPS or b.op2 not in OPS or b.combine not in COMBINE:
                    raise ValueError(f"{b}: ops are {OPS}; combine is {COMBINE}")
                out += [b.input1, b.input2, OPS.index(b.op1), OPS.index(b.op2)]
                out.append(COMBINE.index(b.combine))
        return tuple(out)

    def build(self, actions: Sequence[int], num_classes: int) -> nn.Module:
        return NASNetwork(self.decode(actions), num_classes, self.channels, self.cells, self.stages)


class NASNetSpaceParams(SpaceParams):
    name: Literal["nasnet"] = "nasnet"
    blocks: int = Field(5, ge=1, le=8, description="B blocks per cell (NASNet: 5)")
    channels: int = Field(16, ge=1, description="first stage's width (NASNet CIFAR: 32+)")
    cells: int = Field(1, ge=1, description="N normal cells per stage (NASNet CIFAR: 6)")
    stages: int = Field(3, ge=1, description="stacks of N normal cells, reductions between")

    def build(self) -> NASNetSpace:
        return NASNetSpace(self.blocks, self.channels, self.cells, self.stages)


# ---- torch modules ---------------------------------------------------------------------------


def relu_conv_bn(
    c: int,
    c_out: int,
    kernel: tuple[int, int],
    stride: int | tuple[int, int] = 1,
    dilation: int = 1,
) -> list[nn.Module]:
    """ReLU, conv (same padding), BN as a list, so factorized convs can splice two of them."""
    pad = (dilation * (kernel[0] // 2), dilation * (kernel[1] // 2))
    return [
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c_out, kernel, stride, pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class FactorizedReduce(nn.Module):
    """Stride-2 1×1 convs on two offset grids, concatenated (NASNet's stride-2 identity)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.a = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.b = nn.Conv2d(c_in, c_out - c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.a(x), self.b(shifted)], dim=1))


def _sep_conv(c: int, k: int, stride: int) -> nn.Module:
    """NASNet's separable conv: (ReLU, depthwise k×k, pointwise, BN) twice, stride on the first."""
    layers: list[nn.Module] = []
    for s in (stride, 1):
        layers += [
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, s, k // 2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        ]
    return nn.Sequential(*layers)


def _pool(kind: type[nn.Module], k: int) -> Callable[[int, int], nn.Module]:
    if kind is nn.AvgPool2d:
        return lambda c, s: nn.AvgPool2d(k, s, k // 2, count_include_pad=False)
    return lambda c, s: nn.MaxPool2d(k, s, k // 2)


OP_BUILDERS: dict[str, Callable[[int, int], nn.Module]] = {
    "identity": lambda c, s: nn.Identity() if s == 1 else FactorizedReduce(c, c),
    "conv_1x3_3x1": lambda c, s: nn.Sequential(
        *relu_conv_bn(c, c, (1, 3), (1, s))[:2], *relu_conv_bn(c, c, (3, 1), (s, 1))[1:]
    ),
    "conv_1x7_7x1": lambda c, s: nn.Sequential(
        *relu_conv_bn(c, c, (1, 7), (1, s))[:2], *relu_conv_bn(c, c, (7, 1), (s, 1))[1:]
    ),
    "dil_conv_3x3": lambda c, s: nn.Sequential(*relu_conv_bn(c, c, (3, 3), s, dilation=2)),
    "avg_pool_3x3": _pool(nn.AvgPool2d, 3),
    "max_pool_3x3": _pool(nn.MaxPool2d, 3),
    "max_pool_5x5": _pool(nn.MaxPool2d, 5),
    "max_pool_7x7": _pool(nn.MaxPool2d, 7),
    "conv_1x1": lambda c, s: nn.Sequential(*relu_conv_bn(c, c, (1, 1), s)),
    "conv_3x3": lambda c, s: nn.Sequential(*relu_conv_bn(c, c, (3, 3), s)),
    "sep_conv_3x3": lambda c, s: _sep_conv(c, 3, s),
    "sep_conv_5x5": lambda c, s: _sep_conv(c, 5, s),
    "sep_conv_7x7": lambda c, s: _sep_conv(c, 7, s),
}


class Cell(nn.Module):
    """One normal or reduction cell over inputs of ``c_p2``/``c_p1`` channels; ``c_p2_big``:
    ``p2`` has twice the resolution of ``p1`` (the previous cell reduced), so it is reduced."""

    def __init__(
        self,
        blocks: Sequence[Block],
        c_p2: int,
        c_p1: int,
        c: int,
        reduction: bool,
        c_p2_big: bool,
    ) -> None:
        super().__init__()
        self.blocks = tuple(blocks)
        self.pre2 = (
            FactorizedReduce(c_p2, c) if c_p2_big else nn.Sequential(*relu_conv_bn(c_p2, c, (1, 1)))
        )
        self.pre1 = nn.Sequential(*relu_conv_bn(c_p1, c, (1, 1)))
        self.ops = nn.ModuleList()
        self.merges = nn.ModuleList()
        for b in self.blocks:
            for state, op in ((b.input1, b.op1), (b.input2, b.op2)):
                self.ops.append(OP_BUILDERS[op](c, 2 if reduction and state < 2 else 1))
            cat = b.combine == "cat"
            self.merges.append(
                nn.Sequential(*relu_conv_bn(2 * c, c, (1, 1))) if cat else nn.Identity()
            )
        read = {i for b in self.blocks for i in (b.input1, b.input2)}
        self.outputs = [2 + j for j in range(len(self.blocks)) if 2 + j not in read]
        self.out_channels = c * len(self.outputs)

    def forward(self, p2: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
        states = [self.pre1(p1), self.pre2(p2)]
        for j, b in enumerate(self.blocks):
            x = self.ops[2 * j](states[b.input1])
            y = self.ops[2 * j + 1](states[b.input2])
            states.append(x + y if b.combine == "add" else self.merges[j](torch.cat([x, y], 1)))
        return torch.cat([states[i] for i in self.outputs], dim=1)


class NASNetwork(nn.Module):
    """Stem, ``stages`` stacks of ``cells`` normal cells with a reduction cell between stacks,
    ReLU, global average pooling, a linear classifier."""

    def __init__(
        self, arch: NASNetArch, num_classes: int, channels: int, cells: int, stages: int
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        c_p2 = c_p1 = c = channels
        big = False  # p2 has twice p1's resolution
        self.cells = nn.ModuleList()
        for stage in range(stages):
            if stage > 0:
                c *= 2
                cell = Cell(arch.reduce, c_p2, c_p1, c, True, big)
                self.cells.append(cell)
                c_p2, c_p1, big = c_p1, cell.out_channels, True
            for _ in range(cells):
                cell = Cell(arch.normal, c_p2, c_p1, c, False, big)
                self.cells.append(cell)
                c_p2, c_p1, big = c_p1, cell.out_channels, False
        self.head = nn.Linear(c_p1, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p2 = p1 = self.stem(x)
        for cell in self.cells:
            p2, p1 = p1, cell(p2, p1)
        return self.head(torch.relu(p1).mean(dim=(2, 3)))
