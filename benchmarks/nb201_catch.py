"""CATCH vs RS / REA / REINFORCE on NAS-Bench-201 — the CATCH paper's Fig. 3 and Fig. 5 protocol.

All of RS, REA, REINFORCE, CATCH-sfs, CATCH-meta, CATCH-zero, CATCH-random on the three
datasets, 500 seeded trials × 50 evaluations each, in one run. Meta-learners are meta-trained
leave-one-dataset-out (the target's table is dropped before meta-training) with a seed disjoint
from the trial seeds; hyper-parameters were chosen on trial seeds 10000+ only.
Writes ``benchmarks/results/nb201_catch.{json,md}`` and Fig-3/Fig-5-style plots (also in docs/).

    .venv/bin/python benchmarks/nb201_catch.py [--trials 500 --budget 50 --workers 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from transfernas.benchmark import (
    NB201BenchmarkConfig,
    best_of_trials,
    best_so_far,
    meta_train_for,
    results_markdown,
    run_trials,
    summarize,
)
from transfernas.environment import machine_info
from transfernas.plots import best_so_far_figure, sorted_trials_figure
from transfernas.search import run_search
from transfernas.searchers import make_searcher
from transfernas.tasks.tabular import NB201Table, TabularTask

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ["random", "rea", "reinforce"]
CATCH = ["catch-sfs", "catch-meta", "catch-zero", "catch-random"]


def ms_per_step(
    table: NB201Table, config: NB201BenchmarkConfig, n_trials: int = 10
) -> dict[str, float]:
    """Wall time of one CATCH step (ask + tell + table lookup), one process, one thread."""
    torch.set_num_threads(1)
    out = {}
    pretrained = meta_train_for(
        table,
        config.model_copy(update={"meta": config.meta.model_copy(update={"n_epochs": 2})}),
        "catch-meta",
        "cifar10-valid",
    )
    for method in ("catch-sfs", "catch-meta"):
        task = TabularTask(table, "cifar10-valid")
        start = time.perf_counter()
        for t in range(n_trials):
            searcher = make_searcher(method, task.space, config.searcher_config(method), 20000 + t)
            if method == "catch-meta":
                searcher.load_network_state(pretrained)
            run_search(task.space, task, searcher, config.budget)
        out[method] = 1000 * (time.perf_counter() - start) / (n_trials * config.budget)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()

    raw = ROOT / "data/01_raw/nb201"
    table = NB201Table.from_frame(pd.read_parquet(raw / "nb201_12epoch.parquet"))
    test200 = pd.read_parquet(raw / "nb201_200epoch.parquet")
    config = NB201BenchmarkConfig(
        methods=BASELINES + CATCH,
        n_trials=args.trials,
        budget=args.budget,
        seed=0,
        n_workers=args.workers,
        reference="catch-meta",
    )
    start = time.perf_counter()
    evals = run_trials(table, config)
    search_s = time.perf_counter() - start
    results = summarize(
        evals, table, test200, n_resamples=config.bootstrap_resamples, reference="catch-meta"
    )
    wall_s = time.perf_counter() - start
    step_ms = ms_per_step(table, config)

    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    name = "nb201_catch"
    (args.out / f"{name}.json").write_text(
        json.dumps(
            {
                "protocol": f"{args.trials} trials × {args.budget} evaluations",
                "trial_seeds": [0, args.trials - 1],
                "reward": "NB201 12-epoch validation accuracy (hp='12')",
                "report": "200-epoch test accuracy of the best-of-N cell (never a reward)",
                "meta_training": "leave-one-dataset-out on the other two NB201 tables",
                "config": config.model_dump(),
                "wall_time_s": round(wall_s, 1),
                "search_time_s": round(search_s, 1),
                "catch_ms_per_step": {k: round(v, 2) for k, v in step_ms.items()},
                "machine": machine,
                "results": results.to_dict(orient="records"),
            },
            indent=2,
        )
        + "\n"
    )
    md = results_markdown(
        results, f"CATCH on NAS-Bench-201 — {args.trials} trials × {args.budget} evaluations"
    )
    md += (
        f"\nMeta-learners (catch-meta/-zero/-random) meta-trained leave-one-dataset-out: "
        f"{config.meta.n_epochs} meta-epochs × {config.meta.n_search} evaluations on the other two "
        f"datasets' tables, meta seed {config.meta.seed}; trial seeds 0..{args.trials - 1}.\n\n"
        f"Total wall time {wall_s / 60:.1f} min ({args.workers} worker processes, meta-training "
        f"included) on {machine['cpu']} ({machine['cpu_count']} cores), torch {machine['torch']}. "
        f"CATCH step (ask + tell, 1 thread): "
        + ", ".join(f"{k} {v:.2f} ms" for k, v in step_ms.items())
        + f".\nCommand: `.venv/bin/python benchmarks/{name}.py --trials {args.trials} "
        f"--budget {args.budget} --workers {args.workers}`.\n"
    )
    (args.out / f"{name}.md").write_text(md)

    optimum = dict(zip(results["dataset"], results["optimum_val12"], strict=True))
    best = best_of_trials(evals)
    figs = {
        f"{name}_fig3.png": sorted_trials_figure(
            best[best.method.isin([*BASELINES, "catch-sfs", "catch-meta"])], optimum, args.budget
        ),
        f"{name}_fig5.png": sorted_trials_figure(
            best[best.method.isin(CATCH)], optimum, args.budget
        ),
        f"{name}_curves.png": best_so_far_figure(best_so_far(evals), optimum),
    }
    (ROOT / "docs/img").mkdir(parents=True, exist_ok=True)
    for file, fig in figs.items():
        fig.savefig(args.out / file, dpi=110)
        shutil.copy(args.out / file, ROOT / "docs/img" / file)
    print(md)


if __name__ == "__main__":
    main()
