"""Meta-training loop for meta-learning searchers (CATCH Algorithm 1, lines 1–13).

Each meta-epoch takes a task (a seeded pick from a fixed pool such as the NB201 tables, or a
new sub-dataset per epoch, made on demand), resets the searcher's per-task state
(``begin_task``) and runs an ordinary search of ``n_search`` evaluations on it; the searcher
keeps learning across tasks. With a ``workdir`` every
meta-epoch's search is durable like any search (history + checkpoint after each evaluation),
and a meta checkpoint is written after each meta-epoch, so ``kill -9`` loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import Progress

from transfernas.executors import Executor
from transfernas.history import History
from transfernas.locks import owned
from transfernas.search import resume_checkpoint, run_search, save_checkpoint
from transfernas.searchers.base import Searcher
from transfernas.spaces.base import SearchSpace
from transfernas.tasks.base import Task


class MetaTrainingConfig(BaseModel):
    """How a meta-learning searcher is meta-trained (CATCH Alg. 1: N_meta epochs × N_search).

    On NB201 the task pool is the tables of the meta-training datasets (leave-one-dataset-out:
    the target's columns are dropped before the pool is built) plus ``mixtures`` seeded mixtures
    of them (task augmentation, see docs/catch.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_epochs: int = Field(40, ge=1, description="meta-epochs (one task each)")
    n_search: int = Field(50, ge=1, description="evaluations per meta-epoch")
    seed: int = Field(12345, ge=0, description="meta-training seed, disjoint from trial seeds")
    mixtures: int = Field(0, ge=0, description="augmentation: mixed tables added to the pool")


@runtime_checkable
class MetaLearner(Protocol):
    """What a searcher adds to be meta-trained and adapted (CATCH, and later L2NAS, ...)."""

    def begin_task(self) -> None: ...

    def task_stats(self) -> dict[str, float]: ...

    def network_state(self) -> dict[str, Any]: ...

    def load_network_state(self, state: dict[str, Any]) -> None: ...


def task_schedule(n_tasks: int, n_epochs: int, seed: int) -> list[int]:
    """Which task each meta-epoch uses: seeded, and fixed in advance so a resume agrees."""
    return np.random.default_rng([seed, 0x7A5C]).integers(n_tasks, size=n_epochs).tolist()


def scheduled(tasks: Sequence[Task], n_epochs: int, seed: int) -> Callable[[int], Task]:
    """A fixed pool sampled by :func:`task_schedule` (the NB201 tables)."""
    schedule = task_schedule(len(tasks), n_epochs, seed)
    return lambda epoch: tasks[schedule[epoch]]


def meta_train(
    space: SearchSpace,
    searcher: Searcher,
    task_at: Callable[[int], Task],
    n_epochs: int,
    n_search: int,
    *,
    pool: Any,
    workdir: str | Path | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
    executor: Executor | None = None,
    batch_size: int = 1,
    failed_reward: float = 0.0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Meta-train ``searcher`` in place on task ``task_at(epoch)`` of each meta-epoch.

    ``pool`` identifies the task pool (names, specs): a resume with another pool is refused.
    Tasks are made on demand, so a pool can be built lazily (a new sub-dataset per epoch).
    Returns one stats dict per meta-epoch and every evaluation record (``trial`` = epoch).
    """
    if not isinstance(searcher, MetaLearner):
        raise TypeError(f"searcher {searcher.name!r} is not a meta-learner (see MetaLearner)")
    workdir = Path(workdir) if workdir is not None else None
    identity = {"searcher": searcher.name, "seed": searcher.seed, "pool": pool}
    curves: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    start = 0
    with owned(workdir) if workdir is not None else nullcontext():
        state = resume_checkpoint(workdir / "meta.pt" if workdir is not None else None, identity)
        if state is not None:
            searcher.load_state_dict(state["searcher"])
            start, curves = state["epoch"], state["curves"]
            for epoch in range(start):
                records.extend(History(workdir / f"epoch_{epoch:04d}.jsonl"))

        with Progress(disable=not progress, transient=True) as bar:
            bar_id = bar.add_task(f"meta-training {searcher.name}", total=n_epochs, completed=start)
            for epoch in range(start, n_epochs):
                task = task_at(epoch)
                searcher.begin_task()
                history = (
                    History(workdir / f"epoch_{epoch:04d}.jsonl") if workdir is not None else None
                )
                step_ckpt = workdir / f"epoch_{epoch:04d}.pt" if workdir is not None else None
                history = run_search(
                    space,
                    task,
                    searcher,
                    n_search,
                    history=history,
                    checkpoint=step_ckpt,
                    trial=epoch,
                    executor=executor,
                    batch_size=batch_size,
                    failed_reward=failed_reward,
                )
                records.extend(history)
                stats = {"epoch": epoch, "task": task.name} | searcher.task_stats()
                curves.append(stats)
                if workdir is not None:
                    save_checkpoint(
                        workdir / "meta.pt",
                        {
                            "identity": identity,
                            "epoch": epoch + 1,
                            "curves": curves,
                            "searcher": searcher.state_dict(),
                        },
                    )
                    step_ckpt.unlink(missing_ok=True)
                if on_epoch is not None:
                    on_epoch(stats)
                bar.update(bar_id, completed=epoch + 1)
        return curves, records
