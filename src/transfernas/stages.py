"""Core of the ``meta_train``, ``adapt`` and ``search`` stages.

``subdatasets`` (default): candidates are trained on ImageNet sub-datasets (CATCH §4.3) —
meta-training takes a new sub-dataset per meta-epoch, adaptation one chosen target.
``zero_cost``: candidates are scored untrained on the same sub-datasets (a zero-cost proxy,
``trained_task.zero_cost``): a search in seconds on a CPU.
``nb201``: rewards are NB201 table lookups; meta-training reads only the meta-training
datasets' columns — the target dataset's never are.
``detection`` / ``segmentation`` (adapt and search only): each candidate is trained briefly as
the backbone of the detection / segmentation stage's model, rewarded with mAP / mIoU.
The target kinds of adapt and search are modules of ``targets/`` (``TARGETS``); meta-networks
that are not ask/tell searchers (BASE) sit behind ``META_NETWORKS``.

meta_train: meta-train a meta-learning searcher.
adapt:      start from the meta-trained networks and search the target task.
search:     the same search from scratch (any searcher): the baseline adaptation beats.
Both searches are durable (history + checkpoint after each evaluation) and resume after kill -9.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from transfernas.bayes.base import BASEConfig
from transfernas.bayes.stage import BASEMetaNetwork
from transfernas.config import searcher_config
from transfernas.data.build import SubdatasetParams
from transfernas.digest import json_digest
from transfernas.downstream.runner import DownstreamParams
from transfernas.executors import ExecutorConfig, search_kwargs
from transfernas.history import History
from transfernas.meta import MetaTrainingConfig, meta_train, scheduled
from transfernas.search import run_search
from transfernas.searchers import (
    SEARCHERS,
    Searcher,
    SearcherConfig,
    make_searcher,
)
from transfernas.searchers.adaptation import AdaptationConfig, adapted
from transfernas.spaces import SearchSpace
from transfernas.targets import TARGETS
from transfernas.tasks.base import Task
from transfernas.tasks.subdataset import (
    SearchTargetParams,
    Source,
    TrainedTaskParams,
    meta_task_pool,
)
from transfernas.tasks.tabular import (
    NB201Dataset,
    NB201Table,
    meta_tasks,
)

log = logging.getLogger(__name__)

TASKS = tuple(TARGETS)  # adapt.task / search.task


def _check_meta_learner(name: str) -> str:
    if name in META_NETWORKS:
        return name
    meta = [n for n, cls in SEARCHERS.items() if cls.meta_trained] + list(META_NETWORKS)
    if name not in SEARCHERS:
        raise ValueError(f"unknown searcher {name!r}; allowed: {', '.join(meta)}")
    if not SEARCHERS[name].meta_trained:
        raise ValueError(f"{name!r} is not meta-trained; allowed: {', '.join(meta)}")
    return name


def _check_target_searcher(name: str) -> str:
    if name not in SEARCHERS and name not in META_NETWORKS:
        allowed = ", ".join([*SEARCHERS, *META_NETWORKS])
        raise ValueError(f"unknown searcher {name!r}; allowed: {allowed}")
    return name


MetaLearnerName = Annotated[str, AfterValidator(_check_meta_learner)]
TargetSearcherName = Annotated[str, AfterValidator(_check_target_searcher)]


class FidelityParams(BaseModel):
    """``meta_train.fidelity``: does the meta-training reward rank like a longer training?"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_archs: int = Field(
        8, ge=0, description="architectures of each checked meta-epoch re-trained (0 = off)"
    )
    epochs_factor: int = Field(
        4, ge=2, description="the reference trains trained_task.training.epochs × this"
    )
    last_epochs: int = Field(1, ge=1, description="how many meta-epochs are checked, the last")


class MetaTrainParams(MetaTrainingConfig):
    """``meta_train`` block of ``conf/base/parameters_meta_train.yml``."""

    searcher: MetaLearnerName = "catch-meta"
    tasks: Literal["subdatasets", "zero_cost", "nb201"] = Field(
        "subdatasets",
        description="a sub-dataset task per meta-epoch (candidates trained, or scored by a "
        "zero-cost proxy), or NB201 tables",
    )
    datasets: list[NB201Dataset] = Field(
        default_factory=lambda: ["cifar100", "ImageNet16-120"],
        min_length=1,
        description="tasks: nb201 — tables used as meta-training tasks (leave the target out)",
    )
    workdir: str | None = Field(None, description="durable meta-training state; reruns resume")
    base: BASEConfig = Field(
        default_factory=BASEConfig, description="searcher: base — the meta-network (BASE)"
    )
    fidelity: FidelityParams = Field(
        default_factory=FidelityParams,
        description="tasks: subdatasets | zero_cost — rewards vs a longer training",
    )


class TargetSearchParams(BaseModel):
    """``adapt`` / ``search`` blocks: one search on the target task."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    searcher: TargetSearcherName = "catch-meta"
    task: Literal[TASKS] = Field(  # type: ignore[valid-type]
        "subdataset",
        description="train candidates on a sub-dataset, score them untrained on it "
        "(zero_cost), look up NB201, or train them in a downstream kind's model (detection: "
        "the backbone DetNAS-style or the NAS-FPN neck, see detection.search.space; "
        "segmentation: the backbone)",
    )
    dataset: NB201Dataset = Field("cifar10-valid", description="task: nb201 — the table")
    target: SearchTargetParams = Field(
        default_factory=SearchTargetParams,
        description="task: subdataset | zero_cost — rewards on a split of train/, never on "
        "the held-out one",
    )
    budget: int = Field(50, ge=1, description="evaluations on the target")
    seed: int = Field(0, ge=0)
    workdir: str | None = Field(None, description="durable history + checkpoint; reruns resume")
    adaptation: AdaptationConfig = Field(
        default_factory=AdaptationConfig,
        description="adapt: how the meta-trained searcher uses its prior (docs/catch.md)",
    )


@dataclass(frozen=True)
class StageInputs:
    """What the stages read besides their own block (catalog datasets, shared blocks)."""

    nb201_12epoch: pd.DataFrame | None = None
    source: Source | None = None
    subdatasets: SubdatasetParams = field(default_factory=SubdatasetParams)
    trained_task: TrainedTaskParams = field(default_factory=TrainedTaskParams)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    # per downstream kind (detection, segmentation): its catalog data and its parameters
    downstream: dict[str, tuple[dict[str, str], DownstreamParams]] = field(default_factory=dict)

    def space_identity(self, tabular: bool) -> dict[str, Any]:
        return {"name": "nb201"} if tabular else self.trained_task.space.model_dump()

    def image_source(self) -> Source:
        if self.source is None:
            raise ValueError("trained tasks need an image source (catalog entry imagenet_source)")
        return self.source


def run_meta_training(
    params: MetaTrainParams, searcher_config: SearcherConfig, inputs: StageInputs
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Meta-train; returns the checkpoint (networks + what produced them), per-epoch curves
    and one row per evaluation. A meta-network (:data:`META_NETWORKS`: BASE) reads its own
    block (``params.base``) instead of ``searcher_config`` and evaluates no candidate."""
    if params.searcher in META_NETWORKS:
        return META_NETWORKS[params.searcher].meta_train(params, inputs)
    tabular = params.tasks == "nb201"
    if tabular:
        table = NB201Table.from_frame(inputs.nb201_12epoch, datasets=params.datasets)
        tasks = meta_tasks(table, params.mixtures, params.seed)
        space = tasks[0].space
        pool: Any = [t.name for t in tasks]
        task_at = scheduled(tasks, params.n_epochs, params.seed)
    else:
        space = inputs.trained_task.space.build()
        task_at, pool = meta_task_pool(
            inputs.image_source(),
            inputs.subdatasets,
            inputs.trained_task,
            params.seed,
            zero_cost=params.tasks == "zero_cost",
        )
    searcher = make_searcher(params.searcher, space, searcher_config, params.seed)
    workdir = None
    if params.workdir is not None:
        workdir = Path(params.workdir) / json_digest(
            [params.model_dump(exclude={"fidelity"}), searcher_config.model_dump(), pool]
        )
    with search_kwargs(inputs.executor) as run_with:
        curves, records = meta_train(
            space,
            searcher,
            task_at,
            params.n_epochs,
            params.n_search,
            pool=pool,
            workdir=workdir,
            progress=True,
            **run_with,
        )
    checkpoint = {
        "searcher": params.searcher,
        "space": inputs.space_identity(tabular),
        "searcher_config": searcher_config.model_dump(),
        "meta_train": params.model_dump(),
        "tasks": pool if tabular else list(dict.fromkeys(c["task"] for c in curves)),
        "networks": searcher.network_state(),
    }
    return checkpoint, pd.DataFrame(curves), History.frame_of(records)


class MetaNetwork(Protocol):
    """A meta-learner trained by gradient on the tasks' images rather than by searching, so not
    an ask/tell searcher of ``SEARCHERS``: the one seam through which the stages run it.
    Registered in :data:`META_NETWORKS` under the name ``meta_train.searcher`` /
    ``adapt.searcher`` take; its settings are its own block of ``meta_train`` and travel in
    its checkpoint (the ``searchers`` blocks are not read)."""

    def meta_train(
        self, params: MetaTrainParams, inputs: StageInputs
    ) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
        """Checkpoint (with ``searcher``: its name), per-epoch curves, no evaluations."""
        ...

    def for_target(
        self,
        params: TargetSearchParams,
        task: Task,
        inputs: StageInputs,
        checkpoint: dict[str, Any] | None,
        run_dir: Path | None,
    ) -> Searcher:
        """The meta-trained network adapted to the target: an ask/tell searcher of its space."""
        ...


META_NETWORKS: dict[str, MetaNetwork] = {BASEMetaNetwork.name: BASEMetaNetwork()}


def stage_searcher_config(settings: BaseModel, name: str) -> SearcherConfig:
    """The ``searchers`` block of ``name``; a meta-network's settings are its own (empty)."""
    return SearcherConfig() if name in META_NETWORKS else searcher_config(settings, name)


def _searcher_for_target(
    params: TargetSearchParams,
    space: SearchSpace,
    space_identity: dict[str, Any],
    searcher_config: SearcherConfig,
    checkpoint: dict[str, Any] | None,
    target_name: str,
) -> Searcher:
    if checkpoint is None:
        return make_searcher(params.searcher, space, searcher_config, params.seed)
    if not SEARCHERS[params.searcher].meta_trained:
        raise ValueError(
            f"adapt.searcher: {params.searcher!r} cannot start from a meta-trained checkpoint"
        )
    if SEARCHERS[checkpoint["searcher"]].config_key != SEARCHERS[params.searcher].config_key:
        raise ValueError(
            f"the meta_train checkpoint holds a {checkpoint['searcher']!r} agent; "
            f"adapt.searcher is {params.searcher!r}"
        )
    if checkpoint["space"] != space_identity:
        raise ValueError(
            f"the meta_train checkpoint was trained on space {checkpoint['space']}, the target "
            f"task searches {space_identity}: run meta_train with the same trained_task.space "
            "(and tasks kind) as adapt"
        )
    if checkpoint["searcher"] != params.searcher:
        log.warning("adapting %s from a %s checkpoint", params.searcher, checkpoint["searcher"])
    if target_name in checkpoint["tasks"]:
        log.warning(
            "target %s was a meta-training task: this is not a transfer result", target_name
        )
    return adapted(
        SEARCHERS[params.searcher],
        space,
        searcher_config,
        params.seed,
        checkpoint["networks"],
        params.adaptation,
    )


def run_target_search(
    params: TargetSearchParams,
    searcher_config: SearcherConfig,
    inputs: StageInputs,
    checkpoint: dict[str, Any] | None = None,
) -> tuple[History, Task]:
    """Search the target task, from a meta-trained checkpoint or from scratch."""
    kind = TARGETS[params.task]
    task = kind.task(params, inputs)
    space = task.space
    history, ckpt, run_dir = History(), None, None
    if params.workdir is not None:
        # a different checkpoint means a different search: key the run by what produced it
        origin = None
        if checkpoint is not None:
            origin = {
                k: checkpoint[k] for k in ("searcher", "searcher_config", "meta_train", "tasks")
            }
        task_parts = kind.run_parts(task, inputs)
        run_dir = Path(params.workdir) / json_digest(
            [params.model_dump(), searcher_config.model_dump(), origin, task.name, task_parts]
        )
        history, ckpt = History(run_dir / "history.jsonl"), run_dir / "searcher.pt"
    identity = kind.space_identity(task, inputs)
    if params.searcher in META_NETWORKS:
        searcher = META_NETWORKS[params.searcher].for_target(
            params, task, inputs, checkpoint, run_dir
        )
    else:
        searcher = _searcher_for_target(
            params, space, identity, searcher_config, checkpoint, task.name
        )
    with search_kwargs(inputs.executor) as run_with:
        history = run_search(
            space,
            task,
            searcher,
            params.budget,
            history=history,
            checkpoint=ckpt,
            progress=True,
            **run_with,
        )
    return history, task


def best_architecture(
    history: History, params: TargetSearchParams, task: Task, nb201_200epoch: pd.DataFrame | None
) -> dict[str, Any]:
    """The search's answer, with what its target kind adds (an NB201 cell's 200-epoch test
    accuracy is read only now, for the report)."""
    best = history.best()
    out = {
        "searcher": params.searcher,
        "task": task.name,
        "arch": best["arch"],
        "actions": best["actions"],
        "reward": best["reward"],
        "found_at_step": best["step"],
        "evaluations": len(history),
        "failed_evaluations": sum(r.get("status") == "failed" for r in history),
    }
    return out | TARGETS[params.task].describe(best, params, task, nb201_200epoch)
