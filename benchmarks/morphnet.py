"""Does MorphNet beat uniform width scaling at equal cost? (the MorphNet paper's claim)

A seed backbone of the residual space (``--arch``, small stem, ``--width`` × its channels) on a
Tiny-ImageNet sub-dataset (``--data``, docs/data.md; ``--classes`` classes, 32 px, built by the
``subdatasets`` code). Budget: ``--budget`` × the seed's FLOPs at 32×32. For each seed:

- **morphnet**: shrink from scratch with the FLOPs regulariser, expand to the budget, retrain
  the widths from scratch (``transfernas.morphnet``, conf/base's threshold, ``--strength``);
- **uniform (FLOPs)**: every width of the seed × one factor, the largest within the same budget;
- **uniform (latency)**: the same, the largest whose measured CPU latency (batch 1, 32×32,
  1 thread) stays within the MorphNet net's.

Each is trained ``--epochs`` epochs (same schedule, same seed for data order) and scored on
the held-out images; mean ± std over ``--seeds`` seeds. Durable log (``--workdir``): a rerun
trains only what is missing. Writes ``benchmarks/results/morphnet.{json,md}``.

    .venv/bin/python benchmarks/morphnet.py [--seeds 3 --epochs 8]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from _data import add_data_option, tiny_imagenet
from _nb201 import ROOT, base_params
from _results import write_results
from rich.progress import track
from scipy import stats

from transfernas.data.build import SubdatasetParams
from transfernas.downstream.backbone import backbone_cfg
from transfernas.history import AppendLog
from transfernas.morphnet.resize import BudgetParams, MorphNetParams, build, expand, run_rounds
from transfernas.spaces.resblock import ResArch, ResNetBackbone, Widths
from transfernas.tasks.latency import LatencyConfig, measure_latency, torch_threads
from transfernas.tasks.subdataset import TargetParams, subdataset_data, target_spec
from transfernas.tasks.trained import TrainingConfig, accuracy, count_flops, seed_for, train_model


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="56_1111-2111-1211-121")
    parser.add_argument("--width", type=float, default=0.5, help="channel_scale of the seed")
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--budget", type=float, default=0.5, help="× the seed's FLOPs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--shrink-epochs", type=int, default=8)
    parser.add_argument("--strength", type=float, default=10.0, help="λ for this shrink length")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=ROOT / "data/02_intermediate/morphnet")
    add_data_option(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    return parser.parse_args()


TIMING = LatencyConfig(input_size=(32, 32), warmup=5, repeats=50, threads=1)


def backbone(cfg: dict[str, Any], widths: Widths) -> ResNetBackbone:
    return ResNetBackbone(ResArch.parse(cfg["arch"]), cfg["block"], cfg["stem"], widths=widths)


def mflops(cfg: dict[str, Any], widths: Widths) -> float:
    return count_flops(backbone(cfg, widths), (3, 32, 32), torch.device("cpu")) / 1e6


def latency_ms(cfg: dict[str, Any], widths: Widths) -> float:
    return measure_latency(backbone(cfg, widths), TIMING).median_ms


def cost_of(cfg: dict[str, Any], widths: Widths) -> dict[str, float]:
    return {
        "mflops": mflops(cfg, widths),
        "params_m": sum(p.numel() for p in backbone(cfg, widths).parameters()) / 1e6,
        "latency_ms": latency_ms(cfg, widths),
    }


def main() -> None:
    args = parse_args()
    sub = SubdatasetParams(**base_params("subdatasets")).model_copy(
        update={"out_dir": str(args.workdir / "subdatasets"), "workers": 2}
    )
    spec = target_spec(
        tiny_imagenet(args.data, args.workdir),
        sub,
        TargetParams(n_classes=args.classes, image_size=32),
    )
    train, val = subdataset_data(spec, sub, progress=True)
    cfg = backbone_cfg(args.arch, "basic", "small", args.width, (0, 1, 2, 3))
    seed_widths = ResNetBackbone(
        ResArch.parse(args.arch), "basic", "small", channel_scale=args.width
    ).widths
    budget = BudgetParams(kind="flops", input_size=(32, 32))
    seed_cost = cost_of(cfg, seed_widths)
    target_gflops = args.budget * seed_cost["mflops"] / 1e3
    training = TrainingConfig(
        epochs=args.epochs, batch_size=64, crop_padding=4, threads=args.threads
    )
    morph = MorphNetParams(**base_params("morphnet")).model_copy(
        update={
            "budget": budget.model_copy(update={"value": target_gflops}),
            "init": "scratch",
            "strength": args.strength,
            "shrink": training.model_copy(update={"epochs": args.shrink_epochs}),
            "retrain": training,
        }
    )
    identity = json.loads(
        json.dumps(
            {
                "args": {
                    k: str(v) for k, v in vars(args).items() if k not in ("workdir", "out", "seeds")
                },
                "spec": spec.spec_id,
                "morphnet": morph.model_dump(mode="json"),
            }
        )
    )
    log = AppendLog(args.workdir / "log.jsonl")
    done = {(r["variant"], r["seed"]) for r in log if r["identity"] == identity}
    start = time.perf_counter()

    def train_and_score(variant: str, seed: int, widths: Widths, extra: dict) -> None:
        with torch_threads(args.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_for(seed, variant, "init"))
            model = build(cfg, widths, len(spec.classes))
            t0 = time.perf_counter()
            train_model(
                model, train, training, torch.Generator().manual_seed(seed_for(seed, "data"))
            )
            train_s = time.perf_counter() - t0
            acc = accuracy(model, val, 1024, False)
        row = (
            {
                "identity": identity,
                "variant": variant,
                "seed": seed,
                "val_acc": acc,
                "train_s": train_s,
                "widths": widths.to_dict(),
            }
            | cost_of(cfg, widths)
            | extra
        )
        log.append([row])

    for seed in track(range(args.seeds), description="seeds"):
        params = morph.model_copy(update={"seed": seed})
        result = run_rounds(
            cfg,
            None,
            train,
            val,
            len(spec.classes),
            params,
            args.workdir / f"rounds/{spec.spec_id}/seed{seed}",
        )
        morph_widths = Widths.from_dict(result["widths"])
        if ("morphnet", seed) not in done:
            r0 = result["rounds"][0]
            train_and_score(
                "morphnet",
                seed,
                morph_widths,
                {
                    "factor": r0["factor"],
                    "shrunk": r0["shrunk"],
                    "shrunk_mflops": 1e3 * r0["shrunk_cost"],
                },
            )
        flops_widths, factor, _ = expand(
            lambda w: mflops(cfg, w) / 1e3, seed_widths, target_gflops, 30
        )
        if ("uniform-flops", seed) not in done:
            train_and_score("uniform-flops", seed, flops_widths, {"factor": factor})
        morph_ms = [
            r
            for r in log
            if r["identity"] == identity and r["variant"] == "morphnet" and r["seed"] == seed
        ][-1]["latency_ms"]
        if ("uniform-latency", seed) not in done:
            lat_widths, factor, _ = expand(lambda w: latency_ms(cfg, w), seed_widths, morph_ms, 12)
            train_and_score(
                "uniform-latency", seed, lat_widths, {"factor": factor, "matched_ms": morph_ms}
            )
    wall_s = time.perf_counter() - start
    frame = pd.DataFrame([r for r in log if r["identity"] == identity and r["seed"] < args.seeds])
    frame = frame.drop_duplicates(["variant", "seed"], keep="last")
    summary = (
        frame.groupby("variant", sort=False)
        .agg(
            val_acc_mean=("val_acc", "mean"),
            val_acc_std=("val_acc", "std"),
            seeds=("seed", "count"),
            mflops=("mflops", "mean"),
            params_m=("params_m", "mean"),
            latency_ms=("latency_ms", "mean"),
            factor=("factor", "mean"),
        )
        .reset_index()
    )
    by = {v: part.sort_values("seed")["val_acc"].to_numpy() for v, part in frame.groupby("variant")}
    tests = {
        other: float(stats.mannwhitneyu(by["morphnet"], by[other], alternative="greater").pvalue)
        for other in ("uniform-flops", "uniform-latency")
    }
    table = summary.to_markdown(index=False, floatfmt=".3f")
    wins = {
        o: bool(
            summary.set_index("variant").loc["morphnet", "val_acc_mean"]
            > summary.set_index("variant").loc[o, "val_acc_mean"]
        )
        for o in tests
    }
    md = (
        "## MorphNet vs uniform width scaling at equal cost\n\n" + table + "\n\n"
        f"Seed backbone `{args.arch}` (basic blocks, small stem, width ×{args.width}): "
        f"{seed_cost['mflops']:.1f} MFLOPs, {seed_cost['params_m']:.3f} M parameters, "
        f"{seed_cost['latency_ms']:.2f} ms at 32×32. Budget: {args.budget} × its FLOPs = "
        f"{1e3 * target_gflops:.1f} MFLOPs. Data: {args.classes} Tiny-ImageNet classes at 32 px "
        f"({len(train)} train / {len(val)} held-out images, sub-dataset {spec.spec_id}). Every "
        f"net trained {args.epochs} epochs (SGD Nesterov, lr 0.1 cosine, batch 64, "
        f"{args.threads} threads); MorphNet's shrink {args.shrink_epochs} epochs from scratch, "
        f"strength {morph.strength}, threshold {morph.threshold}. Latency: batch 1, 1 thread, "
        f"median of 50. {args.seeds} seeds.\n\n"
        "One-sided Mann–Whitney p (MorphNet more accurate than): "
        + ", ".join(f"{o} p = {p:.3f}" for o, p in tests.items())
        + ". MorphNet's mean accuracy is "
        + ", ".join(f"{'above' if wins[o] else 'not above'} {o}" for o in tests)
        + f".\n\nThis invocation {wall_s / 60:.1f} min.\n"
    )
    payload = {
        "identity": identity,
        "seed_cost": seed_cost,
        "budget_mflops": 1e3 * target_gflops,
        "summary": summary.to_dict("records"),
        "mann_whitney_p": tests,
        "runs": frame.drop(columns="identity").to_dict("records"),
        "wall_s": wall_s,
    }
    write_results(args.out, "morphnet", payload, md)
    print(md)


if __name__ == "__main__":
    main()
