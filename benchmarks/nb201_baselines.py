"""RS, REA and REINFORCE on NAS-Bench-201 at the paper protocol (CATCH Fig. 3 / NB201).

500 seeded trials × 50 evaluations per method and dataset, reward = 12-epoch validation
accuracy, reported: optimum / top-5 hit rates, regret with 95% CIs, and the found cells'
200-epoch test accuracy. Writes ``benchmarks/results/nb201_baselines.{json,md,png}``.

    .venv/bin/python benchmarks/nb201_baselines.py [--trials 500 --budget 50 --workers 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from transfernas.benchmark import (
    NB201BenchmarkConfig,
    best_of_trials,
    best_so_far,
    results_markdown,
    run_trials,
    summarize,
)
from transfernas.environment import machine_info
from transfernas.plots import best_so_far_figure, sorted_trials_figure
from transfernas.tasks.tabular import NB201Table

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()

    raw = ROOT / "data/01_raw/nb201"
    table = NB201Table.from_frame(pd.read_parquet(raw / "nb201_12epoch.parquet"))
    test200 = pd.read_parquet(raw / "nb201_200epoch.parquet")
    config = NB201BenchmarkConfig(
        methods=["random", "rea", "reinforce"],
        n_trials=args.trials,
        budget=args.budget,
        seed=args.seed,
        n_workers=args.workers,
    )
    start = time.perf_counter()
    evals = run_trials(table, config)
    search_s = time.perf_counter() - start
    results = summarize(
        evals, table, test200, n_resamples=config.bootstrap_resamples, seed=args.seed
    )
    wall_s = time.perf_counter() - start

    args.out.mkdir(parents=True, exist_ok=True)
    name = "nb201_baselines"
    machine = machine_info()
    payload = {
        "protocol": f"{args.trials} trials × {args.budget} evaluations",
        "seeds": [args.seed, args.seed + args.trials - 1],
        "reward": "NB201 12-epoch validation accuracy (hp='12')",
        "report": "200-epoch test accuracy of the best-of-N cell (never a reward)",
        "config": config.model_dump(),
        "wall_time_s": round(wall_s, 2),
        "search_time_s": round(search_s, 2),
        "machine": machine,
        "results": results.to_dict(orient="records"),
    }
    (args.out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    title = f"NAS-Bench-201 baselines — {args.trials} trials × {args.budget} evaluations"
    md = results_markdown(results, title)
    md += (
        f"\nTotal wall time {wall_s:.1f} s ({search_s:.1f} s searching, "
        f"{args.workers} worker processes) on {machine['cpu']} ({machine['cpu_count']} cores), "
        f"torch {machine['torch']}.\nCommand: `.venv/bin/python benchmarks/{name}.py "
        f"--trials {args.trials} --budget {args.budget} --workers {args.workers}`.\n"
    )
    (args.out / f"{name}.md").write_text(md)
    optimum = dict(zip(results["dataset"], results["optimum_val12"], strict=True))
    sorted_trials_figure(best_of_trials(evals), optimum, args.budget).savefig(
        args.out / f"{name}_sorted.png", dpi=110
    )
    best_so_far_figure(best_so_far(evals), optimum).savefig(
        args.out / f"{name}_curves.png", dpi=110
    )
    print(md)


if __name__ == "__main__":
    main()
