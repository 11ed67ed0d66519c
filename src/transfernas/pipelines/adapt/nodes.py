"""Kedro nodes of ``adapt``: the meta-trained agent searches the target dataset."""

from __future__ import annotations

from typing import Any

import pandas as pd

from transfernas.pipelines.search_nodes import target_search


def adapt_agent(
    meta_checkpoint: dict[str, Any],
    nb201_12epoch: pd.DataFrame,
    nb201_200epoch: pd.DataFrame,
    params: dict[str, Any],
    searchers: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    return target_search("adapt", meta_checkpoint, nb201_12epoch, nb201_200epoch, params, searchers)
