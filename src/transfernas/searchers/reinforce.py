"""REINFORCE (Williams 1992) with one categorical distribution per decision.

As in NAS-Bench-201's REINFORCE baseline: logits initialised at 1e-3·N(0, 1), Adam with
learning rate 0.01, advantage = reward − a bias-corrected exponential moving average of the
rewards (momentum 0.9, updated with the new reward first). Invalid options are masked out of
the softmax, so the policy never proposes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field

from transfernas.searchers.base import Searcher, SearcherConfig, sample_masked
from transfernas.spaces.base import Actions


class ReinforceConfig(SearcherConfig):
    learning_rate: float = Field(0.01, gt=0, description="Adam step size (NB201: 0.01)")
    baseline_momentum: float = Field(0.9, ge=0, lt=1, description="EMA momentum of the baseline")
    init_std: float = Field(1e-3, ge=0, description="std of the initial logits")


class Reinforce(Searcher):
    name = "reinforce"
    Config = ReinforceConfig
    config: ReinforceConfig

    def __init__(self, space, config=None, seed=0):
        super().__init__(space, config, seed)
        choices = space.choices
        gen = torch.Generator().manual_seed(seed)
        init = self.config.init_std * torch.randn(len(choices), max(choices), generator=gen)
        self.logits = torch.nn.Parameter(init)
        self.optimizer = torch.optim.Adam([self.logits], lr=self.config.learning_rate)
        self.baseline_num = 0.0
        self.baseline_den = 0.0

    def _masks(self, actions: Sequence[int]) -> np.ndarray:
        """Validity mask of every decision along ``actions`` (padded options are invalid)."""
        masks = np.zeros(tuple(self.logits.shape), dtype=bool)
        for i, k in enumerate(self.space.choices):
            masks[i, :k] = self.space.mask(actions[:i])
        return masks

    def ask(self, n: int = 1) -> list[Actions]:
        probs = torch.softmax(self.logits.detach(), dim=1).numpy()
        return [sample_masked(self.space, probs, self.rng) for _ in range(n)]

    def log_prob(self, actions: Sequence[int]) -> torch.Tensor:
        masks = torch.from_numpy(self._masks(actions))
        logp = torch.log_softmax(self.logits.masked_fill(~masks, float("-inf")), dim=1)
        return logp[torch.arange(len(actions)), torch.as_tensor(actions)].sum()

    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        for actions, reward in zip(candidates, rewards, strict=True):
            m = self.config.baseline_momentum
            self.baseline_num = m * self.baseline_num + (1 - m) * reward
            self.baseline_den = m * self.baseline_den + (1 - m)
            advantage = reward - self.baseline_num / self.baseline_den
            loss = -self.log_prob(actions) * advantage
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {
            "logits": self.logits.detach().clone(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": [self.baseline_num, self.baseline_den],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.logits.copy_(state["logits"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline_num, self.baseline_den = state["baseline"]
