"""CATCH's own NB201 protocol at small scale: meta-train on *trained* Tiny-ImageNet sub-dataset
tasks, adapt on the three NAS-Bench-201 tables.

Meta-training: CATCH (catch-meta) searches the NB201 cell space; meta-epoch k trains its
candidates on sub-dataset k of the Tiny-ImageNet subset in ../shared/data (10/20/30 random
classes of 150, 16 px, real ImageNet images) — the NB201 network at C=8, N=1 for
``--train-epochs`` epochs (a short trained reward, validation accuracy). No NB201 table is read
while meta-training. Adaptation: 500 seeded trials × 50 table lookups per dataset, from the
meta-trained networks, next to REA and next to CATCH meta-trained leave-one-dataset-out on the
tables (benchmarks/results/nb201_catch.json: same trial seeds). Meta-training state is durable
(``--workdir``): a killed run resumes.
Writes ``benchmarks/results/nb201_transfer.{json,md}`` and ``nb201_transfer_meta.png``.

    .venv/bin/python benchmarks/nb201_transfer.py [--meta-epochs 20 --meta-search 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch
from scipy import stats

from transfernas.benchmark import NB201BenchmarkConfig, results_markdown, run_trial, summarize
from transfernas.data.build import SubdatasetParams
from transfernas.data.sources import ImageFolderSource
from transfernas.environment import machine_info
from transfernas.meta import meta_train
from transfernas.searchers import make_searcher
from transfernas.spaces import NB201Space
from transfernas.tasks.subdataset import NB201SpaceParams, TrainedTaskParams, meta_task_pool
from transfernas.tasks.tabular import DATASETS, NB201Table, TabularTask

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data/01_raw/nb201"
TARBALL = ROOT.parent / "shared/data/tiny-imagenet/tiny-imagenet-200-subset.tar.gz"
LOO_RESULTS = ROOT / "benchmarks/results/nb201_catch.json"
_TABLE: NB201Table | None = None


def tiny_imagenet(workdir: Path) -> ImageFolderSource:
    """The Tiny-ImageNet subset, extracted once into ``workdir`` (no download: ../shared)."""
    root = workdir / "tiny-imagenet-200-subset"
    if not (root / "wnids.txt").exists():
        with tarfile.open(TARBALL) as tar:
            tar.extractall(workdir, filter="data")
    return ImageFolderSource(root, label_file="val_annotations.txt")


def meta_train_on_subdatasets(
    args: argparse.Namespace,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, float]:
    source = tiny_imagenet(args.workdir)
    sub = SubdatasetParams(
        n_classes=[10, 20, 30],
        image_sizes=[16],
        seed=0,
        workers=2,
        out_dir=str(args.workdir / "subdatasets"),
    )
    params = TrainedTaskParams(
        space=NB201SpaceParams(channels=8, cells=1),
        training={"epochs": args.train_epochs, "batch_size": 128, "threads": 2},
        reward={"measure_latency": False},
    )
    task_at, pool = meta_task_pool(source, sub, params, seed=0)
    space = params.space.build()
    agent = make_searcher("catch-meta", space, None, seed=12345)
    start = time.perf_counter()
    curves, records = meta_train(
        space,
        agent,
        task_at,
        args.meta_epochs,
        args.meta_search,
        pool=pool,
        workdir=args.workdir / "meta",
        progress=True,
    )
    # wall time summed over runs: a resumed run adds only what it did
    clock = args.workdir / "meta" / "wall_time.json"
    before = json.loads(clock.read_text())["seconds"] if clock.exists() else 0.0
    total = before + time.perf_counter() - start
    clock.write_text(json.dumps({"seconds": total}))
    records = pd.DataFrame(records)
    curves = pd.DataFrame(curves).assign(cost_s=records.groupby("trial")["cost_s"].sum().to_numpy())
    return agent.network_state(), curves, records, total


def proxy_agreement(records: pd.DataFrame, table: NB201Table) -> dict[str, float]:
    """Spearman ρ between the short trained reward of the cells evaluated in meta-training and
    their NB201 12-epoch validation accuracy: does the proxy rank cells like NB201 does?"""
    space = NB201Space()
    index = table.index_of_code[space.codes([space.encode(a) for a in records["arch"]])]
    return {
        ds: float(stats.spearmanr(records["reward"], TabularTask(table, ds).val[index]).statistic)
        for ds in DATASETS
    }


def _init(table: NB201Table) -> None:
    global _TABLE
    torch.set_num_threads(1)
    _TABLE = table


def _trials(job: tuple[str, str, list[int], dict | None]) -> list[dict]:
    dataset, method, trials, pretrained = job
    config = NB201BenchmarkConfig(methods=[method], budget=50)
    return [run_trial(_TABLE, config, dataset, method, t, pretrained) for t in trials]


def adapt(state: dict, table: NB201Table, trials: int, workers: int) -> tuple[pd.DataFrame, float]:
    chunks = [list(range(i, min(i + 50, trials))) for i in range(0, trials, 50)]
    jobs = [
        (ds, m, c, state if m == "catch-meta" else None)
        for ds in DATASETS
        for m in ("catch-meta", "rea")
        for c in chunks
    ]
    start = time.perf_counter()
    with ProcessPoolExecutor(
        workers, mp.get_context("spawn"), initializer=_init, initargs=(table,)
    ) as pool:
        records = [r for part in pool.map(_trials, jobs) for r in part]
    frame = pd.DataFrame(records).explode(["arch_index", "reward", "test_acc"], ignore_index=True)
    frame["step"] = frame.groupby(["dataset", "method", "trial"]).cumcount()
    frame = frame.astype({"arch_index": "int64", "reward": "float64", "test_acc": "float64"})
    frame["method"] = frame["method"].replace({"catch-meta": "catch-meta (sub-datasets)"})
    return frame, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meta-epochs", type=int, default=20)
    parser.add_argument("--meta-search", type=int, default=20)
    parser.add_argument("--train-epochs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--workdir", type=Path, default=ROOT / "data/02_intermediate/nb201_transfer"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    state, curves, records, meta_s = meta_train_on_subdatasets(args)
    print(curves.to_string(), flush=True)
    table = NB201Table.from_frame(pd.read_parquet(RAW / "nb201_12epoch.parquet"))
    agreement = proxy_agreement(records, table)
    test200 = pd.read_parquet(RAW / "nb201_200epoch.parquet")
    evals, adapt_s = adapt(state, table, args.trials, args.workers)
    results = summarize(evals, table, test200)
    loo = pd.DataFrame(json.loads(LOO_RESULTS.read_text())["results"])
    loo = loo[loo["method"] == "catch-meta"].assign(method="catch-meta (leave-one-out tables)")
    both = pd.concat([results, loo[results.columns.intersection(loo.columns)]], ignore_index=True)
    both = both.sort_values(["dataset", "method"], kind="stable")

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(curves["epoch"], curves["best_reward"], "o-", label="best val. acc. of the epoch")
    ax.set_xlabel("meta-epoch (one new Tiny-ImageNet sub-dataset each)")
    ax.set_ylabel("validation accuracy (%), short trained reward")
    ax.set_title("CATCH meta-training on trained sub-dataset tasks (NB201 cells)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out / "nb201_transfer_meta.png", dpi=120)

    info = machine_info()
    md = results_markdown(
        both, "CATCH meta-trained on trained Tiny-ImageNet sub-datasets → NB201 tables"
    )
    md += (
        f"\nMeta-training: {args.meta_epochs} meta-epochs × {args.meta_search} trained evaluations "
        f"(NB201 network C=8, N=1, {args.train_epochs} epochs, 16 px, 10/20/30-class "
        f"sub-datasets of the 150-class Tiny-ImageNet subset): {meta_s / 60:.1f} min on "
        f"{info['cpu']} ({info['cpu_count']} cores, CPU only — no GPU was lent). Adaptation: "
        f"{args.trials} trials × 50 lookups per dataset and method, {adapt_s / 60:.1f} min with "
        f"{args.workers} workers. The leave-one-out rows are copied from "
        "benchmarks/results/nb201_catch.md (same trial seeds 0–499). Command: "
        "`.venv/bin/python benchmarks/nb201_transfer.py`.\n"
        "\nDoes the short trained reward rank cells like NB201? Spearman ρ between the reward of "
        f"the {len(records)} meta-training evaluations and the same cells' NB201 12-epoch "
        "validation accuracy: "
        + ", ".join(f"{ds} {rho:+.2f}" for ds, rho in agreement.items())
        + ".\n"
    )
    (args.out / "nb201_transfer.md").write_text(md)
    (args.out / "nb201_transfer.json").write_text(
        json.dumps(
            {
                "machine": info,
                "args": {k: str(v) for k, v in vars(args).items()},
                "meta_training_s": meta_s,
                "adaptation_s": adapt_s,
                "proxy_spearman": agreement,
                "meta_curves": curves.to_dict("records"),
                "results": both.to_dict("records"),
            },
            indent=2,
            default=str,
        )
    )
    print(md)


if __name__ == "__main__":
    main()
