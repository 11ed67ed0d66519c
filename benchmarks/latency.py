"""Latency measurement stability: coefficient of variation of repeated measurements.

For each network and input size, ``--measurements`` independent calls of
``transfernas.tasks.latency.measure_latency`` (warm-up 5, 30 timed repeats, batch 1, 1 thread
by default — the trained task's settings). Reported: the CV of the repeats within one call
(median over calls) and the CV of the calls' medians (how much a reported latency moves if
measured again). The target on this machine is CV < 3 %. With CUDA, the same on the GPU.
Writes ``benchmarks/results/latency.{json,md}``.

    .venv/bin/python benchmarks/latency.py [--measurements 10 --threads 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from _results import write_results

from transfernas.spaces import NB201Space, ResBlockSpace
from transfernas.tasks.latency import LatencyConfig, measure_latency

ROOT = Path(__file__).resolve().parents[1]
CASES = [
    # (label, space, arch, input (H, W))
    (
        "NB201 cell (C=16, N=5), best cifar10 cell",
        NB201Space(),
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        (32, 32),
    ),
    (
        "NB201 cell (C=16, N=5), pooling cell",
        NB201Space(),
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
        (32, 32),
    ),
    (
        "resblock, channel_scale 0.25, small stem",
        ResBlockSpace("basic", "small", 0.25),
        "56_1111-12-2111-11112",
        (32, 32),
    ),
    (
        "resblock, paper widths, ImageNet stem",
        ResBlockSpace("basic", "imagenet", 1.0),
        "64_111-2111-1211-121111111",
        (224, 224),
    ),
]


def run(device: str, measurements: int, threads: int) -> list[dict]:
    rows = []
    for label, space, arch, size in CASES:
        torch.manual_seed(0)
        net = space.build(space.encode(arch), 1000)
        config = LatencyConfig(input_size=size, threads=threads, device=device)
        results = [measure_latency(net, config) for _ in range(measurements)]
        medians = np.array([r.median_ms for r in results])
        rows.append(
            {
                "device": results[0].device,
                "network": label,
                "arch": arch,
                "input": "x".join(map(str, results[0].input_shape)),
                "threads": threads,
                "median_ms": float(np.median(medians)),
                "cv_within": float(np.median([r.cv for r in results])),
                "cv_between": float(medians.std(ddof=1) / medians.mean()),
                "measurements": measurements,
                "repeats": config.repeats,
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    rows = run("cpu", args.measurements, args.threads)
    if torch.cuda.is_available():
        rows += run("cuda", args.measurements, args.threads)
    lines = [
        "# Latency measurement stability",
        "",
        f"Each row: {args.measurements} independent `measure_latency` calls (warm-up 5, 30 timed repeats, "
        "batch 1). *CV within*: std/mean of one call's repeats (median over calls); "
        "*CV between*: std/mean of the calls' medians.",
        "",
        "| device | network | input | threads | median (ms) | CV within | CV between |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['device']} | {r['network']} | {r['input']} | {r['threads']} | {r['median_ms']:.2f} "
        f"| {r['cv_within']:.1%} | {r['cv_between']:.1%} |"
        for r in rows
    ]
    write_results(args.out, "latency", {"rows": rows}, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
