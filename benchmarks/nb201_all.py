"""Every searcher on NAS-Bench-201 at two protocols, in one run.

* CATCH's: ``--trials`` seeded trials × 50 evaluations per method and dataset;
* L2NAS's: ``--long-trials`` trials × 1000 evaluations — the best 12-epoch validation accuracy
  after 1,000 queries and the 200-epoch test accuracy of that cell.
Reward = 12-epoch validation accuracy; meta-learners (CATCH, L2NAS-transfer) are meta-trained
leave-one-dataset-out. Finished trials go to a durable log (``--log-dir``), so a killed run
resumes and a rerun with more trials only runs the new ones. Afterwards one 1000-step search
of every method is timed in this process on one thread (L2NAS claims < 4 min on a CPU).
Writes ``benchmarks/results/nb201_all.{json,md}`` and the best-so-far curves (median, IQR).

    .venv/bin/python benchmarks/nb201_all.py [--trials 500 --long-trials 500 --workers 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from _nb201 import RAW, ROOT, add_ray_option, executor_of
from _results import write_results

from transfernas.benchmark import (
    NB201BenchmarkConfig,
    best_so_far,
    meta_train_for,
    results_markdown,
    run_trials,
    summarize,
)
from transfernas.plots import best_so_far_figure
from transfernas.search import run_search
from transfernas.searchers import SEARCHERS, make_searcher
from transfernas.tasks.tabular import NB201Table, TabularTask

METHODS = [
    "random",
    "rea",
    "reinforce",
    "nasnet-rnn",
    "pnas",
    "tnas",
    "l2nas",
    "l2nas-transfer",
    "catch-sfs",
    "catch-meta",
    "catch-zero",
    "catch-random",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500, help="trials of the 50-query protocol")
    parser.add_argument("--long-trials", type=int, default=500, help="trials at 1000 queries")
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=list(SEARCHERS))
    parser.add_argument("--workers", type=int, default=2)
    add_ray_option(parser)
    parser.add_argument("--log-dir", type=Path, default=ROOT / "data/07_model_output/nb201_all")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    return parser.parse_args()


def protocol(
    table: NB201Table, test200: pd.DataFrame, args: argparse.Namespace, trials: int, budget: int
) -> tuple[NB201BenchmarkConfig, pd.DataFrame, pd.DataFrame, float]:
    config = NB201BenchmarkConfig(
        methods=args.methods,
        n_trials=trials,
        budget=budget,
        n_workers=args.workers,
        trial_log_dir=str(args.log_dir / f"budget{budget}"),
    )
    start = time.perf_counter()
    evals = run_trials(table, config, executor=executor_of(args))
    wall = time.perf_counter() - start
    return config, evals, summarize(evals, table, test200, n_resamples=1000), wall


def seconds_per_1000_steps(table: NB201Table, config: NB201BenchmarkConfig) -> dict[str, float]:
    """Wall seconds of one 1000-query search on cifar10-valid, one process, one thread."""
    torch.set_num_threads(1)
    short = config.model_copy(update={"meta": config.meta.model_copy(update={"n_epochs": 2})})
    out = {}
    for method in config.methods:
        task = TabularTask(table, "cifar10-valid")
        searcher = make_searcher(method, task.space, config.searcher_config(method), 30000)
        if SEARCHERS[method].meta_trained:  # timing needs a meta-trained state, not a good one
            searcher.load_network_state(meta_train_for(table, short, method, "cifar10-valid"))
        start = time.perf_counter()
        run_search(task.space, task, searcher, 1000)
        out[method] = round(time.perf_counter() - start, 1)
    return out


def l2nas_table(results: pd.DataFrame) -> str:
    """Methods × datasets: best validation accuracy after N queries and its test accuracy."""
    cells = results.assign(
        cell=[
            f"{v:.2f} / {t:.2f} ± {s:.2f}"
            for v, t, s in zip(
                results.best_val12_mean, results.test200_mean, results.test200_std, strict=True
            )
        ]
    )
    wide = cells.pivot(index="method", columns="dataset", values="cell")
    return wide.loc[list(dict.fromkeys(results["method"]))].to_markdown()


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = NB201Table.from_frame(pd.read_parquet(RAW / "nb201_12epoch.parquet"))
    test200 = pd.read_parquet(RAW / "nb201_200epoch.parquet")
    payload: dict = {"methods": args.methods, "protocols": {}}
    md = ["# All searchers on NAS-Bench-201\n"]
    for trials, budget in ((args.trials, 50), (args.long_trials, 1000)):
        config, evals, results, wall = protocol(table, test200, args, trials, budget)
        optimum = dict(zip(results["dataset"], results["optimum_val12"], strict=True))
        fig = best_so_far_figure(best_so_far(evals), optimum, log_x=budget > 100)
        fig.savefig(args.out / f"nb201_all_curves_{budget}.png", dpi=110)
        payload["protocols"][str(budget)] = {
            "trials": trials,
            "budget": budget,
            "wall_time_s": round(wall, 1),
            "config": config.model_dump(),
            "results": results.to_dict(orient="records"),
        }
        md += [
            results_markdown(results, f"{trials} trials × {budget} evaluations"),
            f"Best 12-epoch validation accuracy after {budget} queries / 200-epoch test accuracy "
            "of that cell (mean ± std over trials):\n",
            l2nas_table(results),
            f"\n![best-so-far](nb201_all_curves_{budget}.png)\n",
            f"Wall time {wall:.0f} s with {args.workers} worker processes (finished trials "
            "read back from the trial log count as zero).\n",
        ]
    timing = seconds_per_1000_steps(table, config)
    payload["seconds_per_1000_steps"] = timing
    md += [
        "## Seconds per 1000-query search (cifar10-valid, one process, one thread)\n",
        pd.Series(timing, name="seconds").to_frame().to_markdown(),
        f"\nL2NAS claims 1000 steps on NB201 in < 4 min on a CPU: here {timing.get('l2nas')} s.\n",
    ]
    write_results(args.out, "nb201_all", payload, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
