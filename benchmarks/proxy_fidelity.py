"""Proxy fidelity: how well does a cheap reward rank NAS-Bench-201 cells, and at what cost?

A fixed, seeded sample of NB201 cells (``SAMPLE_SEED``, a permutation of the 15,625 indices
fixed before any result; every config scores a prefix of it) is scored by
- zero-cost proxies (``tasks/zero_cost.py``) of the NB201 network (C=16, N=5, NB201's own) at
  initialisation, on one batch of a 16 px Tiny-ImageNet sub-dataset;
- trained proxies: the project's trainer (``tasks/trained.py``) on 16 px sub-datasets of the
  150-class Tiny-ImageNet subset (``--data``, docs/data.md), built by the ``subdatasets`` code;
- combinations: weighted sums of the proxies' features whose weights maximise Spearman ρ vs
  NB201's ImageNet16-120 200-epoch test accuracy on the even positions of the sample, scored
  on the odd positions only.
Each proxy gets Spearman ρ and Kendall τ against NB201's 200-epoch test accuracy and 12-epoch
validation accuracy on ImageNet16-120, cifar100 and cifar10-valid, ρ inside the 200-epoch top
10 % (cells of the sample in the table's top decile), and the median seconds per cell here.

Every scored cell is appended to a durable log (``--workdir``); a rerun with more cells or
another config computes only what is missing. Writes ``benchmarks/results/proxy_fidelity.
{json,md}`` and ``proxy_fidelity.png`` (fidelity vs cost, Pareto front, published points).

    .venv/bin/python benchmarks/proxy_fidelity.py --zero-cost-cells 1000 --trained-cells 200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import matplotlib
from _results import write_results

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from _data import add_data_option, tiny_imagenet
from _nb201 import RAW, ROOT
from rich.progress import Progress
from scipy import stats

from transfernas.data.build import SubdatasetParams, make_spec
from transfernas.history import AppendLog
from transfernas.spaces.nb201 import N_ARCHS, NB201Space, NB201SpaceParams
from transfernas.tasks.subdataset import (
    TrainedTaskParams,
    trained_task,
    zero_cost_task,
)
from transfernas.tasks.tabular import COLUMNS_12, COLUMNS_200, DATASETS
from transfernas.tasks.trained import RewardConfig, TrainedTask, TrainingConfig
from transfernas.tasks.zero_cost import PROXIES, ZeroCostParams, ZeroCostTask, feature

SAMPLE_SEED = 20261203  # fixed before any result was seen
REFERENCE = {  # published Spearman vs NB201 200-epoch accuracy (DESIGN.md §6b)
    "#params (published)": 0.73,
    "synflow (published)": 0.75,
    "NASWOT (published)": 0.80,
    "NB201 12-epoch GPU training": 0.84,
    "EcoNAS-style reduced training": 0.61,
}

# Zero-cost: NB201's own network, one seeded batch of a 120-class 16 px sub-dataset
# (ImageNet16-120's shape); every proxy is timed separately.
ZERO_COST = {
    "zc": {"classes": 120, "train_per_class": 20, "channels": 16, "cells": 5, "batch": 64},
    # NASWOT's own batch size (Mellor et al.: 128); naswot only
    "zc_b128": {
        "classes": 120, "train_per_class": 20, "channels": 16, "cells": 5, "batch": 128,
        "proxies": ["naswot"],
    },
}  # fmt: skip
# Trained proxies: (data, network, schedule). cost grows with images × epochs × network.
TRAINED = {
    "t_c8n1_e4_30x80": {
        "classes": 30, "train_per_class": 80, "channels": 8, "cells": 1,
        "training": {"epochs": 4, "batch_size": 128},
    },
    "t_c8n1_e12_30x80": {
        "classes": 30, "train_per_class": 80, "channels": 8, "cells": 1,
        "training": {"epochs": 12, "batch_size": 128},
    },
    "t_c16n1_e1_120x100": {
        "classes": 120, "train_per_class": 100, "channels": 16, "cells": 1,
        "training": {"epochs": 1, "batch_size": 128},
    },
    "t_c8n1_e4_120x50_b64": {
        "classes": 120, "train_per_class": 50, "channels": 8, "cells": 1,
        "training": {"epochs": 4, "batch_size": 64, "lr": 0.05},
    },
}  # fmt: skip
VAL_PER_CLASS = 20
_TASK: Any = None


def sample_cells(n: int) -> np.ndarray:
    """NB201 indices of the first ``n`` cells of the fixed sample."""
    return np.random.default_rng(SAMPLE_SEED).permutation(N_ARCHS)[:n]


def config_id(name: str, config: dict[str, Any]) -> str:
    """A changed config is another proxy: its records never mix with the old ones."""
    blob = json.dumps([name, config], sort_keys=True).encode()
    return f"{name}@{hashlib.sha256(blob).hexdigest()[:8]}"


def make_task(data: str, workdir: str, name: str) -> ZeroCostTask | TrainedTask:
    """The proxy ``name`` as a task on its sub-dataset (built by the subdatasets code)."""
    config = ZERO_COST.get(name) or TRAINED[name]
    sub = SubdatasetParams(
        n_classes=[config["classes"]],
        image_sizes=[16],
        train_per_class=config["train_per_class"],
        val_per_class=VAL_PER_CLASS,
        seed=0,
        workers=1,
        out_dir=str(Path(workdir) / "subdatasets"),
    )
    spec = make_spec(tiny_imagenet(Path(data), Path(workdir)), sub, 0)
    space = NB201SpaceParams(channels=config["channels"], cells=config["cells"])
    if name in ZERO_COST:
        weights = dict.fromkeys(config.get("proxies", PROXIES), 1.0)
        zero_cost = ZeroCostParams(weights=weights, batch_size=config["batch"])
        return zero_cost_task(spec, sub, TrainedTaskParams(space=space, zero_cost=zero_cost), 0)
    params = TrainedTaskParams(
        space=space,
        training=TrainingConfig(**config["training"], threads=1),
        reward=RewardConfig(measure_latency=False),
    )
    return trained_task(spec, sub, params, 0)


def _init(data: str, workdir: str, name: str) -> None:
    global _TASK
    torch.set_num_threads(1)
    _TASK = make_task(data, workdir, name)


def _score(cell: int) -> dict[str, Any]:
    space = NB201Space()
    actions = space.from_code(int(CODE_OF_INDEX[cell]))
    if isinstance(_TASK, ZeroCostTask):
        out: dict[str, Any] = {}
        # grad_norm and snip share one backward pass: each is charged that pass
        groups = [["params"], ["flops"], ["synflow"], ["naswot"], ["grad_norm", "snip"]]
        for group in [g for g in groups if set(g) <= set(_TASK.params.weights)]:
            t0 = time.perf_counter()
            out |= _TASK.scores(actions, group)
            out |= {f"{p}_s": time.perf_counter() - t0 for p in group}
        return {"cell": cell} | out
    ev = _TASK.evaluate(actions)
    return {"cell": cell, "val_acc": ev.reward, "seconds": ev.cost_s} | {
        k: ev.metrics[k] for k in ("train_acc", "train_s")
    }


def _codes() -> np.ndarray:
    frame = pd.read_parquet(RAW / "nb201_12epoch.parquet", columns=["arch_str"])
    space = NB201Space()
    return space.codes(np.array([space.encode(s) for s in frame["arch_str"]]))


CODE_OF_INDEX = _codes()


def run_config(name: str, cells: np.ndarray, log: AppendLog, args: argparse.Namespace) -> None:
    """Score the cells of ``cells`` that the log lacks for this config, in worker processes."""
    cid = config_id(name, ZERO_COST.get(name) or TRAINED[name])
    done = {r["cell"] for r in log if r["config"] == cid}
    todo = [int(c) for c in cells if int(c) not in done]
    if not todo:
        return
    ctx = mp.get_context("spawn")
    init = (str(args.data), str(args.workdir), name)
    _init(*init)  # builds the sub-dataset once, before the workers read it
    with (
        ProcessPoolExecutor(args.workers, ctx, initializer=_init, initargs=init) as pool,
        Progress() as bar,
    ):
        job = bar.add_task(f"{name}: {len(todo)} cells", total=len(todo))
        for fut in as_completed([pool.submit(_score, c) for c in todo]):
            log.append([{"config": cid, "name": name} | fut.result()])
            bar.advance(job)


def targets() -> pd.DataFrame:
    """NB201 accuracies by index: ``<dataset>/test200`` and ``<dataset>/val12``."""
    t12 = pd.read_parquet(RAW / "nb201_12epoch.parquet")
    t200 = pd.read_parquet(RAW / "nb201_200epoch.parquet")
    cols = {}
    for ds in DATASETS:
        cols[f"{ds}/test200"] = t200[COLUMNS_200[ds]].to_numpy()
        cols[f"{ds}/val12"] = t12[COLUMNS_12[ds][0]].to_numpy()
    return pd.DataFrame(cols)


def fidelity(score: np.ndarray, cells: np.ndarray, truth: pd.DataFrame) -> dict[str, float]:
    """Spearman/Kendall of ``score`` vs every target, and ρ inside the 200-epoch top 10 %."""
    out: dict[str, float] = {"n_cells": len(cells)}
    for col in truth.columns:
        y = truth[col].to_numpy()[cells]
        out[f"spearman/{col}"] = float(stats.spearmanr(score, y).statistic)
        out[f"kendall/{col}"] = float(stats.kendalltau(score, y).statistic)
    y = truth["ImageNet16-120/test200"].to_numpy()
    top = y[cells] >= np.quantile(y, 0.9)
    out["n_top10"] = int(top.sum())
    out["spearman_top10/ImageNet16-120/test200"] = float(
        stats.spearmanr(score[top], y[cells][top]).statistic
    )
    return out


def fit_combination(features: pd.DataFrame, target: np.ndarray, seed: int = 0) -> pd.Series:
    """Weights w maximising Spearman(features @ w, target) on the cells given (the fit half).

    Features are standardised, then 4,000 seeded directions (and the least-squares fit of the
    target's rank) are tried; heavy-tailed features make least squares alone a poor ranker.
    Returned in raw feature units, so ``features @ w`` is the deployable reward.
    """
    x = features.to_numpy()
    finite = np.isfinite(x).all(axis=1)
    x, y = x[finite], target[finite]
    scale = x.std(axis=0)
    z = (x - x.mean(axis=0)) / scale
    lsq, *_ = np.linalg.lstsq(np.c_[z, np.ones(len(z))], stats.rankdata(y), rcond=None)
    directions = np.random.default_rng(seed).standard_normal((4000, x.shape[1]))
    candidates = np.vstack([lsq[:-1], np.eye(x.shape[1]), directions])
    scores = stats.rankdata(z @ candidates.T, axis=0)
    rho = [stats.pearsonr(col, stats.rankdata(y)).statistic for col in scores.T]
    best = candidates[int(np.argmax(rho))]
    best = best / np.abs(best).max()
    return pd.Series(best / scale, index=features.columns)


def combine(features: pd.DataFrame, weights: pd.Series) -> np.ndarray:
    """Σ w·feature; a −∞ feature (degenerate net) makes the whole score −∞ (ranked last)."""
    x = features[weights.index].to_numpy()
    with np.errstate(invalid="ignore"):
        out = x @ weights.to_numpy()
    bad = ~np.isfinite(x).all(axis=1)
    out[bad] = -np.inf
    return out


def analyse(log: AppendLog, args: argparse.Namespace) -> tuple[pd.DataFrame, dict[str, Any]]:
    truth = targets()
    rows: list[dict[str, Any]] = []
    frames = {}
    records = pd.DataFrame(list(log))
    for name, config in {**ZERO_COST, **TRAINED}.items():
        cid = config_id(name, config)
        part = records[records["config"] == cid] if len(records) else records
        if not len(part):
            continue
        part = part.drop_duplicates("cell").set_index("cell")
        if name in TRAINED and len(part) < args.trained_cells:
            continue  # a trained proxy is reported on the full sample only
        order = [c for c in sample_cells(N_ARCHS) if c in part.index]  # sample order
        part = part.loc[order]
        frames[name] = part
        cells = part.index.to_numpy()
        if name in ZERO_COST:
            for proxy in config.get("proxies", PROXIES):
                score = np.array([feature(proxy, v) for v in part[proxy]])
                label = proxy if name == "zc" else f"{proxy} (batch {config['batch']})"
                rows.append(
                    {"proxy": label, "kind": "zero-cost", "config": name,
                     "median_s": float(part[f"{proxy}_s"].median())}
                    | fidelity(score, cells, truth)
                )  # fmt: skip
        else:
            rows.append(
                {"proxy": name, "kind": "trained", "config": name,
                 "median_s": float(part["seconds"].median())}
                | fidelity(part["val_acc"].to_numpy(), cells, truth)
            )  # fmt: skip
    combos: dict[str, Any] = {}
    target = truth["ImageNet16-120/test200"].to_numpy()
    if "zc" in frames:
        zc = frames["zc"]
        feats = pd.DataFrame({p: [feature(p, v) for v in zc[p]] for p in PROXIES}, index=zc.index)
        seconds = zc[[f"{p}_s" for p in PROXIES]].rename(columns=lambda c: c[:-2])
        sets = [
            ("naswot+params", ["naswot", "params"]),
            ("naswot+synflow", ["naswot", "synflow"]),
            ("all zero-cost", list(PROXIES)),
        ]
        if "zc_b128" in frames:
            b128 = frames["zc_b128"].reindex(zc.index)
            feats["naswot_b128"] = b128["naswot"].map(lambda v: feature("naswot", v))
            seconds["naswot_b128"] = b128["naswot_s"]
            sets.append(("naswot(batch 128)+synflow", ["naswot_b128", "synflow"]))
        for label, proxies in sets:
            part = feats[proxies].dropna()
            cost = seconds.loc[part.index, proxies].sum(axis=1)
            combos[label] = _combo(label, part, cost, target, truth, rows, "zero-cost")
        for name in TRAINED:
            if name not in frames:
                continue
            tr = frames[name]
            common = [c for c in tr.index if c in feats.index]
            both = feats.loc[common, ["naswot", "params"]].assign(val_acc=tr.loc[common, "val_acc"])
            zc_cost = seconds.loc[common, ["naswot", "params"]].sum(axis=1)
            label = f"{name} + naswot + params"
            combos[label] = _combo(
                label, both, tr.loc[common, "seconds"] + zc_cost, target, truth, rows,
                "trained + zero-cost",
            )  # fmt: skip
            # the same fit without the training, on the same cells: what does training add?
            label = f"naswot + params (the cells of {name})"
            combos[label] = _combo(
                label, both.drop(columns="val_acc"), zc_cost, target, truth, rows, "zero-cost"
            )
    return pd.DataFrame(rows), combos


def _combo(
    label: str,
    feats: pd.DataFrame,
    cost: pd.Series,
    target: np.ndarray,
    truth: pd.DataFrame,
    rows: list[dict[str, Any]],
    kind: str,
) -> dict[str, Any]:
    """Fit on the sample's even positions, report on its odd positions only.

    ``cost``: seconds per cell of everything the combination needs.
    """
    fit_cells, test_cells = feats.index[0::2], feats.index[1::2]
    weights = fit_combination(feats.loc[fit_cells], target[fit_cells.to_numpy()])
    score = combine(feats.loc[test_cells], weights)
    median_s = float(cost.loc[test_cells].median())
    rows.append(
        {"proxy": label, "kind": f"{kind} (fit on half)", "config": "held-out half",
         "median_s": median_s}
        | fidelity(score, test_cells.to_numpy(), truth)
    )  # fmt: skip
    # nothing fitted: the mean of the proxies' ranks among the scored cells (a population
    # score, so not a per-cell reward), on the same half for comparison
    ranks = np.mean([stats.rankdata(feats.loc[test_cells, c]) for c in feats.columns], axis=0)
    rows.append(
        {"proxy": f"rank mean: {label}", "kind": f"{kind} (rank ensemble)",
         "config": "held-out half", "median_s": median_s}
        | fidelity(ranks, test_cells.to_numpy(), truth)
    )  # fmt: skip
    return {
        "weights": weights.to_dict(),
        "fit_cells": len(fit_cells),
        "test_cells": len(test_cells),
    }


def scoring_seconds(log: AppendLog) -> float:
    """CPU seconds spent scoring every cell in the log (zero-cost: the sum of its proxies)."""
    total = 0.0
    for r in log:
        total += (
            r["seconds"] if "seconds" in r else sum(r[f"{p}_s"] for p in PROXIES if f"{p}_s" in r)
        )
    return total


def plot(table: pd.DataFrame, path: Path) -> None:
    """Fidelity vs cost of every per-cell proxy scored on ≥ 200 cells (rank ensembles are
    population scores, left out), Pareto front, published points."""
    col = "spearman/ImageNet16-120/test200"
    table = table[(table["n_cells"] >= 200) & ~table["kind"].str.contains("rank ensemble")]
    table = table.dropna(subset=["median_s", col])
    fig, ax = plt.subplots(figsize=(10, 5.5))
    ax.set_xscale("log")
    for kind, marker in zip(sorted(table["kind"].unique()), "osD^v", strict=False):
        part = table[table["kind"] == kind]
        ax.scatter(part["median_s"], part[col], marker=marker, label=kind, zorder=3)
        for i, (_, r) in enumerate(part.sort_values("median_s").iterrows()):
            ax.annotate(r["proxy"], (r["median_s"], r[col]), fontsize=7,
                        xytext=(4, -12 + 10 * (i % 3)), textcoords="offset points")  # fmt: skip
    # Pareto front: no other proxy is both cheaper and more faithful
    pts = table.sort_values("median_s")[["median_s", col]].to_numpy()
    front, best = [], -np.inf
    for s, r in pts:
        if r > best:
            front.append((s, r))
            best = r
    ax.step(*zip(*front, strict=True), where="post", color="k", lw=1, label="Pareto front")
    styles = [":", "--", "-.", "-", (0, (1, 3))]
    for (label, value), style in zip(REFERENCE.items(), styles, strict=True):
        ax.axhline(value, color="grey", ls=style, lw=0.8, label=f"{label}: {value:.2f}")
    ax.set_xlabel("median seconds per cell (this machine, 1 thread per cell)")
    ax.set_ylabel("Spearman ρ vs NB201 200-epoch test acc. (ImageNet16-120)")
    ax.set_title("Proxy fidelity vs cost on NAS-Bench-201 (proxies scored on ≥ 200 cells)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def markdown(cpu_s: float, table: pd.DataFrame, combos: dict[str, Any], wall_s: float) -> str:
    cols = ["proxy", "kind", "n_cells", "median_s"]
    for ds in ("ImageNet16-120", "cifar100", "cifar10-valid"):
        cols += [f"spearman/{ds}/test200", f"spearman/{ds}/val12"]
    cols += ["kendall/ImageNet16-120/test200", "n_top10", "spearman_top10/ImageNet16-120/test200"]
    view = table.sort_values(["kind", "spearman/ImageNet16-120/test200"], ascending=[True, False])
    short = {c: c.replace("spearman/", "ρ ").replace("kendall/", "τ ").replace("_top10", " top-10%")
             .replace("ImageNet16-120", "IN16").replace("cifar10-valid", "c10").replace(
                 "cifar100", "c100") for c in cols}  # fmt: skip
    md = "## Proxy fidelity on NAS-Bench-201 (fixed seeded sample of cells)\n\n"
    md += view[cols].rename(columns=short).to_markdown(index=False, floatfmt=".3f") + "\n\n"
    md += (
        "ρ = Spearman, τ = Kendall. `test200`: NB201's 200-epoch test accuracy; `val12`: its "
        "12-epoch validation accuracy (c10 = cifar10-valid; its test200 is cifar10 test). "
        "top-10%: ρ among the sample's cells in the table's 200-epoch ImageNet16-120 top decile. "
        f"Sample: permutation of the 15,625 cells with seed {SAMPLE_SEED}; each proxy scores a "
        "prefix of it. Zero-cost proxies: NB201 network C=16, N=5 at initialisation, one "
        "seeded batch of 64 images of a 120-class 16 px Tiny-ImageNet sub-dataset; log of "
        "params/FLOPs/synflow/snip/grad_norm (ranks unchanged). Trained proxies: "
        "`t_c<C>n<N>_e<epochs>_<classes>x<train images per class>`, the project's trainer "
        "(SGD Nesterov, cosine lr 0.1 unless named, wd 5e-4, crop+flip) on 16 px sub-datasets "
        f"of the 150-class Tiny-ImageNet subset, {VAL_PER_CLASS} validation images per class. "
        "Combinations: Σ weight·feature, the weights chosen to maximise ρ vs the "
        "ImageNet16-120 200-epoch accuracy on the sample's even positions (seeded search over "
        "directions of standardised features), reported on its odd positions only; weights "
        "below, in raw feature units (deployable as `trained_task.zero_cost.weights`).\n\n"
    )
    for label, c in combos.items():
        w = ", ".join(f"{k} {v:+.4g}" for k, v in c["weights"].items())
        md += f"- {label}: weights {w} (fit on {c['fit_cells']}, scored on {c['test_cells']})\n"
    md += (
        "\nEach cell scored in one process with 1 torch thread, 1–2 processes at once. The seconds are "
        "upper bounds: part of the cells were scored while other jobs (a compile, another "
        "benchmark) shared the 2 cores. grad_norm and snip share one backward pass and each is "
        "charged it, so a combination holding both over-counts that pass once. Scoring time in "
        f"the log: {cpu_s / 3600:.1f} CPU-hours; this invocation {wall_s / 60:.1f} min (cells "
        "already in the log are not recomputed).\n"
    )
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zero-cost-cells", type=int, default=1000)
    parser.add_argument("--trained-cells", type=int, default=200)
    parser.add_argument("--trained", nargs="*", default=list(TRAINED), choices=list(TRAINED),
                        help="trained proxies to score (each on --trained-cells cells)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--workdir", type=Path, default=ROOT / "data/02_intermediate/proxy_fidelity"
    )
    add_data_option(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    log = AppendLog(args.workdir / "log.jsonl")
    for name in ZERO_COST:
        run_config(name, sample_cells(args.zero_cost_cells), log, args)
    for name in args.trained:
        run_config(name, sample_cells(args.trained_cells), log, args)
    wall_s = time.perf_counter() - start
    table, combos = analyse(log, args)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(table, args.out / "proxy_fidelity.png")
    md = markdown(scoring_seconds(log), table, combos, wall_s)
    payload = {
        "sample_seed": SAMPLE_SEED,
        "args": {k: str(v) for k, v in vars(args).items()},
        "configs": {"zero_cost": ZERO_COST, "trained": TRAINED},
        "combinations": combos,
        "results": table.to_dict("records"),
        "wall_s": wall_s,
    }
    write_results(args.out, "proxy_fidelity", payload, md)
    print(md)


if __name__ == "__main__":
    main()
