"""Bad parameters fail with one message naming the key and what is allowed."""

import pytest

from transfernas.benchmark import NB201BenchmarkConfig
from transfernas.config import ParameterError, validate_params


def _check(params):
    return validate_params(NB201BenchmarkConfig, params, "nb201_benchmark")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"methods": ["rea", "bohb"]},
            "nb201_benchmark.methods[1]: unknown searcher 'bohb'; allowed: random, rea, reinforce, catch-meta, catch-sfs, catch-zero, catch-random, l2nas, l2nas-transfer, tnas, pnas, nasnet-rnn",
        ),
        ({"budget": -5}, "nb201_benchmark.budget: Input should be greater than or equal to 1"),
        ({"n_trials": 0}, "nb201_benchmark.n_trials: Input should be greater than or equal to 1"),
        (
            {"datasets": ["cifar10"]},
            "nb201_benchmark.datasets[0]: Input should be 'cifar10-valid', 'cifar100' or 'ImageNet16-120'",
        ),
        (
            {"searchers": {"rea": {"population_size": 0}}},
            "nb201_benchmark.searchers.rea.population_size",
        ),
        (
            {"searchers": {"rea": {"pop": 3}}},
            "nb201_benchmark.searchers.rea.pop: unknown key; allowed keys: population_size, sample_size",
        ),
        (
            {"searchers": {"bohb": {}}},
            "nb201_benchmark.searchers.bohb: unknown key; allowed keys: random, rea, reinforce, catch",
        ),
        ({"n_trails": 3}, "nb201_benchmark.n_trails: unknown key; allowed keys: methods, datasets"),
    ],
)
def test_bad_values_name_key_and_allowed(params, expected):
    with pytest.raises(ParameterError) as exc:
        _check(params)
    assert expected in str(exc.value)


def test_defaults_are_nb201_baseline_settings():
    cfg = _check({})
    assert cfg.searchers.rea.population_size == 10 and cfg.searchers.rea.sample_size == 3
    assert cfg.searchers.reinforce.learning_rate == 0.01
    assert cfg.methods == ["random", "rea", "reinforce"]


def test_fingerprint_ignores_what_does_not_change_a_trial():
    base = _check({"n_trials": 5})
    assert base.fingerprint("rea") == _check({"n_trials": 50, "methods": ["rea"]}).fingerprint(
        "rea"
    )
    assert base.fingerprint("rea") != _check({"budget": 60}).fingerprint("rea")
    assert base.fingerprint("rea") != _check(
        {"searchers": {"rea": {"sample_size": 5}}}
    ).fingerprint("rea")


def test_fingerprint_is_per_method():
    base = _check({})
    other_rea = _check({"searchers": {"rea": {"sample_size": 5}}, "meta": {"n_epochs": 3}})
    assert base.fingerprint("random") == other_rea.fingerprint("random")
    assert base.fingerprint("catch-sfs") == _check({"meta": {"n_epochs": 3}}).fingerprint(
        "catch-sfs"
    )
    assert base.fingerprint("catch-meta") != _check({"meta": {"n_epochs": 3}}).fingerprint(
        "catch-meta"
    )


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"name": "nasnet", "blocks": 0}, "trained_task.space.blocks: Input should be greater than or equal to 1"),
        ({"name": "nasfpn"}, "trained_task.space: Input tag 'nasfpn' found using 'name' does not match any of the expected tags: 'resblock', 'nb201', 'nasnet'"),
        ({"name": "nasnet", "channels": 8, "depth": 3}, "trained_task.space.depth: unknown key; allowed keys: name, blocks, channels, cells, stages"),
    ],
)  # fmt: skip
def test_space_parameters_are_checked_by_the_registry(space, expected):
    from transfernas.tasks.subdataset import TrainedTaskParams

    with pytest.raises(ParameterError) as err:
        validate_params(TrainedTaskParams, {"space": space}, "trained_task")
    assert expected in str(err.value)


def test_switching_space_drops_the_other_spaces_keys():
    """conf/base's resblock keys stay merged under a --params space switch (Kedro merges by key)."""
    from transfernas.tasks.subdataset import TrainedTaskParams

    space = {"name": "nasnet", "block": "basic", "stem": "small", "channel_scale": 0.25, "cells": 2}
    params = validate_params(TrainedTaskParams, {"space": space}, "trained_task")
    assert params.space.model_dump() == {
        "name": "nasnet", "blocks": 5, "channels": 16, "cells": 2, "stages": 3
    }  # fmt: skip
