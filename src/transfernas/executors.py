"""Where candidate evaluations run: in this process (default) or as Ray tasks.

An executor takes a task and a batch of candidates and yields one :class:`Outcome` per
candidate as it finishes (Ray: in completion order). A failure is retried ``max_retries``
times — on Ray that covers a killed worker as well as an exception — and then comes back as
an outcome with ``error`` set, which the search loop records as a failed evaluation. Nothing
is dropped silently.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from transfernas.tasks.base import Evaluation, Task

log = logging.getLogger(__name__)


class ExecutorConfig(BaseModel):
    """The ``executor`` block: serial (default) or Ray, and what one evaluation may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["serial", "ray"] = "serial"
    address: str | None = Field(None, description="Ray cluster address; null = local ray.init()")
    num_cpus: float = Field(1, gt=0, description="CPUs reserved per evaluation (Ray)")
    num_gpus: float = Field(0, ge=0, description="GPUs reserved per evaluation (Ray)")
    local_cpus: int | None = Field(None, ge=1, description="size of a local Ray (null = all)")
    max_retries: int = Field(1, ge=0, description="re-runs of a failed or killed evaluation")
    parallel: int = Field(1, ge=1, description="candidates asked and evaluated at once")
    failed_reward: float = Field(0.0, description="reward told for an evaluation that failed")


@dataclass(frozen=True)
class Outcome:
    index: int  # position in the submitted batch
    evaluation: Evaluation | None
    error: str | None = None
    attempts: int = 1


class Executor(Protocol):
    def map(self, task: Task, candidates: Sequence[Sequence[int]]) -> Iterator[Outcome]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Evaluate one candidate after the other in this process."""

    def __init__(self, max_retries: int = 0) -> None:
        self.max_retries = max_retries

    def map(self, task: Task, candidates: Sequence[Sequence[int]]) -> Iterator[Outcome]:
        for i, actions in enumerate(candidates):
            error = None
            for attempt in range(1, self.max_retries + 2):
                try:
                    yield Outcome(i, task.evaluate(actions), attempts=attempt)
                    break
                except Exception:  # recorded, not swallowed: see module docstring
                    error = traceback.format_exc(limit=3)
                    log.warning("evaluation of %s failed (try %d):\n%s", actions, attempt, error)
            else:
                yield Outcome(i, None, error, self.max_retries + 1)

    def close(self) -> None:
        pass


def _evaluate_remote(task: Task, actions: Sequence[int]) -> Evaluation:
    return task.evaluate(actions)


def ray_init(config: ExecutorConfig) -> Any:
    """The ``ray`` module, joined to ``config.address`` or a local Ray (``local_cpus`` CPUs)
    started if none runs yet; usage stats off (nothing may phone home)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if config.address is not None:
            init["address"] = config.address
        elif config.local_cpus is not None:
            init["num_cpus"] = config.local_cpus
        ray.init(**init)
    return ray


def ray_options(config: ExecutorConfig) -> dict[str, Any]:
    """What one Ray task reserves, and how often a failed or killed one is re-run."""
    return {
        "num_cpus": config.num_cpus,
        "num_gpus": config.num_gpus,
        "max_retries": config.max_retries,
        "retry_exceptions": True,
    }


class RayExecutor:
    """Each candidate is one Ray task with the configured resources.

    The task object is put in Ray's object store once per task and shared by its evaluations.
    """

    def __init__(self, config: ExecutorConfig) -> None:
        self.ray, self.config = ray_init(config), config
        self._remote = self.ray.remote(_evaluate_remote).options(**ray_options(config))
        self._current: tuple[Task, Any] | None = None  # the task in the object store

    def map(self, task: Task, candidates: Sequence[Sequence[int]]) -> Iterator[Outcome]:
        ray = self.ray
        if self._current is None or self._current[0] is not task:
            self._current = (task, ray.put(task))  # the previous task's data can go
        ref = self._current[1]
        pending = {self._remote.remote(ref, list(a)): i for i, a in enumerate(candidates)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            try:
                yield Outcome(i, ray.get(done[0]), attempts=1)
            except Exception as exc:  # a task error or a dead worker, after Ray's retries
                error = f"{type(exc).__name__}: {exc}"[-2000:]
                log.warning("evaluation of %s failed on Ray: %s", candidates[i], error)
                yield Outcome(i, None, error, self.config.max_retries + 1)

    def close(self) -> None:
        self._current = None


def make_executor(config: ExecutorConfig) -> Executor:
    if config.kind == "ray":
        return RayExecutor(config)
    return SerialExecutor(config.max_retries)


@contextmanager
def search_kwargs(config: ExecutorConfig) -> Iterator[dict[str, Any]]:
    """``run_search`` / ``meta_train`` keyword arguments for ``config``; closes the executor."""
    executor = make_executor(config)
    try:
        yield {
            "executor": executor,
            "batch_size": config.parallel,
            "failed_reward": config.failed_reward,
        }
    finally:
        executor.close()
