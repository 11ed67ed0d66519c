"""Does the default trained reward rank residual-block networks? (no table exists for them)

A seeded sample of architectures of the default space (``trained_task.space`` of conf/base, or
the registry defaults of ``--space NAME``, e.g. ``nasnet``) is
trained on the default adaptation target — the embedded ImageNet sample (every class, 16 px,
built by the ``subdatasets`` code) — twice: with the default schedule
(``trained_task.training``) and with a 4× longer one (same settings, 4× the epochs). Spearman ρ
between the two validation accuracies says how much the default reward ranks like a longer
training; the zero-cost proxies of the same networks (on one batch of the same data) are
scored against the long training too. Durable log (``--workdir``); a rerun adds only what is
missing. Writes ``benchmarks/results/<space>_fidelity.{json,md}``.

    .venv/bin/python benchmarks/resblock_fidelity.py [--archs 30 --source data/01_raw/imagenet_sample]
    .venv/bin/python benchmarks/resblock_fidelity.py --space nasnet --archs 20
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

import numpy as np
import pandas as pd
import torch
from _nb201 import ROOT, base_params
from _results import write_results
from rich.progress import Progress
from scipy import stats

from transfernas.data.build import SubdatasetParams
from transfernas.data.sources import ImageFolderSource
from transfernas.history import AppendLog
from transfernas.spaces import CLASSIFIER_SPACES, space_params
from transfernas.tasks.subdataset import (
    TargetParams,
    TrainedTaskParams,
    target_spec,
    trained_task,
    zero_cost_task,
)
from transfernas.tasks.trained import RewardConfig
from transfernas.tasks.zero_cost import PROXIES, feature

SAMPLE_SEED = 20261203  # fixed before any result
DEFAULT_SOURCE = str(ROOT / "data/01_raw/imagenet_sample")
_TASKS: dict[str, Any] = {}


def source_fingerprint(root: str) -> str:
    """sha256 of every image's path and bytes: the log's key for the data (a rebuilt or moved
    sample with the same images reuses the log; an enlarged one does not)."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*.JPEG")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def defaults(space: str | None) -> tuple[TrainedTaskParams, SubdatasetParams]:
    """conf/base's trained task as measured: 1 thread per network (workers run side by side),
    no latency term (the reward is the accuracy), and the subdatasets settings; ``space``:
    that registered space with its defaults instead of conf/base's."""
    params = TrainedTaskParams(**base_params("trained_task"))
    one_thread = params.training.model_copy(update={"threads": 1})
    update: dict[str, Any] = {"reward": RewardConfig(measure_latency=False), "training": one_thread}
    if space is not None:
        update["space"] = space_params({"name": space}, CLASSIFIER_SPACES)
    return params.model_copy(update=update), SubdatasetParams(**base_params("subdatasets"))


def make_tasks(source: str, workdir: str, space: str | None) -> dict[str, Any]:
    """short (default schedule), long (4× the epochs), zc (every zero-cost proxy)."""
    params, sub = defaults(space)
    sub = sub.model_copy(update={"out_dir": str(Path(workdir) / "subdatasets"), "workers": 1})
    spec = target_spec(ImageFolderSource(Path(source)), sub, TargetParams(image_size=16))
    short = params
    longer = params.training.model_copy(update={"epochs": 4 * params.training.epochs})
    zc = params.zero_cost.model_copy(update={"weights": dict.fromkeys(PROXIES, 1.0)})
    return {
        "short": trained_task(spec, sub, short, 0),
        "long": trained_task(spec, sub, short.model_copy(update={"training": longer}), 0),
        "zc": zero_cost_task(spec, sub, params.model_copy(update={"zero_cost": zc}), 0),
    }


def _init(source: str, workdir: str, space: str | None) -> None:
    torch.set_num_threads(1)
    _TASKS.update(make_tasks(source, workdir, space))


def _run(job: tuple[str, int, list[int]]) -> dict[str, Any]:
    kind, i, actions = job
    task = _TASKS[kind]
    if kind == "zc":
        t0 = time.perf_counter()
        scores = task.scores(actions, PROXIES)
        return {"kind": kind, "arch": i, "seconds": time.perf_counter() - t0} | scores
    ev = task.evaluate(actions)
    return {"kind": kind, "arch": i, "val_acc": ev.reward, "seconds": ev.cost_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--workdir", type=Path, default=ROOT / "data/02_intermediate/resblock_fidelity"
    )
    parser.add_argument("--space", choices=list(CLASSIFIER_SPACES), default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    params, _ = defaults(args.space)
    space = params.space.build()
    rng = np.random.default_rng(SAMPLE_SEED)
    archs = [list(space.sample(rng)) for _ in range(args.archs)]
    # JSON round trip: the log holds lists where model_dump gives tuples
    identity = json.loads(
        json.dumps({"source": source_fingerprint(args.source), "trained_task": params.model_dump()})
    )
    log = AppendLog(args.workdir / "log.jsonl")
    done = {(r["kind"], r["arch"]) for r in log if r["identity"] == identity}
    jobs = [
        (kind, i, a)
        for kind in ("zc", "short", "long")
        for i, a in enumerate(archs)
        if (kind, i) not in done
    ]
    start = time.perf_counter()
    if jobs:
        init = (args.source, str(args.workdir), args.space)
        _init(*init)  # builds the sub-dataset once
        ctx = mp.get_context("spawn")
        with (
            ProcessPoolExecutor(args.workers, ctx, initializer=_init, initargs=init) as pool,
            Progress() as bar,
        ):
            job = bar.add_task(f"{space.name} fidelity", total=len(jobs))
            for fut in as_completed([pool.submit(_run, j) for j in jobs]):
                log.append([{"identity": identity} | fut.result()])
                bar.advance(job)
    wall_s = time.perf_counter() - start
    frame = pd.DataFrame(
        [r for r in log if r["identity"] == identity and r["arch"] < args.archs]
    ).drop_duplicates(["kind", "arch"], keep="last")  # one record per network
    by = {k: part.set_index("arch").sort_index() for k, part in frame.groupby("kind")}
    long_acc = by["long"]["val_acc"]
    rows = [
        {
            "proxy": f"default training ({params.training.epochs} epochs)",
            "spearman": stats.spearmanr(by["short"]["val_acc"], long_acc).statistic,
            "kendall": stats.kendalltau(by["short"]["val_acc"], long_acc).statistic,
            "median_s": by["short"]["seconds"].median(),
        }
    ]
    for proxy in PROXIES:
        score = by["zc"][proxy].map(lambda v, p=proxy: feature(p, v))
        rows.append(
            {
                "proxy": f"zero-cost {proxy}",
                "spearman": stats.spearmanr(score, long_acc).statistic,
                "kendall": stats.kendalltau(score, long_acc).statistic,
                "median_s": by["zc"]["seconds"].median() / len(PROXIES),
            }
        )
    table = pd.DataFrame(rows)
    md = (
        f"## {space.name} space: default reward vs a 4× longer training\n\n"
        + table.to_markdown(index=False, floatfmt=".3f")
        + f"\n\n{args.archs} architectures of the space {params.space.model_dump()}, "
        f"sampled with seed {SAMPLE_SEED}, trained on every class of `{Path(args.source).name}` "
        f"at 16 px: {params.training.epochs} epochs (the default reward's schedule) vs "
        f"{4 * params.training.epochs} epochs (reference); ρ/τ against the reference's "
        "validation accuracy. Long training: median "
        f"{by['long']['seconds'].median():.1f} s per network, reference accuracy "
        f"{long_acc.min():.1f}–{long_acc.max():.1f} % (short: "
        f"{by['short']['val_acc'].min():.1f}–{by['short']['val_acc'].max():.1f} %). "
        "Zero-cost seconds: the six proxies' total / 6. 1 thread per network, "
        f"{args.workers} at once; this invocation {wall_s / 60:.1f} min.\n"
    )
    payload = {
        "identity": identity,
        "sample_seed": SAMPLE_SEED,
        "results": table.to_dict("records"),
        "per_arch": frame.drop(columns="identity").to_dict("records"),
        "wall_s": wall_s,
    }
    write_results(args.out, f"{space.name}_fidelity", payload, md)
    print(md)


if __name__ == "__main__":
    main()
