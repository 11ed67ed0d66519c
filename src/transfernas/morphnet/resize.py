"""MorphNet (Gordon et al., CVPR 2018): fit a residual backbone to a FLOPs, size or latency budget.

One round: **shrink** — train the network with the resource-weighted sparsity regulariser on
its BatchNorm scales (``regularizer.py``) and remove the channels whose scale fell under the
threshold (``graph.py``); **expand** — multiply every width of the shrunk network by one
shared factor, the largest whose cost stays within the budget (bisection). Rounds repeat on
the expanded widths; the final widths are trained from scratch (``retrain``) and exported.

The shrink checkpoints every epoch (a ``kill -9`` resumes it); each finished round is
recorded in ``round<k>.json`` and not redone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from transfernas.history import AppendLog
from transfernas.morphnet.graph import prune, resnet_graph, zero_dead
from transfernas.morphnet.regularizer import CostKind, layer_costs, network_cost, regularizer
from transfernas.spaces.resblock import Classifier, ResArch, ResNetBackbone, Widths
from transfernas.tasks.latency import LatencyConfig, measure_latency, torch_threads
from transfernas.tasks.subdataset import TargetParams
from transfernas.tasks.trained import (
    ImageData,
    TrainingConfig,
    accuracy,
    count_flops,
    seed_for,
    train_model,
    use_channels_last,
)

UNITS = {"flops": "GFLOPs", "params": "M parameters", "latency": "ms"}


class BudgetParams(BaseModel):
    """What the resized backbone must fit: its cost on one image of ``input_size``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: CostKind = Field("flops", description="flops | params | latency")
    value: float | None = Field(
        None, gt=0, description="GFLOPs, M parameters or ms; null = the seed backbone's own cost"
    )
    input_size: tuple[int, int] = Field((224, 224), description="(H, W) for FLOPs and latency")
    latency: LatencyConfig = Field(
        default_factory=lambda: LatencyConfig(warmup=2, repeats=10),
        description="how latency is timed (its input_size is replaced by the budget's)",
    )
    tolerance: float = Field(
        0.02, gt=0, lt=1, description="the expanded net's cost lies in [(1 − tol)·value, value]"
    )


class MorphNetParams(BaseModel):
    """``morphnet``: the budget, the regulariser, the schedules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: BudgetParams = Field(default_factory=BudgetParams)
    strength: float = Field(
        50.0, gt=0, description="λ of the regulariser, which is divided by the seed net's cost"
    )
    threshold: float = Field(0.01, gt=0, description="|γ| under which a channel is removed")
    iterations: int = Field(1, ge=1, le=10, description="shrink → expand rounds")
    init: Literal["pretrained", "scratch"] = Field(
        "pretrained", description="round 1 shrinks the exported weights, or a fresh init"
    )
    data: TargetParams = Field(
        default_factory=lambda: TargetParams(n_classes=None, image_size=64),
        description="the sub-dataset the shrink and retrain train on",
    )
    shrink: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=4))
    retrain: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=4))
    expand_steps: int = Field(
        30, ge=4, le=60, description="bisection steps of the width factor (latency: each timed)"
    )
    seed: int = Field(0, ge=0)
    workdir: str = "data/06_models/morphnet"


def backbone_cost(backbone: ResNetBackbone, budget: BudgetParams) -> float:
    """The backbone's cost in the budget's unit (GFLOPs, M parameters, ms)."""
    if budget.kind == "params":
        return sum(p.numel() for p in backbone.parameters()) / 1e6
    if budget.kind == "flops":
        return count_flops(backbone, (3, *budget.input_size), torch.device("cpu")) / 1e9
    config = budget.latency.model_copy(update={"input_size": budget.input_size})
    return measure_latency(backbone, config).median_ms


def expand(
    cost: Callable[[Widths], float], widths: Widths, budget: float, steps: int
) -> tuple[Widths, float, float]:
    """The largest shared factor f with cost(widths × f) ≤ budget: (widths, f, cost).

    Bracket f by doubling or halving from 1, then bisect in log space ``steps`` times. Cost
    grows with f (wider layers cost more), so the bisection keeps the last f that fits.
    """
    lo, hi = 1.0, 1.0
    if cost(widths) <= budget:
        while cost(widths.scaled(hi * 2)) <= budget and hi < 1024:
            hi *= 2
        lo, hi = hi, hi * 2
    else:
        while cost(widths.scaled(lo / 2)) > budget and lo > 1 / 1024:
            lo /= 2
        lo, hi = lo / 2, lo
    best, best_cost = widths.scaled(lo), cost(widths.scaled(lo))
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        scaled = widths.scaled(mid)
        c = cost(scaled)
        if c <= budget:
            lo, best, best_cost = mid, scaled, c
        else:
            hi = mid
    return best, lo, best_cost


def build(cfg: dict[str, Any], widths: Widths, num_classes: int) -> Classifier:
    backbone = ResNetBackbone(
        ResArch.parse(cfg["arch"]), cfg["block"], cfg["stem"], None, widths=widths
    )
    return Classifier(backbone, widths.groups[-1], num_classes)


def shrink(
    model: Classifier,
    train: ImageData,
    params: MorphNetParams,
    generator: torch.Generator,
    workdir: Path,
) -> tuple[Classifier, list[dict[str, Any]]]:
    """Train with the regulariser (checkpointed per epoch), drop the dead channels.

    The penalty is ``strength`` × F / (the seed net's own regulariser cost), so λ does not
    depend on the cost's unit or the net's size. Returns the pruned net and the per-epoch log
    (loss, accuracy, the cost the alive channels would have, as a fraction of the seed's).
    """
    budget = params.budget
    graph = resnet_graph(model)
    costs = layer_costs(graph, model, budget.kind, budget.input_size, budget.latency)
    full = network_cost(graph, costs, graph.alive(-1.0))  # every channel: scores are ≥ 0
    scale = params.strength / full

    def penalty() -> torch.Tensor:
        return scale * regularizer(graph, costs, graph.alive(params.threshold))

    log = AppendLog(workdir / "shrink.jsonl")

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        fraction = network_cost(graph, costs, graph.alive(params.threshold)) / full
        log.append([{"epoch": epoch, **metrics, "cost_fraction": fraction}])

    train_model(model, train, params.shrink, generator, penalty, workdir / "shrink.pt", on_epoch)
    masks = graph.alive(params.threshold)
    zero_dead(graph, masks)
    epochs = {r["epoch"]: r for r in log}  # a kill between log and checkpoint repeats one
    return prune(model, masks), [epochs[e] for e in sorted(epochs)]


def run_rounds(
    cfg: dict[str, Any],
    seed_weights: dict[str, torch.Tensor] | None,
    train: ImageData,
    val: ImageData,
    num_classes: int,
    params: MorphNetParams,
    workdir: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Every shrink → expand round; each one's result is durable in ``round<k>.json``."""
    budget = params.budget
    arch = cfg["arch"]
    seed_net = ResNetBackbone(
        ResArch.parse(arch),
        cfg["block"],
        cfg["stem"],
        None,
        cfg["channel_scale"],
        widths=Widths.from_dict(cfg["widths"]) if "widths" in cfg else None,
    )
    widths = seed_net.widths
    seed_cost = backbone_cost(seed_net, budget)
    target = budget.value if budget.value is not None else seed_cost

    def cost(w: Widths) -> float:
        net = ResNetBackbone(ResArch.parse(arch), cfg["block"], cfg["stem"], None, widths=w)
        return backbone_cost(net, budget)

    rounds = []
    device = torch.device(params.shrink.device)
    for k in range(params.iterations):
        record_path = workdir / f"round{k}.json"
        if record_path.exists():
            record = json.loads(record_path.read_text())
        else:
            progress(f"round {k + 1}/{params.iterations}: shrink")
            round_dir = workdir / f"round{k}"
            round_dir.mkdir(parents=True, exist_ok=True)
            with torch_threads(params.shrink.threads), torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed_for(params.seed, arch, "morphnet", k))
                model = build(cfg, widths, num_classes)
                if k == 0 and params.init == "pretrained" and seed_weights is not None:
                    state = {n.removeprefix("net."): t for n, t in seed_weights.items()}
                    model.backbone.load_state_dict(state)
                model.to(device)
                generator = torch.Generator().manual_seed(
                    seed_for(params.seed, arch, "morphnet-data", k)
                )
                small, curve = shrink(model, train.to(device), params, generator, round_dir)
                shrunk_acc = accuracy(
                    small,
                    val.to(device),
                    params.shrink.eval_batch_size,
                    use_channels_last(params.shrink, device),
                )
            shrunk = small.backbone.widths
            progress(
                f"round {k + 1}/{params.iterations}: expand to {target:.4g} {UNITS[budget.kind]}"
            )
            expanded, factor, final_cost = expand(cost, shrunk, target, params.expand_steps)
            record = {
                "round": k,
                "start": widths.to_dict(),
                "shrunk": shrunk.to_dict(),
                "shrunk_cost": cost(shrunk),
                "shrunk_val_acc": shrunk_acc,
                "factor": factor,
                "expanded": expanded.to_dict(),
                "expanded_cost": final_cost,
                "shrink_curve": curve,
            }
            record_path.write_text(json.dumps(record, indent=2))
        rounds.append(record)
        widths = Widths.from_dict(record["expanded"])
    final_cost = rounds[-1]["expanded_cost"]
    return {
        "budget": budget.model_dump(mode="json") | {"value": target, "unit": UNITS[budget.kind]},
        "seed_widths": seed_net.widths.to_dict(),
        "seed_cost": seed_cost,
        "final_cost": final_cost,
        "within_tolerance": (1 - budget.tolerance) * target <= final_cost <= target,
        "widths": rounds[-1]["expanded"],
        "rounds": rounds,
    }
