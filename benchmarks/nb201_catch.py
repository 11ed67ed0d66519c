"""CATCH vs RS / REA / REINFORCE on NAS-Bench-201 — the CATCH paper's Fig. 3 and Fig. 5 protocol.

All of RS, REA, REINFORCE, CATCH-sfs, CATCH-meta, CATCH-zero, CATCH-random on the three
datasets, 500 seeded trials × 50 evaluations each, in one run. Meta-learners are meta-trained
leave-one-dataset-out (the target's table is dropped before meta-training) with a seed disjoint
from the trial seeds; hyper-parameters were chosen on trial seeds 10000+ only.
Writes ``benchmarks/results/nb201_catch.{json,md}`` and Fig-3/Fig-5-style plots (also in docs/).

    .venv/bin/python benchmarks/nb201_catch.py [--trials 500 --budget 50 --workers 2]
"""

from __future__ import annotations

import shutil
import time

import torch
from _nb201 import ROOT, parse_args, report, run

from transfernas.benchmark import NB201BenchmarkConfig, best_of_trials, best_so_far, meta_train_for
from transfernas.plots import best_so_far_figure, sorted_trials_figure
from transfernas.search import run_search
from transfernas.searchers import make_searcher
from transfernas.tasks.tabular import NB201Table, TabularTask

BASELINES = ["random", "rea", "reinforce"]
CATCH = ["catch-sfs", "catch-meta", "catch-zero", "catch-random"]


def ms_per_step(
    table: NB201Table, config: NB201BenchmarkConfig, n_trials: int = 10
) -> dict[str, float]:
    """Wall time of one CATCH step (ask + tell + table lookup), one process, one thread."""
    torch.set_num_threads(1)
    out = {}
    # timing needs a meta-trained state, not a good one: 2 meta-epochs are enough
    short = config.model_copy(update={"meta": config.meta.model_copy(update={"n_epochs": 2})})
    pretrained = meta_train_for(
        table,
        short,
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
    args = parse_args(__doc__)
    r = run(args, BASELINES + CATCH, reference="catch-meta")
    step_ms = ms_per_step(r.table, r.config)
    meta = r.config.meta
    notes = (
        f"Meta-learners (catch-meta/-zero/-random) meta-trained leave-one-dataset-out: "
        f"{meta.n_epochs} meta-epochs × {meta.n_search} evaluations on the other two datasets' "
        f"tables, meta seed {meta.seed}; trial seeds 0..{args.trials - 1}. CATCH step (ask + tell, "
        "1 thread): " + ", ".join(f"{k} {v:.2f} ms" for k, v in step_ms.items()) + "."
    )
    title = f"CATCH on NAS-Bench-201 — {args.trials} trials × {args.budget} evaluations"
    md = report(
        r,
        "nb201_catch",
        title,
        notes,
        {"catch_ms_per_step": {k: round(v, 2) for k, v in step_ms.items()}},
    )
    best = best_of_trials(r.evals)
    figs = {
        "nb201_catch_fig3.png": sorted_trials_figure(
            best[best.method.isin([*BASELINES, "catch-sfs", "catch-meta"])], r.optimum, args.budget
        ),
        "nb201_catch_fig5.png": sorted_trials_figure(
            best[best.method.isin(CATCH)], r.optimum, args.budget
        ),
        "nb201_catch_curves.png": best_so_far_figure(best_so_far(r.evals), r.optimum),
    }
    for file, fig in figs.items():
        fig.savefig(args.out / file, dpi=110)
        if args.out.resolve() == (ROOT / "benchmarks/results").resolve():  # the committed run
            shutil.copy(args.out / file, ROOT / "docs/img" / file)
    print(md)


if __name__ == "__main__":
    main()
