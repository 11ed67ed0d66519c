"""BASE vs CATCH-meta vs REA on the NB201 table, through 16/32 px proxies, at equal wall-clock.

No method sees the table while searching: each searches on a *proxy* of an NB201 dataset built
from the embedded Tiny-ImageNet sample, and only the cell it returns is looked up afterwards
(12-epoch validation accuracy, the search reward of the other NB201 benchmarks, and the
200-epoch test accuracy). Proxies:

    cifar10-valid  ← 10 seeded classes at 32 px     cifar100 ← all 40 classes at 32 px
    ImageNet16-120 ← all 40 classes at 16 px

Per seed: BASE meta-trains on 10-class sub-datasets (16 and 32 px) and adapts to each proxy
(its cell: the argmax of the adapted posterior); T = its total wall time. REA gets T/3 per
proxy, each candidate cell trained on the proxy (NB201 skeleton, C=8, N=1, 1 epoch); its answer
is the best proxy reward. CATCH-meta meta-trains on trained sub-dataset tasks for T/2, then
searches each proxy for T/6. Everything runs in this process, one thread, one method at a time.

    .venv/bin/python benchmarks/base.py [--seeds 5 --meta-epochs 10]
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

from transfernas.bayes.base import BASE, BASEConfig
from transfernas.bayes.stage import meta_train_base
from transfernas.data.build import SubdatasetParams
from transfernas.data.sources import ImageFolderSource
from transfernas.meta import meta_train
from transfernas.searchers import make_searcher
from transfernas.spaces.nb201 import NB201SpaceParams
from transfernas.tasks.subdataset import (
    TargetParams,
    TrainedTaskParams,
    meta_task_pool,
    subdataset_data,
    target_spec,
    trained_task,
)
from transfernas.tasks.tabular import COLUMNS_200, NB201Table, TabularTask

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ImageFolderSource(ROOT / "data/01_raw/imagenet_sample")
PROXIES = {
    "cifar10-valid": TargetParams(n_classes=10, image_size=32),
    "cifar100": TargetParams(n_classes=None, image_size=32),
    "ImageNet16-120": TargetParams(n_classes=None, image_size=16),
}
TRAINED = TrainedTaskParams(
    space=NB201SpaceParams(channels=8, cells=1),
    training={"epochs": 1, "batch_size": 64},
    reward={"measure_latency": False},
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--meta-epochs", type=int, default=10)
    parser.add_argument("--work", type=Path, default=ROOT / "data/07_model_output/base_bench")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    return parser.parse_args()


def timed_search(task, searcher, seconds: float) -> tuple[tuple[int, ...], float, int]:
    """ask/tell until ``seconds`` have passed (at least one evaluation): best cell, reward, n."""
    start, best, n = time.perf_counter(), (None, -np.inf), 0
    while n == 0 or time.perf_counter() - start < seconds:
        cand = searcher.ask(1)
        reward = task.evaluate(cand[0]).reward
        searcher.tell(cand, [reward])
        best = max(best, (cand[0], reward), key=lambda b: b[1])
        n += 1
    return best[0], best[1], n


def run_seed(seed: int, args: argparse.Namespace, table: NB201Table) -> list[dict[str, Any]]:
    sub = SubdatasetParams(
        image_sizes=[16, 32], workers=1, seed=seed, out_dir=str(args.work / "subdatasets")
    )
    targets = {
        d: target_spec(SOURCE, sub, p.model_copy(update={"seed": seed})) for d, p in PROXIES.items()
    }
    rows: list[dict[str, Any]] = []

    # BASE: meta-train, then adapt to every proxy
    start = time.perf_counter()
    base, _, _ = meta_train_base(BASEConfig(), SOURCE, sub, args.meta_epochs, seed)
    cells = {}
    for dataset, spec in targets.items():
        train, val = subdataset_data(spec, sub)
        adapted = BASE(base.config, seed)
        adapted.load_state_dict(base.state_dict())
        cells[dataset] = adapted.adapt(train, val, seed)[0]
    total = time.perf_counter() - start
    rows += [_row(table, seed, "base", d, c, total / 3, 0) for d, c in cells.items()]

    # REA: T/3 of trained evaluations per proxy
    for dataset, spec in targets.items():
        task = trained_task(spec, sub, TRAINED, seed)
        rea = make_searcher("rea", task.space, None, seed)
        cell, _, n = timed_search(task, rea, total / 3)
        rows.append(_row(table, seed, "rea", dataset, cell, total / 3, n))

    # CATCH-meta: meta-train T/2 on trained sub-dataset tasks, then T/6 per proxy
    task_at, pool = meta_task_pool(SOURCE, sub, TRAINED, seed)
    space = TRAINED.space.build()
    agent = make_searcher("catch-meta", space, None, seed)
    start, epoch = time.perf_counter(), 0
    while time.perf_counter() - start < total / 2:
        meta_train(space, agent, lambda _, k=epoch: task_at(1000 + k), 1, 8, pool=pool)
        epoch += 1
    state = agent.network_state()
    for dataset, spec in targets.items():
        task = trained_task(spec, sub, TRAINED, seed)
        catch = make_searcher("catch-meta", task.space, None, seed)
        catch.load_network_state(state)
        cell, _, n = timed_search(task, catch, total / 6)
        rows.append(_row(table, seed, "catch-meta", dataset, cell, total / 6, n, meta_epochs=epoch))
    return rows


def _row(table, seed, method, dataset, actions, seconds, n_evals, **extra) -> dict[str, Any]:
    task = TabularTask(table, dataset)
    index = task.index(actions)
    return {
        "seed": seed,
        "method": method,
        "dataset": dataset,
        "arch": task.space.decode(actions),
        "val12": float(task.val[index]),
        "rank": int(task.rank[index]) + 1,
        "index": index,
        "seconds": round(seconds, 1),
        "trained_evaluations": n_evals,
        **extra,
    }


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    raw = ROOT / "data/01_raw/nb201"
    table = NB201Table.from_frame(pd.read_parquet(raw / "nb201_12epoch.parquet"))
    test200 = pd.read_parquet(raw / "nb201_200epoch.parquet")
    start = time.perf_counter()
    rows = [row for seed in range(args.seeds) for row in run_seed(seed, args, table)]
    frame = pd.DataFrame(rows)
    frame["test200"] = [
        float(test200[COLUMNS_200[d]].to_numpy()[i])
        for d, i in zip(frame["dataset"], frame["index"], strict=True)
    ]
    summary = (
        frame.groupby(["dataset", "method"], sort=False)
        .agg(
            seeds=("seed", "count"),
            val12_mean=("val12", "mean"),
            val12_std=("val12", "std"),
            test200_mean=("test200", "mean"),
            rank_median=("rank", "median"),
            evaluations=("trained_evaluations", "mean"),
            seconds=("seconds", "mean"),
        )
        .reset_index()
    )
    payload = {
        "protocol": __doc__.split("\n\n")[1],
        "seeds": args.seeds,
        "meta_epochs": args.meta_epochs,
        "base_config": BASEConfig().model_dump(),
        "wall_time_s": round(time.perf_counter() - start, 1),
        "summary": summary.to_dict(orient="records"),
        "runs": rows,
    }
    md = (
        "## BASE vs CATCH-meta vs REA on NB201 through sub-dataset proxies (equal wall-clock)\n\n"
        "Reward seen while searching: accuracy on the proxy (BASE: its supernet's loss). "
        "Reported, read only afterwards: the cell's NB201 12-epoch validation accuracy (mean ± "
        "std over seeds), its rank among 15,625 cells (median), its 200-epoch test accuracy.\n\n"
        + summary.round(2).to_markdown(index=False)
        + f"\n\nWall time {payload['wall_time_s']:.0f} s, one thread.\n"
    )
    write_results(args.out, "base", payload, md)
    print(md)


if __name__ == "__main__":
    main()
