"""L2NAS (Mills et al. 2023): a learned optimiser of continuous architecture parameters α.

The agent is DDPG-like with the changes of L2NAS §2.3:
  actor  μ(s) — MLP (3 × 128 ReLU on NB201, sigmoid out) from the state s = mean α of the
         top-k architectures found so far to a new α ∈ [0, 1]^{L×K}, plus U(−δ, δ) noise;
         α is discretised decision by decision: argmax of the row over the valid options.
  critic Q(α) — MLP predicting the reward of α itself (no state input), trained with the check
         loss of quantile regression at level q ≥ 0.9 so it tracks the best rewards α can
         reach, not the mean; the actor ascends Q(μ(s)).
  exploration — ε-greedy: a uniform random α with probability ε, annealed by a cosine from
         ε_start to ε_min over ``epsilon_steps`` (the first steps are then nearly all random,
         the random warm-up of §2.3).
  training — off-policy from a replay buffer of (s, α, r): after each evaluation
         min(⌈N/B⌉, max_batches) batches of B samples drawn with replacement, once N ≥ B
         (until then the untrained actor is not used: α is uniform).
Transfer (§2.4, ``l2nas-transfer``): meta_train pre-trains actor and critic on other tasks,
adapt fine-tunes them on the target starting at ε = ``finetune_epsilon_start``. Its critic
learns a rescaled reward, min–max over the task's evaluations so far, so tasks with different
accuracy ranges agree on what a good architecture is (our stand-in for the paper's eq. 7, see
docs/searchers.md); plain ``l2nas`` learns reward / ``reward_scale`` (eq. 3: accuracy in [0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from transfernas.searchers.base import Searcher, SearcherConfig
from transfernas.searchers.nets import mlp
from transfernas.spaces.base import Actions


class L2NASConfig(SearcherConfig):
    hidden: int = Field(128, ge=4, description="width of the hidden layers (paper, NB201: 128)")
    layers: int = Field(3, ge=1, description="hidden layers of actor and critic (paper: 3)")
    actor_lr: float = Field(1e-4, gt=0, description="Adam, actor (DDPG's value)")
    critic_lr: float = Field(1e-3, gt=0, description="Adam, critic (DDPG's value)")
    quantile: float = Field(0.9, gt=0, lt=1, description="q of the check loss (paper: ≥ 0.9)")
    top_k: int = Field(10, ge=1, description="state = mean α of the k best architectures")
    noise: float = Field(0.05, ge=0, le=0.5, description="δ of the U(−δ, δ) actor noise")
    epsilon_start: float = Field(1.0, ge=0, le=1, description="ε at the first step")
    epsilon_min: float = Field(0.05, ge=0, le=1, description="ε after the cosine annealing")
    epsilon_steps: int = Field(250, ge=1, description="steps over which ε is annealed")
    finetune_epsilon_start: float = Field(
        0.2, ge=0, le=1, description="ε at the first step of a search from pre-trained networks"
    )
    batch_size: int = Field(32, ge=1, description="B: replay samples per batch")
    max_batches: int = Field(4, ge=1, description="upper bound on batches per step")
    reward_scale: float = Field(100.0, gt=0, description="l2nas: critic target = reward / this")


def check_loss(pred: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    """Koenker's ρ_q(u) = u·(q − 1[u < 0]) with u = target − pred, averaged.

    Its minimiser over a constant pred is the q-quantile of the targets.
    """
    u = target - pred
    return (u * (q - (u < 0).float())).mean()


def cosine_epsilon(step: int, start: float, end: float, steps: int) -> float:
    """ε annealed from ``start`` to ``end`` by a half cosine over ``steps``, then constant."""
    t = min(step, steps) / steps
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))


class L2NAS(Searcher):
    name = "l2nas"
    Config = L2NASConfig
    config: L2NASConfig
    rescale: ClassVar[bool] = False  # min–max reward per task (the transfer variant)

    def __init__(self, space, config=None, seed=0):
        super().__init__(space, config, seed)
        c = self.config
        self.shape = (len(space.choices), max(space.choices))
        dim = self.shape[0] * self.shape[1]
        with torch.random.fork_rng(devices=[]):  # seeded init without touching global RNG
            torch.manual_seed(seed)
            self.actor = mlp(dim, c.hidden, dim, c.layers, out=nn.Sigmoid())
            self.critic = mlp(dim, c.hidden, 1, c.layers)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr, fused=True)
        self.pretrained = False
        self.begin_task()

    def begin_task(self) -> None:
        """New task: empty replay buffer and history, ε schedule restarted."""
        self.states: list[np.ndarray] = []
        self.alphas: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.steps = 0
        self.pending: dict[Actions, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.losses: list[tuple[float, float]] = []

    # ---- acting -----------------------------------------------------------------------------
    def epsilon(self) -> float:
        c = self.config
        start = c.finetune_epsilon_start if self.pretrained else c.epsilon_start
        return cosine_epsilon(self.steps, start, min(c.epsilon_min, start), c.epsilon_steps)

    def state(self) -> np.ndarray:
        """Mean α of the top-k architectures of this task (0.5 everywhere before any)."""
        if not self.rewards:
            return np.full(self.shape[0] * self.shape[1], 0.5, dtype=np.float32)
        best = np.argsort(-np.asarray(self.rewards), kind="stable")[: self.config.top_k]
        return np.mean([self.alphas[i] for i in best], axis=0).astype(np.float32)

    def discretise(self, alpha: np.ndarray) -> Actions:
        """Argmax of each decision's row of α over the options valid after the prefix."""
        rows = alpha.reshape(self.shape)
        actions: list[int] = []
        for i, k in enumerate(self.space.choices):
            scores = np.where(self.space.mask(actions), rows[i, :k], -np.inf)
            actions.append(int(np.argmax(scores)))
        return tuple(actions)

    def ask(self, n: int = 1) -> list[Actions]:
        out = []
        for _ in range(n):
            s = self.state()
            if self.rng.random() < self.epsilon() or len(self.rewards) < self.config.batch_size:
                alpha = self.rng.random(s.shape).astype(np.float32)
            else:
                with torch.no_grad():
                    mean = self.actor(torch.from_numpy(s)).numpy()
                delta = self.rng.uniform(-self.config.noise, self.config.noise, s.shape)
                alpha = np.clip(mean + delta, 0.0, 1.0).astype(np.float32)
            actions = self.discretise(alpha)
            self.pending.setdefault(actions, []).append((s, alpha))
            self.steps += 1
            out.append(actions)
        return out

    # ---- learning ---------------------------------------------------------------------------
    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        for actions, reward in zip(candidates, rewards, strict=True):
            actions = tuple(int(a) for a in actions)
            queue = self.pending.get(actions)
            if queue:
                s, alpha = queue.pop(0)
                if not queue:
                    del self.pending[actions]
            else:  # not asked by us (e.g. an injected evaluation): its one-hot is its α
                s, alpha = self.state(), self._onehot_alpha(actions)
            self.states.append(s)
            self.alphas.append(alpha)
            self.rewards.append(float(reward))
        n = len(self.rewards)
        if n >= self.config.batch_size:
            for _ in range(min(math.ceil(n / self.config.batch_size), self.config.max_batches)):
                self.losses.append(self._update())

    def _onehot_alpha(self, actions: Actions) -> np.ndarray:
        alpha = np.zeros(self.shape, dtype=np.float32)
        alpha[np.arange(len(actions)), actions] = 1.0
        return alpha.ravel()

    def targets(self) -> np.ndarray:
        r = np.asarray(self.rewards, dtype=np.float64)
        if not self.rescale:
            return r / self.config.reward_scale
        span = r.max() - r.min()
        return (r - r.min()) / span if span > 0 else np.zeros_like(r)

    def _update(self) -> tuple[float, float]:
        c = self.config
        idx = self.rng.integers(len(self.rewards), size=c.batch_size)
        s = torch.from_numpy(np.stack([self.states[i] for i in idx]))
        alpha = torch.from_numpy(np.stack([self.alphas[i] for i in idx]))
        target = torch.as_tensor(self.targets()[idx], dtype=torch.float32)
        loss_critic = check_loss(self.critic(alpha).squeeze(1), target, c.quantile)
        self.critic_opt.zero_grad()
        loss_critic.backward()
        self.critic_opt.step()
        loss_actor = -self.critic(self.actor(s)).mean()
        self.actor_opt.zero_grad()
        loss_actor.backward()  # the critic's grads are zeroed before its next step
        self.actor_opt.step()
        return float(loss_critic.detach()), float(loss_actor.detach())

    # ---- meta-learning and state ------------------------------------------------------------
    def task_stats(self) -> dict[str, float]:
        stats = {
            "best_reward": max(self.rewards, default=float("nan")),
            "n_evaluations": len(self.rewards),
        }
        if self.losses:
            critic, actor = np.mean(self.losses, axis=0)
            stats |= {"loss_critic": float(critic), "loss_actor": float(actor)}
        return stats

    def network_state(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict()}

    def load_network_state(self, state: dict[str, Any]) -> None:
        """Start from pre-trained networks: the search explores less (fine-tuning)."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.pretrained = True

    def state_dict(self) -> dict[str, Any]:
        def stack(xs: list[np.ndarray]) -> torch.Tensor | None:
            return torch.from_numpy(np.stack(xs)) if xs else None

        return super().state_dict() | {
            "networks": self.network_state(),
            "optimizers": [self.actor_opt.state_dict(), self.critic_opt.state_dict()],
            "pretrained": self.pretrained,
            "task": {
                "states": stack(self.states),
                "alphas": stack(self.alphas),
                "rewards": list(self.rewards),
                "steps": self.steps,
                "pending": [
                    [list(a), torch.from_numpy(s), torch.from_numpy(al)]
                    for a, queue in self.pending.items()
                    for s, al in queue
                ],
                "losses": [list(x) for x in self.losses],
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.actor.load_state_dict(state["networks"]["actor"])
        self.critic.load_state_dict(state["networks"]["critic"])
        self.actor_opt.load_state_dict(state["optimizers"][0])
        self.critic_opt.load_state_dict(state["optimizers"][1])
        self.pretrained = state["pretrained"]
        task = state["task"]
        self.states = list(task["states"].numpy()) if task["states"] is not None else []
        self.alphas = list(task["alphas"].numpy()) if task["alphas"] is not None else []
        self.rewards = list(task["rewards"])
        self.steps = task["steps"]
        self.pending = {}
        for a, s, al in task["pending"]:
            self.pending.setdefault(tuple(a), []).append((s.numpy(), al.numpy()))
        self.losses = [tuple(x) for x in task["losses"]]


class L2NASTransfer(L2NAS):
    """Pre-trained on other tasks (meta_train), fine-tuned on the target (§2.4)."""

    name = "l2nas-transfer"
    config_key: ClassVar[str] = "l2nas"
    rescale = True
    meta_trained = True
