"""The weight-sharing NB201 meta-network of BASE, with Gumbel-softmax relaxed op choices.

Every edge of the NB201 cell holds all five operations; a forward pass weights them with a
relaxed one-hot sample z_e ~ GumbelSoftmax(φ_e, τ) (BASE eq. 8; straight-through hard samples as
an option), so the loss is differentiable in both the weights θ and the architecture logits φ.
All cells share one φ (6 edges × 5 ops, NB201 has no separate reduction cell). As in BASE §5.1
each input size gets its own featurisation head: 16 px is read at full resolution, 32 and
64 px are strided by 2, 224 px by 8 (BASE's strides for 32/64/224), so 16 and 32 px tasks
give the cells the same feature-map size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from transfernas.spaces.nb201 import EDGES
from transfernas.spaces.nb201_net import OPS, ResidualReduction, make_op


def gumbel_softmax(
    logits: torch.Tensor, tau: float, hard: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Relaxed one-hot samples along the last dim: softmax((φ + g) / τ), g ~ Gumbel(0, 1).

    ``hard``: the forward value is the one-hot argmax, the gradient that of the soft sample
    (straight-through). The noise comes from ``generator`` so runs are reproducible.
    """
    u = torch.rand(logits.shape, generator=generator).clamp_(1e-10, 1.0 - 1e-7)
    soft = torch.softmax((logits - torch.log(-torch.log(u))) / tau, dim=-1)
    if not hard:
        return soft
    index = soft.argmax(dim=-1, keepdim=True)
    onehot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return onehot + soft - soft.detach()


class MixedEdge(nn.Module):
    """Σ_k z_k · op_k(x) over NB201's ops; ``none`` contributes 0 whatever its weight."""

    def __init__(self, channels: int):
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, channels) or nn.Identity() for name in OPS)
        self.live = [k for k, name in enumerate(OPS) if name != "none"]

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return sum(z[k] * self.ops[k](x) for k in self.live)


class SuperCell(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(channels) for _ in EDGES)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``z`` (6, 5): one relaxed op choice per edge, edges in the space's decision order."""
        nodes = [x]
        for dst in range(1, 4):
            terms = [
                self.edges[e](nodes[src], z[e]) for e, (d, src) in enumerate(EDGES) if d == dst
            ]
            nodes.append(torch.stack(terms).sum(0))
        return nodes[3]


def head(size: int, channels: int) -> nn.Sequential:
    """Featurisation of one input size: stride 1 up to 16 px, 2 up to 64 px, 8 above (BASE)."""
    stride = 1 if size <= 16 else 2 if size <= 64 else 8
    k, pad = (3, 1) if stride <= 2 else (stride, 0)  # 224 px: 8×8 patches → 28×28
    return nn.Sequential(
        nn.Conv2d(3, channels, k, stride=stride, padding=pad, bias=False),
        nn.BatchNorm2d(channels),
    )


class SuperNet(nn.Module):
    """NB201 macro skeleton (3 stages of ``cells`` cells, residual reductions) over one φ."""

    def __init__(self, channels: int, cells: int, num_classes: int, image_sizes: Sequence[int]):
        super().__init__()
        self.heads = nn.ModuleDict({str(size): head(size, channels) for size in image_sizes})
        self.stages = nn.ModuleList()
        c = channels
        for stage in range(3):
            blocks: list[nn.Module] = []
            if stage > 0:
                blocks.append(ResidualReduction(c, 2 * c))
                c *= 2
            blocks.extend(SuperCell(c) for _ in range(cells))
            self.stages.append(nn.ModuleList(blocks))
        self.out = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        size = str(x.shape[-1])
        if size not in self.heads:
            raise ValueError(f"no featurisation head for {size} px; heads: {list(self.heads)}")
        h = self.heads[size](x)
        for blocks in self.stages:
            for block in blocks:
                h = block(h, z) if isinstance(block, SuperCell) else block(h)
        return self.classifier(self.out(h).mean(dim=(2, 3)))


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(Cat(softmax φ_e) ‖ uniform) summed over edges: the prior term of the ELBO (eq. 6)."""
    logp = F.log_softmax(logits, dim=-1)
    return (logp.exp() * (logp + torch.log(torch.tensor(float(logits.shape[-1]))))).sum()
