"""NASNet-style RNN controller (Zoph & Le 2017; Zoph et al. 2018), trained with REINFORCE.

An LSTM emits one decision per step: its input is the embedding of the previous decision (a
start token first), its hidden state goes through that decision's own softmax classifier
(NASNet's "distinct softmax classifiers"), invalid options masked out. The policy gradient is
REINFORCE with an exponential-moving-average baseline (NAS 2017), plus a small entropy bonus;
one Adam step per ``tell`` on the mean loss of the told candidates. Sizes: NASNet's one-layer
LSTM with 100 units; U(−0.08, 0.08) initialisation, learning rate 6e-4 and the EMA baseline
from NAS 2017 (NASNet's PPO is not used: the simple-policy baseline here is ``reinforce``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

from transfernas.searchers.base import Searcher, SearcherConfig, categorical
from transfernas.searchers.nets import offsets
from transfernas.spaces.base import Actions, ActionSpace, masks_of


class RNNControllerConfig(SearcherConfig):
    hidden: int = Field(100, ge=4, description="LSTM units (NASNet: one layer of 100)")
    learning_rate: float = Field(6e-4, gt=0, description="Adam step size (NAS 2017: 0.0006)")
    baseline_decay: float = Field(0.95, ge=0, lt=1, description="EMA decay of the baseline")
    entropy_coef: float = Field(1e-4, ge=0, description="entropy bonus (ENAS: 1e-4)")


class Policy(nn.Module):
    """Autoregressive LSTM policy over the decisions of an action space."""

    def __init__(self, choices: tuple[int, ...], hidden: int):
        super().__init__()
        self.choices = choices
        self.offsets = offsets(choices)
        self.start = int(sum(choices))  # token of "no decision yet"
        self.embed = nn.Embedding(self.start + 1, hidden)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in choices)
        for p in self.parameters():  # NAS 2017: U(−0.08, 0.08), a near-uniform first policy
            nn.init.uniform_(p, -0.08, 0.08)

    def step(
        self, i: int, prev: torch.Tensor, hc: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Logits of decision ``i`` given the previous tokens ``prev`` (B,) and LSTM state."""
        h, c = self.cell(self.embed(prev), hc)
        return self.heads[i](h), (h, c)

    def token(self, i: int, actions: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(actions, dtype=np.int64) + self.offsets[i])

    def logits(self, actions: np.ndarray) -> list[torch.Tensor]:
        """Teacher-forced logits of every decision along ``actions`` (B, L)."""
        prev = torch.full((len(actions),), self.start, dtype=torch.long)
        hc = None
        out = []
        for i in range(len(self.choices)):
            logits, hc = self.step(i, prev, hc)
            out.append(logits)
            prev = self.token(i, actions[:, i])
        return out

    def log_prob(
        self, actions: np.ndarray, masks: list[np.ndarray], logits: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log π(actions) (B,) and the mean per-decision entropy, from teacher-forced
        ``logits`` (:meth:`logits`)."""
        logp = torch.zeros(len(actions))
        entropy = torch.zeros(())
        for i in range(len(self.choices)):
            log_probs = torch.log_softmax(
                logits[i].masked_fill(~torch.from_numpy(masks[i]), float("-inf")), dim=1
            )
            taken = torch.from_numpy(actions[:, i])
            logp = logp + log_probs.gather(1, taken.unsqueeze(1)).squeeze(1)
            p = log_probs.exp()
            entropy = entropy - (p * log_probs.nan_to_num(neginf=0.0)).sum(1).mean()
        return logp, entropy / len(self.choices)


def masks_of_each(space: ActionSpace, actions: np.ndarray) -> list[np.ndarray]:
    """Validity mask of each decision (B, k_i) along the action sequences ``actions`` (B, L)."""
    return [masks_of(space, actions[:, :i]) for i in range(len(space.choices))]


class RNNController(Searcher):
    name = "nasnet-rnn"
    Config = RNNControllerConfig
    config: RNNControllerConfig

    def __init__(self, space, config=None, seed=0):
        super().__init__(space, config, seed)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching global RNG
            torch.manual_seed(seed)
            self.policy = Policy(tuple(space.choices), self.config.hidden)
        self.optimizer = torch.optim.Adam(
            self.policy.parameters(), lr=self.config.learning_rate, fused=True
        )
        self.baseline: float | None = None
        # the last asked batch and its logits, graph kept: telling exactly that batch back
        # (the usual case) reuses the forward instead of running the LSTM again
        self._asked: tuple[np.ndarray, list[torch.Tensor]] | None = None

    def ask(self, n: int = 1) -> list[Actions]:
        actions = np.zeros((n, len(self.space.choices)), dtype=np.int64)
        prev = torch.full((n,), self.policy.start, dtype=torch.long)
        hc = None
        all_logits = []
        for i in range(len(self.space.choices)):
            logits, hc = self.policy.step(i, prev, hc)
            all_logits.append(logits)
            probs = torch.softmax(logits.detach(), dim=1).numpy()
            for row in range(n):
                valid = probs[row] * self.space.mask(actions[row, :i])
                actions[row, i] = categorical(self.rng, valid)
            prev = self.policy.token(i, actions[:, i])
        self._asked = (actions, all_logits)
        return [tuple(int(a) for a in row) for row in actions]

    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        actions = np.asarray(candidates, dtype=np.int64).reshape(len(candidates), -1)
        advantages = []
        for reward in rewards:  # the baseline sees the rewards one by one, as they arrive
            if self.baseline is None:
                self.baseline = float(reward)
            advantages.append(float(reward) - self.baseline)
            d = self.config.baseline_decay
            self.baseline = d * self.baseline + (1 - d) * float(reward)
        asked, self._asked = self._asked, None
        same = asked is not None and np.array_equal(asked[0], actions)
        logits = asked[1] if same else self.policy.logits(actions)
        logp, entropy = self.policy.log_prob(actions, masks_of_each(self.space, actions), logits)
        loss = -(logp * torch.tensor(advantages)).mean() - self.config.entropy_coef * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
        self._asked = None  # its logits are of the weights just replaced
