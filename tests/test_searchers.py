"""Every registered searcher honours the ask/tell contract; REA ages; REINFORCE learns."""

import numpy as np
import pytest
import torch

from transfernas.searchers import SEARCHERS, make_searcher
from transfernas.searchers.evolution import REAConfig, RegularizedEvolution
from transfernas.searchers.reinforce import Reinforce
from transfernas.spaces import NB201Space, is_valid

from .conftest import ToyTask, reloaded

NAMES = sorted(SEARCHERS)


def _drive(searcher, task, steps, batch=1):
    out = []
    for _ in range(steps):
        cands = searcher.ask(batch)
        rewards = [task.evaluate(c).reward for c in cands]
        searcher.tell(cands, rewards)
        out += list(zip(cands, rewards, strict=True))
    return out


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 3])
def test_ask_returns_valid_candidates(name, batch, toy_space):
    searcher = make_searcher(name, toy_space, None, seed=0)
    for cands_rewards in [_drive(searcher, ToyTask(toy_space), 40, batch)]:
        assert len(cands_rewards) == 40 * batch
        assert all(is_valid(toy_space, c) for c, _ in cands_rewards)
        assert all(isinstance(a, int) for c, _ in cands_rewards for a in c)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_trajectory(name, toy_space):
    task = ToyTask(toy_space)
    a = _drive(make_searcher(name, toy_space, None, seed=7), task, 30)
    b = _drive(make_searcher(name, toy_space, None, seed=7), task, 30)
    c = _drive(make_searcher(name, toy_space, None, seed=8), task, 30)
    assert a == b
    assert a != c


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_resumes_exactly(name, toy_space):
    """Saving (weights_only torch format), reloading into a fresh searcher, continuing = never stopping."""
    task = ToyTask(toy_space)
    ref = make_searcher(name, toy_space, None, seed=3)
    _drive(ref, task, 15)
    resumed = reloaded(ref, name, toy_space, seed=3)
    assert _drive(resumed, task, 15) == _drive(ref, task, 15)


def test_unknown_searcher_names_allowed(toy_space):
    with pytest.raises(
        ValueError,
        match="allowed: random, rea, reinforce, catch-meta, catch-sfs, catch-zero, catch-random, l2nas, l2nas-transfer, tnas, pnas, nasnet-rnn",
    ):
        make_searcher("bohb", toy_space, None, 0)


def test_rea_ages_out_oldest_not_worst():
    space = NB201Space()
    rea = RegularizedEvolution(space, REAConfig(population_size=4, sample_size=2), seed=0)
    cands = rea.ask(4)
    rea.tell(cands, [100.0, 1.0, 2.0, 3.0])  # the first one is by far the best
    child = rea.ask(1)
    rea.tell(child, [0.0])
    assert [m[0] for m in rea.population] == [*cands[1:], child[0]]
    assert len(rea.population) == 4


def test_rea_warms_up_randomly_then_mutates_tournament_winner():
    space = NB201Space()
    rea = RegularizedEvolution(space, REAConfig(population_size=10, sample_size=200), seed=5)
    warm = rea.ask(10)
    rewards = list(range(10))
    rea.tell(warm, rewards)
    best = warm[int(np.argmax(rewards))]
    members = {m[0] for m in rea.population}
    for child in rea.ask(20):  # no tell: the population is fixed
        diffs = [sum(a != b for a, b in zip(child, m, strict=True)) for m in members]
        assert min(diffs) == 1
    # 200 draws with replacement from 10 members include the best one (p = 1 - 0.9^200)
    children = rea.ask(50)
    assert all(sum(a != b for a, b in zip(c, best, strict=True)) == 1 for c in children)


def test_reinforce_baseline_is_bias_corrected_ema():
    r = Reinforce(NB201Space(), None, seed=0)
    cands = r.ask(3)
    r.tell(cands, [10.0, 20.0, 30.0])
    m = 0.9
    num = (1 - m) * (m**2 * 10 + m * 20 + 30)
    den = (1 - m) * (m**2 + m + 1)
    assert r.baseline_num / r.baseline_den == pytest.approx(num / den)


def test_reinforce_learns_a_rewarded_decision(toy_space):
    """Reward 1 when decision 0 picks option 2, else 0: its probability must grow."""
    r = Reinforce(toy_space, None, seed=0)
    before = torch.softmax(r.logits.detach()[0, :3], 0)[2].item()
    for _ in range(300):
        cands = r.ask(1)
        r.tell(cands, [float(cands[0][0] == 2)])
    after = torch.softmax(r.logits.detach()[0, :3], 0)[2].item()
    assert before == pytest.approx(1 / 3, abs=0.01)
    assert after > 0.85


def test_reinforce_log_prob_ignores_masked_options(toy_space):
    r = Reinforce(toy_space, None, seed=0)
    with torch.no_grad():
        r.logits.zero_()
    # d0: 3 options; d1 given d0=0: options {0,1}; d2 given d1=1: options {0,2,3}
    expected = np.log(1 / 3) + np.log(1 / 2) + np.log(1 / 3)
    assert r.log_prob((0, 1, 2)).item() == pytest.approx(expected, rel=1e-6)
