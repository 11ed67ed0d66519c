"""Every parameter block shipped in conf/ (base, and base + paper) passes its validator."""

from __future__ import annotations

import pytest
from kedro.config import OmegaConfigLoader

from transfernas.benchmark import NB201BenchmarkConfig
from transfernas.compare import CompareParams
from transfernas.config import ParameterError, validate_params, validate_searchers
from transfernas.data.build import SubdatasetParams
from transfernas.downstream.detection import DetectionParams
from transfernas.downstream.segmentation import SegmentationParams
from transfernas.downstream.side_by_side import SideBySideParams
from transfernas.executors import ExecutorConfig
from transfernas.export.backbone import ExportParams
from transfernas.morphnet.resize import MorphNetParams
from transfernas.settings import CONFIG_LOADER_ARGS
from transfernas.stages import MetaTrainParams, TargetSearchParams
from transfernas.tasks.subdataset import TrainedTaskParams

from .conftest import ROOT

MODELS = {
    "nb201_benchmark": NB201BenchmarkConfig,
    "subdatasets": SubdatasetParams,
    "trained_task": TrainedTaskParams,
    "executor": ExecutorConfig,
    "meta_train": MetaTrainParams,
    "adapt": TargetSearchParams,
    "search": TargetSearchParams,
    "export_backbone": ExportParams,
    "compare": CompareParams,
    "detection_compare": SideBySideParams,
    "morphnet": MorphNetParams,
    "detection": DetectionParams,
    "segmentation": SegmentationParams,
}


def _params(env: str) -> dict:
    args = CONFIG_LOADER_ARGS | {"default_run_env": env}
    return OmegaConfigLoader(str(ROOT / "conf"), **args)["parameters"]


@pytest.mark.parametrize("env", ["base", "paper"])
def test_every_block_validates(env):
    params = _params(env)
    assert set(params) == {*MODELS, "searchers"}
    for key, model in MODELS.items():
        validate_params(model, params[key], key)
    validate_searchers(params["searchers"])


def test_paper_env_overrides_single_keys():
    base, paper = _params("base"), _params("paper")
    assert paper["trained_task"]["training"]["epochs"] == 12
    assert paper["trained_task"]["latency"]["input_size"] == [720, 1080]
    # keys the paper env does not mention keep their base values (soft merge)
    assert paper["trained_task"]["training"]["lr"] == base["trained_task"]["training"]["lr"]
    assert paper["meta_train"]["searcher"] == base["meta_train"]["searcher"]


def test_tagged_union_errors_name_the_key_without_the_tag():
    with pytest.raises(ParameterError) as err:
        validate_params(
            TrainedTaskParams, {"space": {"name": "resblock", "depth": 3}}, "trained_task"
        )
    assert (
        "trained_task.space.depth: unknown key; allowed keys: name, block, stem, channel_scale"
        in str(err.value)
    )
    with pytest.raises(ParameterError, match=r"trained_task\.space: Input tag 'vit'"):
        validate_params(TrainedTaskParams, {"space": {"name": "vit"}}, "trained_task")
