"""Every registered search space honours the SearchSpace contract, and every registered
searcher runs on every registered space without knowing it."""

import zlib

import numpy as np
import pytest
import torch

from transfernas.searchers import SEARCHERS, make_searcher
from transfernas.spaces import SPACES, is_valid, mutate_actions, space_params

from .conftest import reloaded

# small networks for the build checks; a space missing here is tested with its defaults
SMALL = {
    "resblock": {"channel_scale": 0.125},
    "nb201": {"channels": 4, "cells": 1},
    "nasnet": {"channels": 4},
}


def _space(name):
    return space_params({"name": name, **SMALL.get(name, {})}).build()


def _samples(space, n=60, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_prefix_has_a_valid_mask(name):
    space = _space(name)
    assert space.name == name
    for actions in _samples(space):
        assert is_valid(space, actions)
        for i in range(len(actions)):
            mask = space.mask(actions[:i])
            assert mask.dtype == bool and mask.shape == (space.choices[i],)
            assert mask.any(), f"{name}: no valid option after {actions[:i]}"


@pytest.mark.parametrize("name", sorted(SPACES))
def test_encode_decode_round_trip(name):
    space = _space(name)
    for actions in _samples(space):
        arch = space.decode(actions)
        assert space.encode(arch) == actions
        assert space.encode(str(arch)) == actions  # the readable string is a full identity


@pytest.mark.parametrize("name", sorted(SPACES))
def test_key_tells_architectures_apart(name):
    space = _space(name)
    samples = list(dict.fromkeys(_samples(space, 200, seed=1)))
    keys = [space.key(a) for a in samples]
    assert len(set(keys)) == len(samples)
    assert keys == [space.key(list(a)) for a in samples]  # a list or a tuple: one key


@pytest.mark.parametrize("name", sorted(SPACES))
def test_mutation_stays_valid_and_kinds_cover_every_decision(name):
    space = _space(name)
    rng = np.random.default_rng(2)
    for actions in _samples(space, 30):
        child = mutate_actions(space, actions, rng)
        assert is_valid(space, child) and child != actions
    assert len(space.decision_kinds) == len(space.choices)


@pytest.mark.parametrize("name", sorted(n for n, cls in SPACES.items() if cls.classifier))
@pytest.mark.parametrize("size", [16, 32])
def test_built_classifier_trains(name, size):
    space = _space(name)
    torch.manual_seed(0)
    for actions in _samples(space, 2, seed=size):
        net = space.build(actions, num_classes=5)
        out = net(torch.randn(2, 3, size, size))
        assert out.shape == (2, 5)
        out.logsumexp(1).sum().backward()
        grads = [p.grad for p in net.parameters()]
        # the stem (first) and the head (last) learn; an NB201 edge cut off by "none" may not
        assert grads[0] is not None and grads[-1] is not None
        assert all(torch.isfinite(g).all() for g in grads if g is not None)


def test_unknown_space_names_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: resblock, nb201, nasnet, nasfpn"):
        space_params({"name": "darts"})


def _drive(searcher, space, steps=4):
    out = []
    for _ in range(steps):
        cands = searcher.ask(2)
        # a deterministic reward the searcher cannot know: a hash of the architecture's key
        rewards = [zlib.crc32(str(space.key(c)).encode()) / 2**32 for c in cands]
        searcher.tell(cands, rewards)
        out += cands
    return out


@pytest.mark.parametrize("searcher", sorted(SEARCHERS))
@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_searcher_searches_every_space(searcher, name):
    """Valid candidates, the same history under one seed, and an exact resume from a saved
    state (weights_only torch format) — the contract of tests/test_searchers.py, per space."""
    space = _space(name)
    ref = make_searcher(searcher, space, None, seed=5)
    first = _drive(ref, space)
    assert all(is_valid(space, c) for c in first)
    assert _drive(make_searcher(searcher, space, None, seed=5), space) == first
    assert _drive(reloaded(ref, searcher, space, 5), space, 2) == _drive(ref, space, 2)
