"""BASE (Shaw et al., NeurIPS 2019): Bayesian meta architecture search, first-order.

The meta-network W = (θ, φ) is a weight-sharing NB201 supernet θ and architecture logits φ
(``supernet.py``). For a task D (BASE Alg. 1):
  posterior by optimisation embedding — start from W and take ``inner_steps`` gradient steps on
    the task's negative ELBO, CE(f(x; θ, z), y) + β·KL(q(z | φ) ‖ uniform) / N, with
    z ~ GumbelSoftmax(φ, τ) drawn anew for every batch; the end point (θ_D, φ_D)
    parameterises q(θ | D) (its mean: the Gaussian's variance is not learned here) and
    q(z | D) = GumbelSoftmax(φ_D, τ);
  outer update — Reptile / finite differences (§4, "practical algorithm"):
    W ← W + λ · mean_c (W_c − W) over the ``tasks_per_epoch`` tasks of a meta-epoch.
τ anneals geometrically from ``tau_start`` to ``tau_end`` over the meta-epochs.
Adaptation to a target: ``adapt_steps`` inner steps from W on the target's training split,
then the architecture is the argmax of φ_D per edge (``derive: argmax``) or the best of
``n_samples`` hard samples of q(z | D) by the adapted supernet's validation accuracy
(``derive: best_of_k``). Its accuracy is what the task says (an NB201 table lookup of the
derived cell, or the cell trained from scratch by a trained task).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn import functional as F

from transfernas.bayes.supernet import SuperNet, gumbel_softmax, kl_to_uniform
from transfernas.spaces.nb201 import EDGES
from transfernas.spaces.nb201_net import OPS
from transfernas.tasks.trained import ImageData, to_input


class BASEConfig(BaseModel):
    """``base`` block of ``conf/base/parameters_meta_train.yml`` (CPU-minutes defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: int = Field(8, ge=1, description="supernet width C (NB201: 16)")
    cells: int = Field(1, ge=1, description="cells per stage N (NB201: 5)")
    num_classes: int = Field(10, ge=2, description="classifier outputs (BASE: 10-class tasks)")
    image_sizes: list[int] = Field(default_factory=lambda: [16, 32], min_length=1)
    inner_steps: int = Field(20, ge=1, description="optimisation-embedding steps per task")
    adapt_steps: int = Field(40, ge=1, description="inner steps on the target task")
    batch_size: int = Field(64, ge=1)
    weight_lr: float = Field(0.05, gt=0, description="SGD (momentum 0.9) on θ, inner loop")
    arch_lr: float = Field(0.03, gt=0, description="Adam on φ, inner loop")
    outer_lr: float = Field(1.0, gt=0, le=1, description="Reptile step λ")
    tasks_per_epoch: int = Field(4, ge=1, description="C: tasks per meta-epoch (BASE: 24)")
    tau_start: float = Field(2.0, gt=0, description="Gumbel-softmax temperature, first epoch")
    tau_end: float = Field(0.5, gt=0, description="temperature at the last meta-epoch")
    hard: bool = Field(False, description="straight-through hard samples in the forward pass")
    kl_weight: float = Field(1.0, ge=0, description="β of the KL to the uniform prior")
    derive: Literal["argmax", "best_of_k"] = "argmax"
    n_samples: int = Field(8, ge=1, description="best_of_k: architectures sampled from q(z|D)")


def temperature(config: BASEConfig, epoch: int, n_epochs: int) -> float:
    """Geometric annealing from ``tau_start`` (epoch 0) to ``tau_end`` (last epoch)."""
    if n_epochs <= 1:
        return config.tau_end
    frac = min(epoch, n_epochs - 1) / (n_epochs - 1)
    return config.tau_start * (config.tau_end / config.tau_start) ** frac


def reptile_step(
    meta: Mapping[str, torch.Tensor], adapted: Sequence[Mapping[str, torch.Tensor]], lr: float
) -> dict[str, torch.Tensor]:
    """W + λ · mean_c (W_c − W) for float entries; integer buffers (BN counters) are kept."""
    out = {}
    for name, w in meta.items():
        if not torch.is_floating_point(w):
            out[name] = w.clone()
            continue
        mean = torch.stack([a[name] for a in adapted]).mean(dim=0)
        out[name] = w + lr * (mean - w)
    return out


def derive_actions(phi: torch.Tensor) -> tuple[int, ...]:
    """The most probable op of each edge: an NB201 action sequence."""
    return tuple(int(a) for a in phi.argmax(dim=-1))


class BASE:
    """The meta-network and its first-order meta-training / adaptation."""

    def __init__(self, config: BASEConfig, seed: int = 0):
        self.config = config
        self.seed = seed
        with torch.random.fork_rng(devices=[]):  # seeded init without touching global RNG
            torch.manual_seed(seed)
            self.net = SuperNet(
                config.channels, config.cells, config.num_classes, config.image_sizes
            )
        self.phi = torch.zeros(len(EDGES), len(OPS))  # uniform prior over ops at the start
        self.epoch = 0

    # ---- one task: the posterior by optimisation embedding ----------------------------------
    def posterior(
        self, data: ImageData, steps: int, tau: float, seed: int
    ) -> tuple[SuperNet, torch.Tensor, list[float]]:
        """(θ_D, φ_D) after ``steps`` ELBO steps from W on ``data``, and the losses."""
        c = self.config
        net = copy.deepcopy(self.net)
        n_classes = int(data.labels.max()) + 1
        if n_classes > net.classifier.out_features:  # a wider target: a fresh classifier
            net.classifier = torch.nn.Linear(net.classifier.in_features, n_classes)
        phi = self.phi.clone().requires_grad_(True)
        opt_w = torch.optim.SGD(net.parameters(), lr=c.weight_lr, momentum=0.9)
        opt_phi = torch.optim.Adam([phi], lr=c.arch_lr)
        gen = torch.Generator().manual_seed(seed)
        net.train()
        losses = []
        for _ in range(steps):
            idx = torch.randint(len(data), (min(c.batch_size, len(data)),), generator=gen)
            x = to_input(data.images[idx], channels_last=False)
            z = gumbel_softmax(phi, tau, c.hard, gen)
            loss = F.cross_entropy(net(x, z), data.labels[idx])
            loss = loss + c.kl_weight * kl_to_uniform(phi) / len(data)
            opt_w.zero_grad()
            opt_phi.zero_grad()
            loss.backward()
            opt_w.step()
            opt_phi.step()
            losses.append(float(loss.detach()))
        return net, phi.detach(), losses

    # ---- meta-training ------------------------------------------------------------------------
    def meta_epoch(self, tasks: Sequence[ImageData], n_epochs: int) -> dict[str, float]:
        """One Reptile step over ``tasks``; returns the epoch's mean loss and τ."""
        c = self.config
        tau = temperature(c, self.epoch, n_epochs)
        nets, phis, losses = [], [], []
        for i, data in enumerate(tasks):
            net, phi, task_losses = self.posterior(
                data, c.inner_steps, tau, seed=self.seed * 100_003 + self.epoch * 1_009 + i
            )
            nets.append(net.state_dict())
            phis.append({"phi": phi})
            losses.append(float(np.mean(task_losses[-5:])))
        self.net.load_state_dict(reptile_step(self.net.state_dict(), nets, c.outer_lr))
        self.phi = reptile_step({"phi": self.phi}, phis, c.outer_lr)["phi"]
        self.epoch += 1
        probs = torch.softmax(self.phi, dim=-1)
        return {
            "epoch": self.epoch - 1,
            "tau": tau,
            "loss": float(np.mean(losses)),
            "phi_entropy": float(-(probs * probs.log()).sum(-1).mean()),
        }

    # ---- adaptation ---------------------------------------------------------------------------
    def adapt(
        self, train: ImageData, val: ImageData, seed: int
    ) -> tuple[tuple[int, ...], torch.Tensor, dict[str, Any]]:
        """Fine-tune on the target; returns the derived actions, φ_D and what was measured."""
        c = self.config
        tau = c.tau_end
        net, phi, losses = self.posterior(train, c.adapt_steps, tau, seed)
        info: dict[str, Any] = {"adapt_loss": float(np.mean(losses[-5:]))}
        if c.derive == "argmax":
            return derive_actions(phi), phi, info
        gen = torch.Generator().manual_seed(seed + 1)
        samples = [gumbel_softmax(phi, tau, True, gen) for _ in range(c.n_samples)]
        accs = [supernet_accuracy(net, val, z, c.batch_size * 4) for z in samples]
        best = int(np.argmax(accs))
        info["sample_accuracies"] = accs
        return derive_actions(samples[best]), phi, info

    # ---- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "phi": self.phi.clone(), "epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.phi = state["phi"].clone()
        self.epoch = int(state["epoch"])


@torch.no_grad()
def supernet_accuracy(net: SuperNet, data: ImageData, z: torch.Tensor, batch_size: int) -> float:
    """Validation accuracy (%) of the supernet with the op choice ``z`` (batch-stat BN)."""
    correct = 0
    for start in range(0, len(data), batch_size):
        x = to_input(data.images[start : start + batch_size], channels_last=False)
        pred = net(x, z).argmax(dim=1)
        correct += int((pred == data.labels[start : start + batch_size]).sum())
    return 100.0 * correct / max(1, len(data))
