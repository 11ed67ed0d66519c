"""Random search (Bergstra & Bengio 2012): uniform over valid action sequences, no learning."""

from __future__ import annotations

from collections.abc import Sequence

from transfernas.searchers.base import Searcher
from transfernas.spaces.base import Actions, sample_actions


class RandomSearch(Searcher):
    name = "random"

    def ask(self, n: int = 1) -> list[Actions]:
        return [sample_actions(self.space, self.rng) for _ in range(n)]

    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        """Random search ignores feedback."""
