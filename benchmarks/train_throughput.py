"""Training throughput: our in-memory batched input path vs a naive torchvision pipeline.

Same data (a real 16 px / 32 px sub-dataset of the embedded ImageNet sample, repeated to
``--images``), same networks, same optimiser, one process run. Baseline: a torchvision-style
``Dataset`` over PIL images with per-sample ``RandomCrop(padding) → RandomHorizontalFlip →
ToTensor → Normalize`` and a ``DataLoader`` (batch 256, shuffle; the faster of 0 and 2 workers
is reported). Ours: ``transfernas.tasks.trained`` — one uint8 tensor, crop+flip as one gather,
one normalisation (channels_last on CUDA; it measured slower for these nets on CPU). Reported: images/s of the input path alone and of whole
training steps (input + forward + backward + SGD) per network, and the ratios. With CUDA, both
also run on the GPU and the GPU-busy share of wall time (CUDA events / wall) is reported.
Writes ``benchmarks/results/train_throughput.{json,md}``.

    .venv/bin/python benchmarks/train_throughput.py [--images 4096 --steps 6]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from _results import write_results
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from transfernas.data.build import SamplingConfig, build_subdataset, load_subdataset, make_spec
from transfernas.data.sources import ImageFolderSource
from transfernas.spaces import NB201Space, ResBlockSpace
from transfernas.tasks.trained import MEAN, STD, augment_batch, to_input

ROOT = Path(__file__).resolve().parents[1]
BATCH = 256
INPUT_BATCHES = 40  # batches timed for the input path alone
NETWORKS = {
    # name: (builder, what it is)
    "nb201-C4N1": (lambda: NB201Space(4, 1), "NB201 cell net, C=4 N=1 (test-size proxy)"),
    "nb201-C8N1": (lambda: NB201Space(8, 1), "NB201 cell net, C=8 N=1 (nb201_transfer proxy)"),
    "resblock-0.25": (
        lambda: ResBlockSpace("basic", "small", 0.25),
        "resblock 15 blocks, channel_scale 0.25 (default trained_task)",
    ),
    "nb201-C16N5": (lambda: NB201Space(16, 5), "NB201 cell net, C=16 N=5 (NB201's own)"),
}
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
RESBLOCK_ARCH = "56_1111-12-2111-11112"


class PILDataset(Dataset):
    """What a torchvision user writes: PIL images, per-sample transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, size: int):
        self.images = [Image.fromarray(a) for a in images]
        self.labels = labels.tolist()
        self.transform = T.Compose(
            [
                T.RandomCrop(size, padding=2),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize([m / 255 for m in MEAN], [s / 255 for s in STD]),
            ]
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


def sub_dataset(size: int, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """A real 40-class sub-dataset of the embedded sample, tiled to ``n_images``."""
    source = ImageFolderSource(ROOT / "data/01_raw/imagenet_sample")
    config = SamplingConfig(n_classes=[40], image_sizes=[size], workers=1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_subdataset(make_spec(source, config, 0), tmp, workers=1, progress=False)
        images, labels = (np.array(a) for a in load_subdataset(folder))
    reps = -(-n_images // len(images))
    return np.tile(images, (reps, 1, 1, 1))[:n_images], np.tile(labels, reps)[:n_images]


def make_net(name: str, device: torch.device) -> torch.nn.Module:
    space = NETWORKS[name][0]()
    arch = NB201_ARCH if isinstance(space, NB201Space) else RESBLOCK_ARCH
    torch.manual_seed(0)
    return space.build(space.encode(arch), 40).to(device)


def sgd(net: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )


def step(net, opt, x, y) -> None:
    loss = F.cross_entropy(net(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def naive_batches(images, labels, size, workers, device):
    loader = DataLoader(
        PILDataset(images, labels, size),
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        multiprocessing_context=mp.get_context("fork") if workers else None,
        pin_memory=device.type == "cuda",
    )
    while True:
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def our_batches(images, labels, device, channels_last=False):
    data = torch.from_numpy(images).to(device)
    target = torch.from_numpy(labels.astype(np.int64)).to(device)
    g = torch.Generator().manual_seed(0)
    while True:
        order = torch.randperm(len(data), generator=g).to(device)
        for s in range(0, len(data) - BATCH + 1, BATCH):
            idx = order[s : s + BATCH]
            yield to_input(augment_batch(data[idx], 2, True, g), channels_last), target[idx]


def throughput(batches, n_batches: int, net=None, opt=None, warmup: int = 2) -> tuple[float, float]:
    """Images/s over ``n_batches`` (after ``warmup``), and the GPU-busy share of wall time."""
    cuda = net is not None and next(net.parameters()).is_cuda
    for _ in range(warmup):
        x, y = next(batches)
        if net is not None:
            step(net, opt, x, y)
    if cuda:
        torch.cuda.synchronize()
    busy = 0.0
    start = time.perf_counter()
    for _ in range(n_batches):
        x, y = next(batches)
        if net is not None:
            if cuda:
                begin, end = (
                    torch.cuda.Event(enable_timing=True),
                    torch.cuda.Event(enable_timing=True),
                )
                begin.record()
            step(net, opt, x, y)
            if cuda:
                end.record()
                end.synchronize()
                busy += begin.elapsed_time(end) / 1e3
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    return n_batches * BATCH / wall, busy / wall if cuda else float("nan")


def run(device: torch.device, sizes, images_n: int, steps: dict[str, int]) -> list[dict]:
    rows = []
    for size in sizes:
        images, labels = sub_dataset(size, images_n)
        naive = {}
        for workers in (0, 2):
            naive[workers], _ = throughput(
                naive_batches(images, labels, size, workers, device), INPUT_BATCHES
            )
        best_workers = max(naive, key=naive.get)
        ours, _ = throughput(our_batches(images, labels, device), INPUT_BATCHES)
        rows.append(
            {
                "device": device.type,
                "size": size,
                "network": "input path only",
                "naive_img_s": naive[best_workers],
                "naive_workers": best_workers,
                "ours_img_s": ours,
                "ratio": ours / naive[best_workers],
            }
        )
        print(rows[-1], flush=True)
        for name in NETWORKS:
            n = steps[name] if device.type == "cpu" else 20
            net = make_net(name, device)
            fixed = next(our_batches(images, labels, device))
            compute, _ = throughput(itertools.repeat(fixed), n, net, sgd(net))
            net = make_net(name, device)
            base, base_busy = throughput(
                naive_batches(images, labels, size, best_workers, device), n, net, sgd(net)
            )
            last = device.type == "cuda"  # the task's default: channels_last on CUDA only
            net = make_net(name, device).to(
                memory_format=torch.channels_last if last else torch.contiguous_format
            )
            fast, fast_busy = throughput(
                our_batches(images, labels, device, last), n, net, sgd(net)
            )
            rows.append(
                {
                    "device": device.type,
                    "size": size,
                    "network": name,
                    "naive_img_s": base,
                    "naive_workers": best_workers,
                    "ours_img_s": fast,
                    "ratio": fast / base,
                    "network_only_img_s": compute,
                    "bound": compute / base,
                    "naive_gpu_busy": base_busy,
                    "ours_gpu_busy": fast_busy,
                }
            )
            print(rows[-1], flush=True)
    return rows


def markdown(rows: list[dict], args) -> str:
    lines = [
        "# Training throughput: in-memory batched input path vs torchvision DataLoader",
        "",
        f"{torch.get_num_threads()} threads. Batch {BATCH}, {args.images} images per size (a "
        "real 40-class sub-dataset of the embedded sample, tiled).",
        "",
        "| device | px | network | naive img/s | ours img/s | ratio | network alone img/s "
        "| best possible ratio | GPU busy naive / ours |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        busy = ""
        if r.get("naive_gpu_busy") == r.get("naive_gpu_busy") and "naive_gpu_busy" in r:
            busy = f"{r['naive_gpu_busy']:.0%} / {r['ours_gpu_busy']:.0%}"
        alone = f"{r['network_only_img_s']:,.0f} | {r['bound']:.2f}×" if "bound" in r else "— | —"
        lines.append(
            f"| {r['device']} | {r['size']} | {r['network']} | {r['naive_img_s']:,.0f} "
            f"(workers={r['naive_workers']}) | {r['ours_img_s']:,.0f} | {r['ratio']:.2f}× "
            f"| {alone} | {busy} |"
        )
    inputs = {r["size"]: r["ratio"] for r in rows if "bound" not in r and r["device"] == "cpu"}
    steps = [r["ratio"] for r in rows if "bound" in r and r["device"] == "cpu"]
    bounds = [r["bound"] for r in rows if "bound" in r and r["device"] == "cpu"]
    lines += [
        "",
        "*network alone*: the same training steps on one fixed, ready batch (no input path at "
        "all); *best possible ratio* = network alone / naive — the most any input path could "
        "reach. On the CPU the input path alone is "
        + ", ".join(f"{v:.1f}× ({k} px)" for k, v in inputs.items())
        + f" faster; whole training steps {min(steps):.2f}–{max(steps):.2f}× "
        f"(best possible {min(bounds):.2f}–{max(bounds):.2f}×): forward + backward of the "
        "network, the same on both sides, takes most of a naive step's time on this CPU.",
        "",
        "Networks:",
    ] + [f"- `{k}`: {v[1]}" for k, v in NETWORKS.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    steps = {"nb201-C4N1": 12, "nb201-C8N1": 8, "resblock-0.25": 6, "nb201-C16N5": 2}
    rows = run(torch.device("cpu"), args.sizes, args.images, steps)
    if torch.cuda.is_available():
        rows += run(torch.device("cuda"), args.sizes, args.images, steps)
    md = markdown(rows, args)
    payload = {"batch": BATCH, "images": args.images, "rows": rows}
    write_results(args.out, "train_throughput", payload, md)
    print(md)


if __name__ == "__main__":
    main()
