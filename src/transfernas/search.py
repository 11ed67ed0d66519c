"""The search loop: ask → evaluate → record → tell, with a budget, a seed and crash-safe resume.

Every finished evaluation is appended (fsync'ed) to the history *before* the searcher is told,
and the searcher's state is checkpointed atomically after each tell. On restart the searcher
resumes from its checkpoint (or from scratch) and re-asks; candidates whose step is already in
the history take the recorded result instead of being evaluated again. A replayed candidate
that differs from the recorded one means the searcher is not deterministic or its config
changed, and stops the run rather than mixing two searches.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from rich.progress import Progress

from transfernas.errors import UserError
from transfernas.executors import Executor, Outcome, SerialExecutor
from transfernas.history import History, StateWriteError
from transfernas.locks import owned
from transfernas.searchers.base import Searcher
from transfernas.spaces.base import SearchSpace
from transfernas.tasks.base import Task


class ResumeMismatchError(UserError, RuntimeError):
    """The history on disk was written by a different search than the one resuming it."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash or a failed write (disk full, read-only folder) leaves the old
    checkpoint, never half a new one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save(state, f)  # torch reports a failed write of its zip as a RuntimeError
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        raise StateWriteError(path, exc) from exc


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    return torch.load(path, weights_only=True) if path.exists() else None


def resume_checkpoint(path: Path | None, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint a run resumes from (None: no path, or nothing saved yet); one saved by
    another run (``identity``: searcher, seed, task, …) is a ResumeMismatchError."""
    state = load_checkpoint(path) if path is not None else None
    if state is not None and state["identity"] != identity:
        raise ResumeMismatchError(f"checkpoint {path} is for {state['identity']}, not {identity}")
    return state


def run_search(
    space: SearchSpace,
    task: Task,
    searcher: Searcher,
    budget: int,
    *,
    history: History | None = None,
    checkpoint: str | Path | None = None,
    batch_size: int = 1,
    trial: int = 0,
    progress: bool = False,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    executor: Executor | None = None,
    failed_reward: float = 0.0,
) -> History:
    """Run (or resume) one search of ``budget`` evaluations; returns its history.

    ``batch_size`` candidates are asked at once and evaluated by ``executor`` (serial by
    default; Ray in parallel). Each finished evaluation is recorded as it arrives; an
    evaluation that failed after the executor's retries is recorded with ``status: failed``
    and ``failed_reward``, and the searcher is told that reward.
    """
    if budget < 0 or batch_size < 1:
        raise ValueError(f"budget must be >= 0 and batch_size >= 1, got {budget}, {batch_size}")
    history = history if history is not None else History()
    executor = executor if executor is not None else SerialExecutor()
    recorded = {rec["step"]: rec for rec in history}
    identity = {"searcher": searcher.name, "seed": searcher.seed, "task": task.name}
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    with owned(ckpt_path.parent) if ckpt_path is not None else nullcontext():
        state = resume_checkpoint(ckpt_path, identity)
        done = 0
        if state is not None:
            searcher.load_state_dict(state["searcher"])
            done = state["n_told"]

        with Progress(disable=not progress, transient=True) as bar:
            bar_id = bar.add_task(f"{searcher.name} on {task.name}", total=budget, completed=done)
            while done < budget:
                candidates = searcher.ask(min(batch_size, budget - done))
                steps = range(done, done + len(candidates))
                by_step, todo = {}, []
                for step, actions in zip(steps, candidates, strict=True):
                    rec = recorded.get(step)
                    if rec is None:
                        todo.append((step, actions))
                    elif tuple(rec["actions"]) != tuple(actions):
                        raise ResumeMismatchError(
                            f"step {step}: history has {rec['actions']}, "
                            f"searcher replays {list(actions)}"
                        )
                    else:
                        by_step[step] = rec
                submitted = time.perf_counter()
                for outcome in executor.map(task, [actions for _, actions in todo]):
                    step, actions = todo[outcome.index]
                    rec = _record(
                        space, actions, step, trial, searcher.seed, outcome, failed_reward
                    )
                    rec["wall_s"] = time.perf_counter() - submitted
                    history.append([rec])
                    by_step[step] = rec
                    if on_record is not None:
                        on_record(rec)
                searcher.tell(candidates, [by_step[step]["reward"] for step in steps])
                done += len(candidates)
                if ckpt_path is not None:
                    save_checkpoint(
                        ckpt_path,
                        {"identity": identity, "n_told": done, "searcher": searcher.state_dict()},
                    )
                bar.update(bar_id, completed=done)
        return history


def _record(
    space: SearchSpace,
    actions: tuple[int, ...],
    step: int,
    trial: int,
    seed: int,
    outcome: Outcome,
    failed_reward: float,
) -> dict[str, Any]:
    ev = outcome.evaluation
    rec = {
        "trial": trial,
        "step": step,
        "seed": seed,
        "actions": [int(a) for a in actions],
        "arch": str(space.decode(actions)),
        "reward": float(ev.reward) if ev is not None else float(failed_reward),
        "metrics": dict(ev.metrics) if ev is not None else {},
        "cost_s": float(ev.cost_s) if ev is not None else 0.0,
        "status": "ok" if ev is not None else "failed",
        "attempts": outcome.attempts,
        "time": time.time(),
    }
    for kind, hit in (ev.cached if ev is not None else {}).items():
        rec[f"cache_{kind}"] = "hit" if hit else "miss"
    if outcome.error is not None:
        rec["error"] = outcome.error
    return rec
