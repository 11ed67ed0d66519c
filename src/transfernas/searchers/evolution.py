"""Regularized (aging) evolution, REA (Real et al. 2019) — also AmoebaNet's search algorithm.

Settings follow NAS-Bench-201's own REA runs: a population of the ``population_size`` most
recent architectures (filled first with random ones), tournaments of ``sample_size`` members
drawn with replacement, the winner's child differs in exactly one decision, and the oldest
member dies each time a child joins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from transfernas.searchers.base import Searcher, SearcherConfig
from transfernas.spaces.base import Actions, mutate_actions, sample_actions


class REAConfig(SearcherConfig):
    population_size: int = Field(10, ge=1, description="P: members kept alive (NB201: 10)")
    sample_size: int = Field(3, ge=1, description="S: tournament size (NB201: 3)")


class RegularizedEvolution(Searcher):
    name = "rea"
    Config = REAConfig
    config: REAConfig

    def __init__(self, space, config=None, seed=0):
        super().__init__(space, config, seed)
        self.population: list[tuple[Actions, float]] = []  # oldest first

    def ask(self, n: int = 1) -> list[Actions]:
        out = []
        for _ in range(n):
            if len(self.population) + len(out) < self.config.population_size:
                out.append(sample_actions(self.space, self.rng))
                continue
            picks = self.rng.integers(len(self.population), size=self.config.sample_size)
            parent = max((self.population[i] for i in picks), key=lambda m: m[1])
            out.append(mutate_actions(self.space, parent[0], self.rng))
        return out

    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        for actions, reward in zip(candidates, rewards, strict=True):
            self.population.append((tuple(actions), float(reward)))
            if len(self.population) > self.config.population_size:
                self.population.pop(0)  # aging: the oldest dies, not the worst

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"population": [[list(a), r] for a, r in self.population]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = [(tuple(a), float(r)) for a, r in state["population"]]
