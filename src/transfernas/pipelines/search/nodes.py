"""Kedro nodes of ``search``: search the target dataset from scratch (the baseline)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from transfernas.pipelines.search_nodes import target_search


def search_from_scratch(
    nb201_12epoch: pd.DataFrame,
    nb201_200epoch: pd.DataFrame,
    params: dict[str, Any],
    searchers: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    return target_search("search", None, nb201_12epoch, nb201_200epoch, params, searchers)
