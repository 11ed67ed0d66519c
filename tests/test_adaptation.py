"""Adaptation modes: the mixing maths, the evidence, and that a mixed search resumes exactly."""

from __future__ import annotations

import copy
import functools
import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from transfernas.history import History
from transfernas.meta import meta_train
from transfernas.search import run_search
from transfernas.searchers import SEARCHERS, make_searcher
from transfernas.searchers.adaptation import (
    AdaptationConfig,
    AdaptedSearcher,
    adapted,
    p_first_larger,
    source_probabilities,
    wins_of,
)
from transfernas.searchers.catch.agent import CatchConfig
from transfernas.spaces.nb201 import NB201Space
from transfernas.stages import TargetSearchParams, _searcher_for_target
from transfernas.tasks.base import Evaluation

NONE = np.zeros(2)


@pytest.mark.parametrize(
    ("a", "b"), [((1, 1), (1, 1)), ((5, 2), (2, 5)), ((2, 9), (3, 3)), ((30, 10), (12, 4))]
)
def test_p_first_larger_is_the_monte_carlo_probability(a, b):
    rng = np.random.default_rng(0)
    x, y = rng.beta(*a, 400_000), rng.beta(*b, 400_000)
    assert p_first_larger(a, b) == pytest.approx(np.mean(x > y), abs=3e-3)
    assert p_first_larger(a, b) + p_first_larger(b, a) == pytest.approx(1, abs=1e-6)


def test_mode_prior_keeps_the_prior_with_a_uniform_floor():
    for finetune in (True, False):
        config = AdaptationConfig(mode="prior", finetune=finetune, uniform_share=0.1)
        np.testing.assert_allclose(source_probabilities(config, 40, NONE, NONE), [0.9, 0, 0.1])


def test_decay_is_beta_over_beta_plus_n():
    config = AdaptationConfig(mode="decay", prior_weight=5.0, uniform_share=0.2)
    np.testing.assert_allclose(source_probabilities(config, 0, NONE, NONE), [0.8, 0, 0.2])
    np.testing.assert_allclose(
        source_probabilities(config, 15, NONE, NONE), [0.8 * 0.25, 0.8 * 0.75, 0.2]
    )
    shares = [source_probabilities(config, n, NONE, NONE)[0] for n in range(0, 200, 10)]
    assert all(a > b for a, b in itertools.pairwise(shares))  # decays, never 0
    assert shares[-1] > 0


def test_evidence_follows_the_source_that_wins():
    config = AdaptationConfig(mode="evidence")
    even = source_probabilities(config, 0, NONE, NONE)
    np.testing.assert_allclose(even, [0.5, 0.5, 0.0], atol=1e-6)
    prior_loses = source_probabilities(config, 20, np.array([1, 6]), np.array([9, 4]))
    assert prior_loses[0] < 0.05 and prior_loses.sum() == pytest.approx(1)
    prior_wins = source_probabilities(config, 20, np.array([8, 2]), np.array([2, 8]))
    assert prior_wins[0] > 0.95


def test_a_win_beats_the_quantile_of_the_history_before_it():
    assert list(wins_of([5.0, 1.0], [], 0.5)) == [False, False]  # nothing to compare with
    assert list(wins_of([2.5, 2.0, 4.0], [1, 2, 3], 0.5)) == [True, False, True]
    assert list(wins_of([2.5, 3.5], [1, 2, 3, 4], 0.75)) == [False, True]


def test_bad_values_name_the_key():
    with pytest.raises(ValidationError, match="mode"):
        AdaptationConfig(mode="bayes")
    with pytest.raises(ValidationError, match="uniform_share"):
        AdaptationConfig(uniform_share=1.0)


class Inverse:
    """A task whose reward is the negative sum of the actions: a prior for large sums misleads."""

    name = "inverse"

    def evaluate(self, actions):
        return Evaluation(-float(sum(actions)))


class Sum:
    """The opposite of Inverse."""

    name = "sum"

    def evaluate(self, actions):
        return Evaluation(float(sum(actions)))


@functools.cache
def _meta_trained() -> dict:
    """CATCH meta-trained on Sum: 3 meta-epochs of 20 evaluations (once per test session)."""
    space = NB201Space()
    agent = make_searcher("catch-meta", space, None, seed=7)
    meta_train(space, agent, lambda k: Sum(), 3, 20, pool=["sum"])
    return agent.network_state()


def _prior_state(space) -> dict:
    """A copy of the meta-trained networks (a searcher loads, never shares, them)."""
    return copy.deepcopy(_meta_trained())


@pytest.mark.parametrize("mode", ["decay", "evidence"])
def test_a_mixed_search_resumes_to_the_same_history(tmp_path, mode):
    space = NB201Space()
    state = _prior_state(space)
    config = AdaptationConfig(mode=mode, uniform_share=0.1)

    def fresh():
        return adapted(SEARCHERS["catch-meta"], space, None, 3, state, config)

    straight = run_search(space, Inverse(), fresh(), 14)
    ckpt, log = tmp_path / "s.pt", tmp_path / "h.jsonl"
    run_search(space, Inverse(), fresh(), 6, history=History(log), checkpoint=ckpt)
    resumed = fresh()
    history = run_search(space, Inverse(), resumed, 14, history=History(log), checkpoint=ckpt)
    assert [r["actions"] for r in history] == [r["actions"] for r in straight]
    assert isinstance(resumed, AdaptedSearcher)
    assert resumed.name == "catch-meta"
    assert sum(resumed.shares().values()) == pytest.approx(1)


def test_evidence_turns_away_from_a_misleading_prior():
    space = NB201Space()
    searcher = adapted(
        SEARCHERS["catch-meta"], space, None, 0, _prior_state(space), AdaptationConfig()
    )
    run_search(space, Inverse(), searcher, 40)
    assert isinstance(searcher, AdaptedSearcher)
    assert searcher.losses[0] > searcher.wins[0]  # the prior's proposals lose ...
    assert searcher.shares()["scratch"] > searcher.shares()["prior"]  # ... so scratch proposes


def test_mode_prior_is_the_meta_trained_searcher_and_finetune_false_freezes_it(caplog):
    space = NB201Space()
    state = _prior_state(space)
    plain = adapted(SEARCHERS["catch-meta"], space, None, 0, state, AdaptationConfig(mode="prior"))
    assert type(plain) is SEARCHERS["catch-meta"]
    frozen = AdaptationConfig(mode="evidence", finetune=False)
    mixed = adapted(SEARCHERS["catch-meta"], space, None, 0, state, frozen)
    run_search(space, Inverse(), mixed, 12)
    assert isinstance(mixed, AdaptedSearcher) and mixed.scratch is not None
    for name, tensor in mixed.prior.network_state()["controller"].items():
        assert np.array_equal(tensor.numpy(), state["controller"][name].numpy()), name
    learned = mixed.scratch.network_state()["controller"]  # the scratch searcher still learns
    fresh = make_searcher("catch-meta", space, None, 1).network_state()["controller"]
    assert any(not np.array_equal(learned[k].numpy(), fresh[k].numpy()) for k in learned)
    l2nas = SEARCHERS["l2nas-transfer"]
    with caplog.at_level("WARNING"):
        state = make_searcher("l2nas-transfer", space, None, 0).network_state()
        assert isinstance(adapted(l2nas, space, None, 0, state, frozen), AdaptedSearcher)
    assert "keeps learning" in caplog.text  # no frozen mode: said, not refused


def test_the_adapt_stage_adapts_as_its_parameters_say():
    space = NB201Space()
    checkpoint = {
        "searcher": "catch-meta",
        "space": {"name": "nb201"},
        "tasks": ["sum"],
        "networks": _prior_state(space),
    }
    made = {}
    for mode in ("evidence", "prior"):
        params = TargetSearchParams(adaptation={"mode": mode, "uniform_share": 0.0})
        made[mode] = _searcher_for_target(
            params, space, {"name": "nb201"}, CatchConfig(), checkpoint, "inverse"
        )
    assert isinstance(made["evidence"], AdaptedSearcher)
    assert type(made["prior"]) is SEARCHERS["catch-meta"]
    with pytest.raises(ValidationError, match=r"adaptation\.mode"):
        TargetSearchParams(adaptation={"mode": "hope"})


def test_a_batch_never_asks_for_one_network_twice():
    space = NB201Space()
    config = AdaptationConfig(mode="decay", prior_weight=20.0, uniform_share=0.2)
    searcher = adapted(SEARCHERS["catch-meta"], space, None, 0, _prior_state(space), config)
    history = run_search(space, Inverse(), searcher, 24, batch_size=4)
    keys = [tuple(r["actions"]) for r in history]
    assert len(set(keys)) == len(keys)
