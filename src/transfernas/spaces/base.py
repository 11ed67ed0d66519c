"""The abstract action space every searcher sees, and the search-space contract.

Searchers never learn what a decision *means*: they see how many categorical choices each
decision has and which of them are valid given the decisions already taken (CATCH §3.2 is
search-space agnostic, and so is our code).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict
from torch import nn

Actions = tuple[int, ...]


class ActionSpace(Protocol):
    """What a searcher may know about a space: decision sizes and a validity mask."""

    @property
    def choices(self) -> tuple[int, ...]: ...

    def mask(self, prefix: Sequence[int]) -> np.ndarray: ...


class SearchSpace(ABC):
    """A space of architectures reachable by a fixed-length sequence of categorical decisions."""

    name: str = ""

    @property
    @abstractmethod
    def choices(self) -> tuple[int, ...]:
        """Number of categorical options of each decision, in decision order."""

    def mask(self, prefix: Sequence[int]) -> np.ndarray:
        """Boolean mask of valid options for decision ``len(prefix)``; all valid by default."""
        return np.ones(self.choices[len(prefix)], dtype=bool)

    @abstractmethod
    def decode(self, actions: Sequence[int]) -> Any:
        """Architecture described by a complete action sequence."""

    @abstractmethod
    def encode(self, arch: Any) -> Actions:
        """Action sequence of an architecture (inverse of :meth:`decode`)."""

    def key(self, actions: Sequence[int]) -> Hashable:
        """Hashable identity of the architecture (identical actions → identical key)."""
        return tuple(int(a) for a in actions)

    @property
    def decision_kinds(self) -> tuple[str, ...]:
        """Which decisions choose from one vocabulary (PNAS's LSTM surrogate shares their
        embedding: its inputs, its ops); every decision its own kind by default."""
        return tuple(f"d{i}" for i in range(len(self.choices)))

    def sample(self, rng: np.random.Generator) -> Actions:
        return sample_actions(self, rng)

    def build(self, actions: Sequence[int], num_classes: int) -> nn.Module:
        """The trainable torch classifier of an architecture (spaces that have one)."""
        raise NotImplementedError(f"search space {self.name!r} builds no torch network")


class SpaceParams(BaseModel):
    """A registered space's validated parameters (``trained_task.space``, ...) and its builder.

    Each space module defines one subclass with ``name: Literal["<name>"]``; the registry in
    ``transfernas.spaces`` collects them. ``classifier``: the space builds a torch image
    classifier (:meth:`SearchSpace.build`), so trained tasks can train its candidates.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    classifier: ClassVar[bool] = True

    def build(self) -> SearchSpace:
        raise NotImplementedError(f"{type(self).__name__} builds no space")


def decision_kinds(space: ActionSpace) -> tuple[str, ...]:
    """:attr:`SearchSpace.decision_kinds`, or one kind per decision for a bare ActionSpace."""
    kinds = getattr(space, "decision_kinds", None)
    return tuple(kinds) if kinds is not None else tuple(f"d{i}" for i in range(len(space.choices)))


def sample_actions(
    space: ActionSpace, rng: np.random.Generator, prefix: Sequence[int] = ()
) -> Actions:
    """Uniform choice among the valid options, one decision after the other (after ``prefix``)."""
    actions = [int(a) for a in prefix]
    for _ in space.choices[len(actions) :]:
        valid = np.flatnonzero(space.mask(actions))
        actions.append(int(rng.choice(valid)))
    return tuple(actions)


def masks_of(space: ActionSpace, prefixes: np.ndarray) -> np.ndarray:
    """``space.mask`` of every row of ``prefixes`` (B, l): (B, choices[l]).

    A space that keeps the default mask (every option valid, NB201) is answered without a
    Python call per row — samplers ask this for every candidate at every decision.
    """
    if isinstance(space, SearchSpace) and type(space).mask is SearchSpace.mask:
        return np.ones((len(prefixes), space.choices[prefixes.shape[1]]), dtype=bool)
    return np.stack([space.mask(row) for row in prefixes]).reshape(len(prefixes), -1)


def is_valid(space: ActionSpace, actions: Sequence[int]) -> bool:
    if len(actions) != len(space.choices):
        return False
    for i, a in enumerate(actions):
        mask = space.mask(actions[:i])
        if not 0 <= a < len(mask) or not mask[a]:
            return False
    return True


def mutate_actions(space: ActionSpace, actions: Sequence[int], rng: np.random.Generator) -> Actions:
    """Change one decision to another valid option (NB201's REA mutation, space-agnostic).

    Later decisions that the change made invalid are resampled uniformly among valid options,
    so the child is valid for spaces whose masks depend on the prefix.
    """
    mutable = [i for i in range(len(actions)) if space.mask(actions[:i]).sum() > 1]
    if not mutable:
        return tuple(actions)
    pos = int(rng.choice(mutable))
    child = list(actions[:pos])
    valid = np.flatnonzero(space.mask(child))
    child.append(int(rng.choice(valid[valid != actions[pos]])))
    for a in actions[pos + 1 :]:
        mask = space.mask(child)
        child.append(int(a) if a < len(mask) and mask[a] else int(rng.choice(np.flatnonzero(mask))))
    return tuple(child)
