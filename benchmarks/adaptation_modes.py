"""Which adaptation mode should be the default? Every mode of ``adapt.adaptation`` under three
priors, on NAS-Bench-201, against CATCH from scratch.

Priors (CATCH meta-trained as in benchmarks/nb201_transfer.py and nb201_catch.py):
- ``sub-datasets``: zero-cost rewards on Tiny-ImageNet sub-datasets (a prior that partly misleads);
- ``adversarial``: the same tasks with the reward negated (a prior for the worst cells);
- ``leave-one-out``: the other two NB201 tables (a prior that transfers well).
Each (prior, mode, dataset) runs ``--trials`` searches of 50 lookups on *tuning* trial seeds
(10000 + t, never used by the reported benchmarks), next to CATCH-sfs on the same seeds. The
default is the mode whose worst case over priors and datasets (regret against CATCH-sfs)
is best. Finished trials go to a durable log (``--workdir``): a killed run resumes.
Writes ``benchmarks/results/adaptation_modes.{json,md}``.

    .venv/bin/python benchmarks/adaptation_modes.py --data ../shared/data [--trials 60]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _data import add_data_option
from _nb201 import RAW, ROOT
from _results import write_results
from nb201_transfer import meta_train_on_subdatasets
from scipy import stats

from transfernas.benchmark import NB201BenchmarkConfig, meta_train_for, run_trial
from transfernas.history import AppendLog
from transfernas.searchers.adaptation import AdaptationConfig
from transfernas.tasks.tabular import DATASETS, NB201Table, TabularTask

FIRST_SEED = 10_000
# label → setting; "frozen" / "context": the prior's networks stay as meta-trained
MODES = {
    "finetune": AdaptationConfig(mode="prior", finetune=True),
    "context": AdaptationConfig(mode="prior", finetune=False),
    "finetune+uniform0.2": AdaptationConfig(mode="prior", finetune=True, uniform_share=0.2),
    "decay β=5": AdaptationConfig(mode="decay", finetune=True, prior_weight=5.0),
    "decay β=10": AdaptationConfig(mode="decay", finetune=True, prior_weight=10.0),
    "evidence q=0.5": AdaptationConfig(mode="evidence", finetune=True, evidence_quantile=0.5),
    "evidence q=0.75": AdaptationConfig(mode="evidence", finetune=True, evidence_quantile=0.75),
    "context+uniform0.2": AdaptationConfig(mode="prior", finetune=False, uniform_share=0.2),
    "decay β=5, frozen": AdaptationConfig(mode="decay", finetune=False, prior_weight=5.0),
    "evidence q=0.5, frozen": AdaptationConfig(mode="evidence", finetune=False),
    "evidence q=0.75, frozen": AdaptationConfig(
        mode="evidence", finetune=False, evidence_quantile=0.75
    ),
    "evidence q=0.9, frozen": AdaptationConfig(
        mode="evidence", finetune=False, evidence_quantile=0.9
    ),
}
PRIORS = ("sub-datasets", "adversarial", "leave-one-out", "trained")
_TABLE: NB201Table | None = None


def _init(table: NB201Table) -> None:
    global _TABLE
    torch.set_num_threads(1)
    _TABLE = table


def _job(job: tuple[str, str, str, dict | None, AdaptationConfig, list[int]]) -> list[dict]:
    prior, mode, dataset, state, adaptation, trials = job
    method = "catch-sfs" if state is None else "catch-meta"
    config = NB201BenchmarkConfig(methods=[method], seed=FIRST_SEED, adaptation=adaptation)
    return [
        {"prior": prior, "mode": mode} | run_trial(_TABLE, config, dataset, method, t, state)
        for t in trials
    ]


def priors(args: argparse.Namespace, table: NB201Table) -> dict[str, dict[str, dict]]:
    """prior → dataset → meta-trained network state."""
    out: dict[str, dict[str, dict]] = {}
    for name, proxy, prior in (
        ("sub-datasets", "zero_cost", "proxy"),
        ("adversarial", "zero_cost", "adversarial"),
        ("trained", "trained", "proxy"),
    ):
        if name not in args.priors:
            continue
        ns = argparse.Namespace(
            proxy=proxy,
            prior=prior,
            data=args.data,
            workdir=args.workdir,
            meta_epochs=20,
            meta_search=20,
            train_epochs=3,
            train_channels=8,
            train_cells=1,
        )
        out[name] = dict.fromkeys(DATASETS, meta_train_on_subdatasets(ns)[0])
    loo = NB201BenchmarkConfig(methods=["catch-meta"])
    out["leave-one-out"] = {ds: meta_train_for(table, loo, "catch-meta", ds) for ds in DATASETS}
    return out


def summary(frame: pd.DataFrame, optimum: dict[str, float]) -> pd.DataFrame:
    """Per (prior, mode, dataset): optimum hits, mean regret, and p of Mann–Whitney against
    CATCH-sfs for "worse" and for "better" (final best reward)."""
    frame = frame.assign(
        best=frame["reward"].map(max),
        regret=lambda f: f["dataset"].map(optimum) - f["best"],
    )
    sfs = frame[frame["mode"] == "from scratch"]
    rows = []
    for (prior, mode, ds), group in frame.groupby(["prior", "mode", "dataset"], sort=False):
        ref = sfs[(sfs["dataset"] == ds) & (sfs["prior"] == prior)]["best"]
        row = {
            "prior": prior,
            "mode": mode,
            "dataset": ds,
            "trials": len(group),
            "optimum_hit": float((group["regret"] <= 1e-4).mean()),
            "regret_mean": float(group["regret"].mean()),
        }
        if mode != "from scratch":
            row["p_worse"] = float(stats.mannwhitneyu(group["best"], ref, alternative="less")[1])
            row["p_better"] = float(
                stats.mannwhitneyu(group["best"], ref, alternative="greater")[1]
            )
            sfs_hit = float((ref >= optimum[ds] - 1e-4).mean())
            row["hit_vs_sfs"] = row["optimum_hit"] / max(sfs_hit, 1e-9)
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--priors", nargs="*", default=list(PRIORS), choices=list(PRIORS))
    parser.add_argument(
        "--workdir", type=Path, default=ROOT / "data/02_intermediate/nb201_transfer"
    )
    add_data_option(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    table = NB201Table.from_frame(pd.read_parquet(RAW / "nb201_12epoch.parquet"))
    start = time.perf_counter()
    states = priors(args, table)
    meta_s = time.perf_counter() - start
    log = AppendLog(args.workdir / "adaptation_modes.jsonl")
    done = {(r["prior"], r["mode"], r["dataset"], r["trial"]) for r in log}
    jobs = []
    chunks = [list(range(i, min(i + 20, args.trials))) for i in range(0, args.trials, 20)]
    for prior, by_ds in states.items():
        if prior not in args.priors:
            continue
        for mode in ["from scratch", *args.modes]:
            if mode == "from scratch" and prior != "sub-datasets":
                continue  # one from-scratch reference: it reads no prior
            name = prior if mode != "from scratch" else "none"
            for ds in DATASETS:
                for chunk in chunks:
                    todo = [t for t in chunk if (name, mode, ds, t) not in done]
                    if todo:
                        state = None if mode == "from scratch" else by_ds[ds]
                        jobs.append(
                            (name, mode, ds, state, MODES.get(mode, AdaptationConfig()), todo)
                        )
    start = time.perf_counter()
    with ProcessPoolExecutor(
        args.workers, mp.get_context("spawn"), initializer=_init, initargs=(table,)
    ) as pool:
        for records in pool.map(_job, jobs):
            log.append(records)
            print(records[0]["prior"], records[0]["mode"], records[0]["dataset"], flush=True)
    adapt_s = time.perf_counter() - start
    frame = pd.DataFrame(list(log))
    frame = frame[frame["trial"] < args.trials]
    optimum = {ds: TabularTask(table, ds).optimum_reward for ds in DATASETS}
    sfs = frame[frame["mode"] == "from scratch"]
    frame = pd.concat(
        [frame[frame["mode"] != "from scratch"]]
        + [sfs.assign(prior=p) for p in states],  # the reference under every prior
        ignore_index=True,
    )
    result = summary(frame, optimum)
    adapted = result[result["mode"] != "from scratch"]
    worst = (
        adapted.groupby("mode")
        .agg(worst=("hit_vs_sfs", "min"), priors=("prior", "nunique"))
        .sort_values("worst", ascending=False)
    )
    md = (
        "## Adaptation modes under three priors (NB201, tuning seeds)\n\n"
        f"{args.trials} trials × 50 lookups per (prior, mode, dataset), trial seeds "
        f"{FIRST_SEED}–{FIRST_SEED + args.trials - 1} (never used by reported results). "
        "optimum_hit: share of trials whose best cell is the 12-epoch-validation optimum; "
        "hit_vs_sfs: that share over CATCH-sfs's on the same seeds; p_worse / p_better: "
        "one-sided Mann–Whitney of the final best rewards against CATCH-sfs.\n\n"
        + result.to_markdown(index=False, floatfmt=".3g")
        + "\n\nWorst hit_vs_sfs over priors and datasets, per mode (higher is better; in "
        "brackets how many of the three priors the mode ran under): "
        + ", ".join(f"{m} {r.worst:.2f} ({r.priors})" for m, r in worst.iterrows())
        + f".\n\nMeta-training of the priors {meta_s / 60:.1f} min, trials "
        f"{adapt_s / 60:.1f} min with {args.workers} workers.\n"
    )
    payload = {
        "trials": args.trials,
        "first_seed": FIRST_SEED,
        "modes": {k: v.model_dump() for k, v in MODES.items()},
        "results": result.replace({np.nan: None}).to_dict("records"),
        "worst_hit_vs_sfs": worst["worst"].to_dict(),
        "meta_s": meta_s,
        "trials_s": adapt_s,
    }
    write_results(args.out, "adaptation_modes", payload, md)
    print(md)


if __name__ == "__main__":
    main()
