"""The ask/tell contract every searcher implements, and its per-searcher config base.

A searcher proposes action sequences (``ask``) and learns from their rewards (``tell``). It
holds all of its randomness in ``self.rng`` (seeded), and ``state_dict`` captures everything
needed to continue exactly where it stopped — the search loop checkpoints it after each tell.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from transfernas.spaces.base import Actions, ActionSpace


class SearcherConfig(BaseModel):
    """Hyper-parameters of a searcher; unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Searcher(ABC):
    name: ClassVar[str]
    Config: ClassVar[type[SearcherConfig]] = SearcherConfig
    # parameters block of the searcher (``searchers.<config_key>``); variants of one method
    # (e.g. the CATCH ablations) share one block
    config_key: ClassVar[str] = ""
    # meta-learners are fitted on other tasks first (see transfernas.meta)
    meta_trained: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and not cls.config_key:
            cls.config_key = cls.name

    def __init__(self, space: ActionSpace, config: SearcherConfig | None = None, seed: int = 0):
        self.space = space
        self.config = config if config is not None else self.Config()
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def ask(self, n: int = 1) -> list[Actions]:
        """Propose ``n`` complete, valid action sequences to evaluate next."""

    @abstractmethod
    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        """Learn from the rewards of previously asked candidates (same order)."""

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def sample_masked(space: ActionSpace, probs: np.ndarray, rng: np.random.Generator) -> Actions:
    """One action sequence from per-decision probabilities ``probs`` (L, ≥K), decision by
    decision, each restricted to the options valid after the prefix."""
    actions: list[int] = []
    for i, k in enumerate(space.choices):
        actions.append(categorical(rng, probs[i, :k] * space.mask(actions)))
    return tuple(actions)


def categorical(rng: np.random.Generator, probs: np.ndarray) -> int:
    """Draw an index from (possibly float32, unnormalised) probabilities by inverse CDF."""
    cdf = np.cumsum(np.asarray(probs, dtype=np.float64))
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))
