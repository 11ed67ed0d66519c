"""MorphNet's resource-weighted sparsity regulariser (Gordon et al., CVPR 2018, §3).

A layer L from slot ``src`` to slot ``dst`` costs ``c_L · |alive(src)| · |alive(dst)|``: c_L is
its cost per (input, output) channel pair — FLOPs (2·k²·H_out·W_out, multiply-add = 2), weights
(k²) or measured milliseconds. MorphNet relaxes the alive counts into the sum of the BN scales
|γ| so the cost has a gradient:

    F = Σ_L c_L · (|alive(src)| · Σ_j |γ_dst,j| + |alive(dst)| · Σ_i |γ_src,i|)

where a fixed slot (image, logits) has no γ and all its channels alive. A channel is alive
while its score (|γ|, max over a residual group's writers) exceeds the threshold.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from transfernas.morphnet.graph import ChannelGraph
from transfernas.tasks.latency import LatencyConfig, measure_latency

CostKind = Literal["flops", "params", "latency"]


def conv_shapes(
    graph: ChannelGraph, model: nn.Module, input_size: tuple[int, int]
) -> dict[str, tuple[int, ...]]:
    """(H_in, W_in, H_out, W_out) of every conv layer for one input of ``input_size``."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor], out: torch.Tensor) -> None:
            shapes[name] = (*inputs[0].shape[-2:], *out.shape[-2:])

        return hook

    convs = [layer for layer in graph.layers if isinstance(layer.module, nn.Conv2d)]
    hooks = [layer.module.register_forward_hook(record(layer.name)) for layer in convs]
    device = next(model.parameters()).device
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, graph.slots["input"].size, *input_size, device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return shapes


def layer_costs(
    graph: ChannelGraph,
    model: nn.Module,
    kind: CostKind,
    input_size: tuple[int, int],
    latency: LatencyConfig | None = None,
) -> dict[str, float]:
    """c_L per layer: the cost of one (input, output) channel pair at ``input_size``.

    ``latency``: each layer is timed alone (``measure_latency``, on ``latency.device``) on an
    input of its own shape at full width, and its median divided by its channel pairs — a
    linear model of its time in the channels, which is what the regulariser can weigh.
    """
    shapes = conv_shapes(graph, model, input_size)
    costs = {}
    for layer in graph.layers:
        m = layer.module
        conv = isinstance(m, nn.Conv2d)
        k2 = m.kernel_size[0] * m.kernel_size[1] if conv else 1
        if kind == "params":
            costs[layer.name] = float(k2)
        elif kind == "flops":
            costs[layer.name] = (
                2.0 * k2 * (shapes[layer.name][2] * shapes[layer.name][3] if conv else 1)
            )
        else:
            config = latency if latency is not None else LatencyConfig()
            shape = (m.in_channels, *shapes[layer.name][:2]) if conv else (m.in_features,)
            # a copy: timing moves the module to a device and must leave the net alone
            ms = measure_latency(copy.deepcopy(m), config, input_shape=shape).median_ms
            pairs = m.in_channels * m.out_channels if conv else m.in_features * m.out_features
            costs[layer.name] = ms / pairs
    return costs


def alive_counts(graph: ChannelGraph, masks: Mapping[str, torch.Tensor]) -> dict[str, int]:
    return {name: int(mask.sum()) for name, mask in masks.items()}


def network_cost(
    graph: ChannelGraph, costs: Mapping[str, float], masks: Mapping[str, torch.Tensor]
) -> float:
    """Σ_L c_L · |alive(src)| · |alive(dst)|: the cost of the network the masks keep."""
    count = alive_counts(graph, masks)
    return float(sum(costs[x.name] * count[x.src] * count[x.dst] for x in graph.layers))


def regularizer(
    graph: ChannelGraph, costs: Mapping[str, float], masks: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """F above (differentiable in the γ of every BN; the alive counts are constants)."""
    count = alive_counts(graph, masks)
    sums = {name: slot.scores().sum() for name, slot in graph.slots.items() if not slot.fixed}
    total = torch.zeros((), device=next(iter(sums.values())).device)
    for layer in graph.layers:
        c = costs[layer.name]
        if layer.dst in sums:
            total = total + c * count[layer.src] * sums[layer.dst]
        if layer.src in sums:
            total = total + c * count[layer.dst] * sums[layer.src]
    return total
