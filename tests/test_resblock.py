"""Residual-block space: validity by construction, encode/decode, the backbone's stages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transfernas.spaces import ResBlockSpace, is_valid, mutate_actions
from transfernas.spaces.resblock import BASE_CHANNELS, DEPTHS, STAGES, ResArch, ResNetBackbone


def test_every_sample_and_mutation_is_valid_and_round_trips():
    space = ResBlockSpace()
    rng = np.random.default_rng(0)
    seen_stages = set()
    for _ in range(400):
        actions = space.sample(rng)
        assert is_valid(space, actions)
        arch = space.decode(actions)
        assert arch.base_channel in BASE_CHANNELS and sum(arch.blocks) in DEPTHS
        assert len(arch.blocks) in STAGES and min(arch.blocks) >= 1
        assert space.encode(str(arch)) == tuple(actions) == space.encode(arch)
        seen_stages.add(len(arch.blocks))
        assert is_valid(space, mutate_actions(space, actions, rng))
    assert seen_stages == {4, 5}


def test_masks_force_the_depth_and_the_unused_stage():
    space = ResBlockSpace()
    prefix = [0, 0, 0]  # C=48, depth 15, 4 stages
    assert np.flatnonzero(space.mask(prefix)).tolist() == list(range(1, 13))  # leave 3 blocks
    prefix += [10, 2, 1]
    assert np.flatnonzero(space.mask(prefix)).tolist() == [2]  # the last stage takes the rest
    prefix += [2]
    assert np.flatnonzero(space.mask(prefix)).tolist() == [0]  # stage 5 unused
    prefix += [0]
    assert np.flatnonzero(space.mask(prefix)).tolist() == [0, 1]  # doubling inside stage 2
    assert is_valid(space, [0, 0, 0, 10, 2, 1, 2, 0, 1, 0, 1, 0])
    assert not is_valid(space, [0, 0, 0, 10, 2, 1, 3, 0, 1, 0, 1, 0])  # 16 blocks


def test_arch_string_parsing_names_the_problem():
    assert str(ResArch.parse("64_111-2111-1211-12")) == "64_111-2111-1211-12"
    with pytest.raises(ValueError, match="not a residual-block arch"):
        ResArch.parse("resnet18")
    with pytest.raises(ValueError, match="exactly one"):
        ResArch.parse("64_111-2211-1211-12")
    with pytest.raises(ValueError, match="depth"):
        ResBlockSpace().encode("64_111-2111-1211-12")  # 13 blocks: not a depth of the space


@pytest.mark.parametrize("block, expansion", [("basic", 1), ("bottleneck", 4)])
def test_out_indices_shapes_per_stage(block, expansion):
    arch = ResArch.parse("64_1111-211-1121111-21111")  # 15 blocks, 4 stages
    net = ResNetBackbone(arch, block, "imagenet", out_indices=(0, 1, 2, 3))
    feats = net(torch.randn(2, 3, 64, 96))
    assert [f.shape[1] for f in feats] == [64 * expansion * 2**i for i in range(4)]
    assert [tuple(f.shape[2:]) for f in feats] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert net.out_channels == tuple(f.shape[1] for f in feats)
    only_last = ResNetBackbone(arch, block, "small", out_indices=(3,))
    (last,) = only_last(torch.randn(1, 3, 16, 16))
    assert last.shape == (1, 64 * expansion * 8, 2, 2)
    with pytest.raises(ValueError, match="out_indices"):
        ResNetBackbone(arch, block, out_indices=(4,))


def test_classifier_from_the_space_and_channel_scale():
    space = ResBlockSpace(stem="small", channel_scale=0.25)
    actions = space.sample(np.random.default_rng(3))
    net = space.build(actions, num_classes=7)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    first_conv = net.backbone.stem[0]
    assert first_conv.out_channels == max(8, round(space.decode(actions).base_channel * 0.25))
