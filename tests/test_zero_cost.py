"""Zero-cost proxies checked against values computed by hand on nets of a few weights."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from transfernas.fidelity import nb201_spearman
from transfernas.spaces.nb201 import NB201Space
from transfernas.tasks.trained import ImageData
from transfernas.tasks.zero_cost import (
    PROXIES,
    ZeroCostParams,
    ZeroCostTask,
    feature,
    grad_norm,
    naswot,
    params,
    score_all,
    snip,
    synflow,
)


def two_layer(w1: list[list[float]], w2: list[list[float]]) -> nn.Module:
    """x (2,1,1) → flatten → W1 → ReLU → W2, no biases."""
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, len(w2), bias=False)
    )
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor(w1))
        net[3].weight.copy_(torch.tensor(w2))
    return net


def test_params_counts_trainable_weights_and_biases():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    assert params(net) == 2 * 3 + 3 + 3 + 1
    net[0].weight.requires_grad_(False)
    assert params(net) == 3 + 3 + 1


def test_flops_of_a_1x1_conv():
    # 2 output channels × 1 input channel × 2×2 positions, multiply-add = 2 FLOPs
    scores = score_all(lambda: nn.Conv2d(1, 2, 1, bias=False), ["flops"], None, (1, 2, 2))
    assert scores["flops"] == 2 * 2 * 1 * 4


def test_synflow_is_layers_times_output_of_the_abs_net():
    # |W1| row sums 3 and 3.5, |W2| = (1, 2): R = 1·3 + 2·3.5 = 10. Each layer's Σ|θ ∂R/∂θ|
    # is R (the net is 1-homogeneous in each layer's weights), so synflow = 2R = 20.
    net = two_layer([[1.0, -2.0], [3.0, 0.5]], [[-1.0, 2.0]])
    assert synflow(net, (2, 1, 1)) == pytest.approx(20.0)


def test_synflow_ignores_batchnorm_and_sign():
    net = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1), nn.Flatten())
    with torch.no_grad():
        net[0].weight.fill_(-3.0)
    # BN at fresh statistics is the identity: R = 3 per pixel × 4 pixels, one layer → 12
    assert synflow(net, (1, 2, 2)) == pytest.approx(12.0, rel=1e-4)


def test_naswot_log_det_of_agreement_kernel():
    # W1 = I, so the ReLU codes are the signs of the inputs: (1,1), (1,0), (0,0).
    # K = N_A − Hamming = [[2,1,0],[1,2,1],[0,1,2]], det 4.
    net = two_layer([[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0]])
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]).reshape(3, 2, 1, 1)
    assert naswot(net, x) == pytest.approx(math.log(4.0))


def test_naswot_of_identical_codes_is_minus_infinity():
    net = two_layer([[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0]])
    x = torch.ones(3, 2, 1, 1)
    assert naswot(net, x) == -math.inf


def test_grad_norm_and_snip_of_a_linear_softmax():
    # W = I, x = (1, 2), label 0: p = softmax(1, 2), ∂L/∂W = (p − e0) xᵀ = a·[[−1, −2], [1, 2]]
    # with a = e/(1+e): ‖∇‖ = a·√10 and Σ|W ⊙ ∇| = a·(1 + 2) (diagonal of W only).
    net = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(torch.eye(2))
    x, y = torch.tensor([[1.0, 2.0]]).reshape(1, 2, 1, 1), torch.tensor([0])
    a = math.e / (1 + math.e)
    assert grad_norm(net, x, y) == pytest.approx(a * math.sqrt(10), rel=1e-6)
    assert snip(net, x, y) == pytest.approx(3 * a, rel=1e-6)


def test_features_are_logs_of_wide_ranging_scores():
    assert feature("synflow", math.e**5) == pytest.approx(5.0)
    assert feature("naswot", 7.5) == 7.5
    assert feature("params", 0.0) == -math.inf


def test_data_proxies_need_a_batch():
    with pytest.raises(ValueError, match=r"naswot.*needs a batch"):
        score_all(lambda: nn.Linear(2, 2), ["naswot"], None, (2,))


def test_params_validation_names_the_key():
    with pytest.raises(ValidationError, match="weights"):
        ZeroCostParams(weights={"jacov": 1.0})
    with pytest.raises(ValidationError, match="non-zero"):
        ZeroCostParams(weights={"naswot": 0.0})


def _images(n: int = 24, classes: int = 4, seed: int = 0) -> ImageData:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
    return ImageData.from_arrays(images, np.arange(n) % classes)


def test_zero_cost_task_is_deterministic_and_weighs_features():
    space = NB201Space(channels=4, cells=1)
    weights = {"naswot": 1.0, "synflow": -0.5, "params": 2.0}
    task = ZeroCostTask("toy", space, _images(), 4, ZeroCostParams(weights=weights, batch_size=8))
    cell = space.encode(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|"
    )
    first, again = task.evaluate(cell), task.evaluate(cell)
    assert first.reward == again.reward
    expected = sum(w * feature(p, first.metrics[p]) for p, w in weights.items())
    assert first.reward == pytest.approx(expected)
    assert first.metrics["degenerate"] == 0.0
    assert set(task.scores(cell, PROXIES)) == set(PROXIES)


def test_a_cell_without_input_output_path_gets_the_degenerate_reward():
    space = NB201Space(channels=4, cells=1)
    params_ = ZeroCostParams(weights={"naswot": 1.0}, batch_size=8, degenerate_reward=-1.0)
    task = ZeroCostTask("toy", space, _images(), 4, params_)
    empty = space.encode("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    ev = task.evaluate(empty)
    assert ev.reward == -1.0 and ev.metrics["degenerate"] == 1.0


def test_nb201_spearman_reads_the_cells_of_the_table():
    t12 = pd.read_parquet("data/01_raw/nb201/nb201_12epoch.parquet")
    t200 = pd.read_parquet("data/01_raw/nb201/nb201_200epoch.parquet")
    rows = t12.sample(40, random_state=0)
    rho = nb201_spearman(rows["arch_str"], rows["imagenet-val"], t12, t200)
    assert rho["ImageNet16-120/val12"] == pytest.approx(1.0)
    assert 0.5 < rho["ImageNet16-120/test200"] < 1.0
    rho_neg = nb201_spearman(rows["arch_str"], -rows["cifar100-val"], t12, t200)
    assert rho_neg["cifar100/val12"] == pytest.approx(-1.0)


def test_switching_the_space_drops_only_the_other_spaces_keys():
    from transfernas.tasks.subdataset import TrainedTaskParams

    base = {"name": "resblock", "block": "basic", "stem": "small", "channel_scale": 0.25}
    params = TrainedTaskParams(space=base | {"name": "nb201", "cells": 1})
    assert params.space.model_dump() == {"name": "nb201", "channels": 16, "cells": 1}
    back = TrainedTaskParams(space={"name": "resblock", "channels": 8, "block": "bottleneck"})
    assert back.space.block == "bottleneck"
    with pytest.raises(ValidationError, match="chanels"):
        TrainedTaskParams(space=base | {"name": "nb201", "chanels": 8})
