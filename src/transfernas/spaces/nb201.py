"""NAS-Bench-201 cell space: 6 edges of a 4-node DAG, each one of 5 operations (5^6 cells).

Arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: node j's incoming edges from nodes
0..j-1, nodes separated by ``+``. Decision i is edge i in that order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field
from torch import nn

from transfernas.spaces.base import Actions, SearchSpace, SpaceParams
from transfernas.spaces.nb201_net import OPS, NB201Network

EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
N_ARCHS = len(OPS) ** len(EDGES)
_TOKEN = re.compile(r"^([a-z0-9_]+)~(\d)$")


class NB201Space(SearchSpace):
    """The cell space; ``channels``/``cells`` only shape the network :meth:`build` trains."""

    name = "nb201"

    def __init__(self, channels: int = 16, cells: int = 5) -> None:
        if channels < 1 or cells < 1:
            raise ValueError(f"channels and cells must be >= 1, got {channels}, {cells}")
        self.channels, self.cells = channels, cells

    @property
    def choices(self) -> tuple[int, ...]:
        return (len(OPS),) * len(EDGES)

    def decode(self, actions: Sequence[int]) -> str:
        if len(actions) != len(EDGES):
            raise ValueError(f"NB201 needs {len(EDGES)} actions, got {len(actions)}")
        nodes, i = [], 0
        for node in range(1, 4):
            nodes.append("|" + "|".join(f"{OPS[actions[i + j]]}~{j}" for j in range(node)) + "|")
            i += node
        return "+".join(nodes)

    def encode(self, arch: str) -> Actions:
        nodes = arch.split("+")
        if len(nodes) != 3:
            raise ValueError(f"not an NB201 arch string (need 3 nodes): {arch!r}")
        actions: list[int] = []
        for node, part in enumerate(nodes, start=1):
            tokens = part.strip("|").split("|")
            if not (part.startswith("|") and part.endswith("|")) or len(tokens) != node:
                raise ValueError(f"node {node} of {arch!r} must have {node} edges")
            for j, token in enumerate(tokens):
                m = _TOKEN.match(token)
                if m is None or m.group(1) not in OPS or int(m.group(2)) != j:
                    raise ValueError(f"bad edge {token!r} in {arch!r}; ops are {OPS}")
                actions.append(OPS.index(m.group(1)))
        return tuple(actions)

    @property
    def decision_kinds(self) -> tuple[str, ...]:
        return ("op",) * len(EDGES)

    def key(self, actions: Sequence[int]) -> int:
        """Base-5 code of the ops, edge 0 most significant: a dense id in [0, 5^6)."""
        return int(np.dot(actions, _PLACE))

    def codes(self, actions: np.ndarray) -> np.ndarray:
        """Vectorized :meth:`key` for an ``(n, 6)`` array of action rows."""
        return np.asarray(actions, dtype=np.int64) @ _PLACE

    def from_code(self, code: int) -> Actions:
        return tuple(int(code // p % len(OPS)) for p in _PLACE)

    def build(self, actions: Sequence[int], num_classes: int) -> nn.Module:
        edges = [(src, dst, OPS[a]) for (dst, src), a in zip(EDGES, actions, strict=True)]
        return NB201Network(edges, num_classes, self.channels, self.cells)


_PLACE = len(OPS) ** np.arange(len(EDGES) - 1, -1, -1, dtype=np.int64)


class NB201SpaceParams(SpaceParams):
    name: Literal["nb201"] = "nb201"
    channels: int = Field(16, ge=1, description="NB201 trains C=16")
    cells: int = Field(5, ge=1, description="cells per stage; NB201 trains N=5")

    def build(self) -> NB201Space:
        return NB201Space(self.channels, self.cells)
