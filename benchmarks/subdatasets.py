"""Decode + resize throughput: our sub-dataset path vs a plain PIL baseline, same JPEGs, one run.

Inputs: the 200 full-size ImageNet JPEGs of ``imagenet-fullres-sample/`` (``--data``, docs/data.md), listed
``--repeat`` times (≥ 2,000 decodes). Baseline: ``PIL.Image.open(p).convert('RGB').resize((s, s))``
in one process. Ours: the builder's chunk decoder (DCT-domain ``draft`` + antialiased resize),
in one process and in ``--workers`` processes (pool start-up included). Files are read once
before timing so both sides read from the page cache.
Writes ``benchmarks/results/subdatasets.{json,md}``.

    .venv/bin/python benchmarks/subdatasets.py [--repeat 10 --workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _data import FULLRES, add_data_option
from _results import write_results
from PIL import Image

from transfernas.data.decode import decode_chunk
from transfernas.data.external import need

ROOT = Path(__file__).resolve().parents[1]


def baseline(paths: list[str], size: int) -> int:
    for p in paths:
        np.asarray(Image.open(p).convert("RGB").resize((size, size)))
    return len(paths)


def ours(paths: list[str], size: int, pool: ProcessPoolExecutor | None, chunk: int = 64) -> int:
    """The builder's decode path: chunks of files through ``decode_chunk``, here or in ``pool``."""
    jobs = [(paths[i : i + chunk], size, "squash") for i in range(0, len(paths), chunk)]
    return sum(len(block) for block, _, _ in (pool.map if pool else map)(decode_chunk, jobs))


def ours_with_startup(paths: list[str], size: int, workers: int) -> int:
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        return ours(paths, size, pool)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    n = fn(*args)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 224])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    add_data_option(parser)
    args = parser.parse_args()

    images = need(args.data / FULLRES, "the full-size ImageNet sample")
    files = sorted(str(p) for p in images.glob("*.JPEG"))
    for f in files:
        Path(f).read_bytes()  # warm the page cache for both sides
    paths = files * args.repeat
    rows = []
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as warm_pool:
        warm_pool.map(decode_chunk, [(files[:2], 16, "squash")] * args.workers)  # start workers
        for size in args.sizes:
            base = timed(baseline, paths, size)
            one = timed(ours, paths, size, None)
            cold = timed(ours_with_startup, paths, size, args.workers)
            warm = timed(ours, paths, size, warm_pool)
            rows.append(
                {
                    "size": size,
                    "decodes": len(paths),
                    "baseline_img_s": round(base, 1),
                    "ours_1proc_img_s": round(one, 1),
                    "ours_cold_img_s": round(cold, 1),
                    "ours_img_s": round(warm, 1),
                    "workers": args.workers,
                    "speedup_1proc": round(one / base, 2),
                    "speedup_cold": round(cold / base, 2),
                    "speedup": round(warm / base, 2),
                }
            )
        print(rows[-1], flush=True)

    lines = [
        "## Sub-dataset decode + resize throughput",
        "",
        f"{len(paths)} decodes per size ({len(files)} full-size ImageNet JPEGs, median ~414 px, × {args.repeat}); "
        f"Pillow {Image.__version__}.",
        "Baseline: `Image.open(p).convert('RGB').resize((s, s))`, one process. Ours: DCT-domain `draft` "
        f"+ bicubic resize (the builder's `decode_chunk`), in one process, and in {args.workers} worker processes "
        "counting the pool's start-up (cold, a one-off small build) or with workers already running "
        "(warm: a large build, where start-up is amortised over thousands of chunks).",
        "",
        f"| size | baseline img/s | ours, 1 process | ours, {args.workers} proc. cold | ours, {args.workers} proc. warm | speed-up 1 proc | speed-up cold | speed-up warm |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['baseline_img_s']} | {r['ours_1proc_img_s']} | {r['ours_cold_img_s']} | {r['ours_img_s']} | "
            f"{r['speedup_1proc']}× | {r['speedup_cold']}× | **{r['speedup']}×** |"
        )
    payload = {"inputs": f"{len(files)} full-size ImageNet JPEGs × {args.repeat}", "rows": rows}
    write_results(args.out, "subdatasets", payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
