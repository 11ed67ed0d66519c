"""Kedro nodes of ``adapt``: the meta-trained agent searches the target task."""

from __future__ import annotations

from typing import Any

import pandas as pd

from transfernas.pipelines.search_nodes import stage_inputs, target_search
from transfernas.tasks.subdataset import Source


def adapt_agent(
    meta_checkpoint: dict[str, Any],
    nb201_12epoch: pd.DataFrame,
    nb201_200epoch: pd.DataFrame,
    source: Source,
    params: dict[str, Any],
    subdatasets: dict[str, Any],
    trained_task: dict[str, Any],
    executor: dict[str, Any],
    searchers: dict[str, Any],
    **downstream: Any,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    inputs = stage_inputs(nb201_12epoch, source, subdatasets, trained_task, executor, downstream)
    return target_search("adapt", meta_checkpoint, inputs, nb201_200epoch, params, searchers)
