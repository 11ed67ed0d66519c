"""The MorphNet-resized backbone, retrained from scratch and exported like ``export_backbone``'s:
same registry class (``TransferNASResNet`` with ``widths``), config snippet and model card, the
card extended with the budget, the cost before and after, and the widths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from transfernas.downstream.backbone import backbone_cfg
from transfernas.export.backbone import ExportParams, card_markdown, pretrain
from transfernas.morphnet.resize import MorphNetParams, run_rounds
from transfernas.spaces.resblock import Widths
from transfernas.tasks.trained import ImageData


def resized_backbone(
    seed_card: dict[str, Any],
    seed_weights: dict[str, torch.Tensor] | None,
    train: ImageData,
    val: ImageData,
    num_classes: int,
    params: MorphNetParams,
    workdir: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """MorphNet's rounds on the exported backbone of ``seed_card``, then the final widths
    retrained (checkpointed) on the same data; the weights (keys ``net.…``) and the card."""
    cfg = seed_card["backbone"]
    result = run_rounds(cfg, seed_weights, train, val, num_classes, params, workdir, progress)
    resized = backbone_cfg(
        cfg["arch"],
        cfg["block"],
        cfg["stem"],
        cfg["channel_scale"],
        tuple(cfg["out_indices"]),
        Widths.from_dict(result["widths"]),
    )
    export = ExportParams(
        arch=cfg["arch"],
        training=params.retrain,
        latency=params.budget.latency.model_copy(update={"input_size": params.budget.input_size}),
        seed=params.seed,
    )
    progress("retrain the resized backbone")
    state, card = pretrain(
        cfg["arch"], resized, train, val, num_classes, export, workdir / "retrain.pt"
    )
    seed_summary = {k: seed_card.get(k) for k in ("params_m", "latency", "widths", "pretrain")}
    seed_summary |= {k: v for k, v in seed_card.items() if k.startswith("gflops_")}
    card["morphnet"] = result | {"seed": seed_summary}
    return state, card


def morphnet_markdown(card: dict[str, Any]) -> str:
    """``export_backbone``'s card page plus what MorphNet did."""
    m = card["morphnet"]
    unit = m["budget"]["unit"]
    rows = [
        (
            "budget",
            f"{m['budget']['kind']} ≤ {m['budget']['value']:.4g} {unit} "
            f"at {m['budget']['input_size'][0]}×{m['budget']['input_size'][1]}",
        ),
        ("seed backbone", f"{m['seed_cost']:.4g} {unit}"),
        *(
            (
                f"round {r['round'] + 1}",
                f"shrunk to {r['shrunk_cost']:.4g} {unit} (val. acc. {r['shrunk_val_acc']:.1f} % "
                f"before retraining), expanded ×{r['factor']:.3f} to {r['expanded_cost']:.4g}",
            )
            for r in m["rounds"]
        ),
        (
            "resized backbone",
            f"{m['final_cost']:.4g} {unit}"
            + ("" if m["within_tolerance"] else " (outside the budget's tolerance)"),
        ),
        ("residual-group widths", f"{m['seed_widths']['groups']} → {m['widths']['groups']}"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return card_markdown(card) + f"\n## MorphNet\n\n| | |\n|---|---|\n{table}\n"
