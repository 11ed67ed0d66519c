"""Trained tasks on ImageNet sub-datasets: the meta-training pool and the adaptation target.

Meta-training (CATCH §4.3): meta-epoch k trains candidates on sub-dataset spec k of the
``subdatasets`` sampling (seed, 10/20/30 classes, sizes), built on first use and reused after —
specs 0..n−1 are exactly the ones the ``subdatasets`` stage builds. Adaptation targets one
chosen sub-dataset: ``n_classes`` random classes of the source, or all of them (the full
dataset), at one image size, optionally from another tree (``path``: a user's own data).

A target has three disjoint splits (:func:`target_splits`): the search trains candidates on
``search.train`` and rewards them on ``search.val``, a seeded part of ``train/``; the final
comparison (``compare``) trains on all of ``train/`` that is not held out and reports on the
held-out split — the tree's ``val/`` (or ``test/``) folder, or a seeded part of ``train/`` when
it has neither — which no search evaluation ever reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from transfernas.data.build import (
    SubdatasetParams,
    SubdatasetSpec,
    build_subdataset,
    load_subdataset,
    make_spec,
)
from transfernas.data.sources import DownsampledSource, ImageFolderSource, SourceError
from transfernas.evalcache import CacheParams
from transfernas.spaces import CLASSIFIER_SPACES, ClassifierSpaceParams
from transfernas.spaces.resblock import ResBlockSpaceParams
from transfernas.tasks.latency import LatencyConfig
from transfernas.tasks.trained import ImageData, RewardConfig, TrainedTask, TrainingConfig
from transfernas.tasks.zero_cost import ZeroCostParams, ZeroCostTask

Source = ImageFolderSource | DownsampledSource


class TrainedTaskParams(BaseModel):
    """``trained_task``: the space searched and how each candidate is trained and timed, or
    scored untrained (``zero_cost``, for the stages' zero-cost task kind)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: ClassifierSpaceParams = Field(  # type: ignore[valid-type]
        default_factory=ResBlockSpaceParams,
        description=f"the space searched; name: {' | '.join(CLASSIFIER_SPACES)}",
    )
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    latency: LatencyConfig = Field(default_factory=LatencyConfig)
    zero_cost: ZeroCostParams = Field(default_factory=ZeroCostParams)
    cache: CacheParams = Field(
        default_factory=CacheParams, description="where trained results and latencies are kept"
    )

    def identity(self) -> dict[str, Any]:
        """What the tasks' results depend on (not where they are cached)."""
        return self.model_dump(exclude={"cache"})

    @model_validator(mode="before")
    @classmethod
    def _other_spaces_keys(cls, data: Any) -> Any:
        """Drop the keys that belong only to the *other* space, so ``--params
        trained_task.space.name=nb201`` works over the resblock defaults of conf/base (Kedro
        merges configuration key by key); unknown keys are still refused."""
        space = data.get("space") if isinstance(data, dict) else None
        name = space.get("name") if isinstance(space, dict) else None
        if not isinstance(name, str) or name not in CLASSIFIER_SPACES:  # the validator says why
            return data
        own = set(CLASSIFIER_SPACES[name].model_fields)
        others = {k for m in CLASSIFIER_SPACES.values() for k in m.model_fields} - own
        return data | {"space": {k: v for k, v in space.items() if k not in others}}


class TargetParams(BaseModel):
    """The adaptation target: one sub-dataset (``n_classes: null`` = every class)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_classes: int | None = Field(None, ge=2, description="random classes; null = all")
    image_size: int = Field(16, ge=4)
    seed: int = Field(0, ge=0)
    path: str | None = Field(None, description="another ImageNet-style tree (full dataset)")


class SearchTargetParams(TargetParams):
    """The target of a search (``adapt`` / ``search``) and of ``compare``: which images the
    search rewards on and which are held out for the final comparison."""

    search_val_fraction: float = Field(
        0.2, gt=0, lt=1, description="of the training images: the search's reward split"
    )
    holdout_fraction: float = Field(
        0.2, gt=0, lt=1, description="of train/, held out when the tree has no val/ or test/"
    )


@dataclass(frozen=True)
class TargetSplits:
    """``search``: train / val of every search evaluation; ``final``: train = all training
    images (the search's two splits), val = the held-out split."""

    search: SubdatasetSpec
    final: SubdatasetSpec


def target_splits(
    source: Source, sub: SubdatasetParams, target: SearchTargetParams
) -> TargetSplits:
    """The target's classes (seeded), its held-out split, and the search's split of the rest.

    The held-out split is the tree's ``val/`` / ``test/`` folder, or ``holdout_fraction`` of
    each class's ``train/`` images; the search's reward split is ``search_val_fraction`` of
    each class's remaining ones (at least one image each way, else the class folder is named).
    """
    final = target_spec(
        source, sub.model_copy(update={"val_fraction": target.holdout_fraction}), target
    )
    rng = np.random.default_rng([target.seed, 1])
    search: dict[str, list[list[str]]] = {"train": [], "val": []}
    for wnid, files in zip(final.classes, final.files["train"], strict=True):
        if len(files) < 2:
            raise SourceError(
                f"{Path(final.root) / 'train' / wnid}: a target class needs ≥ 2 training images "
                f"(one to train on, one to reward the search with), found {len(files)}"
            )
        n_val = min(len(files) - 1, max(1, round(target.search_val_fraction * len(files))))
        held = set(rng.permutation(len(files))[:n_val].tolist())
        search["val"].append([f for i, f in enumerate(files) if i in held])
        search["train"].append([f for i, f in enumerate(files) if i not in held])
    return TargetSplits(final.model_copy(update={"files": search}), final)


def subdataset_data(
    spec: SubdatasetSpec, sub: SubdatasetParams, progress: bool = False
) -> tuple[ImageData, ImageData]:
    """Build (or reuse) the sub-dataset of ``spec``; its train and val images in memory."""
    folder = build_subdataset(
        spec, sub.out_dir, workers=sub.workers, chunk_size=sub.chunk_size, progress=progress
    )
    train = ImageData.from_arrays(*load_subdataset(folder, "train"))
    return train, ImageData.from_arrays(*load_subdataset(folder, "val"))


def task_name(spec: SubdatasetSpec) -> str:
    """``subdataset/<sample id>/<classes>cls@<size>px``: how runs and manifests name the task."""
    return f"subdataset/{spec.sample_id}/{len(spec.classes)}cls@{spec.image_size}px"


def trained_task(
    spec: SubdatasetSpec, sub: SubdatasetParams, params: TrainedTaskParams, seed: int
) -> TrainedTask:
    """Build (or reuse) the sub-dataset of ``spec`` and wrap it as a trained task."""
    train, val = subdataset_data(spec, sub)
    return TrainedTask(
        task_name(spec),
        params.space.build(),
        train,
        val,
        len(spec.classes),
        params.training,
        params.reward,
        params.latency,
        seed,
        params.cache.build(),
    )


def zero_cost_task(
    spec: SubdatasetSpec, sub: SubdatasetParams, params: TrainedTaskParams, seed: int
) -> ZeroCostTask:
    """Build (or reuse) the sub-dataset of ``spec``; candidates are scored untrained on it."""
    train, _ = subdataset_data(spec, sub)
    return ZeroCostTask(
        task_name(spec), params.space.build(), train, len(spec.classes), params.zero_cost, seed
    )


def meta_task_pool(
    source: Source,
    sub: SubdatasetParams,
    params: TrainedTaskParams,
    seed: int,
    zero_cost: bool = False,
) -> tuple[Callable[[int], TrainedTask | ZeroCostTask], dict[str, object]]:
    """Meta-epoch k → task on spec k (built when first needed), and the pool's identity.

    ``zero_cost``: candidates are scored at initialisation (``params.zero_cost``), not trained.
    """
    make = zero_cost_task if zero_cost else trained_task

    def task_at(k: int) -> TrainedTask | ZeroCostTask:
        return make(make_spec(source, sub, k), sub, params, seed)

    identity = {
        "source": str(source.root.resolve()),
        "sampling": sub.model_dump(exclude={"out_dir", "workers", "chunk_size"}),
        "trained_task": params.identity(),
        "kind": "zero_cost" if zero_cost else "trained",
        "seed": seed,
    }
    return task_at, identity


def target_spec(source: Source, sub: SubdatasetParams, target: TargetParams) -> SubdatasetSpec:
    """The target's spec: caps, split and resize as in ``subdatasets``; classes and size here."""
    if target.path is not None:
        source = ImageFolderSource(Path(target.path))
    n = len(source.classes) if target.n_classes is None else target.n_classes
    config = sub.model_copy(
        update={
            "n_classes": [n],
            "image_sizes": [target.image_size],
            "seed": target.seed,
            "exclude": [],  # exclusions keep targets out of meta-training, not out of targets
        }
    )
    return make_spec(source, config, 0)
