"""Adapting a meta-trained searcher to a target so that a wrong prior costs little.

A meta-trained searcher is a prior over architectures; when the target differs from the
meta-training tasks it can point at the wrong region, and then it costs more than no prior
(docs/catch.md). Two choices say how the prior is used on the target.

``adaptation.finetune``: whether the meta-trained networks keep learning on the target (CATCH as
published: encoder, controller and evaluator are all updated), or stay as meta-trained while only
the task posterior adapts (PEARL-style adaptation by context inference; ``updates_per_step: 0``).

``adaptation.mode``: who proposes.

- ``prior``: the meta-trained searcher alone.
- ``decay``: πBO-like (Hvarfner et al., ICLR 2022). Each proposal comes from the meta-trained
  searcher with probability w = β / (β + n) after n evaluations, else from the same searcher
  started from scratch: the prior's weight decays whatever its quality, so the search ends up
  as a search from scratch that also learned from the prior's evaluations.
- ``evidence``: PriorBand-like (Mallik et al., NeurIPS 2023): the share is set by evidence.
  A proposal "wins" when its reward is above the ``evidence_quantile`` of the rewards before it;
  each source has a Beta(1 + wins, 1 + losses) posterior and proposes with the probability
  that its win rate is the higher one (Thompson sampling).

In every mode a ``uniform_share`` of proposals is uniform random and never decays: whatever the
two searchers believe, every region keeps being sampled. Both searchers are told every result,
so the one from scratch learns from the prior's evaluations too (and vice versa).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from transfernas.searchers.base import Searcher, SearcherConfig, categorical
from transfernas.spaces.base import Actions, ActionSpace, sample_actions

log = logging.getLogger(__name__)
Mode = Literal["prior", "decay", "evidence"]
SOURCES = ("prior", "scratch", "uniform")
_GRID = np.linspace(0.0, 1.0, 2049)


class AdaptationConfig(BaseModel):
    """How a meta-trained searcher adapts to the target (``adapt.adaptation``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Field("evidence", description="prior | decay | evidence (see docs/catch.md)")
    finetune: bool = Field(
        False, description="the prior's networks keep learning (false: only its context adapts)"
    )
    prior_weight: float = Field(
        5.0, gt=0, description="decay: β; the prior proposes with probability β / (β + n)"
    )
    evidence_quantile: float = Field(
        0.5, ge=0, lt=1, description="evidence: a proposal wins above this quantile of the history"
    )
    uniform_share: float = Field(
        0.0, ge=0, lt=1, description="share of uniform random proposals, in every mode"
    )


def p_first_larger(a: tuple[float, float], b: tuple[float, float]) -> float:
    """P(X > Y) for independent X ~ Beta(*a), Y ~ Beta(*b): ∫ f_X(x) F_Y(x) dx on a grid."""
    density = stats.beta.pdf(_GRID, *a)
    integrand = density * stats.beta.cdf(_GRID, *b)
    return float(np.clip(np.trapezoid(integrand, _GRID) / np.trapezoid(density, _GRID), 0, 1))


def source_probabilities(
    config: AdaptationConfig, n_told: int, wins: np.ndarray, losses: np.ndarray
) -> np.ndarray:
    """Probabilities of (prior, scratch, uniform) for the next proposal after ``n_told``
    evaluations; ``wins`` / ``losses``: per source (prior, scratch) so far."""
    u = config.uniform_share
    if config.mode == "prior":
        w = 1.0
    elif config.mode == "decay":
        w = config.prior_weight / (config.prior_weight + n_told)
    else:
        w = p_first_larger((1 + wins[0], 1 + losses[0]), (1 + wins[1], 1 + losses[1]))
    return np.array([(1 - u) * w, (1 - u) * (1 - w), u])


def wins_of(rewards: Sequence[float], before: Sequence[float], quantile: float) -> np.ndarray:
    """Which of ``rewards`` beat the ``quantile`` of the rewards ``before`` them (none without
    a history: nothing to compare with yet)."""
    if not len(before):
        return np.zeros(len(rewards), dtype=bool)
    return np.asarray(rewards, dtype=np.float64) > np.quantile(before, quantile)


class AdaptedSearcher(Searcher):
    """A meta-trained searcher (the prior) and the same searcher from scratch behind one
    ask/tell: each proposal's source is drawn from :func:`source_probabilities`."""

    def __init__(
        self, prior: Searcher, scratch: Searcher | None, config: AdaptationConfig, seed: int
    ) -> None:
        super().__init__(prior.space, prior.config, seed)
        self.name = prior.name  # type: ignore[misc]  # the search is the prior's, adapted
        self.prior, self.scratch, self.adaptation = prior, scratch, config
        self.wins = np.zeros(2)
        self.losses = np.zeros(2)
        self.rewards: list[float] = []
        self.told: set[Actions] = set()
        self.source: dict[Actions, int] = {}  # asked, not told yet: which source proposed it
        self.counts = np.zeros(3, dtype=np.int64)  # proposals per source, for the report

    def ask(self, n: int = 1) -> list[Actions]:
        out: list[Actions] = []
        for _ in range(n):
            p = source_probabilities(self.adaptation, len(self.rewards), self.wins, self.losses)
            src = categorical(self.rng, p)
            taken = set(self.source) | set(out)
            if src < 2:
                actions = (self.prior if src == 0 else self.scratch).ask(1)[0]  # type: ignore[union-attr]
            if src == 2 or actions in taken:  # the other one asked for it in this batch
                src, actions = 2, self._uniform(taken)
            self.source[actions] = src
            self.counts[src] += 1
            out.append(actions)
        return out

    def _uniform(self, taken: set[Actions]) -> Actions:
        """A uniform random architecture not yet evaluated or asked (if one is found)."""
        seen = self.told | taken
        for _ in range(100):
            actions = sample_actions(self.space, self.rng)
            if actions not in seen:
                break
        return actions

    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        candidates = [tuple(int(a) for a in c) for c in candidates]
        won = wins_of(rewards, self.rewards, self.adaptation.evidence_quantile)
        for actions, win in zip(candidates, won, strict=True):
            src = self.source.pop(actions, 2)
            if src < 2:
                (self.wins if win else self.losses)[src] += 1
        self.rewards.extend(float(r) for r in rewards)
        self.told.update(candidates)
        for searcher in (self.prior, self.scratch):
            if searcher is not None:
                searcher.tell(candidates, rewards)

    def shares(self) -> dict[str, float]:
        """Which share of the proposals came from each source (reported with the history)."""
        total = max(int(self.counts.sum()), 1)
        return {s: float(c) / total for s, c in zip(SOURCES, self.counts, strict=True)}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {
            "prior": self.prior.state_dict(),
            "scratch": self.scratch.state_dict() if self.scratch is not None else None,
            "wins": self.wins.tolist(),
            "losses": self.losses.tolist(),
            "rewards": list(self.rewards),
            "told": [list(a) for a in self.told],
            "source": [[list(a), s] for a, s in self.source.items()],
            "counts": self.counts.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.prior.load_state_dict(state["prior"])
        if self.scratch is not None:
            self.scratch.load_state_dict(state["scratch"])
        self.wins, self.losses = np.array(state["wins"]), np.array(state["losses"])
        self.rewards = list(state["rewards"])
        self.told = {tuple(a) for a in state["told"]}
        self.source = {tuple(a): int(s) for a, s in state["source"]}
        self.counts = np.array(state["counts"], dtype=np.int64)


def adapted(
    cls: type[Searcher],
    space: ActionSpace,
    searcher_config: SearcherConfig | None,
    seed: int,
    networks: dict[str, Any],
    config: AdaptationConfig,
) -> Searcher:
    """``cls`` started from meta-trained ``networks`` and adapted as ``config`` says.

    Mode ``prior`` without a uniform share is the meta-trained searcher itself (no wrapper: its
    history and checkpoint are exactly CATCH's)."""
    searcher_config = searcher_config if searcher_config is not None else cls.Config()
    scratch = None
    if config.mode != "prior":  # the from-scratch searcher always learns
        scratch = cls(space, searcher_config, seed + 1)  # its own initialisation and stream
    if not config.finetune:
        if "updates_per_step" in type(searcher_config).model_fields:
            searcher_config = searcher_config.model_copy(update={"updates_per_step": 0})
        else:  # the mix still applies; only CATCH has a frozen mode
            log.warning(
                "adaptation.finetune: false freezes searchers with updates_per_step (CATCH); "
                "%s keeps learning on the target",
                cls.name,
            )
    prior = cls(space, searcher_config, seed)
    prior.load_network_state(networks)  # type: ignore[attr-defined]
    if config.mode == "prior" and config.uniform_share == 0:
        return prior
    return AdaptedSearcher(prior, scratch, config, seed)
