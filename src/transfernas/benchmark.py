"""Searchers compared on NAS-Bench-201: seeded trials, their summary table and best-so-far curves.

Protocol (NB201 / CATCH §4.2.2): each trial gives one searcher ``budget`` evaluations of the
12-epoch validation accuracy on one dataset; the trial's result is its best-of-N cell. We
report how often that cell is the dataset's optimum or one of its 5 best, the regret (optimum
minus found, in accuracy points) and the found cell's 200-epoch test accuracy — the last one
read only here, after the searches have finished.

Finished trials are appended to a durable log keyed by (dataset, method, trial), so a killed
benchmark resumes where it stopped and a larger ``n_trials`` reuses what is already done.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import Progress
from scipy import stats

from transfernas.config import SearcherName, SearcherSettings, searcher_config
from transfernas.digest import json_digest
from transfernas.executors import ExecutorConfig, ray_init, ray_options
from transfernas.history import AppendLog
from transfernas.locks import owned
from transfernas.meta import MetaTrainingConfig, meta_train, scheduled
from transfernas.search import load_checkpoint, run_search, save_checkpoint
from transfernas.searchers import SEARCHERS, SearcherConfig, make_searcher
from transfernas.searchers.adaptation import AdaptationConfig, adapted
from transfernas.tasks.latency import torch_threads
from transfernas.tasks.tabular import (
    COLUMNS_200,
    DATASETS,
    NB201Dataset,
    NB201Table,
    TabularTask,
    check_test200,
    meta_tasks,
)

TOP_K = 5
# NB201 stores accuracies as float32 means: cells 1e-7 points apart are ties, not a better and
# a worse cell (cifar100's best two differ by 7e-8). Rewards within this of a threshold count.
TIE_TOLERANCE = 1e-4


class NB201BenchmarkConfig(BaseModel):
    """The ``nb201_benchmark`` block of ``conf/base/parameters_nb201_benchmark.yml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    methods: list[SearcherName] = Field(
        default_factory=lambda: ["random", "rea", "reinforce"], min_length=1
    )
    datasets: list[NB201Dataset] = Field(default_factory=lambda: list(DATASETS), min_length=1)
    n_trials: int = Field(20, ge=1, description="seeded trials per method and dataset")
    budget: int = Field(50, ge=1, description="evaluations (table queries) per trial")
    seed: int = Field(0, ge=0, description="trial t uses seed + t")
    n_workers: int = Field(1, ge=1, description="processes running trials in parallel")
    bootstrap_resamples: int = Field(2000, ge=100, description="for the 95% CIs of the regret")
    trial_log_dir: str | None = Field(None, description="durable log of finished trials")
    reference: str | None = Field(
        None, description="method the others are tested against (Mann–Whitney), if it ran"
    )
    meta: MetaTrainingConfig = Field(default_factory=MetaTrainingConfig)
    adaptation: AdaptationConfig = Field(
        default_factory=AdaptationConfig, description="how meta-trained methods adapt"
    )
    searchers: SearcherSettings = Field(default_factory=SearcherSettings)  # type: ignore[valid-type]

    def searcher_config(self, method: str) -> SearcherConfig:
        return searcher_config(self.searchers, method)

    def fingerprint(self, method: str) -> str:
        """What a finished trial of ``method`` depends on beyond (dataset, method, trial)."""
        parts: dict[str, Any] = {
            "budget": self.budget,
            "seed": self.seed,
            "searcher": self.searcher_config(method).model_dump(),
        }
        if SEARCHERS[method].meta_trained:
            parts["meta"] = self.meta.model_dump()
            parts["adaptation"] = self.adaptation.model_dump()
        return json_digest(parts)

    def meta_fingerprint(self, method: str) -> str:
        """What ``method``'s meta-training depends on (what :func:`meta_train_for` reads): a
        change of budget, trial seeds or adaptation reuses the meta-trained states."""
        return json_digest(
            {"searcher": self.searcher_config(method).model_dump(), "meta": self.meta.model_dump()}
        )


def meta_train_for(
    table: NB201Table, config: NB201BenchmarkConfig, method: str, target: str
) -> dict[str, Any]:
    """Meta-train ``method`` leave-one-out for ``target``; returns the learned network state."""
    train_table = table.without(target)  # the target's columns are gone before anything runs
    tasks = meta_tasks(train_table, config.meta.mixtures, config.meta.seed)
    space = tasks[0].space
    searcher = make_searcher(method, space, config.searcher_config(method), config.meta.seed)
    n_epochs = config.meta.n_epochs
    task_at = scheduled(tasks, n_epochs, config.meta.seed)
    pool = [t.name for t in tasks]
    meta_train(space, searcher, task_at, n_epochs, config.meta.n_search, pool=pool)
    return searcher.network_state()


def run_trial(
    table: NB201Table,
    config: NB201BenchmarkConfig,
    dataset: str,
    method: str,
    trial: int,
    pretrained: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One seeded search; returns a compact record (one JSON line in the trial log)."""
    task = TabularTask(table, dataset)
    seed = config.seed + trial
    if pretrained is not None:
        searcher = adapted(
            SEARCHERS[method],
            task.space,
            config.searcher_config(method),
            seed,
            pretrained,
            config.adaptation,
        )
    else:
        searcher = make_searcher(method, task.space, config.searcher_config(method), seed)
    history = run_search(task.space, task, searcher, config.budget, trial=trial)
    return {
        "dataset": dataset,
        "method": method,
        "trial": trial,
        "seed": seed,
        "fingerprint": config.fingerprint(method),
        "arch_index": [r["metrics"]["arch_index"] for r in history],
        "reward": history.rewards(),
        "test_acc": [r["metrics"]["test_acc"] for r in history],
    }


# (dataset, method, trials, pretrained network state or None)
Chunk = tuple[str, str, list[int], dict[str, Any] | None]
_WORKER_TABLE: NB201Table | None = None


def _init_worker(table: NB201Table) -> None:
    global _WORKER_TABLE
    _WORKER_TABLE = table


def _run_chunk(
    config: NB201BenchmarkConfig, chunk: Chunk, table: NB201Table | None = None
) -> list[dict[str, Any]]:
    """Trials of one chunk, in a worker (table from its initializer), a Ray task or this
    process; on one thread wherever it runs, since a thread count can reorder float sums and
    a trial must give the same history whichever way it ran."""
    table = table if table is not None else _WORKER_TABLE
    assert table is not None
    dataset, method, trials, pretrained = chunk
    with torch_threads(1):
        return [run_trial(table, config, dataset, method, t, pretrained) for t in trials]


def _meta_job(
    config: NB201BenchmarkConfig, job: tuple[str, str], table: NB201Table | None = None
) -> dict[str, Any]:
    table = table if table is not None else _WORKER_TABLE
    assert table is not None
    target, method = job
    with torch_threads(1):  # as a trial: the same state whichever way it ran
        return meta_train_for(table, config, method, target)


def run_trials(
    table: NB201Table,
    config: NB201BenchmarkConfig,
    *,
    executor: ExecutorConfig | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """All methods × datasets × trials; one row per evaluation, sorted, deterministic.

    Meta-learning methods are meta-trained first, once per target dataset (leave-one-out), and
    every trial adapts from that state. With ``trial_log_dir`` finished trials and meta-trained
    states are kept, so a rerun only does what is missing. Trials and meta-trainings run in
    ``n_workers`` local processes, or as Ray tasks when ``executor.kind`` is ``ray`` (a local
    Ray or the cluster at ``executor.address``): the same records either way.
    """
    log_dir = Path(config.trial_log_dir) if config.trial_log_dir is not None else None
    log = AppendLog(log_dir / "trials.jsonl" if log_dir is not None else None)
    with owned(log_dir) if log_dir is not None else nullcontext():
        done = {(r["dataset"], r["method"], r["trial"], r["fingerprint"]): r for r in log}
        fps = {m: config.fingerprint(m) for m in config.methods}
        todo: dict[tuple[str, str], list[int]] = {}
        for d in config.datasets:
            for m in config.methods:
                missing = [t for t in range(config.n_trials) if (d, m, t, fps[m]) not in done]
                if missing:
                    todo[(d, m)] = missing
        with Progress(disable=not progress) as bar, _pool(table, config, executor) as pool:
            pretrained = _meta_states(
                table, config, [k for k in todo if SEARCHERS[k[1]].meta_trained], log_dir, pool, bar
            )
            step = max(1, min(25, sum(map(len, todo.values())) // (4 * config.n_workers)))
            chunks: list[Chunk] = [
                (d, m, trials[i : i + step], pretrained.get((d, m)))
                for (d, m), trials in todo.items()
                for i in range(0, len(trials), step)
            ]
            bar_id = bar.add_task("NB201 trials", total=sum(len(c[2]) for c in chunks))
            run = (
                partial(_run_chunk, config)
                if pool is not None
                else partial(_run_chunk, config, table=table)
            )
            results = (pool.map if pool is not None else map)(run, chunks)
            for records in results:
                log.append(records)
                done.update(
                    {(r["dataset"], r["method"], r["trial"], r["fingerprint"]): r for r in records}
                )
                bar.advance(bar_id, len(records))
        wanted = [
            done[(d, m, t, fps[m])]
            for d in config.datasets
            for m in config.methods
            for t in range(config.n_trials)
        ]
        return _to_frame(wanted)


class RayPool:
    """``ProcessPoolExecutor.map``'s contract on Ray: one task per item, results in order;
    the table goes to the object store once and every task reads it from there."""

    def __init__(self, table: NB201Table, executor: ExecutorConfig) -> None:
        self.ray = ray_init(executor)
        self.table = self.ray.put(table)
        self.remote = self.ray.remote(_on_ray).options(**ray_options(executor))

    def map(self, fn: Callable[..., Any], items: Iterable[Any]) -> Iterator[Any]:
        refs = [self.remote.remote(fn, item, self.table) for item in items]
        for ref in refs:
            yield self.ray.get(ref)


def _on_ray(fn: Callable[..., Any], item: Any, table: NB201Table) -> Any:
    return fn(item, table=table)


@contextmanager
def _pool(
    table: NB201Table, config: NB201BenchmarkConfig, executor: ExecutorConfig | None
) -> Iterator[ProcessPoolExecutor | RayPool | None]:
    if executor is not None and executor.kind == "ray":
        yield RayPool(table, executor)
        return
    if config.n_workers == 1:
        yield None
        return
    ctx = mp.get_context("spawn")  # torch is not fork-safe once its thread pool exists
    with ProcessPoolExecutor(
        config.n_workers, mp_context=ctx, initializer=_init_worker, initargs=(table,)
    ) as pool:
        yield pool


def _meta_states(
    table: NB201Table,
    config: NB201BenchmarkConfig,
    jobs: list[tuple[str, str]],
    log_dir: Path | None,
    pool: ProcessPoolExecutor | RayPool | None,
    bar: Progress,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Meta-trained network state for each (target dataset, method), cached in ``log_dir``."""

    def path(d: str, m: str) -> Path | None:
        if log_dir is None:
            return None
        return log_dir / f"meta-{m}-{d}-{config.meta_fingerprint(m)}.pt"

    states: dict[tuple[str, str], dict[str, Any]] = {}
    for d, m in jobs:
        p = path(d, m)
        if p is not None and p.exists():
            states[(d, m)] = load_checkpoint(p)
    missing = [(d, m) for d, m in jobs if (d, m) not in states]
    if not missing:
        return states
    bar_id = bar.add_task("meta-training (leave-one-dataset-out)", total=len(missing))
    run = (
        partial(_meta_job, config) if pool is not None else partial(_meta_job, config, table=table)
    )
    results = (pool.map if pool is not None else map)(run, missing)
    for (d, m), state in zip(missing, results, strict=True):
        states[(d, m)] = state
        p = path(d, m)
        if p is not None:
            save_checkpoint(p, state)
        bar.advance(bar_id)
    return states


def _to_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(records).explode(["arch_index", "reward", "test_acc"], ignore_index=True)
    frame["step"] = frame.groupby(["dataset", "method", "trial"]).cumcount()
    return frame.astype(
        {"arch_index": "int64", "reward": "float64", "test_acc": "float64", "step": "int64"}
    )[["dataset", "method", "trial", "seed", "step", "arch_index", "reward", "test_acc"]]


def best_of_trials(evals: pd.DataFrame) -> pd.DataFrame:
    """Per trial, the first evaluation with the highest reward (the searcher's answer)."""
    idx = evals.groupby(["dataset", "method", "trial"], sort=False)["reward"].idxmax()
    return evals.loc[idx.to_numpy()].reset_index(drop=True)


def summarize(
    evals: pd.DataFrame,
    table: NB201Table,
    test200: pd.DataFrame,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    reference: str | None = None,
) -> pd.DataFrame:
    """The results table; with ``reference``, one-sided Mann–Whitney p-values against it."""
    best = best_of_trials(evals)
    results = _summary(
        evals, best, table, check_test200(test200), n_resamples=n_resamples, seed=seed
    )
    if reference is None or reference not in set(evals["method"]):
        return results
    pvalues = []
    for row in results.itertuples():
        ours = best[(best.dataset == row.dataset) & (best.method == reference)]["reward"]
        theirs = best[(best.dataset == row.dataset) & (best.method == row.method)]["reward"]
        if row.method == reference:
            pvalues.append(float("nan"))
        else:  # H1: the reference's final best rewards tend to be larger
            pvalues.append(float(stats.mannwhitneyu(ours, theirs, alternative="greater").pvalue))
    return results.assign(**{f"p_vs_{reference}": pvalues})


def _summary(
    evals: pd.DataFrame,
    best: pd.DataFrame,
    table: NB201Table,
    test200: pd.DataFrame,
    *,
    n_resamples: int,
    seed: int,
) -> pd.DataFrame:
    """One row per (dataset, method): hit rates, regret with 95% CIs, 200-epoch accuracy."""
    evals_per_trial = (
        evals.groupby(["dataset", "method", "trial"]).size().groupby(["dataset", "method"]).max()
    )
    rows = []
    for (dataset, method), grp in best.groupby(["dataset", "method"], sort=False):
        task = TabularTask(table, dataset)
        idx = grp["arch_index"].to_numpy()
        regret = task.optimum_reward - grp["reward"].to_numpy()
        acc200 = test200[COLUMNS_200[dataset]].to_numpy()[idx]
        n = len(grp)
        hits = int((regret <= TIE_TOLERANCE).sum())
        kth_best = np.sort(task.val)[-TOP_K]
        hit_ci = stats.binomtest(hits, n).proportion_ci(method="wilson")
        mean_ci = _bootstrap_ci(regret, np.mean, n_resamples, seed)
        median_ci = _bootstrap_ci(regret, np.median, n_resamples, seed)
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "n_trials": n,
                "budget": int(evals_per_trial[(dataset, method)]),
                "optimum_hits": hits,
                "optimum_hit_rate": hits / n,
                "optimum_hit_ci_low": hit_ci.low,
                "optimum_hit_ci_high": hit_ci.high,
                "top5_hit_rate": float(
                    (grp["reward"].to_numpy() >= kth_best - TIE_TOLERANCE).mean()
                ),
                "regret_mean": float(regret.mean()),
                "regret_mean_ci_low": mean_ci[0],
                "regret_mean_ci_high": mean_ci[1],
                "regret_median": float(np.median(regret)),
                "regret_median_ci_low": median_ci[0],
                "regret_median_ci_high": median_ci[1],
                "evals_to_optimum_median": _evals_to_optimum(
                    evals, dataset, method, task.optimum_reward
                ),
                "best_val12_mean": float(grp["reward"].mean()),
                "test200_mean": float(acc200.mean()),
                "test200_std": float(acc200.std(ddof=1)) if n > 1 else 0.0,
                "optimum_val12": task.optimum_reward,
                "optimum_test200": float(
                    test200[COLUMNS_200[dataset]].to_numpy()[task.optimum_index]
                ),
            }
        )
    return pd.DataFrame(rows)


def _evals_to_optimum(evals: pd.DataFrame, dataset: str, method: str, optimum: float) -> float:
    """Median number of evaluations until the optimum was first found, over trials that found it."""
    sub = evals[(evals["dataset"] == dataset) & (evals["method"] == method)]
    hit = sub[sub["reward"] >= optimum - TIE_TOLERANCE]
    firsts = hit.groupby("trial")["step"].min() + 1
    return float(firsts.median()) if len(firsts) else float("nan")


def _bootstrap_ci(x: np.ndarray, statistic, n_resamples: int, seed: int) -> tuple[float, float]:
    if len(x) < 2 or np.all(x == x[0]):
        return float(statistic(x)), float(statistic(x))
    res = stats.bootstrap(
        (x,),
        statistic,
        n_resamples=n_resamples,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def best_so_far(evals: pd.DataFrame) -> pd.DataFrame:
    """Best reward after each evaluation: mean, median and IQR over trials, per method/dataset."""
    out = []
    for (dataset, method), grp in evals.groupby(["dataset", "method"], sort=False):
        rewards = grp.pivot(index="trial", columns="step", values="reward").to_numpy()
        running = np.maximum.accumulate(rewards, axis=1)
        q25, median, q75 = np.percentile(running, [25, 50, 75], axis=0)
        out.append(
            pd.DataFrame(
                {
                    "dataset": dataset,
                    "method": method,
                    "step": np.arange(running.shape[1]),
                    "mean": running.mean(axis=0),
                    "median": median,
                    "q25": q25,
                    "q75": q75,
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def _with_ci(results: pd.DataFrame, col: str) -> list[str]:
    """``value [low, high]`` from the columns ``col``, ``col_ci_low``, ``col_ci_high``."""
    rows = zip(results[col], results[f"{col}_ci_low"], results[f"{col}_ci_high"], strict=True)
    return [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in rows]


def results_markdown(results: pd.DataFrame, title: str = "NAS-Bench-201 search results") -> str:
    """Human-readable table; schedules spelled out since NB201 users often confuse them."""
    shown = pd.DataFrame(
        {
            "dataset": results["dataset"],
            "method": results["method"],
            "trials × evals": results["n_trials"].astype(str)
            + " × "
            + results["budget"].astype(str),
            "optimum hit": [
                f"{h}/{n} ({r:.1%})"
                for h, n, r in zip(
                    results.optimum_hits, results.n_trials, results.optimum_hit_rate, strict=True
                )
            ],
            "top-5 hit": results["top5_hit_rate"].map("{:.1%}".format),
            "evals to optimum (median)": results["evals_to_optimum_median"].map(
                lambda v: "—" if pd.isna(v) else f"{v:.0f}"
            ),
            "regret mean [95% CI]": _with_ci(results, "regret_mean"),
            "regret median [95% CI]": _with_ci(results, "regret_median"),
            "200-ep test acc": [
                f"{m:.2f} ± {s:.2f}"
                for m, s in zip(results.test200_mean, results.test200_std, strict=True)
            ],
        }
    )
    p_cols = [c for c in results.columns if c.startswith("p_vs_")]
    for col in p_cols:
        shown[f"p ({col.removeprefix('p_vs_')} > method)"] = results[col].map(
            lambda p: "—" if pd.isna(p) else f"{p:.2g}"
        )
    notes = (
        "Search reward and regret: 12-epoch validation accuracy (NB201 `hp='12'`), in accuracy "
        "points. Last column: 200-epoch test accuracy of the found cell (report only), mean ± std "
        "over trials. Optimum hit = best-of-N cell is the dataset's 12-epoch-validation optimum; "
        "top-5 hit = it is one of the 5 best cells (accuracies within 1e-4 points are ties)."
        + (
            " p: one-sided Mann–Whitney U test that the reference method's final best 12-epoch "
            "validation accuracies are larger than the method's."
            if p_cols
            else ""
        )
    )
    return f"## {title}\n\n{notes}\n\n{shown.to_markdown(index=False)}\n"
