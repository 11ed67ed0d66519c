"""Core of the ``meta_train``, ``adapt`` and ``search`` stages on NAS-Bench-201 tables.

meta_train: meta-train a meta-learning searcher on the tables of some datasets; only their
            columns are read — the target dataset's never are.
adapt:      start from the meta-trained networks and search the target dataset.
search:     the same search from scratch (any searcher): the baseline adaptation beats.
Both searches are durable (history + checkpoint after each evaluation) and resume after kill -9.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from transfernas.config import SearcherName
from transfernas.history import History
from transfernas.meta import MetaTrainingConfig, meta_train
from transfernas.search import run_search
from transfernas.searchers import (
    SEARCHERS,
    Searcher,
    SearcherConfig,
    check_searcher_name,
    make_searcher,
)
from transfernas.spaces.nb201 import NB201Space
from transfernas.tasks.tabular import (
    COLUMNS_200,
    NB201Dataset,
    NB201Table,
    TabularTask,
    meta_tasks,
)

log = logging.getLogger(__name__)


def _check_meta_learner(name: str) -> str:
    check_searcher_name(name)
    if not SEARCHERS[name].meta_trained:
        meta = [n for n, cls in SEARCHERS.items() if cls.meta_trained]
        raise ValueError(f"{name!r} is not meta-trained; allowed: {', '.join(meta)}")
    return name


MetaLearnerName = Annotated[str, AfterValidator(_check_meta_learner)]


class MetaTrainParams(MetaTrainingConfig):
    """``meta_train`` block of ``conf/base/parameters_meta_train.yml``."""

    searcher: MetaLearnerName = "catch-meta"
    datasets: list[NB201Dataset] = Field(
        default_factory=lambda: ["cifar100", "ImageNet16-120"],
        min_length=1,
        description="NB201 tables used as meta-training tasks (leave the target out)",
    )
    workdir: str | None = Field(None, description="durable meta-training state; reruns resume")


class TargetSearchParams(BaseModel):
    """``adapt`` / ``search`` blocks: one search on the target dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    searcher: SearcherName = "catch-meta"
    dataset: NB201Dataset = "cifar10-valid"
    budget: int = Field(50, ge=1, description="evaluations on the target")
    seed: int = Field(0, ge=0)
    workdir: str | None = Field(None, description="durable history + checkpoint; reruns resume")


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_meta_training(
    nb201_12epoch: pd.DataFrame, params: MetaTrainParams, searcher_config: SearcherConfig
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Meta-train; returns the checkpoint (networks + what produced them) and per-epoch curves."""
    table = NB201Table.from_frame(nb201_12epoch, datasets=params.datasets)
    tasks = meta_tasks(table, params.mixtures, params.seed)
    space = tasks[0].space
    searcher = make_searcher(params.searcher, space, searcher_config, params.seed)
    workdir = None
    if params.workdir is not None:
        workdir = Path(params.workdir) / _fingerprint(
            params.model_dump(), searcher_config.model_dump()
        )
    curves = meta_train(
        space, searcher, tasks, params.n_epochs, params.n_search, workdir=workdir, progress=True
    )
    checkpoint = {
        "searcher": params.searcher,
        "space": space.name,
        "searcher_config": searcher_config.model_dump(),
        "meta_train": params.model_dump(),
        "tasks": [t.name for t in tasks],
        "networks": searcher.network_state(),
    }
    return checkpoint, pd.DataFrame(curves)


def _searcher_for_target(
    params: TargetSearchParams, searcher_config: SearcherConfig, checkpoint: dict[str, Any] | None
) -> Searcher:
    searcher = make_searcher(params.searcher, NB201Space(), searcher_config, params.seed)
    if checkpoint is None:
        return searcher
    if not SEARCHERS[params.searcher].meta_trained:
        raise ValueError(
            f"adapt.searcher: {params.searcher!r} cannot start from a meta-trained checkpoint"
        )
    if (
        SEARCHERS[checkpoint["searcher"]].config_key != searcher.config_key
        or checkpoint["space"] != "nb201"
    ):
        raise ValueError(
            f"the meta_train checkpoint holds a {checkpoint['searcher']!r} agent for space "
            f"{checkpoint['space']!r}; adapt.searcher is {params.searcher!r}"
        )
    if checkpoint["searcher"] != params.searcher:
        log.warning("adapting %s from a %s checkpoint", params.searcher, checkpoint["searcher"])
    if f"nb201/{params.dataset}" in checkpoint["tasks"]:
        log.warning(
            "target %s was a meta-training task: this is not a transfer result", params.dataset
        )
    searcher.load_network_state(checkpoint["networks"])
    return searcher


def run_target_search(
    nb201_12epoch: pd.DataFrame,
    params: TargetSearchParams,
    searcher_config: SearcherConfig,
    checkpoint: dict[str, Any] | None = None,
) -> History:
    """Search the target dataset, from a meta-trained checkpoint or from scratch."""
    searcher = _searcher_for_target(params, searcher_config, checkpoint)
    task = TabularTask(
        NB201Table.from_frame(nb201_12epoch, datasets=[params.dataset]), params.dataset
    )
    history, ckpt = History(), None
    if params.workdir is not None:
        # a different checkpoint means a different search: key the run by what produced it
        origin = None
        if checkpoint is not None:
            origin = {
                k: checkpoint[k] for k in ("searcher", "searcher_config", "meta_train", "tasks")
            }
        run_dir = Path(params.workdir) / _fingerprint(
            params.model_dump(), searcher_config.model_dump(), origin
        )
        history, ckpt = History(run_dir / "history.jsonl"), run_dir / "searcher.pt"
    return run_search(
        task.space, task, searcher, params.budget, history=history, checkpoint=ckpt, progress=True
    )


def best_architecture(
    history: History, dataset: str, nb201_200epoch: pd.DataFrame
) -> dict[str, Any]:
    """The search's answer, with its 200-epoch test accuracy read only now, for the report."""
    best = history.best()
    index = int(best["metrics"]["arch_index"])
    return {
        "dataset": dataset,
        "arch": best["arch"],
        "actions": best["actions"],
        "arch_index": index,
        "found_at_step": best["step"],
        "val_acc_12epoch": best["reward"],
        "test_acc_12epoch": best["metrics"]["test_acc"],
        "test_acc_200epoch": float(nb201_200epoch[COLUMNS_200[dataset]].iloc[index]),
        "evaluations": len(history),
    }
