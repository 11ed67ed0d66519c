"""The payoff comparison: target splits, latency matching, durable trainings, statistics."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from torch import nn

from transfernas import compare as compare_module
from transfernas.baselines import MatchParams, build_baseline, match_width
from transfernas.compare import (
    SEARCHED,
    CompareParams,
    Entrant,
    TargetData,
    better_p,
    markdown,
    run_comparison,
    summary_row,
    train_entrant,
)
from transfernas.config import ParameterError, validate_params
from transfernas.data.build import SubdatasetParams
from transfernas.data.sources import ImageFolderSource, SourceError
from transfernas.searchers import SearcherConfig
from transfernas.spaces.resblock import ResBlockSpace, ResBlockSpaceParams
from transfernas.stages import StageInputs, TargetSearchParams
from transfernas.targets import TARGETS
from transfernas.tasks.latency import LatencyConfig
from transfernas.tasks.subdataset import (
    SearchTargetParams,
    TrainedTaskParams,
    subdataset_data,
    target_splits,
)
from transfernas.tasks.trained import ImageData, TrainingConfig

SIZE = 8


def _tree(root: Path, classes: int, train: int, heldout: int, folder: str | None = "val") -> Path:
    """Every image distinct random noise, so an image's pixels say which file it was."""
    rng = np.random.default_rng(0)
    splits = {"train": train} | ({folder: heldout} if folder else {})
    for split, n in splits.items():
        for c in range(classes):
            (root / split / f"n{c:08d}").mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / f"n{c:08d}" / f"{split}_{i}.png")
    return root


def _rows(images: torch.Tensor) -> set[bytes]:
    return {bytes(img.numpy().tobytes()) for img in images}


def _inputs(tmp_path: Path, source: Path, **trained) -> StageInputs:
    return StageInputs(
        source=ImageFolderSource(source),
        subdatasets=SubdatasetParams(workers=1, out_dir=str(tmp_path / "built")),
        trained_task=TrainedTaskParams(
            space=ResBlockSpaceParams(channel_scale=0.1, depths=[8]),
            training=TrainingConfig(epochs=1, batch_size=16),
            **trained,
        ),
    )


@pytest.mark.parametrize("folder", ["val", "test", None])
def test_the_held_out_split_never_reaches_a_search_evaluation(tmp_path, folder):
    """The search task's images (train + reward split) and the held-out split share no image,
    and together they are every image of the tree."""
    root = _tree(tmp_path / "mine", classes=3, train=10, heldout=4, folder=folder)
    inputs = _inputs(tmp_path, root)
    target = SearchTargetParams(path=str(root), image_size=SIZE)
    task = TARGETS["subdataset"].task(TargetSearchParams(task="subdataset", target=target), inputs)
    splits = target_splits(inputs.source, inputs.subdatasets, target)
    train, heldout = subdataset_data(splits.final, inputs.subdatasets)
    searched = _rows(task.train.images) | _rows(task.val.images)
    assert len(task.val) >= 3 and len(heldout) >= 3
    assert not searched & _rows(heldout.images)
    assert searched == _rows(train.images)
    every = {bytes(np.asarray(Image.open(p)).tobytes()) for p in root.rglob("*.png")}
    assert searched | _rows(heldout.images) == every
    if folder is not None:  # the tree's own held-out folder, untouched
        assert len(heldout) == 3 * 4


def test_a_flat_unlabelled_test_folder_is_not_a_held_out_split(tmp_path):
    root = _tree(tmp_path / "mine", classes=2, train=5, heldout=0, folder=None)
    (root / "test").mkdir()
    Image.new("RGB", (SIZE, SIZE)).save(root / "test" / "unlabelled.png")  # as ImageNet's
    assert not ImageFolderSource(root).has_val()  # the held-out split is carved from train/


def test_a_target_without_train_or_with_an_empty_class_names_the_folder(tmp_path):
    with pytest.raises(SourceError, match=str(tmp_path / "nothing" / "train")):
        ImageFolderSource(tmp_path / "nothing")
    root = _tree(tmp_path / "mine", classes=2, train=3, heldout=1)
    (root / "train" / "n00000009").mkdir()
    inputs = _inputs(tmp_path, root)
    with pytest.raises(SourceError, match=f"{root / 'train' / 'n00000009'}: class folder has no"):
        target_splits(inputs.source, inputs.subdatasets, SearchTargetParams(path=str(root)))


class Sleeper(nn.Module):
    """A network whose latency is its width in milliseconds (a toy with a known answer)."""

    def __init__(self, width: float) -> None:
        super().__init__()
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.width * 1e-3)
        return x


def test_latency_matching_lands_within_five_percent_on_a_toy():
    latency = LatencyConfig(input_size=(4, 4), warmup=1, repeats=5)
    match = match_width(Sleeper, Sleeper(3.7), latency, MatchParams(min_width=0.5, max_width=20))
    assert match["matched"] and abs(match["ratio"] - 1) <= 0.05
    assert abs(match["width"] / 3.7 - 1) <= 0.05
    # a reference faster than the narrowest candidate: that end, flagged as unmatched
    slow = match_width(Sleeper, Sleeper(0.2), latency, MatchParams(min_width=2, max_width=20))
    assert slow["width"] == 2 and not slow["matched"] and slow["ratio"] > 1.05


def test_latency_matching_of_a_real_resnet18():
    reference = build_baseline("resnet18", 0.5, 10, "small")
    latency = LatencyConfig(input_size=(32, 32), warmup=3, repeats=15)
    match = match_width(
        lambda w: build_baseline("resnet18", w, 10, "small"),
        reference,
        latency,
        MatchParams(),
    )
    assert match["matched"], match["trace"]


def test_baselines_are_torchvision_networks_at_the_width_asked():
    resnet = build_baseline("resnet18", 0.25, 7, "small")
    assert [resnet.layer1[0].conv1.out_channels, resnet.layer4[0].conv1.out_channels] == [16, 128]
    assert isinstance(resnet.maxpool, nn.Identity) and resnet.fc.out_features == 7
    assert resnet(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    mobile = build_baseline("mobilenet_v3_small", 0.5, 7, "small")
    assert mobile(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    assert build_baseline("resnet18", 1.0, 7, "imagenet").conv1.kernel_size == (7, 7)


def _data() -> TargetData:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 96)
    images = rng.integers(0, 256, (96, SIZE, SIZE, 3), dtype=np.uint8)
    images[..., 0] = labels[:, None, None] * 80  # learnable
    train = ImageData.from_arrays(images[:64], labels[:64])
    return TargetData("toy", train, ImageData.from_arrays(images[64:], labels[64:]), 3)


def _entrant() -> Entrant:
    return Entrant(
        "resnet18",
        "resnet18 ×0.1",
        "toy",
        {"baseline": "resnet18", "width": 0.1},
        lambda k: build_baseline("resnet18", 0.1, k, "small"),
    )


def test_a_killed_training_resumes_and_a_finished_one_is_never_retrained(tmp_path, monkeypatch):
    data, config = _data(), TrainingConfig(epochs=3, batch_size=16, threads=1)
    whole = train_entrant(_entrant(), 0, data, config, tmp_path / "whole")

    calls = {"n": 0}
    real = compare_module.accuracy

    def dies_in_epoch_two(*args, **kwargs):  # the held-out check of epoch 1: a kill
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(compare_module, "accuracy", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_entrant(_entrant(), 0, data, config, tmp_path / "killed")
    assert torch.load(tmp_path / "killed/checkpoint.pt", weights_only=False)["epoch"] == 0
    monkeypatch.setattr(compare_module, "accuracy", real)
    resumed = train_entrant(_entrant(), 0, data, config, tmp_path / "killed")
    assert resumed == whole and [p["epoch"] for p in resumed["curve"]] == [0, 1, 2]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished training was trained again")

    monkeypatch.setattr(compare_module, "train_model", no_training)
    assert train_entrant(_entrant(), 0, data, config, tmp_path / "killed") == whole


def test_confidence_interval_and_one_sided_mann_whitney():
    row = summary_row([20.0, 21.0, 22.0, 23.0])
    low, high = stats.t.interval(0.95, 3, loc=21.5, scale=stats.sem([20, 21, 22, 23]))
    assert row["mean"] == 21.5 and row["ci95"] == pytest.approx((high - low) / 2)
    assert better_p([4, 5, 6, 7], [0, 1, 2, 3]) == pytest.approx(1 / 70)  # exact, smallest
    assert better_p([0, 1, 2, 3], [4, 5, 6, 7]) == pytest.approx(1.0)
    assert better_p([1, 2, 3], [1, 2, 3]) > 0.5  # ties: no evidence either way


def test_compare_parameters_are_validated():
    with pytest.raises(ParameterError, match=r"compare.baselines\[0\]: Input should be"):
        validate_params(CompareParams, {"baselines": ["vgg"]}, "compare")
    with pytest.raises(ParameterError, match=r"compare.seeds: .*at least 2"):
        validate_params(CompareParams, {"seeds": [0]}, "compare")
    with pytest.raises(ParameterError, match=r"compare.match: .*min_width"):
        validate_params(CompareParams, {"match": {"min_width": 2, "max_width": 1}}, "compare")


def test_run_comparison_ranks_every_model_on_the_held_out_split(tmp_path):
    root = _tree(tmp_path / "mine", classes=3, train=8, heldout=3)
    inputs = _inputs(tmp_path, root)
    space = inputs.trained_task.space.build()
    actions = space.sample(np.random.default_rng(0))
    adapt = TargetSearchParams(
        task="subdataset", target={"path": str(root), "image_size": SIZE}, budget=5
    )
    task = TARGETS[adapt.task].task(adapt, inputs).name
    best = {"space": "resblock", "task": task, "evaluations": 2}
    best |= {"arch": space.key(actions), "actions": list(actions)}
    params = CompareParams(
        seeds=[0, 1],
        training=TrainingConfig(epochs=1, batch_size=16, threads=1),
        widths={"resnet18": 0.1, "mobilenet_v3_small": 0.2},
        match={"rounds": 1},
        workdir=str(tmp_path / "compare"),
    )
    results = run_comparison(params, adapt, best, SearcherConfig(), inputs)
    names = [r["model"] for r in results["models"]]
    assert names == [SEARCHED, "random_search", "resnet18", "mobilenet_v3_small"]
    assert results["heldout_images"] == 9 and results["random_search"]["evaluations"] == 2
    for row in results["models"]:
        assert [s["seed"] for s in row["seeds"]] == [0, 1] and row["latency_ms"] > 0
        assert (row["p_searched_better"] is None) == (row["model"] == SEARCHED)
    assert "| resnet18 ×0.100 |" in markdown(results)
    assert "no baseline matched its latency" in markdown(results)  # widths were fixed
    assert "equal_latency" not in results
    elsewhere = adapt.model_copy(update={"target": adapt.target.model_copy(update={"seed": 1})})
    with pytest.raises(ValueError, match=r"adapt_best was searched on .*rerun adapt"):
        run_comparison(params, elsewhere, best, SearcherConfig(), inputs)
    import transfernas.compare as compare_module

    def no_timing(*args):
        raise AssertionError("a rerun timed the models again")

    with pytest.MonkeyPatch.context() as m:
        m.setattr(compare_module, "interleaved_latency", no_timing)
        again = run_comparison(params, adapt, best, SearcherConfig(), inputs)  # all read back
    strip = [[s["heldout_acc"] for s in r["seeds"]] for r in results["models"]]
    assert strip == [[s["heldout_acc"] for s in r["seeds"]] for r in again["models"]]
    assert [r["latency_ms"] for r in again["models"]] == [
        r["latency_ms"] for r in results["models"]
    ]
    assert json.loads(json.dumps(results))  # JSON as written by the catalog


def test_wider_resblock_space_holds_resnet18s_layout():
    space = ResBlockSpace("basic", "small", 0.25, base_channels=[48, 64, 96], depths=[8, 15])
    actions = space.encode("64_11-21-21-21")
    assert space.key(actions) == "64_11-21-21-21" and space.choices[:2] == (3, 2)
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.decode(space.sample(rng))
        assert sum(arch.blocks) in (8, 15) and arch.base_channel in (48, 64, 96)
    with pytest.raises(ValueError, match="depths: distinct ascending integers ≥ 5"):
        ResBlockSpaceParams(depths=[4, 8])
