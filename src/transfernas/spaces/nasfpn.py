"""NAS-FPN's merge-cell space (Ghiasi et al. 2019, as the NAS overview describes it) and the
pyramid it builds.

The pyramid starts from feature maps at ``levels`` resolutions (P3–P7 for RetinaNet: P3–P5 from
the backbone by 1×1 laterals, P6/P7 by mmdet's 1×1 conv + 2× max pooling). ``cells`` merge
cells follow; cell ``i`` takes four decisions, as the NAS-FPN controller does:

====  ===================================================================================
 0    input 1: any node that exists so far (the initial maps, then cells ``0..i-1``)
 1    input 2: another existing node (sampled without replacement: ≠ input 1)
 2    output level: one of ``levels``; the last cells are masked to the levels no cell has
      produced yet, so every output level is produced
 3    op: ``sum`` (mmcv ``SumCell``) or ``gp`` (``GlobalPoolingCell``: input 2's global
      average, through a sigmoid, weights input 1 and is added to input 2)
====  ===================================================================================

Each cell resizes both inputs to its output level (nearest upsampling or max pooling) and ends
in ReLU → 3×3 conv → BN, as mmcv's merge cells do. Output ``P_l`` is the last cell of level
``l``; a node that no cell reads and that is not an output is added to the output of its level,
as the paper does with unused feature layers. ``stack_times`` repeats the found pyramid with
fresh weights (mmdet's RetinaNet NAS-FPN stacks it 7×).

Genotype strings read as the cells in order, e.g. mmdet's pyramid (:data:`MMDET_NASFPN`)
starts ``gp:P6,P4>P4 sum:c0,P4>P4 sum:c1,P3>P3 ...``: op, the two inputs (``P<l>`` an initial
map, ``c<i>`` cell ``i``), ``>`` the output level.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from transfernas.spaces.base import Actions, SearchSpace, SpaceParams

OPS = ("sum", "gp")
FIRST_LEVEL = 3  # P3: stride 8
_CELL = re.compile(r"^(sum|gp):(P\d+|c\d+),(P\d+|c\d+)>P(\d+)$")


@dataclass(frozen=True)
class MergeCell:
    """Node indices (0..n_levels-1 the initial maps, then cells), output level index, op."""

    input1: int
    input2: int
    level: int
    op: str


@dataclass(frozen=True)
class Pyramid:
    """A decoded architecture: the initial levels and the merge cells in order."""

    levels: tuple[int, ...]  # pyramid levels of the initial maps, e.g. (3, 4, 5, 6, 7)
    cells: tuple[MergeCell, ...]

    def node_name(self, node: int) -> str:
        n = len(self.levels)
        return f"P{self.levels[node]}" if node < n else f"c{node - n}"

    def __str__(self) -> str:
        return " ".join(
            f"{c.op}:{self.node_name(c.input1)},{self.node_name(c.input2)}>P{self.levels[c.level]}"
            for c in self.cells
        )

    @classmethod
    def parse(cls, text: str, levels: Sequence[int]) -> Pyramid:
        levels = tuple(levels)

        def node(name: str, i: int) -> int:
            if name.startswith("P"):
                if int(name[1:]) not in levels:
                    raise ValueError(f"{text!r}: {name} is not one of the levels {levels}")
                return levels.index(int(name[1:]))
            if not int(name[1:]) < i:
                raise ValueError(f"{text!r}: cell c{i} reads {name}, which does not exist yet")
            return len(levels) + int(name[1:])

        cells = []
        for i, token in enumerate(text.split()):
            m = _CELL.match(token)
            if m is None:
                raise ValueError(f"not a merge cell (e.g. 'sum:P3,c0>P4'): {token!r}")
            if int(m.group(4)) not in levels:
                raise ValueError(f"{token!r}: output level P{m.group(4)} not in {levels}")
            cells.append(
                MergeCell(
                    node(m.group(2), i),
                    node(m.group(3), i),
                    levels.index(int(m.group(4))),
                    m.group(1),
                )
            )
        return cls(levels, tuple(cells))

    def outputs(self) -> list[int]:
        """Per level, the node that is its output: the last cell of that level."""
        n, out = len(self.levels), {}
        for i, cell in enumerate(self.cells):
            out[cell.level] = n + i
        missing = [f"P{self.levels[lvl]}" for lvl in range(n) if lvl not in out]
        if missing:
            raise ValueError(f"{self}: no cell outputs {', '.join(missing)}")
        return [out[lvl] for lvl in range(n)]

    def unused(self) -> list[int]:
        """Nodes no cell reads and no output is: added to their level's output."""
        read = {x for c in self.cells for x in (c.input1, c.input2)} | set(self.outputs())
        return [i for i in range(len(self.levels) + len(self.cells)) if i not in read]


# mmdet's NASFPN neck (RetinaNet NAS-FPN, the paper's found pyramid), cell for cell in the
# order of its forward; mmdet fuses two "gp then sum" pairs into one step, here 9 cells
MMDET_NASFPN = (
    "gp:P6,P4>P4 sum:c0,P4>P4 sum:c1,P3>P3 sum:c2,c1>P4 gp:c3,c2>P5 "
    "sum:P5,c4>P5 gp:c5,c1>P7 sum:P7,c6>P7 gp:c7,c5>P6"
)


class NASFPNSpace(SearchSpace):
    """``cells`` merge cells over ``n_levels`` pyramid levels starting at P3."""

    name = "nasfpn"

    def __init__(self, cells: int = 7, n_levels: int = 5) -> None:
        if not 2 <= n_levels <= 6:
            raise ValueError(f"nasfpn n_levels must be in 2..6, got {n_levels}")
        if cells < n_levels:
            raise ValueError(f"nasfpn needs cells ≥ n_levels ({n_levels}) to output every level")
        self.cells, self.levels = cells, tuple(range(FIRST_LEVEL, FIRST_LEVEL + n_levels))

    @property
    def choices(self) -> tuple[int, ...]:
        nodes = len(self.levels) + self.cells - 1
        return (nodes, nodes, len(self.levels), len(OPS)) * self.cells

    def mask(self, prefix: Sequence[int]) -> np.ndarray:
        i, step = divmod(len(prefix), 4)
        size = self.choices[len(prefix)]
        mask = np.zeros(size, dtype=bool)
        if step in (0, 1):
            mask[: len(self.levels) + i] = True
            if step == 1:
                mask[prefix[-1]] = False
        elif step == 2:
            produced = {prefix[4 * j + 2] for j in range(i)}
            missing = [lvl for lvl in range(len(self.levels)) if lvl not in produced]
            if len(missing) >= self.cells - i:  # the remaining cells must cover them
                mask[missing] = True
            else:
                mask[:] = True
        else:
            mask[:] = True
        return mask

    def decode(self, actions: Sequence[int]) -> Pyramid:
        if len(actions) != len(self.choices):
            raise ValueError(f"nasfpn needs {len(self.choices)} actions, got {len(actions)}")
        cells = tuple(
            MergeCell(int(a), int(b), int(lvl), OPS[op])
            for a, b, lvl, op in np.reshape(np.asarray(actions, dtype=int), (-1, 4))
        )
        return Pyramid(self.levels, cells)

    def encode(self, arch: Pyramid | str) -> Actions:
        pyramid = Pyramid.parse(arch, self.levels) if isinstance(arch, str) else arch
        if pyramid.levels != self.levels or len(pyramid.cells) != self.cells:
            raise ValueError(f"{pyramid}: not {self.cells} cells over levels {self.levels}")
        return tuple(
            x for c in pyramid.cells for x in (c.input1, c.input2, c.level, OPS.index(c.op))
        )

    @property
    def decision_kinds(self) -> tuple[str, ...]:
        return ("input", "input", "level", "op") * self.cells

    def key(self, actions: Sequence[int]) -> str:
        return str(self.decode(actions))


class NASFPNSpaceParams(SpaceParams):
    """A neck space: its candidates are built by :class:`MergeCellPyramid` in a detector."""

    classifier: ClassVar[bool] = False
    name: Literal["nasfpn"] = "nasfpn"
    cells: int = Field(7, ge=2, description="merge cells (NAS-FPN: 7; mmdet's neck: 9)")
    n_levels: int = Field(5, ge=2, le=6, description="pyramid levels from P3 (RetinaNet: 5)")

    def build(self) -> NASFPNSpace:
        return NASFPNSpace(self.cells, self.n_levels)


class MergeCellPyramid(nn.Module):
    """The neck of a :class:`Pyramid` from mmcv's merge cells; ``forward`` takes the backbone's
    maps for the first ``len(in_channels)`` levels and returns every level, finest first."""

    def __init__(
        self,
        pyramid: Pyramid,
        in_channels: Sequence[int],
        out_channels: int,
        stack_times: int = 1,
        norm_cfg: dict | None = None,
    ) -> None:
        from mmcv.cnn import ConvModule
        from mmcv.ops.merge_cells import GlobalPoolingCell, SumCell

        super().__init__()
        n = len(pyramid.levels)
        if not 1 <= len(in_channels) <= n:
            raise ValueError(f"{len(in_channels)} backbone maps for {n} pyramid levels")
        pyramid.outputs()  # every level is produced
        self.pyramid, self.unused = pyramid, pyramid.unused()
        norm_cfg = norm_cfg or {"type": "BN", "requires_grad": True}
        self.laterals = nn.ModuleList(
            ConvModule(c, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None) for c in in_channels
        )
        self.extra = nn.ModuleList(
            nn.Sequential(
                ConvModule(out_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None),
                nn.MaxPool2d(2, 2),
            )
            for _ in range(n - len(in_channels))
        )
        cell = {"sum": SumCell, "gp": GlobalPoolingCell}
        self.stages = nn.ModuleList(
            nn.ModuleList(
                cell[c.op](out_channels, out_channels, out_norm_cfg=norm_cfg) for c in pyramid.cells
            )
            for _ in range(stack_times)
        )

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        feats = [lateral(x) for lateral, x in zip(self.laterals, inputs, strict=False)]
        for down in self.extra:
            feats.append(down(feats[-1]))
        n = len(feats)
        for stage in self.stages:
            nodes = list(feats)
            for c, merge in zip(self.pyramid.cells, stage, strict=True):
                size = feats[c.level].shape[-2:]
                nodes.append(merge(nodes[c.input1], nodes[c.input2], out_size=size))
            outs = [nodes[i] for i in self.pyramid.outputs()]
            for i in self.unused:
                level = i if i < n else self.pyramid.cells[i - n].level
                outs[level] = outs[level] + nodes[i]
            feats = outs
        return tuple(feats)
