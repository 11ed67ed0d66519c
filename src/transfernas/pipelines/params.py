"""Every parameter block a node reads, with the check its node applies: ``kedro run`` validates
the blocks of the pipelines it was asked for before it loads a dataset or opens an MLflow run
(``hooks.ValidateFirst``), so a typo costs one short message, not a failed run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from transfernas.benchmark import NB201BenchmarkConfig
from transfernas.compare import CompareParams
from transfernas.config import ParameterError, validate_params, validate_searchers
from transfernas.data.build import SubdatasetParams
from transfernas.downstream import KINDS
from transfernas.downstream.side_by_side import SideBySideParams
from transfernas.executors import ExecutorConfig
from transfernas.export.backbone import ExportParams
from transfernas.morphnet.resize import MorphNetParams
from transfernas.stages import MetaTrainParams, TargetSearchParams
from transfernas.tasks.subdataset import TrainedTaskParams

Check = Callable[[Any, Mapping[str, Any]], object]  # (the block, every parameter) → its model


def nb201_benchmark_config(
    params: Mapping[str, Any] | None, searchers: Mapping[str, Any] | None
) -> NB201BenchmarkConfig:
    """``nb201_benchmark`` with the top-level ``searchers`` block as its hyper-parameters."""
    params = dict(params or {})
    if "searchers" in params:
        raise ParameterError(
            "nb201_benchmark.searchers: set hyper-parameters in the top-level `searchers` block"
        )
    return validate_params(
        NB201BenchmarkConfig,
        {**params, "searchers": validate_searchers(searchers)},
        "nb201_benchmark",
    )


def _model(model: type, key: str) -> Check:
    return lambda block, _: validate_params(model, block, key)


BLOCKS: dict[str, Check] = {
    "subdatasets": _model(SubdatasetParams, "subdatasets"),
    "trained_task": _model(TrainedTaskParams, "trained_task"),
    "executor": _model(ExecutorConfig, "executor"),
    "searchers": lambda block, _: validate_searchers(block),
    "meta_train": _model(MetaTrainParams, "meta_train"),
    "adapt": _model(TargetSearchParams, "adapt"),
    "search": _model(TargetSearchParams, "search"),
    "export_backbone": _model(ExportParams, "export_backbone"),
    "compare": _model(CompareParams, "compare"),
    "morphnet": _model(MorphNetParams, "morphnet"),
    "detection_compare": _model(SideBySideParams, "detection_compare"),
    "nb201_benchmark": lambda block, every: nb201_benchmark_config(block, every.get("searchers")),
    **{name: _model(kind.params, name) for name, kind in KINDS.items()},
}


def validate_blocks(keys: Iterable[str], parameters: Mapping[str, Any]) -> None:
    """Check each named block; every error of every block is reported together."""
    problems = []
    for key in sorted(set(keys) & BLOCKS.keys()):
        try:
            BLOCKS[key](parameters.get(key), parameters)
        except ParameterError as error:
            text = str(error)  # a block's list of keys, or one sentence naming its key
            problems.append(text.split("\n", 1)[1] if "\n" in text else f"  {text}")
    if problems:
        raise ParameterError("invalid parameters:\n" + "\n".join(problems))
