import numpy as np
import pytest

from transfernas.spaces import NB201Space, is_valid, mutate_actions, sample_actions
from transfernas.spaces.nb201 import N_ARCHS


def test_nb201_round_trip_every_cell():
    space = NB201Space()
    for code in range(N_ARCHS):
        actions = space.from_code(code)
        arch = space.decode(actions)
        assert space.encode(arch) == actions
        assert space.key(actions) == code
    all_actions = np.array([space.from_code(c) for c in range(N_ARCHS)])
    assert np.array_equal(space.codes(all_actions), np.arange(N_ARCHS))


def test_nb201_decode_format():
    space = NB201Space()
    assert space.decode((0, 1, 2, 3, 4, 0)) == (
        "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    )


def test_table_strings_encode(nb201_12):
    space = NB201Space()
    codes = {space.key(space.encode(s)) for s in nb201_12["arch_str"]}
    assert len(codes) == N_ARCHS


@pytest.mark.parametrize(
    "bad",
    [
        "|none~0|+|none~0|none~1|",
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|+|none~0|none~1|none~2|",
    ],
)
def test_nb201_encode_rejects_malformed(bad):
    with pytest.raises(ValueError):
        NB201Space().encode(bad)


def test_masked_sampling_and_mutation_stay_valid(toy_space):
    rng = np.random.default_rng(0)
    for _ in range(500):
        actions = sample_actions(toy_space, rng)
        assert is_valid(toy_space, actions)
        child = mutate_actions(toy_space, actions, rng)
        assert is_valid(toy_space, child)
        assert child != actions


def test_nb201_mutation_changes_exactly_one_edge():
    space, rng = NB201Space(), np.random.default_rng(1)
    for _ in range(500):
        parent = space.sample(rng)
        child = mutate_actions(space, parent, rng)
        assert sum(a != b for a, b in zip(parent, child, strict=True)) == 1
