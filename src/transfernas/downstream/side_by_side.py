"""Downstream, side by side: the searched backbone and the latency-matched ResNet-18 in the same
detector (or segmenter), with the same schedule, on several seeds.

The searched backbone is the exported architecture (``backbone_card``: TransferNASResNet);
the baseline is mmdet's / mmseg's own ``ResNet`` (depth 18) with base channels
64 × the width ``compare`` matched to the searched network's latency (or a fixed width).
Both start from random weights here — the exported weights come from a pretraining the baseline
did not get, and the comparison is of architectures. Each (backbone, seed) training keeps its
mmengine checkpoints in its own work dir (a rerun resumes it) and its result in a durable log
(a finished one is read back, never trained again). Reported: score mean ± 95 % CI over seeds,
one-sided Mann–Whitney p of "searched is better", latency at the kind's sizes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from transfernas.compare import Seeds, better_p, summary_row
from transfernas.digest import json_digest
from transfernas.downstream.kind import DownstreamKind
from transfernas.downstream.runner import (
    DownstreamParams,
    latency_metrics,
    model_latency,
    train_and_evaluate,
)
from transfernas.downstream.search import backbone_channels
from transfernas.history import AppendLog

log = logging.getLogger(__name__)

RESNET18 = {
    "type": "ResNet",
    "depth": 18,
    "num_stages": 4,
    "frozen_stages": -1,
    "norm_cfg": {"type": "BN", "requires_grad": True},
    "norm_eval": False,
    "style": "pytorch",
}


class SideBySideParams(BaseModel):
    """``detection_compare`` / ``segmentation_compare``: seeds and the baseline's width."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seeds: Seeds = Field(default_factory=lambda: [0, 1, 2])
    resnet18_width: float | None = Field(
        None, gt=0, description="null = the width compare matched to the searched latency"
    )
    work_dir: str = Field(..., description="per (backbone, seed) Runner work dirs and results")


def resnet18_width(compare_results: dict[str, Any] | None, config: SideBySideParams) -> float:
    """The fixed width, else the one ``compare`` matched (its results' ``resnet18`` row)."""
    if config.resnet18_width is not None:
        return config.resnet18_width
    rows = {r["model"]: r for r in (compare_results or {}).get("models", [])}
    if "resnet18" not in rows:
        raise ValueError(
            "resnet18_width is null and compare_results has no resnet18 row: run compare with "
            "resnet18 among compare.baselines, or set resnet18_width"
        )
    return float(rows["resnet18"]["width"])


def side_by_side(
    kind: DownstreamKind,
    data: dict[str, str],
    params: DownstreamParams,
    card: dict[str, Any],
    width: float,
    config: SideBySideParams,
) -> dict[str, Any]:
    """Train both backbones in ``kind``'s model on every seed; the ranked results."""
    prepared, summary = kind.prepare(data)  # bad data stop the run before anything is trained
    searched = {k: v for k, v in card["backbone"].items() if k != "init_cfg"}
    baseline = RESNET18 | {"base_channels": max(1, round(64 * width))}
    backbones = {
        "searched": (searched, list(card["stage_channels"]), card["arch"]),
        "resnet18": (baseline, backbone_channels(baseline), f"mmlab ResNet-18 × {width:.3f}"),
    }
    done = AppendLog(Path(config.work_dir) / "runs.jsonl")
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in backbones}
    for seed in config.seeds:
        for name, (backbone, channels, _) in backbones.items():
            schedule = params.schedule.model_copy(update={"seed": seed})
            settings = params.model_dump(exclude={"schedule", "work_dir", "latency", "search"})
            # what training uses
            key = json_digest([backbone, schedule.model_dump(), data, settings])
            record = next((r for r in done if r["key"] == key), None)
            if record is None:
                work_dir = Path(config.work_dir) / name / key
                run = params.model_copy(update={"schedule": schedule, "work_dir": str(work_dir)})
                cfg = kind.build(backbone, channels, data, prepared, run)
                start = time.perf_counter()
                scores, _, model = train_and_evaluate(cfg)
                wall_s = time.perf_counter() - start
                latency = latency_metrics(model_latency(model, params.latency))
                score = kind.scale * scores[kind.score]
                record = {"key": key, "seed": seed, "score": score, "latency": latency}
                record["train_wall_s"] = wall_s
                done.append([record])
            rows[name].append(record)
    ours = [r["score"] for r in rows["searched"]]
    models = [
        {
            "backbone": name,
            "what": what,
            "channels": channels,
            "score": summary_row([r["score"] for r in rows[name]]),
            "per_seed": [r["score"] for r in rows[name]],
            "latency": rows[name][0]["latency"],
            "p_searched_better": None
            if name == "searched"
            else better_p(ours, [r["score"] for r in rows[name]]),
        }
        for name, (_, channels, what) in backbones.items()
    ]
    margin = models[0]["score"]["mean"] - models[1]["score"]["mean"]
    log.info(
        "%s side by side: searched %.2f vs ResNet-18 × %.3f %.2f (%+.2f points, p = %.3g)",
        kind.name,
        models[0]["score"]["mean"],
        width,
        models[1]["score"]["mean"],
        margin,
        models[1]["p_searched_better"],
    )
    return {
        "train_wall_s": sum(r.get("train_wall_s", 0.0) for rs in rows.values() for r in rs),
        "task": kind.name,
        "score": kind.score,
        "seeds": config.seeds,
        "resnet18_width": width,
        "iterations": params.schedule.max_iters,
        "models": models,
        "searched_margin": margin,
        "data": summary,
    }


def markdown(results: dict[str, Any]) -> str:
    score = results["score"].split("/")[-1]
    lines = [
        f"# {results['task']}: searched backbone vs latency-matched ResNet-18",
        "",
        f"Both from random weights, {results['iterations']} iterations, seeds "
        f"{results['seeds']}; {score} in %.",
        "",
        f"| backbone | what | {score} (mean ± 95 % CI) | per seed | p (searched better) "
        "| latency (batch 1) |",
        "|---|---|---|---|---|---|",
    ]
    for m in results["models"]:
        p = "—" if m["p_searched_better"] is None else f"{m['p_searched_better']:.3g}"
        latency = ", ".join(
            f"{k.removeprefix('latency_').removesuffix('_ms')}: {v:.1f} ms "
            f"(IQR {m['latency'][k.removesuffix('_ms') + '_iqr_ms']:.1f})"
            for k, v in m["latency"].items()
            if k.endswith("_ms") and not k.endswith("_iqr_ms")
        )
        per_seed = ", ".join(f"{s:.2f}" for s in m["per_seed"])
        lines.append(
            f"| {m['backbone']} | {m['what']} | {m['score']['mean']:.2f} ± "
            f"{m['score']['ci95']:.2f} | {per_seed} | {p} | {latency} |"
        )
    return "\n".join(lines) + "\n"
