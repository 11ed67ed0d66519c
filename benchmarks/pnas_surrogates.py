"""PNAS surrogates: Kendall τ of the LSTM and the MLP ensemble on held-out NB201 cells.

Both are the searcher's own classes (``searchers/pnas.py``), fitted exactly as PNAS fits
them — on every training cell and all of its prefixes — with the same data, the same number
of Adam steps and the PNAS defaults otherwise. The target is the reward PNAS sees on NB201:
the 12-epoch validation accuracy. A fixed set of ``--held-out`` cells (a permutation of the
15,625 cells with seed 0, fixed before any result) is never trained on; each seed draws its
``--sizes`` training cells from the others. τ is between the surrogate's prediction and the
held-out cells' accuracy; seconds per fit on this machine are reported too.

    .venv/bin/python benchmarks/pnas_surrogates.py --seeds 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from _results import write_results
from scipy.stats import kendalltau

from transfernas.searchers.pnas import SURROGATES, PNASConfig, prefix_rows
from transfernas.spaces.nb201 import N_ARCHS, NB201Space
from transfernas.tasks.tabular import COLUMNS_12, DATASETS, NB201Table

ROOT = Path(__file__).resolve().parents[1]


def fit_and_score(
    name: str,
    steps: int,
    train: tuple[np.ndarray, np.ndarray],
    held: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> dict[str, float]:
    """Fit surrogate ``name`` on ``train`` (actions, accuracy); τ on ``held``; fit seconds."""
    surrogate = SURROGATES[name](PNASConfig(surrogate=name, train_steps=steps), NB201Space())
    rows, groups = prefix_rows(train[0])
    start = time.perf_counter()
    surrogate.fit(rows, train[1], groups, seed)
    fit_s = time.perf_counter() - start
    return {
        "kendall": float(kendalltau(surrogate.predict(held[0]), held[1]).statistic),
        "fit_s": fit_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--held-out", type=int, default=2000)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    wall = time.perf_counter()
    table = NB201Table.from_frame(pd.read_parquet(ROOT / "data/01_raw/nb201/nb201_12epoch.parquet"))
    space = NB201Space()
    codes = np.random.default_rng(0).permutation(N_ARCHS)
    held_codes, pool = codes[: args.held_out], codes[args.held_out :]
    actions = np.array([space.from_code(int(c)) for c in range(N_ARCHS)], dtype=np.int64)
    rows: list[dict[str, Any]] = []
    for dataset in DATASETS:
        by_code = table.columns[COLUMNS_12[dataset][0]][table.index_of_code]
        held = (actions[held_codes], by_code[held_codes])
        for size in args.sizes:
            for seed in range(args.seeds):
                train = np.random.default_rng(seed).choice(pool, size, replace=False)
                for steps in args.steps:
                    for name in SURROGATES:
                        data = (actions[train], by_code[train])
                        score = fit_and_score(name, steps, data, held, seed)
                        rows.append(
                            {"dataset": dataset, "cells": size, "seed": seed, "steps": steps}
                            | {"surrogate": name}
                            | score
                        )
                        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    summary = (
        frame.groupby(["dataset", "cells", "steps", "surrogate"])
        .agg(kendall=("kendall", "mean"), kendall_sd=("kendall", "std"), fit_s=("fit_s", "median"))
        .reset_index()
    )
    wall_s = time.perf_counter() - wall
    result = {
        "held_out": args.held_out,
        "seeds": args.seeds,
        "target": "NB201 12-epoch validation accuracy",
        "wall_s": wall_s,
        "summary": summary.to_dict("records"),
        "runs": rows,
    }
    lines = [
        "# PNAS surrogates on NB201: Kendall τ on held-out cells",
        "",
        f"`benchmarks/pnas_surrogates.py --seeds {args.seeds}`: {args.held_out} held-out cells "
        f"(fixed), training cells drawn per seed from the other {len(pool)}; target: 12-epoch "
        "validation accuracy. Both surrogates are the PNAS searcher's, fitted as the searcher "
        "fits them (cells and all their prefixes) with equal data and equal Adam steps. "
        f"τ: mean ± sd over {args.seeds} seeds; fit: median seconds on 1 thread.",
        "",
        f"Wall {wall_s:.0f} s.",
        "",
        "| dataset | cells | steps | MLP ensemble τ | LSTM τ | fit s (MLP / LSTM) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (dataset, cells, steps), g in summary.groupby(["dataset", "cells", "steps"], sort=False):
        m, lstm = (g[g["surrogate"] == s].iloc[0] for s in ("mlp-ensemble", "lstm"))
        lines.append(
            f"| {dataset} | {cells} | {steps} | {m.kendall:.3f} ± {m.kendall_sd:.3f} | "
            f"{lstm.kendall:.3f} ± {lstm.kendall_sd:.3f} | {m.fit_s:.2f} / {lstm.fit_s:.2f} |"
        )
    write_results(args.out, "pnas_surrogates", result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
