"""Downstream, side by side: end_to_end's searched backbone and its latency-matched ResNet-18 in
the same RetinaNet on the Tiny-ImageNet mosaic detection set, several seeds.

Reads ``benchmarks/results/end_to_end.json`` (the searched architecture and the ResNet-18 width
``compare`` matched to its latency), builds the mosaic set with ``scripts/make_coco_sample.py
--grid 2`` (``--classes`` classes, 100 train / 50 val images each, as benchmarks/nasfpn.py) and
runs ``transfernas.downstream.side_by_side`` — the core of ``kedro run --pipeline
detection_compare`` — with the detector of benchmarks/nasfpn.py (32-wide FPN, one head conv,
128 px, ``--iters`` iterations at batch 16). Both backbones start from random weights. Durable:
a rerun trains only what is missing. Writes ``benchmarks/results/detection_side_by_side.{json,md}``.

    .venv/bin/python benchmarks/detection_side_by_side.py [--classes 20 --seeds 3 --iters 600]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _data import add_data_option
from _nb201 import ROOT, base_params
from _results import write_results
from nasfpn import dataset

from transfernas.downstream import KINDS
from transfernas.downstream.backbone import backbone_cfg
from transfernas.downstream.detection import DetectionParams
from transfernas.downstream.search import backbone_channels
from transfernas.downstream.side_by_side import SideBySideParams, markdown, side_by_side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=20, help="0 = all 149")
    parser.add_argument("--data", type=Path, default=None, help="default data/01_raw/tiny_coco_<C>")
    add_data_option(parser, "--source")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=600)
    parser.add_argument("--workdir", type=Path, default=ROOT / "data/06_models/side_by_side")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    end_to_end = json.loads((args.out / "end_to_end.json").read_text())
    arch = end_to_end["adapt_best"]["arch"]
    width = next(r["width"] for r in end_to_end["results"]["models"] if r["model"] == "resnet18")
    space = base_params("trained_task")["space"]
    backbone = backbone_cfg(arch, space["block"], "imagenet", space["channel_scale"], (0, 1, 2, 3))
    card = {"arch": arch, "backbone": backbone, "stage_channels": backbone_channels(backbone)}
    iters = args.iters
    params = DetectionParams(
        neck_channels=32,
        stacked_convs=1,
        img_scale=(128, 128),
        score_thr=0.001,
        val_batch_size=16,
        schedule={
            "max_iters": iters,
            "batch_size": 16,
            "lr": 0.02,
            "warmup_iters": iters // 10,
            "checkpoint_interval": max(1, iters // 4),
            "log_interval": 20,
        },
        latency={"sizes": [[128, 128]], "repeats": 10, "threads": 1},
        work_dir=str(args.workdir),
    )
    config = SideBySideParams(seeds=list(range(args.seeds)), work_dir=str(args.workdir))
    start = time.perf_counter()
    results = side_by_side(KINDS["detection"], dataset(args), params, card, width, config)
    wall = time.perf_counter() - start
    md = markdown(results) + (
        f"\nSearched: `{arch}` (end_to_end's adapt); ResNet-18 base channels "
        f"{round(64 * width)} (width × {width:.3f}, matched by `compare` on classification "
        f"latency). RetinaNet, 32-wide FPN, 1 head conv, 128 px, {iters} iterations at batch 16, "
        f"Tiny-ImageNet 2×2 mosaics of {args.classes or 149} classes. Latency: whole detector, "
        f"batch 1, 1 thread. Training and validation wall time {results['train_wall_s'] / 60:.1f} "
        f"min in all (this invocation: {wall / 60:.1f} min).\n"
    )
    write_results(args.out, "detection_side_by_side", {"wall_s": wall, "results": results}, md)
    print(md)


if __name__ == "__main__":
    main()
