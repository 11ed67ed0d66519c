"""NAS-FPN on the Tiny-ImageNet detection set: does a searched neck beat FPN here?

The set: ``scripts/make_coco_sample.py --grid 2`` mosaics (real Tiny ImageNet images and
boxes, 0–4 objects per 128-px image) of ``--classes`` classes (0 = all 149), built into
``--data`` when missing. The detector: RetinaNet (``detection`` parameters of conf/base:
32-wide neck, one head conv, 128 px) over a fixed backbone (mmdet's ResNet-18 at
``--width`` base channels, trained from scratch with the neck and head).

1. **Signal check** of the search reward: two backbones of clearly different capacity
   (ResNet-18 at ``--width`` and at ``--width``/4 base channels, both with FPN) after the
   short search schedule (``--search-iters``), ``--seeds`` seeds: mean ± std mAP and Welch's t.
2. **Search** the neck (``transfernas.spaces.nasfpn``, ``--cells`` merge cells) with REA and
   nasnet-rnn (the NAS-FPN controller), ``--budget`` candidates each at the short schedule.
3. **Final**: mmdet's FPN, mmdet's NAS-FPN neck (one stack, as ours), and each searcher's best
   neck trained ``--final-iters`` iterations, ``--seeds`` seeds; mAP mean ± std, latency on
   this CPU (batch 1, 128×128, 1 thread), forward GFLOPs. With equal schedules the FPN rows
   are step 1's (the same training).

Every training is one record of a durable log (``--workdir``/runs.jsonl; searches keep their
own histories): a rerun (or a bigger machine) does only what is missing. Writes
``benchmarks/results/nasfpn.{json,md}``.

    .venv/bin/python benchmarks/nasfpn.py [--classes 20 --seeds 3 --budget 6]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _data import add_data_option
from _nb201 import ROOT
from _results import write_results
from scipy import stats

from transfernas.downstream.detection import DETECTION, SMALL_RESNET, DetectionParams
from transfernas.downstream.runner import LatencySizes, model_latency, train_and_evaluate
from transfernas.downstream.search import DownstreamTask, backbone_channels, gflops
from transfernas.history import AppendLog, History
from transfernas.search import run_search
from transfernas.searchers import make_searcher
from transfernas.spaces.nasfpn import MMDET_NASFPN, NASFPNSpace

SEARCHERS = {"rea": {"population_size": 4, "sample_size": 2}, "nasnet-rnn": None}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=20, help="0 = all 149")
    parser.add_argument("--data", type=Path, default=None, help="default data/01_raw/tiny_coco_<C>")
    add_data_option(parser, "--source")
    parser.add_argument("--width", type=int, default=16, help="ResNet-18 base channels")
    parser.add_argument("--cells", type=int, default=7)
    parser.add_argument("--budget", type=int, default=6, help="candidates per searcher")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--search-iters", type=int, default=600)
    parser.add_argument("--final-iters", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=ROOT / "data/02_intermediate/nasfpn")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    return parser.parse_args()


def dataset(args: argparse.Namespace) -> dict[str, str]:
    root = args.data or ROOT / f"data/01_raw/tiny_coco_{args.classes or 'all'}"
    if not (root / "annotations/instances_val2017.json").exists():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts/make_coco_sample.py"), "--data",
             str(args.source), "--out", str(root), "--classes", str(args.classes),
             "--train", "100", "--val", "50", "--grid", "2"],
            check=True,
        )  # fmt: skip
    return {
        "root": str(root),
        "train_ann": "annotations/instances_train2017.json",
        "train_img": "train2017",
        "val_ann": "annotations/instances_val2017.json",
        "val_img": "val2017",
    }


def detection_params(
    args: argparse.Namespace, iters: int, seed: int, work: Path
) -> DetectionParams:
    schedule = {
        "max_iters": iters,
        "batch_size": args.batch_size,
        "lr": 0.02,
        "warmup_iters": iters // 10,
        "checkpoint_interval": iters,
        "log_interval": 20,
        "seed": seed,
        "resume": False,
    }
    return DetectionParams(
        neck_channels=32,
        stacked_convs=1,
        img_scale=(128, 128),
        score_thr=0.001,
        val_batch_size=16,
        schedule=schedule,
        work_dir=str(work),
        search={
            "space": "nasfpn",
            "nasfpn": {"cells": args.cells},
            "backbone": SMALL_RESNET | {"base_channels": args.width},
            "schedule": schedule,
            "latency_repeats": 10,
        },
    )


def train_one(
    data: dict[str, str], backbone: dict[str, Any], neck: dict[str, Any] | None,
    params: DetectionParams, classes: tuple[str, ...],
) -> dict[str, Any]:  # fmt: skip
    """Train + validate one detector; mAP (percent), latency, GFLOPs, wall time."""
    cfg = DETECTION.build(backbone, backbone_channels(backbone), data, classes, params, neck=neck)
    start = time.perf_counter()
    scores, _, model = train_and_evaluate(cfg)
    (latency,) = model_latency(model, LatencySizes(sizes=((128, 128),), repeats=10, threads=1))
    return {
        "map": 100 * scores.get("coco/bbox_mAP", 0.0),
        "map50": 100 * scores.get("coco/bbox_mAP_50", 0.0),
        "latency_ms": latency.median_ms,
        "gflops": gflops(model, (128, 128)),
        "wall_s": time.perf_counter() - start,
    }


def neck_of(genotype: str) -> dict[str, Any]:
    return {"type": "SearchedNASFPN", "genotype": genotype, "out_channels": 32, "num_outs": 5}


# mmdet's own NAS-FPN neck (its RetinaNet config's, at one stack like ours)
MMDET_NECK = {"type": "NASFPN", "out_channels": 32, "num_outs": 5, "stack_times": 1,
              "start_level": 0, "norm_cfg": {"type": "BN", "requires_grad": True}}  # fmt: skip


def main() -> None:
    args = parse_args()
    data = dataset(args)
    args.workdir.mkdir(parents=True, exist_ok=True)
    log = AppendLog(args.workdir / "runs.jsonl")
    done = {(r["phase"], r["name"], r["seed"]): r for r in log}
    classes = DETECTION.prepare(data)[0]
    backbone = SMALL_RESNET | {"base_channels": args.width}
    start = time.perf_counter()

    def record(phase: str, name: str, seed: int, iters: int, bb: dict, neck: dict | None) -> dict:
        if (phase, name, seed) not in done:
            params = detection_params(args, iters, seed, args.workdir / "work" / phase / name)
            row = {"phase": phase, "name": name, "seed": seed, "iters": iters, "neck": neck}
            row |= train_one(data, bb, neck, params, classes)
            log.append([row])
            done[(phase, name, seed)] = row
            print(json.dumps(row), flush=True)
        return done[(phase, name, seed)]

    # 1. signal check of the short schedule's reward
    weak = backbone | {"base_channels": max(4, args.width // 4)}
    strong = f"resnet18_w{args.width}"
    for seed in range(args.seeds):
        record("signal", strong, seed, args.search_iters, backbone, None)
        record("signal", f"resnet18_w{weak['base_channels']}", seed, args.search_iters, weak, None)
    # 2. search the neck, equal budget per searcher
    best = {}
    for name, config in SEARCHERS.items():
        params = detection_params(args, args.search_iters, 0, args.workdir / "work" / name)
        task = DownstreamTask(DETECTION, NASFPNSpace(args.cells), data, params)
        history = History(args.workdir / f"search_{name}.jsonl")
        searcher = make_searcher(name, task.space, config, 0)
        history = run_search(task.space, task, searcher, args.budget, history=history,
                             checkpoint=args.workdir / f"search_{name}.pt", progress=True)  # fmt: skip
        best[name] = history.best()["arch"]
    # 3. final training of FPN, mmdet's NAS-FPN and the searched necks
    necks = {"fpn": None, "mmdet-nasfpn": MMDET_NECK}
    necks |= {f"searched-{n}": neck_of(g) for n, g in best.items()}
    for seed in range(args.seeds):
        for name, neck in necks.items():
            if name == "fpn" and args.final_iters == args.search_iters:  # trained in step 1
                done[("final", name, seed)] = record(
                    "signal", strong, seed, args.search_iters, backbone, None
                )
            else:
                record("final", name, seed, args.final_iters, backbone, neck)
    write(args, done, best, time.perf_counter() - start)


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    maps = np.array([r["map"] for r in rows])
    return {
        "map_mean": float(maps.mean()),
        "map_std": float(maps.std(ddof=1)) if len(maps) > 1 else 0.0,
        "maps": maps.tolist(),
        "latency_ms": float(np.median([r["latency_ms"] for r in rows])),
        "gflops": rows[0]["gflops"],
    }


def write(args: argparse.Namespace, done: dict, best: dict[str, str], wall_s: float) -> None:
    groups: dict[tuple[str, str], list[dict]] = {}
    for (phase, name, _), row in sorted(done.items()):
        groups.setdefault((phase, name), []).append(row)
    table = {f"{p}/{n}": summary(rows) for (p, n), rows in groups.items()}
    signal = [v for k, v in table.items() if k.startswith("signal/")]
    welch = stats.ttest_ind(signal[0]["maps"], signal[1]["maps"], equal_var=False)
    searches = {}
    for name in best:
        history = History(args.workdir / f"search_{name}.jsonl")
        searches[name] = {
            "best": best[name],
            "rewards": history.rewards(),
            "candidates": [
                {"neck": r["arch"], "map": r["reward"], "latency_ms": r["metrics"]["latency_ms"],
                 "gflops": r["metrics"]["gflops"]} for r in history
            ],
        }  # fmt: skip
    out = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "signal_welch_t": float(welch.statistic),
        "signal_welch_p": float(welch.pvalue),
        "table": table,
        "searches": searches,
        "mmdet_nasfpn_genotype": MMDET_NASFPN,
        "wall_s": wall_s,
    }
    lines = [
        "# NAS-FPN on the Tiny-ImageNet detection set",
        "",
        f"`benchmarks/nasfpn.py`, {args.classes or 149} classes (2×2 mosaics), RetinaNet 128 px, "
        f"ResNet-18 ×{args.width} base channels, search {args.search_iters} it, final "
        f"{args.final_iters} it, batch {args.batch_size}, {args.seeds} seeds; "
        f"wall time of this invocation {wall_s / 60:.1f} min.",
        "",
        "| run | mAP (mean ± std) | per seed | latency ms (1 thread) | GFLOPs |",
        "|---|---|---|---|---|",
    ]
    for key, v in table.items():
        per = ", ".join(f"{m:.2f}" for m in v["maps"])
        lines.append(
            f"| {key} | {v['map_mean']:.2f} ± {v['map_std']:.2f} | {per} | "
            f"{v['latency_ms']:.1f} | {v['gflops']:.3f} |"
        )
    lines += [
        "",
        f"Signal check (short schedule): Welch t = {welch.statistic:.2f}, p = {welch.pvalue:.3g}.",
        "",
    ]
    for name, s in searches.items():
        lines.append(f"- {name}: best `{s['best']}`; rewards {[round(r, 2) for r in s['rewards']]}")
    write_results(args.out, "nasfpn", out, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
