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

import hashlib
import json
import multiprocessing as mp
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from rich.progress import Progress
from scipy import stats

from transfernas.config import SearcherSettings, check_searcher_name
from transfernas.history import AppendLog
from transfernas.search import run_search
from transfernas.searchers import make_searcher
from transfernas.tasks.tabular import COLUMNS_200, DATASETS, NB201Dataset, NB201Table, TabularTask

SearcherName = Annotated[str, AfterValidator(check_searcher_name)]
TOP_K = 5


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
    searchers: SearcherSettings = Field(default_factory=SearcherSettings)  # type: ignore[valid-type]

    def trial_fingerprint(self) -> str:
        """What a finished trial depends on beyond its (dataset, method, trial) key."""
        blob = json.dumps(
            {"budget": self.budget, "seed": self.seed, "searchers": self.searchers.model_dump()},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def run_trial(
    table: NB201Table, config: NB201BenchmarkConfig, dataset: str, method: str, trial: int
) -> dict[str, Any]:
    """One seeded search; returns a compact record (one JSON line in the trial log)."""
    task = TabularTask(table, dataset)
    seed = config.seed + trial
    searcher = make_searcher(method, task.space, getattr(config.searchers, method), seed)
    history = run_search(task.space, task, searcher, config.budget, trial=trial)
    return {
        "dataset": dataset,
        "method": method,
        "trial": trial,
        "seed": seed,
        "arch_index": [r["metrics"]["arch_index"] for r in history],
        "reward": [r["reward"] for r in history],
        "test_acc": [r["metrics"]["test_acc"] for r in history],
    }


_WORKER_TABLE: NB201Table | None = None


def _init_worker(table: NB201Table) -> None:
    global _WORKER_TABLE
    import torch

    torch.set_num_threads(1)
    _WORKER_TABLE = table


def _run_chunk(
    config: NB201BenchmarkConfig, jobs: list[tuple[str, str, int]]
) -> list[dict[str, Any]]:
    assert _WORKER_TABLE is not None
    return [run_trial(_WORKER_TABLE, config, *job) for job in jobs]


def run_trials(
    table: NB201Table, config: NB201BenchmarkConfig, *, progress: bool = True
) -> pd.DataFrame:
    """All methods × datasets × trials; one row per evaluation, sorted, deterministic."""
    log_path = None
    if config.trial_log_dir is not None:
        log_path = Path(config.trial_log_dir) / f"trials-{config.trial_fingerprint()}.jsonl"
    log = AppendLog(log_path)
    done = {(r["dataset"], r["method"], r["trial"]): r for r in log}
    jobs = [
        (d, m, t)
        for d in config.datasets
        for m in config.methods
        for t in range(config.n_trials)
        if (d, m, t) not in done
    ]
    with Progress(disable=not progress) as bar:
        task_id = bar.add_task("NB201 trials", total=len(jobs))
        for record in _execute(table, config, jobs):
            log.append([record])
            done[(record["dataset"], record["method"], record["trial"])] = record
            bar.advance(task_id)
    wanted = [
        done[(d, m, t)]
        for d in config.datasets
        for m in config.methods
        for t in range(config.n_trials)
    ]
    return _to_frame(wanted)


def _execute(
    table: NB201Table, config: NB201BenchmarkConfig, jobs: list[tuple[str, str, int]]
) -> Iterable[dict[str, Any]]:
    if config.n_workers == 1 or len(jobs) < 2:
        for job in jobs:
            yield run_trial(table, config, *job)
        return
    chunk = max(1, min(25, len(jobs) // (4 * config.n_workers)))
    chunks = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    ctx = mp.get_context("spawn")  # torch is not fork-safe once its thread pool exists
    with ProcessPoolExecutor(
        config.n_workers, mp_context=ctx, initializer=_init_worker, initargs=(table,)
    ) as pool:
        for records in pool.map(_run_chunk, [config] * len(chunks), chunks):
            yield from records


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
) -> pd.DataFrame:
    """The results table: one row per (dataset, method)."""
    best = best_of_trials(evals)
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
        hits = int((idx == task.optimum_index).sum())
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
                "top5_hit_rate": float((task.rank[idx] < TOP_K).mean()),
                "regret_mean": float(regret.mean()),
                "regret_mean_ci_low": mean_ci[0],
                "regret_mean_ci_high": mean_ci[1],
                "regret_median": float(np.median(regret)),
                "regret_median_ci_low": median_ci[0],
                "regret_median_ci_high": median_ci[1],
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
            "regret mean [95% CI]": [
                f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
                for m, lo, hi in zip(
                    results.regret_mean,
                    results.regret_mean_ci_low,
                    results.regret_mean_ci_high,
                    strict=True,
                )
            ],
            "regret median [95% CI]": [
                f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
                for m, lo, hi in zip(
                    results.regret_median,
                    results.regret_median_ci_low,
                    results.regret_median_ci_high,
                    strict=True,
                )
            ],
            "200-ep test acc": [
                f"{m:.2f} ± {s:.2f}"
                for m, s in zip(results.test200_mean, results.test200_std, strict=True)
            ],
        }
    )
    notes = (
        "Search reward and regret: 12-epoch validation accuracy (NB201 `hp='12'`), in accuracy "
        "points. Last column: 200-epoch test accuracy of the found cell (report only), mean ± std "
        "over trials. Optimum hit = best-of-N cell is the dataset's 12-epoch-validation optimum; "
        "top-5 hit = it is one of the 5 best cells."
    )
    return f"## {title}\n\n{notes}\n\n{shown.to_markdown(index=False)}\n"
