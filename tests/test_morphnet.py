"""MorphNet: the regulariser's definition, channel removal, expansion to a budget, resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transfernas.config import ParameterError, validate_params
from transfernas.morphnet.graph import ChannelGraph, Layer, Slot, prune, resnet_graph, zero_dead
from transfernas.morphnet.regularizer import layer_costs, network_cost, regularizer
from transfernas.morphnet.resize import BudgetParams, MorphNetParams, backbone_cost, expand
from transfernas.spaces.resblock import Classifier, ResArch, ResNetBackbone
from transfernas.tasks.trained import count_flops


def toy() -> tuple[nn.Sequential, ChannelGraph]:
    """3 → conv3×3 → 4 (BN γ 1, .5, 0, 0) → conv1×1 → 2 (BN γ .2, 0) on 8×8 inputs."""
    conv1, bn1 = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
    conv2, bn2 = nn.Conv2d(4, 2, 1, bias=False), nn.BatchNorm2d(2)
    with torch.no_grad():
        bn1.weight.copy_(torch.tensor([1.0, -0.5, 0.0, 0.0]))
        bn2.weight.copy_(torch.tensor([0.2, 0.0]))
    net = nn.Sequential(conv1, bn1, nn.ReLU(), conv2, bn2)
    slots = {
        "input": Slot("input", 3),
        "a": Slot("a", 4, [bn1]),
        "b": Slot("b", 2, [bn2]),
    }
    layers = [Layer("conv1", conv1, "input", "a", bn1), Layer("conv2", conv2, "a", "b", bn2)]
    return net, ChannelGraph(slots, layers)


def test_flops_regulariser_equals_the_hand_computed_cost():
    net, graph = toy()
    costs = layer_costs(graph, net, "flops", (8, 8))
    assert costs == {"conv1": 2 * 9 * 64, "conv2": 2 * 1 * 64}  # 2·k²·H·W per channel pair
    masks = graph.alive(0.01)
    assert [int(m.sum()) for m in masks.values()] == [3, 2, 1]
    # alive: 3 · 2 · 1152 + 2 · 1 · 128
    assert network_cost(graph, costs, masks) == 3 * 2 * 1152 + 2 * 1 * 128
    # F = c1 (|in| Σγ_a) + c2 (|a| Σγ_b + |b| Σγ_a) = 1152·3·1.5 + 128·(2·0.2 + 1·1.5)
    assert regularizer(graph, costs, masks).item() == pytest.approx(1152 * 4.5 + 128 * 1.9)
    assert layer_costs(graph, net, "params", (8, 8)) == {"conv1": 9.0, "conv2": 1.0}


def test_regulariser_gradients_reach_every_bn_scale():
    net, graph = toy()
    costs = layer_costs(graph, net, "flops", (8, 8))
    regularizer(graph, costs, graph.alive(0.01)).backward()
    g1, g2 = net[1].weight.grad, net[4].weight.grad
    # d/dγ_a = sign(γ) (c1·3 + c2·|b|), d/dγ_b = c2·|a|; γ = 0 has subgradient 0
    assert g1.tolist() == pytest.approx([1152 * 3 + 128, -(1152 * 3 + 128), 0, 0])
    assert g2.tolist() == pytest.approx([128 * 2, 0])


def small_resnet(block: str, seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    backbone = ResNetBackbone(ResArch.parse("8_11-21-12-211"), block, "imagenet")
    model = Classifier(backbone, backbone.out_channels[-1], 5)
    for m in model.modules():  # trained-looking BN: nonzero scales, shifts and statistics
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_network_cost_with_every_channel_alive_is_the_counted_flops(block):
    model = small_resnet(block)
    graph = resnet_graph(model)
    costs = layer_costs(graph, model, "flops", (64, 48))
    assert network_cost(graph, costs, graph.alive(0.0)) == count_flops(
        model, (3, 64, 48), torch.device("cpu")
    )


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_removing_zeroed_channels_keeps_the_output(block):
    model = small_resnet(block)
    graph = resnet_graph(model)
    rng = torch.Generator().manual_seed(1)
    with torch.no_grad():  # kill about a third of every slot, groups included
        for slot in graph.slots.values():
            if not slot.fixed:
                dead = torch.rand(slot.size, generator=rng) < 0.35
                dead[0] = False
                for bn in slot.writers:
                    bn.weight[dead] = 0.0
    masks = graph.alive(1e-6)
    zero_dead(graph, masks)
    small = prune(model, masks).eval()
    x = torch.randn(2, 3, 64, 64)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    torch.testing.assert_close(small(x), model(x), rtol=1e-5, atol=1e-5)
    for name, mask in masks.items():  # the small net's widths are the alive counts
        assert resnet_graph(small).slots[name].size == int(mask.sum())


@pytest.mark.parametrize("kind", ["flops", "params"])
def test_expanded_net_meets_the_budget_within_two_percent(kind):
    budget = BudgetParams(kind=kind, input_size=(64, 64))
    arch = ResArch.parse("16_111-2111-1211-12")
    widths = ResNetBackbone(arch, "basic", "imagenet").widths

    def cost(w):
        return backbone_cost(ResNetBackbone(arch, "basic", "imagenet", widths=w), budget)

    target = 2.5 * cost(widths)
    expanded, factor, got = expand(cost, widths, target, steps=30)
    assert 0.98 * target <= got <= target
    assert got == pytest.approx(cost(expanded))
    assert factor > 1 and expanded.groups[0] > widths.groups[0]
    _, factor, got = expand(cost, widths, 0.3 * cost(widths), steps=30)
    assert 0.98 * 0.3 * cost(widths) <= got <= 0.3 * cost(widths) and factor < 1


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"budget": {"kind": "energy"}}, "morphnet.budget.kind: Input should be 'flops', 'params'"),
        ({"strength": -1}, "morphnet.strength: Input should be greater than 0"),
        ({"budget": {"tolerance": 1.5}}, "morphnet.budget.tolerance: Input should be less than 1"),
        ({"shrink": {"epoch": 2}}, "morphnet.shrink.epoch: unknown key; allowed keys: epochs"),
    ],
)
def test_bad_parameters_name_the_key(params, expected):
    with pytest.raises(ParameterError) as err:
        validate_params(MorphNetParams, params, "morphnet")
    assert expected in str(err.value)


def test_rounds_are_durable_and_a_killed_shrink_resumes(tmp_path, monkeypatch):
    import transfernas.morphnet.resize as resize
    from transfernas.downstream.backbone import backbone_cfg
    from transfernas.tasks.trained import ImageData, TrainingConfig

    rng = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (48, 16, 16, 3), dtype=torch.uint8, generator=rng)
    data = ImageData(images, torch.arange(48) % 3)
    cfg = backbone_cfg("8_11-21-12-12", "basic", "small", 1.0, (0, 1, 2, 3))
    params = MorphNetParams(
        budget=BudgetParams(input_size=(16, 16)),
        init="scratch",
        shrink=TrainingConfig(epochs=3, batch_size=16),
        expand_steps=8,
    )
    plain = resize.run_rounds(cfg, None, data, data, 3, params, tmp_path / "plain")

    real = resize.train_model

    def killed(model, data, config, generator, penalty, checkpoint, on_epoch):
        def dying(epoch, metrics):
            on_epoch(epoch, metrics)
            if epoch == 1:  # after epoch 2's log line, before its checkpoint: kill -9
                raise KeyboardInterrupt

        return real(model, data, config, generator, penalty, checkpoint, dying)

    monkeypatch.setattr(resize, "train_model", killed)
    with pytest.raises(KeyboardInterrupt):
        resize.run_rounds(cfg, None, data, data, 3, params, tmp_path / "killed")
    monkeypatch.setattr(resize, "train_model", real)
    resumed = resize.run_rounds(cfg, None, data, data, 3, params, tmp_path / "killed")
    assert [r["epoch"] for r in resumed["rounds"][0]["shrink_curve"]] == [0, 1, 2]
    assert resumed["widths"] == plain["widths"] and resumed["final_cost"] == plain["final_cost"]

    def no_training(*_args, **_kw):
        raise AssertionError("a finished round was trained again")

    monkeypatch.setattr(resize, "train_model", no_training)
    again = resize.run_rounds(cfg, None, data, data, 3, params, tmp_path / "killed")
    assert again["rounds"] == resumed["rounds"]
