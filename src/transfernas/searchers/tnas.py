"""TNAS (transformer-VAE architecture sampler) as a black-box searcher.

A VAE whose encoder and decoder are transformer encoders over the architecture's token
sequence (one token per decision, plus a position embedding) is trained on the best
architectures found so far (TNAS §3: top-k of the search history, ELBO of eq. 2). Candidates
come from the mixture of eq. 11, Γ(α) = (1 − ε)·U(α) + ε·p_θ(α | z), z ~ N(0, I): with
probability ε the decoder's sample, otherwise a uniform one. ε starts at 0 and grows by
``epsilon_inc`` with every training round of the VAE (TNAS's ε_inc per supernet epoch; a
round here is ``train_every`` evaluations), up to ``epsilon_max``.

TNAS uses the sampler inside one-shot or gradient NAS; on a tabular or trained task the
sampler's candidates are evaluated directly (no supernet). Samples already evaluated are
redrawn (up to ``max_redraws`` times) so queries are not wasted on repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from transfernas.searchers.base import Searcher, SearcherConfig, sample_masked
from transfernas.searchers.nets import offsets
from transfernas.spaces.base import Actions, sample_actions


class TNASConfig(SearcherConfig):
    d_model: int = Field(32, ge=4, description="transformer width")
    n_heads: int = Field(2, ge=1, description="attention heads (must divide d_model)")
    n_layers: int = Field(2, ge=1, description="transformer blocks in encoder and in decoder")
    latent_dim: int = Field(8, ge=1, description="dim of z")
    kl_weight: float = Field(1.0, ge=0, description="weight of KL(q(z|α) ‖ N(0, I)) in the ELBO")
    learning_rate: float = Field(1e-3, gt=0, description="Adam")
    top_k: int = Field(20, ge=1, description="the VAE trains on the k best architectures")
    train_every: int = Field(10, ge=1, description="evaluations between training rounds")
    train_steps: int = Field(20, ge=1, description="full-batch Adam steps per round")
    epsilon_inc: float = Field(0.1, ge=0, le=1, description="ε grows by this per round (TNAS)")
    epsilon_max: float = Field(1.0, ge=0, le=1, description="ε stops growing here")
    max_redraws: int = Field(20, ge=0, description="redraws of an already-evaluated sample")


class TransformerVAE(nn.Module):
    """q(z | α) and p(α | z) over fixed-length decision sequences (non-autoregressive decoder)."""

    def __init__(self, choices: tuple[int, ...], c: TNASConfig):
        super().__init__()
        self.choices = choices
        self.offsets = torch.from_numpy(offsets(choices))
        self.max_k = max(choices)
        n, d = len(choices), c.d_model
        self.tokens = nn.Embedding(int(sum(choices)), d)
        self.position = nn.Parameter(torch.randn(n, d) * 0.02)

        def blocks() -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(d, c.n_heads, 2 * d, dropout=0.0, batch_first=True)
            return nn.TransformerEncoder(layer, c.n_layers, enable_nested_tensor=False)

        self.encoder = blocks()
        self.to_latent = nn.Linear(d, 2 * c.latent_dim)
        self.from_latent = nn.Linear(c.latent_dim, d)
        self.decoder = blocks()
        self.to_logits = nn.Linear(d, self.max_k)
        # option j of decision i exists when j < choices[i]
        exists = torch.arange(self.max_k) < torch.tensor(choices).unsqueeze(1)
        self.register_buffer("exists", exists, persistent=False)

    def encode(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(self.tokens(actions + self.offsets) + self.position)
        mu, logvar = self.to_latent(h.mean(dim=1)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, K); options that do not exist at a decision are −inf."""
        h = self.decoder(self.from_latent(z).unsqueeze(1) + self.position)
        return self.to_logits(h).masked_fill(~self.exists, float("-inf"))

    def loss(
        self, actions: torch.Tensor, noise: torch.Tensor, kl_weight: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Negative ELBO (mean over the batch) and the reconstruction term alone."""
        mu, logvar = self.encode(actions)
        z = mu + (0.5 * logvar).exp() * noise
        logits = self.decode(z)
        recon = F.cross_entropy(logits.flatten(0, 1), actions.flatten(), reduction="sum")
        recon = recon / len(actions)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()
        return recon + kl_weight * kl, recon


class TNAS(Searcher):
    name = "tnas"
    Config = TNASConfig
    config: TNASConfig

    def __init__(self, space, config=None, seed=0):
        super().__init__(space, config, seed)
        if self.config.d_model % self.config.n_heads:
            raise ValueError("searchers.tnas.n_heads must divide searchers.tnas.d_model")
        with torch.random.fork_rng(devices=[]):  # seeded init without touching global RNG
            torch.manual_seed(seed)
            self.vae = TransformerVAE(tuple(space.choices), self.config)
        self.optimizer = torch.optim.Adam(
            self.vae.parameters(), lr=self.config.learning_rate, fused=True
        )
        self.actions: list[Actions] = []
        self.rewards: list[float] = []
        self.rounds = 0
        self.recon_log: list[float] = []

    @property
    def epsilon(self) -> float:
        return min(self.config.epsilon_inc * self.rounds, self.config.epsilon_max)

    # ---- sampling ---------------------------------------------------------------------------
    def sample_vae(self, n: int) -> list[Actions]:
        """n draws from p(α | z), z ~ N(0, I), decision by decision over the valid options."""
        z = torch.as_tensor(
            self.rng.standard_normal((n, self.config.latent_dim)), dtype=torch.float32
        )
        with torch.no_grad():
            probs = torch.softmax(self.vae.decode(z), dim=2).numpy()
        return [sample_masked(self.space, row, self.rng) for row in probs]

    def ask(self, n: int = 1) -> list[Actions]:
        seen = set(self.actions)
        out: list[Actions] = []
        for _ in range(n):
            from_vae = self.rng.random() < self.epsilon
            for _ in range(self.config.max_redraws + 1):
                cand = self.sample_vae(1)[0] if from_vae else sample_actions(self.space, self.rng)
                if cand not in seen:
                    break
            seen.add(cand)
            out.append(cand)
        return out

    # ---- learning ---------------------------------------------------------------------------
    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        for actions, reward in zip(candidates, rewards, strict=True):
            self.actions.append(tuple(int(a) for a in actions))
            self.rewards.append(float(reward))
            if len(self.rewards) % self.config.train_every == 0:
                self.recon_log.append(self.train_round())

    def train_round(self) -> float:
        """Fit the VAE to the top-k architectures so far; ε grows. Returns the last recon loss."""
        c = self.config
        best = np.argsort(-np.asarray(self.rewards), kind="stable")[: c.top_k]
        data = torch.as_tensor(np.asarray([self.actions[i] for i in best]), dtype=torch.long)
        recon = torch.zeros(())
        for _ in range(c.train_steps):
            noise = torch.as_tensor(
                self.rng.standard_normal((len(data), c.latent_dim)), dtype=torch.float32
            )
            loss, recon = self.vae.loss(data, noise, c.kl_weight)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.rounds += 1
        return float(recon.detach())

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {
            "vae": self.vae.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "actions": [list(a) for a in self.actions],
            "rewards": list(self.rewards),
            "rounds": self.rounds,
            "recon_log": list(self.recon_log),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.vae.load_state_dict(state["vae"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.actions = [tuple(a) for a in state["actions"]]
        self.rewards = list(state["rewards"])
        self.rounds = state["rounds"]
        self.recon_log = list(state["recon_log"])
