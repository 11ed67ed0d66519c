"""Transfer on the residual-block space: does adapting the meta-trained agent beat searching
from scratch on targets made of classes it never saw?

The 150 classes of the Tiny-ImageNet subset (``--data``, docs/data.md) are split once, seeded:
``--held-out`` classes are kept for targets, the rest feed meta-training.
- Meta-training: CATCH (catch-meta) on ``--meta-epochs`` sub-datasets (10/20/30 classes of the
  meta-training classes, 16 px) × ``--meta-search`` trained evaluations, the project's default
  trained task (``trained_task`` of conf/base: resblock space, 3-epoch training, latency-aware
  reward) on one thread per evaluation.
- Targets: ``--targets`` sub-datasets of 10 held-out classes each (seeded). On each, every
  method searches ``--budget`` evaluations per seed (``--seeds``): adapt (catch-meta from the
  meta-trained networks, ``adapt.adaptation`` of conf/base), catch-sfs, REA and random search.
  As in the ``adapt`` stage, a search trains on ``train/`` minus a seeded 20 % per class and
  rewards on that 20 %; the target's ``val/`` images are never seen by a search.
- Longer retraining: each search's best network is trained ``--long-factor`` × longer on the
  whole ``train/`` and scored on ``val/`` (held out), so the ranking is known not to be an
  artefact of the short reward.
Every evaluation goes through the evaluation cache (``trained_task.cache``), every search is a
durable history (``--workdir``; a killed run resumes, a larger ``--seeds``/``--targets`` adds
only what is missing), and the searches run in ``--workers`` processes. Writes
``benchmarks/results/resblock_transfer.{json,md,png}``.

    .venv/bin/python benchmarks/resblock_transfer.py --data ../shared/data [--seeds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
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
from _nb201 import ROOT, base_params, summed_wall_time
from rich.progress import Progress
from scipy import stats

from transfernas.data.build import SubdatasetParams
from transfernas.data.sources import ImageFolderSource
from transfernas.digest import json_digest
from transfernas.history import History
from transfernas.meta import meta_train
from transfernas.search import run_search
from transfernas.searchers import SEARCHERS, make_searcher
from transfernas.searchers.adaptation import AdaptationConfig, adapted
from transfernas.tasks.subdataset import (
    SearchTargetParams,
    TrainedTaskParams,
    meta_task_pool,
    target_splits,
    trained_task,
)

SPLIT_SEED = 20261206  # fixed before any result
METHODS = ("adapt", "catch-sfs", "rea", "random")


@dataclass
class ClassSubset(ImageFolderSource):
    """The tree with only ``keep`` of its classes: the held-out targets' pool."""

    keep: tuple[str, ...] = ()

    @property
    def classes(self) -> list[str]:
        return [c for c in super().classes if c in set(self.keep)]


def setup(args: argparse.Namespace) -> tuple[ImageFolderSource, list[str], TrainedTaskParams]:
    """The source, its held-out classes and the default trained task on one thread."""
    source = tiny_imagenet(args.data, args.workdir)
    rng = np.random.default_rng(SPLIT_SEED)
    held_out = sorted(rng.permutation(source.classes)[: args.held_out].tolist())
    params = TrainedTaskParams(**base_params("trained_task"))
    one_thread = params.training.model_copy(update={"threads": 1})
    return source, held_out, params.model_copy(update={"training": one_thread})


def subdatasets(args: argparse.Namespace, n_classes: list[int], exclude: list[str]):
    return SubdatasetParams(
        n_classes=n_classes,
        image_sizes=[16],
        train_per_class=args.train_per_class,
        exclude=exclude,
        seed=0,
        workers=1,
        out_dir=str(args.workdir / "subdatasets"),
    )


def target(args: argparse.Namespace, source, held_out: list[str], t: int):
    """Target t: 10 held-out classes (seed t); its search split and final split."""
    pool = ClassSubset(source.root, source.label_file, keep=tuple(held_out))
    sub = subdatasets(args, [10], [])
    return sub, target_splits(pool, sub, SearchTargetParams(n_classes=10, image_size=16, seed=t))


def meta_trained(args, source, held_out, params) -> tuple[dict[str, Any], float, str]:
    """The meta-trained networks, the time it took, and what they depend on (a digest)."""
    sub = subdatasets(args, [10, 20, 30], held_out)
    task_at, pool = meta_task_pool(source, sub, params, seed=0)
    space = params.space.build()
    agent = make_searcher("catch-meta", space, None, seed=12345)
    origin = json_digest([pool, args.meta_epochs, args.meta_search])
    workdir = args.workdir / "meta" / origin
    start = time.perf_counter()
    meta_train(
        space, agent, task_at, args.meta_epochs, args.meta_search, pool=pool, workdir=workdir,
        progress=True,
    )  # fmt: skip
    total = summed_wall_time(workdir, time.perf_counter() - start)
    return agent.network_state(), total, origin


_STATE: dict[str, Any] = {}


def _init(args: argparse.Namespace, state: dict[str, Any], origin: str) -> None:
    torch.set_num_threads(1)
    _STATE.update(args=args, networks=state, origin=origin)


def _search(job: tuple[int, str, int]) -> dict[str, Any]:
    """One search (durable), then its best network's longer training; a compact record."""
    t, method, seed = job
    args, networks = _STATE["args"], _STATE["networks"]
    source, held_out, params = setup(args)
    sub, splits = target(args, source, held_out, t)
    task = trained_task(splits.search, sub, params, seed=0)
    space = task.space
    key: list[Any] = [params.identity(), args.train_per_class]  # what the search depends on
    if method == "adapt":
        adaptation = AdaptationConfig(**base_params("adapt")["adaptation"])
        searcher = adapted(SEARCHERS["catch-meta"], space, None, seed, networks, adaptation)
        key += [adaptation.model_dump(), _STATE["origin"]]
    else:
        searcher = make_searcher(method, space, None, seed)
    run_dir = args.workdir / "searches" / f"target{t}" / f"{method}-{json_digest(list(key))}"
    run_dir = run_dir / f"seed{seed}"
    history = run_search(
        space,
        task,
        searcher,
        args.budget,
        history=History(run_dir / "history.jsonl"),
        checkpoint=run_dir / "searcher.pt",
    )
    best = history.best()
    longer = params.training.model_copy(
        update={"epochs": params.training.epochs * args.long_factor}
    )
    final = trained_task(splits.final, sub, params.model_copy(update={"training": longer}), 0)
    ev = final.evaluate(best["actions"])
    return {
        "target": t,
        "method": method,
        "seed": seed,
        "rewards": history.rewards(),
        "best_arch": best["arch"],
        "best_reward": best["reward"],
        "cost_s": sum(r["cost_s"] for r in history),
        "long_val_acc": ev.metrics["val_acc"],
        "long_reward": ev.reward,
        "latency_ms": ev.metrics.get("latency_ms"),
    }


def p_greater(a: pd.Series, b: pd.Series) -> float:
    return float(stats.mannwhitneyu(a, b, alternative="greater").pvalue)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument("--held-out", type=int, default=50, help="classes kept for targets")
    parser.add_argument("--train-per-class", type=int, default=100)
    parser.add_argument("--meta-epochs", type=int, default=6)
    parser.add_argument("--meta-search", type=int, default=10)
    parser.add_argument("--long-factor", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--workdir", type=Path, default=ROOT / "data/02_intermediate/resblock_transfer"
    )
    add_data_option(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    source, held_out, params = setup(args)
    networks, meta_s, origin = meta_trained(args, source, held_out, params)
    for t in range(args.targets):  # build every target once, before the workers read them
        sub, splits = target(args, source, held_out, t)
        for spec in (splits.search, splits.final):
            trained_task(spec, sub, params, 0)
    jobs = [(t, m, s) for s in range(args.seeds) for t in range(args.targets) for m in args.methods]
    records = []
    with (
        ProcessPoolExecutor(
            args.workers,
            mp.get_context("spawn"),
            initializer=_init,
            initargs=(args, networks, origin),
        ) as pool,
        Progress() as bar,
    ):
        task = bar.add_task("resblock transfer searches", total=len(jobs))
        for fut in as_completed([pool.submit(_search, j) for j in jobs]):
            records.append(fut.result())
            bar.advance(task)
    wall_s = time.perf_counter() - start
    report(args, pd.DataFrame(records), meta_s, wall_s, params)


def report(
    args: argparse.Namespace,
    frame: pd.DataFrame,
    meta_s: float,
    wall_s: float,
    params: TrainedTaskParams,
) -> None:
    frame = frame.sort_values(["method", "target", "seed"], ignore_index=True)
    adapt = frame[frame["method"] == "adapt"]
    rows = []
    for method, group in frame.groupby("method", sort=False):
        row = {
            "method": method,
            "searches": len(group),
            "best reward (search)": f"{group['best_reward'].mean():.2f} ± {group['best_reward'].std():.2f}",
            f"val acc, {args.long_factor}× training": f"{group['long_val_acc'].mean():.2f} ± {group['long_val_acc'].std():.2f}",
            "latency ms": f"{group['latency_ms'].mean():.2f}",
            "search cost (CPU min)": f"{group['cost_s'].mean() / 60:.1f}",
        }
        if method != "adapt" and len(adapt):
            row["p (adapt > method), search"] = p_greater(
                adapt["best_reward"], group["best_reward"]
            )
            row["p (adapt > method), longer"] = p_greater(
                adapt["long_reward"], group["long_reward"]
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method, group in frame.groupby("method", sort=False):
        curves = np.array([np.maximum.accumulate(r) for r in group["rewards"]])
        ax.plot(np.arange(1, curves.shape[1] + 1), curves.mean(0), "o-", label=method, ms=3)
    ax.set_xlabel("evaluations on the target")
    ax.set_ylabel("best reward so far (mean over targets × seeds)")
    ax.set_title("resblock space: held-out Tiny-ImageNet targets")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "resblock_transfer.png", dpi=120)
    md = (
        "## Transfer on the residual-block space (held-out Tiny-ImageNet targets)\n\n"
        + table.to_markdown(index=False, floatfmt=".3g")
        + f"\n\n{args.targets} targets × {args.seeds} seeds × {args.budget} evaluations per "
        f"method; targets: 10 classes each of {args.held_out} held-out classes (split seed "
        f"{SPLIT_SEED}), 16 px, {args.train_per_class} training images per class (80 % train /"
        " 20 % reward for the search; `val/` held out for the longer training). Meta-training: "
        f"{args.meta_epochs} meta-epochs × {args.meta_search} evaluations on 10/20/30-class "
        f"sub-datasets of the other classes, {meta_s / 60:.1f} min (summed over its runs; its first "
        "run shared the CPU with other benchmarks). Reward: the default trained "
        f"task ({params.training.epochs} epochs, target_ms {params.reward.target_ms}, "
        f"w {params.reward.w}). p: one-sided Mann–Whitney, pooled over targets and seeds, on "
        "the best search reward and on the longer training's reward (held-out val/). "
        f"Adapt mode: {base_params('adapt')['adaptation']}. REA's first population is random, so "
        "with a budget below its population size it is random search (same seed, same networks). "
        f"This invocation: {wall_s / 60:.1f} min with {args.workers} workers.\n\n"
        "![curves](resblock_transfer.png)\n"
    )
    payload = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "meta_training_s": meta_s,
        "wall_s": wall_s,
        "summary": table.to_dict("records"),
        "searches": frame.to_dict("records"),
    }
    write_results(args.out, "resblock_transfer", payload, md)
    print(md)


if __name__ == "__main__":
    main()
