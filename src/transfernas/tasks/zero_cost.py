"""Zero-cost proxies: score an untrained network from one batch, in well under a second.

Definitions (Abdelfattah et al. 2021, "Zero-cost proxies for lightweight NAS"; Mellor et al.
2021, "Neural architecture search without training"), each computed at initialisation:

- ``params``: trainable parameters; ``flops``: forward FLOPs of one image (multiply-add = 2).
- ``grad_norm``: ‖∇_θ L‖₂ over conv and linear weights, L the cross-entropy of one labelled
  batch.
- ``snip``: Σ |θ ⊙ ∇_θ L| (connection sensitivity) over conv and linear weights.
- ``synflow``: Σ |θ ⊙ ∂R/∂θ| over conv and linear weights, where every parameter is replaced
  by its absolute value, BatchNorm is the identity (eval mode on fresh running statistics), the
  input is all ones and R is the sum of the outputs; in double precision (it overflows float32).
- ``naswot``: log|K_H|, K_H[i, j] = number of ReLUs on which images i and j agree (both on or
  both off), summed over every ``nn.ReLU`` of the net, for the images of one batch.

Scores that span orders of magnitude (all but NASWOT, which is a log already) are used as
``log`` values, so a weighted sum of proxies (:class:`ZeroCostParams.weights`) is a sum of
comparable numbers.
Rewards are computed from a fixed seed per architecture: the same cell always scores the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from transfernas.spaces.base import SearchSpace
from transfernas.tasks.base import Evaluation
from transfernas.tasks.latency import torch_threads
from transfernas.tasks.trained import ImageData, count_flops, seed_for, to_input

ProxyName = Literal["params", "flops", "grad_norm", "snip", "synflow", "naswot"]
PROXIES: tuple[str, ...] = ("params", "flops", "grad_norm", "snip", "synflow", "naswot")
# proxies whose log is the feature (they span orders of magnitude)
LOG_SCALED = frozenset({"params", "flops", "grad_norm", "snip", "synflow"})
NEEDS_DATA = frozenset({"grad_norm", "snip", "naswot"})


def _weights(model: nn.Module) -> list[torch.Tensor]:
    """Conv and linear weights: the layers the pruning-based proxies score."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def params(model: nn.Module) -> float:
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _loss_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return [w.grad if w.grad is not None else torch.zeros_like(w) for w in _weights(model)]


def _grad_norm(grads: list[torch.Tensor]) -> float:
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))


def _snip(model: nn.Module, grads: list[torch.Tensor]) -> float:
    weights = _weights(model)
    return float(
        sum((w.detach() * g).abs().double().sum() for w, g in zip(weights, grads, strict=True))
    )


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """‖∇_θ L‖₂ over the conv and linear weights on one batch (train-mode BatchNorm)."""
    return _grad_norm(_loss_grads(model, x, y))


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Σ |θ ⊙ ∇_θ L| over the conv and linear weights on one batch."""
    return _snip(model, _loss_grads(model, x, y))


def synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Σ |θ ⊙ ∂R/∂θ| of the |θ| network on an all-ones input (BatchNorm off, float64).

    Works on the model in place (call it on a fresh model built for the proxy alone).
    """
    model.double().eval()  # fresh running stats: eval-mode BatchNorm is the identity
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    model.zero_grad(set_to_none=True)
    model(torch.ones(1, *input_shape, dtype=torch.float64)).sum().backward()
    with torch.no_grad():
        return float(sum((w * w.grad).abs().sum() for w in _weights(model) if w.grad is not None))


@torch.no_grad()
def naswot(model: nn.Module, x: torch.Tensor) -> float:
    """log|K_H| of the ReLU on/off codes of the batch ``x`` (Mellor et al. 2021).

    Agreements of codes c, c' over n units are n − |c| − |c'| + 2·c·c': one matmul per ReLU
    (float32 is exact: the counts stay far below 2²⁴), summed in float64.
    """
    n = len(x)
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def hook(_module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        codes = (out.reshape(n, -1) > 0).float()
        ones = codes.sum(1, dtype=torch.float64)
        agree = codes.shape[1] - ones[:, None] - ones[None, :] + 2 * (codes @ codes.T).double()
        kernel.add_(agree)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        model.train()  # batch statistics, as the reference implementation
        model(x)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else -math.inf


def feature(proxy: str, score: float) -> float:
    """The value a proxy contributes to a reward: the log of the wide-ranging ones."""
    if proxy in LOG_SCALED:
        return math.log(score) if score > 0 else -math.inf
    return score


def score_all(
    build: Callable[[], nn.Module],
    proxies: Sequence[str],
    batch: tuple[torch.Tensor, torch.Tensor] | None,
    input_shape: Sequence[int],
) -> dict[str, float]:
    """Each proxy on a freshly built copy of the net (``build`` must be seeded); grad_norm and
    snip share one backward pass."""
    out: dict[str, float] = {}
    unknown = [p for p in proxies if p not in PROXIES]
    if unknown:
        raise ValueError(f"unknown zero-cost proxy {unknown[0]!r}; allowed: {', '.join(PROXIES)}")
    if NEEDS_DATA.intersection(proxies) and batch is None:
        missing = sorted(NEEDS_DATA.intersection(proxies))[0]
        raise ValueError(f"zero-cost proxy {missing!r} needs a batch of images")
    gradient_proxies = [p for p in ("grad_norm", "snip") if p in proxies]
    if gradient_proxies:
        model = build()
        grads = _loss_grads(model, *batch)
        if "grad_norm" in proxies:
            out["grad_norm"] = _grad_norm(grads)
        if "snip" in proxies:
            out["snip"] = _snip(model, grads)
    for proxy in proxies:
        if proxy in gradient_proxies:
            continue
        model = build()
        if proxy == "params":
            out[proxy] = params(model)
        elif proxy == "flops":
            out[proxy] = count_flops(model, input_shape, torch.device("cpu"))
        elif proxy == "synflow":
            out[proxy] = synflow(model, input_shape)
        else:
            out[proxy] = naswot(model, batch[0])
    return {p: out[p] for p in proxies}


class ZeroCostParams(BaseModel):
    """``zero_cost``: the reward is Σ weight · feature(proxy) of the untrained candidate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[ProxyName, float] = Field(
        default_factory=lambda: {"naswot": 1.0, "synflow": 0.82},
        min_length=1,
        description="proxy → weight of its feature (log for params/flops/grad_norm/snip/synflow)"
        "; default: the best cheap combination of benchmarks/proxy_fidelity.py",
    )
    batch_size: int = Field(64, ge=2, description="images scored by naswot / grad_norm / snip")
    degenerate_reward: float = Field(
        0.0,
        description="reward of a net whose output ignores its input (a feature of −∞: e.g. an "
        "NB201 cell with no path from input to output); keep it below every other reward",
    )
    threads: int = Field(1, ge=1, description="CPU threads per evaluation (fixed: determinism)")

    @field_validator("weights")
    @classmethod
    def _nonzero(cls, weights: dict[str, float]) -> dict[str, float]:
        if not any(weights.values()):
            raise ValueError("at least one proxy weight must be non-zero")
        return weights


class ZeroCostTask:
    """Evaluate = build the candidate at a seeded initialisation and score it without training.

    The batch is drawn once, seeded, from the task's training images, so every candidate is
    scored on the same images; the weights come from (task seed, name, architecture).
    """

    def __init__(
        self,
        name: str,
        space: SearchSpace,
        train: ImageData,
        num_classes: int,
        params: ZeroCostParams | None = None,
        seed: int = 0,
    ) -> None:
        self.name, self.space, self.num_classes = name, space, num_classes
        self.params = params if params is not None else ZeroCostParams()
        self.seed = seed
        rng = np.random.default_rng(seed_for(seed, name, "batch"))
        n = min(self.params.batch_size, len(train))
        idx = torch.from_numpy(rng.choice(len(train), size=n, replace=False))
        self.batch = (to_input(train.images[idx], False), train.labels[idx])
        self.input_shape = (3, *train.images.shape[1:3])

    def scores(
        self, actions: Sequence[int], proxies: Sequence[str] | None = None
    ) -> dict[str, float]:
        """Raw proxy values (default: the proxies the reward weighs)."""
        proxies = list(self.params.weights) if proxies is None else list(proxies)
        key = self.space.key(actions)

        def build() -> nn.Module:
            torch.manual_seed(seed_for(self.seed, self.name, key, "init"))
            return self.space.build(actions, self.num_classes)

        with torch_threads(self.params.threads), torch.random.fork_rng(devices=[]):
            return score_all(build, proxies, self.batch, self.input_shape)

    def evaluate(self, actions: Sequence[int]) -> Evaluation:
        start = time.perf_counter()
        scores = self.scores(actions)
        reward = sum(w * feature(p, scores[p]) for p, w in self.params.weights.items() if w)
        degenerate = not math.isfinite(reward)
        if degenerate:
            reward = self.params.degenerate_reward
        return Evaluation(
            float(reward), scores | {"degenerate": float(degenerate)}, time.perf_counter() - start
        )
