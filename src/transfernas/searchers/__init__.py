"""Searchers behind one ask/tell interface, and the registry that names them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transfernas.searchers.base import Searcher, SearcherConfig
from transfernas.searchers.catch import CatchMeta, CatchRandom, CatchSFS, CatchZero
from transfernas.searchers.evolution import RegularizedEvolution
from transfernas.searchers.l2nas import L2NAS, L2NASTransfer
from transfernas.searchers.pnas import PNAS
from transfernas.searchers.random import RandomSearch
from transfernas.searchers.reinforce import Reinforce
from transfernas.searchers.rnn_controller import RNNController
from transfernas.searchers.tnas import TNAS
from transfernas.spaces.base import ActionSpace

SEARCHERS: dict[str, type[Searcher]] = {
    cls.name: cls
    for cls in (
        RandomSearch,
        RegularizedEvolution,
        Reinforce,
        CatchMeta,
        CatchSFS,
        CatchZero,
        CatchRandom,
        L2NAS,
        L2NASTransfer,
        TNAS,
        PNAS,
        RNNController,
    )
}


def check_searcher_name(name: str) -> str:
    if name not in SEARCHERS:
        raise ValueError(f"unknown searcher {name!r}; allowed: {', '.join(SEARCHERS)}")
    return name


def make_searcher(
    name: str, space: ActionSpace, config: Mapping[str, Any] | SearcherConfig | None, seed: int
) -> Searcher:
    cls = SEARCHERS[check_searcher_name(name)]
    if config is None or isinstance(config, SearcherConfig):
        return cls(space, config, seed)
    return cls(space, cls.Config(**config), seed)


__all__ = ["SEARCHERS", "Searcher", "SearcherConfig", "check_searcher_name", "make_searcher"]
