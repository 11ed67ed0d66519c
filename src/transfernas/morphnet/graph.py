"""Which channels of a residual network can be removed together, and removing them.

MorphNet (Gordon et al., CVPR 2018) prunes output channels whose BatchNorm scale γ falls to
zero. A network is a graph of *slots* (channel sets) joined by *layers* (convs, the head):

- a fixed slot is the input image or the logits — its width never changes;
- an inner slot is the output of one conv + BN inside a block;
- a residual group is every tensor an identity shortcut adds together: the stem's output and
  the outputs of the blocks of one group share their channels, so a channel of a group can
  only go when *every* BN writing into it (the stem's, each block's last, the projection's)
  lets it go — the group's score is the elementwise max of their |γ| (MorphNet's grouping).

``prune`` builds the smaller :class:`~transfernas.spaces.resblock.ResNetBackbone` with copied
weights; when the removed channels are exactly zero (γ = β = 0) its output equals the
original's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from transfernas.spaces.resblock import (
    INNER_CONVS,
    Classifier,
    ResNetBackbone,
    Widths,
    block_layout,
)


@dataclass
class Slot:
    """A set of channels: ``writers`` are the BNs producing it (none for a fixed slot)."""

    name: str
    size: int
    writers: list[nn.BatchNorm2d] = field(default_factory=list)

    @property
    def fixed(self) -> bool:
        return not self.writers

    def scores(self) -> torch.Tensor:
        """|γ| per channel, max over the writers (differentiable)."""
        return torch.stack([bn.weight.abs() for bn in self.writers]).amax(0)


@dataclass(frozen=True)
class Layer:
    """A conv (or the linear head) from slot ``src`` to slot ``dst``."""

    name: str
    module: nn.Conv2d | nn.Linear
    src: str
    dst: str
    bn: nn.BatchNorm2d | None = None


@dataclass
class ChannelGraph:
    slots: dict[str, Slot]
    layers: list[Layer]

    def alive(self, threshold: float) -> dict[str, torch.Tensor]:
        """Per slot, the channels kept: score > ``threshold``; a slot keeps at least its best
        channel so the network stays connected; fixed slots keep everything."""
        masks = {}
        with torch.no_grad():
            for name, slot in self.slots.items():
                if slot.fixed:
                    masks[name] = torch.ones(slot.size, dtype=torch.bool)
                    continue
                scores = slot.scores()
                mask = scores > threshold
                mask[scores.argmax()] = True
                masks[name] = mask.cpu()
        return masks


def _group(i: int) -> str:
    return f"group{i}"


def resnet_graph(model: Classifier) -> ChannelGraph:
    """The slots and layers of a classifier around a :class:`ResNetBackbone` (BatchNorm)."""
    net: ResNetBackbone = model.backbone
    n_convs = sum(isinstance(m, nn.Conv2d) for m in net.modules())
    if sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) != n_convs:
        raise ValueError("MorphNet reads BatchNorm scales: build the backbone with BatchNorm2d")
    widths = net.widths
    slots = {"input": Slot("input", net.stem[0].in_channels)}
    for i, w in enumerate(widths.groups):
        slots[_group(i)] = Slot(_group(i), w)
    layers = [Layer("stem", net.stem[0], "input", _group(0), net.stem[1])]
    slots[_group(0)].writers.append(net.stem[1])
    units = [unit for stage in net.stages for unit in stage]
    src = _group(0)
    for b, ((_, group, projection), unit) in enumerate(
        zip(block_layout(net.arch, net.block), units, strict=True)
    ):
        dst = _group(group)
        convs = [m for m in unit.body if isinstance(m, nn.Conv2d)]
        bns = [m for m in unit.body if isinstance(m, nn.BatchNorm2d)]
        chain = [src] + [f"block{b}.{k}" for k in range(INNER_CONVS[net.block])] + [dst]
        for k, (conv, bn) in enumerate(zip(convs, bns, strict=True)):
            if k < len(convs) - 1:
                slots[chain[k + 1]] = Slot(chain[k + 1], conv.out_channels, [bn])
            layers.append(Layer(f"block{b}.conv{k}", conv, chain[k], chain[k + 1], bn))
        slots[dst].writers.append(bns[-1])
        if projection:
            conv, bn = unit.shortcut
            layers.append(Layer(f"block{b}.shortcut", conv, src, dst, bn))
            slots[dst].writers.append(bn)
        src = dst
    slots["logits"] = Slot("logits", model.head.out_features)
    layers.append(Layer("head", model.head, src, "logits"))
    return ChannelGraph(slots, layers)


def zero_dead(graph: ChannelGraph, masks: Mapping[str, torch.Tensor]) -> None:
    """Set γ = β = 0 on every removed channel of every writer: those channels become exactly
    zero, which is what ``prune`` assumes to keep the output unchanged."""
    with torch.no_grad():
        for name, slot in graph.slots.items():
            for bn in slot.writers:
                bn.weight[~masks[name]] = 0
                bn.bias[~masks[name]] = 0


def pruned_widths(graph: ChannelGraph, widths: Widths, masks: Mapping[str, torch.Tensor]) -> Widths:
    count = {name: int(mask.sum()) for name, mask in masks.items()}
    groups = tuple(count[_group(i)] for i in range(len(widths.groups)))
    inner = tuple(
        tuple(count[f"block{b}.{k}"] for k in range(len(ws))) for b, ws in enumerate(widths.inner)
    )
    return Widths(groups, inner)


def prune(model: Classifier, masks: Mapping[str, torch.Tensor]) -> Classifier:
    """A new classifier keeping only the ``masks`` channels, weights and BN statistics copied."""
    net: ResNetBackbone = model.backbone
    graph = resnet_graph(model)
    widths = pruned_widths(graph, net.widths, masks)
    small = Classifier(
        ResNetBackbone(net.arch, net.block, net.stem_kind, net.out_indices, widths=widths),
        widths.groups[-1],
        model.head.out_features,
    )
    small.to(next(model.parameters()).device)
    with torch.no_grad():
        for old, new in zip(graph.layers, resnet_graph(small).layers, strict=True):
            keep_in, keep_out = masks[old.src], masks[old.dst]
            new.module.weight.copy_(old.module.weight[keep_out][:, keep_in])
            if old.module.bias is not None:
                new.module.bias.copy_(old.module.bias[keep_out])
            if old.bn is not None:
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(new.bn, name).copy_(getattr(old.bn, name)[keep_out])
                new.bn.num_batches_tracked.copy_(old.bn.num_batches_tracked)
    return small
