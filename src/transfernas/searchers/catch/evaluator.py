"""Network evaluator f_θe(m, z) and its prioritized experience replay (CATCH §3.3, §3.4).

The evaluator scores candidate networks so that only the most promising of the controller's M
samples is trained. It regresses the normalised reward with a Huber loss on batches drawn by
proportional PER (Schaul et al. 2016): P(i) ∝ p_i^α with p_i = |δ_i| + ε, corrected by
importance weights w_i = (N·P(i))^−β / max_j w_j.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from transfernas.searchers.nets import Rows, mlp


class Evaluator(nn.Module):
    def __init__(self, arch_dim: int, latent_dim: int, hidden: int):
        super().__init__()
        self.net = mlp(arch_dim + latent_dim, hidden, 1)

    def forward(self, arch_onehot: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([arch_onehot, z.expand(len(arch_onehot), -1)], dim=1)).squeeze(-1)


class PrioritizedReplay:
    """Priorities of the evaluator's memory; the entries themselves live with the agent."""

    def __init__(self, alpha: float, beta: float, eps: float = 1e-3):
        self.alpha, self.beta, self.eps = alpha, beta, eps
        self._priorities = Rows()

    @property
    def priorities(self) -> np.ndarray:
        return self._priorities.view

    def __len__(self) -> int:
        return len(self._priorities)

    def add(self) -> None:
        """New entries get the highest priority so far, so each one is replayed soon."""
        self._priorities.append(self.priorities.max() if len(self) else 1.0)

    def probabilities(self) -> np.ndarray:
        p = self.priorities**self.alpha
        return p / p.sum()

    def sample(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``k`` indices drawn with replacement ∝ priority^α, and their normalised IS weights."""
        probs = self.probabilities()
        idx = rng.choice(len(probs), size=k, replace=True, p=probs)
        weights = (len(probs) * probs[idx]) ** (-self.beta)
        return idx, weights / weights.max()

    def update(self, idx: np.ndarray, td_error: np.ndarray) -> None:
        """p_i = |δ_i| + ε (in float64); an index drawn twice keeps its last error."""
        self.priorities[idx] = np.abs(td_error).astype(np.float64) + self.eps

    def state_dict(self) -> dict[str, Any]:
        return {"priorities": self.priorities.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._priorities = Rows()
        for p in state["priorities"]:
            self._priorities.append(float(p))
