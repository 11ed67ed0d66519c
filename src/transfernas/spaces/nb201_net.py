"""The NAS-Bench-201 network as torch modules, so NB201 cells can be trained on sub-datasets.

Macro skeleton of NB201 (Dong & Yang 2020): 3×3 conv stem with ``C`` channels, three stages of
``N`` identical cells, a residual reduction block between stages (C → 2C → 4C), BN-ReLU, global
average pooling and a linear classifier. NB201 trains C=16, N=5; smaller values keep CPU runs
short. A cell is a 4-node DAG: node j sums op(i→j)(node i) over i < j; node 3 is the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
Edge = tuple[int, int, str]  # (from node, to node, op)


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


def make_op(name: str, channels: int) -> nn.Module | None:
    """One edge's operation; ``None`` for ``none`` (the edge contributes nothing)."""
    if name == "none":
        return None
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {name!r}; allowed: {OPS}")


class Cell(nn.Module):
    def __init__(self, edges: Sequence[Edge], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        self.inputs: list[list[tuple[int, str]]] = [[] for _ in range(4)]
        for src, dst, name in edges:
            op = make_op(name, channels)
            if op is not None:  # zero edges are dropped, not computed
                self.edges[f"{src}_{dst}"] = op
                self.inputs[dst].append((src, f"{src}_{dst}"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for dst in range(1, 4):
            terms = [self.edges[name](nodes[src]) for src, name in self.inputs[dst]]
            nodes.append(torch.stack(terms).sum(0) if terms else torch.zeros_like(x))
        return nodes[3]


class ResidualReduction(nn.Module):
    """NB201's ResNet basic block between stages: stride 2, channels ×2."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ReLUConvBN(c_in, c_out, 3, 2), ReLUConvBN(c_out, c_out, 3))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class NB201Network(nn.Module):
    def __init__(
        self, edges: Sequence[Edge], num_classes: int, channels: int = 16, cells: int = 5
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        ]
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(Cell(edges, c) for _ in range(cells))
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))
