"""The maths of CATCH's parts: posterior, KL, PPO clipping, PER, masking."""

import math

import numpy as np
import pytest
import torch

from transfernas.searchers.catch.controller import Controller, ppo_clip_loss
from transfernas.searchers.catch.encoder import kl_to_standard_normal, product_of_gaussians
from transfernas.searchers.catch.evaluator import PrioritizedReplay
from transfernas.spaces import is_valid


def test_product_of_two_gaussians_closed_form():
    # N(0, 1) · N(2, 1) ∝ N(1, 1/2); N(0, 1) · N(3, 4) ∝ N(3/5, 4/5)
    mu, var = product_of_gaussians(
        torch.tensor([[0.0, 0.0], [2.0, 3.0]]), torch.tensor([[1.0, 1.0], [1.0, 4.0]])
    )
    assert torch.allclose(mu, torch.tensor([1.0, 0.6]))
    assert torch.allclose(var, torch.tensor([0.5, 0.8]))


def test_product_of_gaussians_matches_density_product():
    rng = np.random.default_rng(0)
    mu_i, var_i = rng.normal(size=5), rng.uniform(0.2, 3.0, size=5)
    mu, var = product_of_gaussians(torch.tensor(mu_i[:, None]), torch.tensor(var_i[:, None]))
    x = np.linspace(-4, 4, 2001)
    log_prod = sum(-0.5 * (x - m) ** 2 / v for m, v in zip(mu_i, var_i, strict=True))
    density = np.exp(log_prod - log_prod.max())
    density /= np.trapezoid(density, x)
    assert np.trapezoid(x * density, x) == pytest.approx(mu.item(), abs=1e-6)
    assert np.trapezoid((x - mu.item()) ** 2 * density, x) == pytest.approx(var.item(), rel=1e-4)


def test_kl_to_standard_normal_values():
    assert kl_to_standard_normal(torch.zeros(10), torch.ones(10)).item() == pytest.approx(0.0)
    expected = 0.5 * (2.0 + 1.0 - 1.0 - math.log(2.0)) + 0.5 * (0.5 + 0.0 - 1.0 - math.log(0.5))
    assert kl_to_standard_normal(
        torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.5])
    ).item() == pytest.approx(expected)


def _ppo_grad(ratio: float, advantage: float, clip: float = 0.2) -> float:
    logp = torch.tensor([math.log(ratio)], requires_grad=True)
    ppo_clip_loss(logp, torch.zeros(1), torch.tensor([advantage]), clip).backward()
    return logp.grad.item()


@pytest.mark.parametrize(
    ("ratio", "advantage", "clipped"),
    [
        (1.1, 1.0, False),  # inside the trust region: gradient flows
        (1.25, 1.0, True),  # above 1 + ε with A > 0: no incentive to go further
        (0.75, -1.0, True),  # below 1 − ε with A < 0: likewise
        (0.75, 1.0, False),  # below 1 − ε with A > 0: the unclipped term is the min
        (1.25, -1.0, False),  # above 1 + ε with A < 0: the unclipped term is the min
    ],
)
def test_ppo_clip_at_boundary(ratio, advantage, clipped):
    grad = _ppo_grad(ratio, advantage)
    if clipped:
        assert grad == 0.0
    else:
        assert grad == pytest.approx(-ratio * advantage)  # d(−r·A)/d log r


def test_ppo_loss_value_is_clipped_surrogate():
    loss = ppo_clip_loss(
        torch.log(torch.tensor([1.5, 0.5])), torch.zeros(2), torch.tensor([2.0, -1.0]), 0.2
    )
    assert loss.item() == pytest.approx(-(1.2 * 2.0 + 0.8 * -1.0) / 2)


def test_per_probabilities_and_importance_weights():
    per = PrioritizedReplay(alpha=0.5, beta=0.4)
    for _ in range(3):
        per.add()
    per.update(np.array([0, 1, 2]), np.array([3.0, -1.0, 0.0]))  # |δ| + ε
    p = np.array([3.0, 1.0, 0.0]) + per.eps
    expected = p**0.5 / (p**0.5).sum()
    assert np.allclose(per.probabilities(), expected)
    idx, w = per.sample(4000, np.random.default_rng(0))
    assert np.allclose(np.bincount(idx, minlength=3) / 4000, expected, atol=0.03)
    raw = (3 * expected[idx]) ** -0.4
    assert np.allclose(w, raw / raw.max())
    per.add()  # a new entry gets the highest priority so far
    assert per.priorities[-1] == pytest.approx(3.0 + per.eps)


def test_controller_never_emits_masked_actions(toy_space):
    torch.manual_seed(0)
    ctrl = Controller(toy_space.choices, latent_dim=4, hidden=16)
    with torch.no_grad():  # push the logits hard towards invalid options
        ctrl.net[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 20.0]))
    rng = np.random.default_rng(0)
    actions, logp, masks = ctrl.sample(torch.randn(4), 500, toy_space, rng)
    assert all(is_valid(toy_space, a) for a in actions)
    assert np.isfinite(logp).all()
    assert all(masks[i, step, a] for i, row in enumerate(actions) for step, a in enumerate(row))


def test_controller_log_prob_matches_sampling(toy_space):
    torch.manual_seed(1)
    ctrl = Controller(toy_space.choices, latent_dim=3, hidden=8)
    z = torch.randn(3)
    actions, logp, masks = ctrl.sample(z, 64, toy_space, np.random.default_rng(1))
    recomputed, entropy = ctrl.log_prob(z, actions, masks)
    assert np.allclose(recomputed.detach().numpy(), logp, atol=1e-5)
    assert entropy.item() > 0
