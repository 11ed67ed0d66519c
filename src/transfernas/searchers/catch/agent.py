"""CATCHer: context encoder + PPO controller + PER evaluator behind ask/tell (CATCH Alg. 1).

Per task (``begin_task`` resets it; ε is reset too):
  ask  — the first ``n_init`` networks are random (the initial search history); after that
         z ~ q(z | C contexts from the history), the controller samples M candidates, and the
         evaluator's best not-yet-evaluated one is returned (a random candidate with prob. ε).
  tell — the (network, reward) pair joins the history and the evaluator's replay memory, then
         ``updates_per_step`` gradient steps on L_c + L_e + β·KL (eq. 2), z re-drawn each time
         so the encoder learns through both losses.
Rewards are normalised over the current task's history (zero mean, unit std), which makes
tasks with different accuracy scales comparable for the meta-learned networks.

The agent sees only the action space (decision sizes + masks): it is search-space agnostic.
Variants: ``catch-meta`` (meta-trained, z from the posterior), ``catch-sfs`` (no meta-training),
``catch-zero`` (z = 0: no encoder), ``catch-random`` (z ~ N(0, I)); zero/random use their z
in meta-training and adaptation alike, so the ablation isolates what the encoder contributes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch.nn import functional as F

from transfernas.searchers.base import Searcher, SearcherConfig
from transfernas.searchers.catch.controller import Controller, ppo_clip_loss
from transfernas.searchers.catch.encoder import ContextEncoder, kl_to_standard_normal
from transfernas.searchers.catch.evaluator import Evaluator, PrioritizedReplay
from transfernas.searchers.nets import Rows
from transfernas.spaces.base import Actions, sample_actions

ZMode = Literal["posterior", "zero", "prior"]


class CatchConfig(SearcherConfig):
    """Shared by all CATCH variants (``searchers.catch`` in parameters). See docs/catch.md."""

    latent_dim: int = Field(10, ge=1, description="dim of z (paper: 10)")
    kl_weight: float = Field(0.1, ge=0, description="β of the KL term (paper: 0.1)")
    hidden: int = Field(64, ge=4, description="width of every MLP (2 hidden layers)")
    n_init: int = Field(3, ge=1, description="random networks that start each task's history")
    n_candidates: int = Field(16, ge=1, description="M: controller samples per evaluated network")
    n_contexts: int = Field(16, ge=1, description="C: contexts drawn from the history to encode")
    learning_rate: float = Field(3e-3, gt=0, description="Adam, all three networks")
    updates_per_step: int = Field(4, ge=0, description="gradient steps after each evaluation")
    ppo_clip: float = Field(0.2, gt=0, description="PPO clip range ε")
    ppo_window: int = Field(32, ge=1, description="most recent controller samples PPO trains on")
    entropy_coef: float = Field(0.01, ge=0, description="entropy bonus of the controller")
    huber_delta: float = Field(1.0, gt=0, description="Huber loss threshold (normalised reward)")
    per_alpha: float = Field(0.6, ge=0, description="PER priority exponent")
    per_beta: float = Field(0.4, ge=0, le=1, description="PER importance-weight exponent")
    per_batch_fraction: float = Field(
        0.8, gt=0, le=1, description="share of memory per batch (paper: 80%)"
    )
    epsilon_start: float = Field(
        0.2, ge=0, le=1, description="ε-greedy candidate choice, reset per task"
    )
    epsilon_decay: float = Field(0.9, gt=0, le=1, description="ε ← max(ε·decay, ε_min) per step")
    epsilon_min: float = Field(0.02, ge=0, le=1, description="floor of ε")
    skip_evaluated: bool = Field(
        True, description="never pick a network already evaluated on the task"
    )


class Catch(Searcher):
    name = "catch"
    config_key: ClassVar[str] = "catch"
    Config = CatchConfig
    config: CatchConfig
    z_mode: ClassVar[ZMode] = "posterior"
    meta_trained = True

    def __init__(self, space, config=None, seed=0):
        super().__init__(space, config, seed)
        c = self.config
        choices = tuple(space.choices)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching global RNG
            torch.manual_seed(seed)
            self.controller = Controller(choices, c.latent_dim, c.hidden)
            self.encoder = ContextEncoder(self.controller.arch_dim, c.latent_dim, c.hidden)
            self.evaluator = Evaluator(self.controller.arch_dim, c.latent_dim, c.hidden)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=c.learning_rate, fused=True)
        self.begin_task()

    def parameters(self) -> list[torch.nn.Parameter]:
        return [
            p for net in (self.encoder, self.controller, self.evaluator) for p in net.parameters()
        ]

    # ---- per-task state ---------------------------------------------------------------------
    def begin_task(self) -> None:
        """Start a new task: empty history and replay memory, ε back to its start value."""
        self._new_history()
        self.from_policy: list[int] = []  # history positions sampled by the controller
        self.logp_old: list[float] = []  # their log-prob when sampled
        self.masks: list[np.ndarray] = []  # their validity masks (L, K)
        self.replay = PrioritizedReplay(self.config.per_alpha, self.config.per_beta)
        self.epsilon = self.config.epsilon_start
        self.pending: dict[Actions, tuple[float, np.ndarray]] = {}
        self.loss_log: list[list[float]] = []

    def _new_history(self) -> None:
        """The task's history, kept once: actions and rewards as rows (read by every update),
        their one-hot codes (the encoder's and evaluator's input, computed once per network)
        and the set of evaluated networks (what ``ask`` must not propose again)."""
        self.action_rows = Rows((len(self.space.choices),), np.int64)
        self.onehot_rows = Rows((self.controller.arch_dim,), np.float32)
        self.reward_rows = Rows()
        self.evaluated: set[Actions] = set()

    # ---- acting -----------------------------------------------------------------------------
    def _normalised(self) -> torch.Tensor:
        r = self.reward_rows.view
        std = r.std() if len(r) > 1 else 1.0
        return torch.as_tensor((r - r.mean()) / (std if std > 1e-12 else 1.0), dtype=torch.float32)

    def _z(self, r_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z for the current task, and the KL of its posterior (0 for the zero/prior variants)."""
        dim = self.config.latent_dim
        if self.z_mode == "zero":
            return torch.zeros(dim), torch.zeros(())
        noise = torch.as_tensor(self.rng.standard_normal(dim), dtype=torch.float32)
        if self.z_mode == "prior":
            return noise, torch.zeros(())
        n = len(self.reward_rows)
        idx = self.rng.choice(n, size=min(self.config.n_contexts, n), replace=False)
        onehot = torch.from_numpy(self.onehot_rows.view[idx])
        mu, var = self.encoder(onehot, r_hat[idx])
        return mu + var.sqrt() * noise, kl_to_standard_normal(mu, var)

    def ask(self, n: int = 1) -> list[Actions]:
        out: list[Actions] = []
        seen = self.evaluated | set(self.pending)
        while len(out) < n:
            if len(self.reward_rows) + len(self.pending) + len(out) < self.config.n_init:
                out.append(sample_actions(self.space, self.rng))
                continue
            out.append(self._propose(seen | set(out)))
        return out

    def _propose(self, seen: set[Actions]) -> Actions:
        with torch.no_grad():
            z, _ = (
                self._z(self._normalised())
                if len(self.reward_rows)
                else (torch.zeros(self.config.latent_dim), None)
            )
            cands, logp, masks = self.controller.sample(
                z, self.config.n_candidates, self.space, self.rng
            )
            scores = self.evaluator(self.controller.onehot(cands), z).numpy()
        keys = [tuple(int(a) for a in row) for row in cands]
        fresh = [i for i, k in enumerate(keys) if not (self.config.skip_evaluated and k in seen)]
        if not fresh:  # the policy has collapsed onto evaluated networks: explore uniformly
            for _ in range(1000):
                actions = sample_actions(self.space, self.rng)
                if actions not in seen:
                    return actions
            return keys[int(np.argmax(scores))]
        if self.rng.random() < self.epsilon:
            pick = fresh[int(self.rng.integers(len(fresh)))]
        else:
            pick = max(fresh, key=lambda i: scores[i])
        self.pending[keys[pick]] = (float(logp[pick]), masks[pick])
        return keys[pick]

    # ---- learning ---------------------------------------------------------------------------
    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        for actions, reward in zip(candidates, rewards, strict=True):
            actions = tuple(int(a) for a in actions)
            if actions in self.pending:
                logp, mask = self.pending.pop(actions)
                self.from_policy.append(len(self.reward_rows))
                self.logp_old.append(logp)
                self.masks.append(mask)
            self._append_rows(actions, float(reward))
            self.replay.add()
        self.epsilon = max(self.epsilon * self.config.epsilon_decay, self.config.epsilon_min)
        if len(self.reward_rows) >= 2:
            for _ in range(self.config.updates_per_step):
                self.loss_log.append(self._update())

    def _append_rows(self, actions: Actions, reward: float) -> None:
        self.evaluated.add(actions)
        self.action_rows.append(actions)
        self.onehot_rows.append(self.controller.onehot(np.asarray([actions]))[0].numpy())
        self.reward_rows.append(reward)

    def _update(self) -> list[float]:
        c = self.config
        r_hat = self._normalised()
        z, kl = self._z(r_hat)

        # evaluator: Huber loss to the normalised reward on a PER batch, importance-weighted
        k = max(1, math.ceil(c.per_batch_fraction * len(self.replay)))
        idx, weights = self.replay.sample(k, self.rng)
        pred = self.evaluator(torch.from_numpy(self.onehot_rows.view[idx]), z)
        target = r_hat[idx]
        huber = F.huber_loss(pred, target, reduction="none", delta=c.huber_delta)
        loss_e = (torch.as_tensor(weights, dtype=torch.float32) * huber).mean()
        self.replay.update(idx, (pred - target).detach().numpy())

        # controller: PPO clipped surrogate on its recent samples, advantage = normalised reward
        loss_c = torch.zeros(())
        entropy = torch.zeros(())
        if self.from_policy:
            window = slice(-c.ppo_window, None)
            pos = np.asarray(self.from_policy[window])
            logp, entropy = self.controller.log_prob(
                z, self.action_rows.view[pos], np.stack(self.masks[window])
            )
            logp_old = torch.as_tensor(self.logp_old[window], dtype=torch.float32)
            loss_c = (
                ppo_clip_loss(logp, logp_old, r_hat[pos], c.ppo_clip) - c.entropy_coef * entropy
            )

        loss = loss_c + loss_e + c.kl_weight * kl
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return [float(x.detach()) for x in (loss_c, loss_e, kl, entropy)]

    def task_stats(self) -> dict[str, float]:
        """Mean losses of this task's updates and its reward summary (meta-training curves)."""
        rewards = self.reward_rows.view
        stats = {
            "best_reward": float(rewards.max()) if len(rewards) else math.nan,
            "n_evaluations": len(rewards),
        }
        if self.loss_log:
            mean = np.mean(self.loss_log, axis=0)
            stats |= dict(
                zip(
                    ("loss_controller", "loss_evaluator", "kl", "entropy"),
                    map(float, mean),
                    strict=True,
                )
            )
        return stats

    # ---- state ------------------------------------------------------------------------------
    def network_state(self) -> dict[str, Any]:
        """The meta-learned part: weights of the three networks (what adaptation starts from)."""
        return {
            "encoder": self.encoder.state_dict(),
            "controller": self.controller.state_dict(),
            "evaluator": self.evaluator.state_dict(),
        }

    def load_network_state(self, state: dict[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.controller.load_state_dict(state["controller"])
        self.evaluator.load_state_dict(state["evaluator"])

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {
            "networks": self.network_state(),
            "optimizer": self.optimizer.state_dict(),
            "task": {
                "actions": self.action_rows.view.tolist(),
                "rewards": self.reward_rows.view.tolist(),
                "from_policy": list(self.from_policy),
                "logp_old": list(self.logp_old),
                "masks": torch.from_numpy(np.stack(self.masks)) if self.masks else None,
                "replay": self.replay.state_dict(),
                "epsilon": self.epsilon,
                "pending": [
                    [list(a), lp, torch.from_numpy(m)] for a, (lp, m) in self.pending.items()
                ],
                "loss_log": [list(x) for x in self.loss_log],
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.load_network_state(state["networks"])
        self.optimizer.load_state_dict(state["optimizer"])
        task = state["task"]
        self._new_history()
        for actions, reward in zip(task["actions"], task["rewards"], strict=True):
            self._append_rows(tuple(int(a) for a in actions), float(reward))
        self.from_policy = list(task["from_policy"])
        self.logp_old = list(task["logp_old"])
        self.masks = list(task["masks"].numpy()) if task["masks"] is not None else []
        self.replay.load_state_dict(task["replay"])
        self.epsilon = task["epsilon"]
        self.pending = {tuple(a): (lp, m.numpy()) for a, lp, m in task["pending"]}
        self.loss_log = [list(x) for x in task["loss_log"]]


class CatchMeta(Catch):
    name = "catch-meta"


class CatchSFS(Catch):
    """Search from scratch: same agent, no meta-training."""

    name = "catch-sfs"
    meta_trained = False


class CatchZero(Catch):
    """Ablation: z = 0, the encoder has no effect."""

    name = "catch-zero"
    z_mode = "zero"


class CatchRandom(Catch):
    """Ablation: z ~ N(0, I), random inputs instead of the task posterior."""

    name = "catch-random"
    z_mode = "prior"
