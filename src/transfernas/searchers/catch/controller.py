"""RL controller π_θc(a_l | [a_1..a_{l-1}, 0..0], z) (CATCH §3.2).

An MLP reads z and the one-hot vectors of the decisions taken so far (untaken ones zero) and
outputs logits over the next decision's options; invalid options are masked out before the
softmax. Trained with PPO's clipped surrogate on normalised rewards.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from transfernas.searchers.nets import mlp, offsets, onehot
from transfernas.spaces.base import ActionSpace, masks_of


class Controller(nn.Module):
    def __init__(self, choices: tuple[int, ...], latent_dim: int, hidden: int):
        super().__init__()
        self.choices = choices
        self.offsets = offsets(choices)
        self.arch_dim = int(sum(choices))
        self.max_k = max(choices)
        self.net = mlp(latent_dim + self.arch_dim, hidden, self.max_k)
        # feature j of the one-hot belongs to decision decision_of[j]
        self.register_buffer(
            "decision_of",
            torch.repeat_interleave(torch.arange(len(choices)), torch.tensor(choices)),
            persistent=False,
        )

    def onehot(self, actions: np.ndarray) -> torch.Tensor:
        """``(B, L)`` actions → ``(B, arch_dim)`` concatenated one-hot vectors."""
        return onehot(np.asarray(actions).reshape(-1, len(self.choices)), self.choices)

    def sample(
        self, z: torch.Tensor, n: int, space: ActionSpace, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw ``n`` networks: actions ``(n, L)``, their log-probs, and masks ``(n, L, K)``."""
        L = len(self.choices)
        actions = np.zeros((n, L), dtype=np.int64)
        masks = np.zeros((n, L, self.max_k), dtype=bool)
        logp = np.zeros(n)
        prefix = torch.zeros(n, self.arch_dim)
        zs = z.expand(n, -1)
        with torch.no_grad():
            for step, k in enumerate(self.choices):
                masks[:, step, :k] = masks_of(space, actions[:, :step])
                logits = self.net(torch.cat([zs, prefix], dim=1))
                logits = logits.masked_fill(~torch.from_numpy(masks[:, step]), float("-inf"))
                log_probs = torch.log_softmax(logits, dim=1).double().numpy()
                cdf = np.cumsum(np.exp(log_probs), axis=1)
                u = rng.random(n)[:, None] * cdf[:, -1:]
                choice = np.minimum((cdf <= u).sum(axis=1), k - 1)
                choice = np.where(
                    masks[np.arange(n), step, choice], choice, log_probs.argmax(axis=1)
                )
                actions[:, step] = choice
                logp += log_probs[np.arange(n), choice]
                prefix[torch.arange(n), torch.from_numpy(choice + self.offsets[step])] = 1.0
        return actions, logp, masks

    def log_prob(
        self, z: torch.Tensor, actions: np.ndarray, masks: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability ``(B,)`` of whole networks and mean per-decision entropy, in one pass.

        The input of decision l is the one-hot of decisions < l: the full one-hot times a
        lower-triangular selector, so all L decisions of all B networks go through the MLP at once.
        """
        B, L = actions.shape
        full = self.onehot(actions)  # (B, D)
        taken = self.decision_of.unsqueeze(0) < torch.arange(L).unsqueeze(1)  # (L, D)
        prefix = full.unsqueeze(1) * taken.unsqueeze(0)  # (B, L, D)
        inputs = torch.cat([z.expand(B, L, -1), prefix], dim=-1)
        logits = self.net(inputs).masked_fill(~torch.from_numpy(masks), float("-inf"))
        log_probs = torch.log_softmax(logits, dim=-1)
        chosen = log_probs.gather(-1, torch.from_numpy(actions).unsqueeze(-1)).squeeze(-1)
        probs = log_probs.exp()
        entropy = -(probs * log_probs.masked_fill(~torch.from_numpy(masks), 0.0)).sum(-1)
        return chosen.sum(dim=1), entropy.mean()


def ppo_clip_loss(
    logp: torch.Tensor, logp_old: torch.Tensor, advantage: torch.Tensor, clip: float
) -> torch.Tensor:
    """PPO's clipped surrogate, negated for minimisation (Schulman et al. 2017, eq. 7)."""
    ratio = torch.exp(logp - logp_old)
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    return -torch.min(ratio * advantage, clipped * advantage).mean()
