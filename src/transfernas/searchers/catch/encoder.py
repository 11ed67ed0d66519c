"""Context encoder q_φ(z | c_1:N) (CATCH §3.1, after PEARL).

Each context c_i = (one-hot of network m_i, normalised reward r̂_i) gives a Gaussian factor
N(μ_i, diag σ_i²); the posterior over the task's latent z is their product, a Gaussian whose
precision is the sum of the factors' precisions. z is drawn with the reparameterisation trick
so the losses of controller and evaluator train the encoder, and KL(q ‖ N(0, I)) bounds how
much z may say about the task (an information bottleneck, weight β).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from transfernas.searchers.nets import mlp

MIN_VAR = 1e-4


def product_of_gaussians(mu: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Product of N(mu_i, var_i) over dim 0: precision-weighted mean, summed precision."""
    precision = 1.0 / var
    post_var = 1.0 / precision.sum(dim=0)
    post_mu = post_var * (mu * precision).sum(dim=0)
    return post_mu, post_var


def kl_to_standard_normal(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag var) ‖ N(0, I)) = ½ Σ (var + mu² − 1 − log var)."""
    return 0.5 * (var + mu.pow(2) - 1.0 - var.log()).sum()


class ContextEncoder(nn.Module):
    def __init__(self, arch_dim: int, latent_dim: int, hidden: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp(arch_dim + 1, hidden, 2 * latent_dim)

    def forward(
        self, arch_onehot: torch.Tensor, reward: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and variance of z given N contexts ``(N, arch_dim)``, ``(N,)``."""
        out = self.net(torch.cat([arch_onehot, reward.unsqueeze(-1)], dim=-1))
        mu, raw_var = out.split(self.latent_dim, dim=-1)
        return product_of_gaussians(mu, F.softplus(raw_var) + MIN_VAR)
