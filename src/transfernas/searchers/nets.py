"""Small pieces the learned searchers share: MLPs and the one-hot view of action sequences.

A searcher sees decisions as categorical choices of different sizes (``space.choices``); the
networks read an architecture as the concatenated one-hot vectors of its decisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def mlp(
    in_dim: int, hidden: int, out_dim: int, layers: int = 2, out: nn.Module | None = None
) -> nn.Sequential:
    """``layers`` hidden ReLU layers of width ``hidden``; ``out`` (e.g. Sigmoid) after the last."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU()]
    mods.append(nn.Linear(hidden, out_dim))
    if out is not None:
        mods.append(out)
    return nn.Sequential(*mods)


def offsets(choices: Sequence[int]) -> np.ndarray:
    """Position of each decision's first option in the concatenated one-hot vector."""
    return np.concatenate([[0], np.cumsum(choices)[:-1]]).astype(np.int64)


def onehot(actions: np.ndarray, choices: Sequence[int]) -> torch.Tensor:
    """``(B, L')`` actions, L' ≤ L (a prefix; ``-1`` = not taken) → ``(B, sum(choices))``;
    untaken decisions are all zero."""
    actions = np.asarray(actions, dtype=np.int64)
    actions = actions.reshape(len(actions), -1) if actions.size else actions.reshape(-1, 0)
    out = torch.zeros(len(actions), int(sum(choices)))
    rows, cols = np.nonzero(actions >= 0)
    out[rows, actions[rows, cols] + offsets(choices)[cols]] = 1.0
    return out


class Rows:
    """Append-only rows in a doubling numpy buffer: O(1) append, the filled part as a view.

    A searcher's history grows by one row per tell and is read many times per tell;
    rebuilding an array from a list of tuples each time cost more than the networks.
    """

    def __init__(self, shape: tuple[int, ...] = (), dtype: type = np.float64):
        self._data = np.zeros((16, *shape), dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, row: object) -> None:
        if self._n == len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self._n] = row
        self._n += 1

    @property
    def view(self) -> np.ndarray:
        return self._data[: self._n]
