"""RS, REA and REINFORCE on NAS-Bench-201 at the paper protocol (CATCH Fig. 3 / NB201).

500 seeded trials × 50 evaluations per method and dataset, reward = 12-epoch validation
accuracy, reported: optimum / top-5 hit rates, regret with 95% CIs, and the found cells'
200-epoch test accuracy. Writes ``benchmarks/results/nb201_baselines.{json,md,png}``.

    .venv/bin/python benchmarks/nb201_baselines.py [--trials 500 --budget 50 --workers 2]
"""

from __future__ import annotations

from _nb201 import parse_args, report, run

from transfernas.benchmark import best_of_trials, best_so_far
from transfernas.plots import best_so_far_figure, sorted_trials_figure


def main() -> None:
    args = parse_args(__doc__)
    r = run(args, ["random", "rea", "reinforce"])
    title = f"NAS-Bench-201 baselines — {args.trials} trials × {args.budget} evaluations"
    md = report(r, "nb201_baselines", title)
    figure = sorted_trials_figure(best_of_trials(r.evals), r.optimum, args.budget)
    figure.savefig(args.out / "nb201_baselines_sorted.png", dpi=110)
    best_so_far_figure(best_so_far(r.evals), r.optimum).savefig(
        args.out / "nb201_baselines_curves.png", dpi=110
    )
    print(md)


if __name__ == "__main__":
    main()
