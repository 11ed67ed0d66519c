"""Does a reward rank architectures? Rank correlation of rewards against a ground truth.

Every reward a search optimises on NB201 cells (a short training, a zero-cost score) can be
checked against the table: Spearman ρ of the rewards of the evaluated cells against the same
cells' NB201 12-epoch validation and 200-epoch test accuracies (read for the report only).
Where no table exists (the residual-block space), the ground truth is a longer training of
some of the evaluated architectures on the same task (``longer_training_fidelity``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from transfernas.digest import json_digest
from transfernas.executors import Executor, make_executor
from transfernas.history import AppendLog
from transfernas.spaces.nb201 import NB201Space
from transfernas.tasks.base import Task
from transfernas.tasks.subdataset import meta_task_pool
from transfernas.tasks.tabular import COLUMNS_12, COLUMNS_200, DATASETS, NB201Table, check_test200

if TYPE_CHECKING:
    from transfernas.stages import MetaTrainParams, StageInputs


def nb201_spearman(
    archs: Sequence[str], rewards: Sequence[float], t12: pd.DataFrame, t200: pd.DataFrame
) -> dict[str, float]:
    """``{"<dataset>/val12": ρ, "<dataset>/test200": ρ}`` over the distinct evaluated cells."""
    table = NB201Table.from_frame(t12)
    check_test200(t200)
    space = NB201Space()
    frame = pd.DataFrame({"arch": list(archs), "reward": np.asarray(rewards, dtype=float)})
    frame = frame.drop_duplicates("arch")
    if len(frame) < 3:
        raise ValueError(f"need at least 3 distinct cells for a rank correlation, got {len(frame)}")
    codes = space.codes(np.array([space.encode(a) for a in frame["arch"]]))
    index = table.index_of_code[codes]
    out: dict[str, float] = {}
    for ds in DATASETS:
        val12 = table.columns[COLUMNS_12[ds][0]][index]
        test200 = t200[COLUMNS_200[ds]].to_numpy()[index]
        out[f"{ds}/val12"] = float(stats.spearmanr(frame["reward"], val12).statistic)
        out[f"{ds}/test200"] = float(stats.spearmanr(frame["reward"], test200).statistic)
    return out


def bootstrap_spearman(
    groups: Sequence[tuple[Sequence[float], Sequence[float]]],
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean Spearman ρ over ``groups`` (pairs of rewards
    and reference rewards, one per checked meta-epoch): each group's networks are resampled
    with replacement, all resamples at once. With 8–16 networks one ρ is a noisy figure; the
    interval says how noisy. None when no group has 3 networks."""
    rng = np.random.default_rng(seed)
    rhos = []
    for ours, theirs in groups:
        x, y = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
        if len(x) < 3:
            continue
        picks = rng.integers(0, len(x), size=(n_boot, len(x)))
        rx = stats.rankdata(x[picks], axis=1)
        ry = stats.rankdata(y[picks], axis=1)
        rx -= rx.mean(axis=1, keepdims=True)
        ry -= ry.mean(axis=1, keepdims=True)
        denom = np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            rhos.append((rx * ry).sum(axis=1) / denom)  # NaN where a resample is all ties
    if not rhos:
        return None
    mean = np.nanmean(np.stack(rhos), axis=0)
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(mean, [tail, 100 - tail])
    return float(low), float(high)


def spread_by_reward(evaluations: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to ``n`` distinct architectures at evenly spaced reward ranks (best and worst
    included): a rank correlation on them covers the whole range the search saw."""
    frame = evaluations.drop_duplicates("arch").sort_values(["reward", "arch"])
    picks = np.unique(np.linspace(0, len(frame) - 1, min(n, len(frame))).round().astype(int))
    return frame.iloc[picks]


def longer_training_fidelity(
    evaluations: pd.DataFrame,
    reference: Task,
    n_archs: int,
    log: AppendLog,
    executor: Executor,
) -> dict[str, Any]:
    """Spearman ρ / Kendall τ of the rewards of one task's ok ``evaluations`` (columns arch,
    actions, reward) against ``reference``'s rewards of the same architectures, on up to
    ``n_archs`` of them spread over the reward range. ``reference`` is the same task with a
    longer training (same data, initialisation and seeds). Reference evaluations are
    appended to ``log`` as they finish, so a killed check resumes without retraining them."""
    chosen = spread_by_reward(evaluations, n_archs)
    done = {r["arch"]: r for r in log if r["task"] == reference.name}
    todo = [row for row in chosen.itertuples() if row.arch not in done]
    for outcome in executor.map(reference, [list(row.actions) for row in todo]):
        if outcome.evaluation is None:
            raise RuntimeError(
                f"reference training of {todo[outcome.index].arch} on {reference.name} "
                f"failed: {outcome.error}"
            )
        ev = outcome.evaluation
        record = {
            "task": reference.name,
            "arch": todo[outcome.index].arch,
            "reward": ev.reward,
            "val_acc": ev.metrics.get("val_acc"),
            "cost_s": ev.cost_s,
        }
        log.append([record])
        done[record["arch"]] = record
    rows = [
        {
            "arch": row.arch,
            "reward": float(row.reward),
            "reference_reward": done[row.arch]["reward"],
            "reference_val_acc": done[row.arch]["val_acc"],
            "reference_s": done[row.arch]["cost_s"],
        }
        for row in chosen.itertuples()
    ]
    ours = [r["reward"] for r in rows]
    theirs = [r["reference_reward"] for r in rows]
    enough = len(rows) >= 3
    return {
        "task": reference.name,
        "n": len(rows),
        "spearman": float(stats.spearmanr(ours, theirs).statistic) if enough else None,
        "kendall": float(stats.kendalltau(ours, theirs).statistic) if enough else None,
        "archs": rows,
    }


def meta_reward_fidelity(
    params: MetaTrainParams, evaluations: pd.DataFrame, inputs: StageInputs
) -> dict[str, Any] | None:
    """How well the meta-training reward ranks architectures like a longer training.

    The last ``fidelity.last_epochs`` meta-epochs are checked: up to ``fidelity.n_archs`` of
    each one's evaluated architectures are trained again on the same sub-dataset with
    ``epochs_factor`` × the epochs (same initialisation and data order), and ρ / τ between
    the meta-training rewards and those longer trainings' rewards are reported per epoch and
    averaged. ``None`` when nothing is checked (off, NB201 tables, a meta-network, no
    evaluation).
    Reference trainings are logged under ``workdir`` as they finish (a rerun resumes).
    """
    config = params.fidelity
    ok = evaluations[evaluations["status"] == "ok"] if len(evaluations) else evaluations
    if config.n_archs == 0 or params.tasks == "nb201" or not len(ok):
        return None
    training = inputs.trained_task.training
    longer = training.model_copy(update={"epochs": training.epochs * config.epochs_factor})
    reference = inputs.trained_task.model_copy(update={"training": longer})
    task_at, pool = meta_task_pool(
        inputs.image_source(), inputs.subdatasets, reference, params.seed
    )
    log_path = None
    if params.workdir is not None:
        log_path = Path(params.workdir) / "fidelity" / f"{json_digest([pool])}.jsonl"
    log = AppendLog(log_path)
    epochs = sorted(int(e) for e in ok["trial"].unique())[-config.last_epochs :]
    executor = make_executor(inputs.executor)
    try:
        checked = [
            {"epoch": e}
            | longer_training_fidelity(
                ok[ok["trial"] == e], task_at(e), config.n_archs, log, executor
            )
            for e in epochs
        ]
    finally:
        executor.close()
    rhos = [c["spearman"] for c in checked if c["spearman"] is not None]
    taus = [c["kendall"] for c in checked if c["kendall"] is not None]
    pairs = [
        ([a["reward"] for a in c["archs"]], [a["reference_reward"] for a in c["archs"]])
        for c in checked
    ]
    interval = bootstrap_spearman(pairs, seed=params.seed)
    return {
        "reward": params.tasks,
        "reference": f"{longer.epochs}-epoch training ({training.epochs} × {config.epochs_factor})",
        "spearman": float(np.mean(rhos)) if rhos else None,
        "spearman_ci95": list(interval) if interval is not None else None,
        "n": sum(c["n"] for c in checked),
        "kendall": float(np.mean(taus)) if taus else None,
        "epochs": checked,
    }
