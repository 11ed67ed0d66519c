"""The payoff: the searched network against what a user would otherwise pick, at equal latency.

On the adaptation target, with one identical schedule (``compare.training``) and the same
seeds, each of these is trained on the target's training images and scored on its held-out
split, which no search evaluation read (``tasks.subdataset.target_splits``):

- ``searched``: the ``adapt`` stage's best architecture;
- ``random_search``: the best of a random search with as many evaluations as ``adapt`` made, on
  the same reward (the simplest search the meta-learned one has to beat);
- torchvision's ``resnet18`` / ``mobilenet_v3_small``, width-scaled until their measured latency
  equals the searched network's (``baselines.match_width``).

Reported per model: top-1 mean ± 95 % CI (Student t) over seeds, one-sided Mann–Whitney p of
"searched is better", latency (median and IQR of interleaved timings), FLOPs and parameters.
Every (model, seed) training is checkpointed per epoch and resumed after a kill; a finished one
is read back, never trained again; matched widths are recorded and reused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from rich.progress import Progress
from scipy import stats
from torch import nn

from transfernas.baselines import BASELINES, Baseline, MatchParams, build_baseline, match_width
from transfernas.digest import json_digest
from transfernas.environment import device_name
from transfernas.history import AppendLog
from transfernas.searchers import SearcherConfig
from transfernas.spaces.base import SearchSpace
from transfernas.spaces.resblock import Stem
from transfernas.stages import StageInputs, TargetSearchParams, run_target_search
from transfernas.tasks.latency import LatencyConfig, measure_latency, torch_threads
from transfernas.tasks.subdataset import subdataset_data, target_splits, task_name
from transfernas.tasks.trained import (
    ImageData,
    TrainingConfig,
    accuracy,
    count_flops,
    seed_for,
    train_model,
    use_channels_last,
)

log = logging.getLogger(__name__)

SEARCHED, RANDOM = "searched", "random_search"


def _distinct(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError(f"values must be distinct, got {values}")
    return values


# seeds of a comparison: each one training per model, so two equal ones would count one twice
Seeds = Annotated[list[int], Field(min_length=2), AfterValidator(_distinct)]


class CompareParams(BaseModel):
    """``compare`` block of ``conf/base/parameters_compare.yml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seeds: Seeds = Field(
        default_factory=lambda: [0, 1, 2],
        description="one training per model and seed (≥ 4 for a Mann–Whitney p < 0.05)",
    )
    training: TrainingConfig = Field(
        default_factory=TrainingConfig, description="the one schedule every model gets"
    )
    baselines: Annotated[list[Baseline], AfterValidator(_distinct)] = Field(
        default_factory=lambda: list(BASELINES),
        description=f"torchvision networks, latency-matched: {', '.join(BASELINES)}",
    )
    widths: dict[Baseline, float] = Field(
        default_factory=dict, description="a fixed width multiplier instead of matching"
    )
    random_search: bool = Field(True, description="add random search's best at adapt.budget")
    match: MatchParams = Field(default_factory=MatchParams)
    workdir: str | None = Field(
        "data/07_model_output/compare", description="durable trainings; reruns resume"
    )

    @field_validator("widths")
    @classmethod
    def _positive(cls, widths: dict[str, float]) -> dict[str, float]:
        if any(w <= 0 for w in widths.values()):
            raise ValueError(f"width multipliers must be > 0, got {widths}")
        return widths


@dataclass(frozen=True)
class Entrant:
    """One compared model: ``build(num_classes)`` makes it; ``identity`` is what it is (its
    trainings' folder and initialisation follow from it), ``what`` says it to a person."""

    name: str
    label: str
    what: str
    identity: dict[str, Any]
    build: Callable[[int], nn.Module]


@dataclass(frozen=True)
class TargetData:
    """The target's training images (the search's two splits) and its held-out split."""

    name: str
    train: ImageData
    heldout: ImageData
    num_classes: int


def train_entrant(
    entrant: Entrant, seed: int, data: TargetData, config: TrainingConfig, folder: Path | None
) -> dict[str, Any]:
    """Train one (model, seed) with the common schedule; held-out accuracy every epoch.

    With ``folder``: per-epoch checkpoint and curve there, resumed after a kill; a finished
    training's result (a durable one-record log) is returned as is.
    """
    done = AppendLog(folder / "result.jsonl" if folder is not None else None)
    if len(done):
        return done[0]
    if folder is not None:  # the checkpoint is written there
        folder.mkdir(parents=True, exist_ok=True)
    curve = AppendLog(folder / "curve.jsonl" if folder is not None else None)
    device = torch.device(config.device)
    channels_last = use_channels_last(config, device)
    with torch_threads(config.threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(seed, data.name, entrant.identity, "init"))
        model = entrant.build(data.num_classes)
        # the same data order and augmentation for every model of one seed: paired trainings
        generator = torch.Generator().manual_seed(seed_for(seed, data.name, "data"))
        train, heldout = data.train.to(device), data.heldout.to(device)

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            acc = accuracy(model, heldout, config.eval_batch_size, channels_last)
            model.train()
            curve.append([{"epoch": epoch, **metrics, "heldout_acc": acc}])

        checkpoint = folder / "checkpoint.pt" if folder is not None else None
        fit = train_model(model, train, config, generator, checkpoint=checkpoint, on_epoch=on_epoch)
        acc = accuracy(model, heldout, config.eval_batch_size, channels_last)
        flops = count_flops(model, (3, *train.images.shape[1:3]), device)
    epochs = {r["epoch"]: r for r in curve}  # an epoch killed before its checkpoint ran twice
    result = {
        "seed": seed,
        "heldout_acc": acc,
        **fit,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "mflops": flops / 1e6,
        "curve": [epochs[e] for e in sorted(epochs)],
    }
    done.append([result])
    return result


def interleaved_latency(
    models: dict[str, nn.Module], config: LatencyConfig, rounds: int
) -> dict[str, dict[str, float]]:
    """Each model timed ``rounds`` times in turn (host drift hits all alike): median and IQR
    of the rounds' medians."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(measure_latency(model, config).median_ms)
    out = {}
    for name, values in times.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        out[name] = {"latency_ms": float(median), "latency_iqr_ms": float(q3 - q1)}
    return out


def _timing(
    entrants: list[Entrant],
    num_classes: int,
    latency: LatencyConfig,
    rounds: int,
    run_dir: Path | None,
) -> dict[str, dict[str, float]]:
    """:func:`interleaved_latency` of the entrants, durable in ``run_dir/timing.jsonl`` keyed
    by the entrants, the latency settings and the device: a rerun reads it back."""
    key = json_digest(
        [
            [e.identity for e in entrants],
            num_classes,
            rounds,
            latency.model_dump(),
            device_name(torch.device(latency.device)),
        ]
    )
    log = AppendLog(run_dir / "timing.jsonl" if run_dir is not None else None)
    found = next((r["timing"] for r in log if r["key"] == key), None)
    if found is not None:
        return found
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        models = {e.name: e.build(num_classes) for e in entrants}
    timing = interleaved_latency(models, latency, rounds)
    log.append([{"key": key, "timing": timing}])
    return timing


def summary_row(accs: list[float]) -> dict[str, float]:
    """Mean and the 95 % confidence half-width (Student t over seeds)."""
    a = np.asarray(accs, dtype=float)
    half = float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)))
    return {"mean": float(a.mean()), "ci95": half, "std": float(a.std(ddof=1))}


def better_p(ours: list[float], other: list[float]) -> float:
    """One-sided Mann–Whitney p of "ours is better than other" (exact for small samples)."""
    return float(stats.mannwhitneyu(ours, other, alternative="greater").pvalue)


def compare(
    entrants: list[Entrant],
    data: TargetData,
    params: CompareParams,
    latency: LatencyConfig,
    run_dir: Path | None,
) -> dict[str, Any]:
    """Train every entrant on every seed, time them, and rank them on the held-out split."""
    trained: dict[str, list[dict[str, Any]]] = {}
    jobs = [(e, s) for e in entrants for s in params.seeds]
    with Progress(transient=True) as bar:
        task = bar.add_task("compare: trainings", total=len(jobs))
        for entrant, seed in jobs:
            folder = None
            if run_dir is not None:
                folder = (
                    run_dir / f"{entrant.name}-{json_digest([entrant.identity])}" / f"seed{seed}"
                )
            result = train_entrant(entrant, seed, data, params.training, folder)
            trained.setdefault(entrant.name, []).append(result)
            bar.advance(task)
    timing = _timing(entrants, data.num_classes, latency, params.match.rounds, run_dir)
    searched = [r["heldout_acc"] for r in trained[SEARCHED]]
    rows = []
    for e in entrants:
        accs = [r["heldout_acc"] for r in trained[e.name]]
        rows.append(
            {
                "model": e.name,
                "label": e.label,
                "what": e.what,
                **{k: v for k, v in e.identity.items() if k in ("arch", "width")},
                "top1": summary_row(accs),
                "p_searched_better": None if e.name == SEARCHED else better_p(searched, accs),
                **timing[e.name],
                "latency_ratio": timing[e.name]["latency_ms"] / timing[SEARCHED]["latency_ms"],
                "mflops": trained[e.name][0]["mflops"],
                "params_m": trained[e.name][0]["params_m"],
                "seeds": trained[e.name],
            }
        )
    winner = max(rows, key=lambda r: r["top1"]["mean"])
    runner_up = max((r for r in rows if r["model"] != SEARCHED), key=lambda r: r["top1"]["mean"])
    return {
        "target": data.name,
        "train_images": len(data.train),
        "heldout_images": len(data.heldout),
        "num_classes": data.num_classes,
        "seeds": params.seeds,
        "training": params.training.model_dump(),
        "latency": latency.model_dump()
        | {"device_name": device_name(torch.device(latency.device))},
        "models": rows,
        "winner": winner["model"],
        "searched_margin": rows[0]["top1"]["mean"] - runner_up["top1"]["mean"],  # rows[0]: ours
        "best_other": runner_up["model"],
    }


def equal_latency(results: dict[str, Any]) -> dict[str, Any] | None:
    """The most accurate baseline whose width matched the searched network's latency: the
    equal-cost comparison; None when none matched (or widths were fixed by the user)."""
    matched = [r for r in results["models"] if r.get("latency_match", {}).get("matched", False)]
    return max(matched, key=lambda r: r["top1"]["mean"]) if matched else None


def winner_line(results: dict[str, Any]) -> str:
    """The stage's verdict in one line: the most accurate model (and how fast it is), and the
    searched network against the best baseline of its latency."""
    rows = {r["model"]: r for r in results["models"]}
    ours, win = rows[SEARCHED], rows[results["winner"]]
    line = (
        f"compare on {results['target']} ({len(results['seeds'])} seeds): winner {win['label']} "
        f"{win['top1']['mean']:.2f} % at {win['latency_ratio']:.2f} × the searched latency"
    )
    other = equal_latency(results)
    if other is None:
        return line + f"; searched {ours['top1']['mean']:.2f} %, no baseline matched its latency"
    return line + (
        f"; at equal latency searched {ours['top1']['mean']:.2f} % vs {other['label']} "
        f"{other['top1']['mean']:.2f} % ({ours['top1']['mean'] - other['top1']['mean']:+.2f} "
        f"points, one-sided Mann–Whitney p = {other['p_searched_better']:.3g})"
    )


def markdown(results: dict[str, Any]) -> str:
    """The results table, one row per model."""
    lines = [
        f"# Searched vs latency-matched baselines on {results['target']}",
        "",
        f"{results['num_classes']} classes, {results['train_images']} training images, "
        f"{results['heldout_images']} held-out images (never read by a search); "
        f"{results['training']['epochs']} epochs, seeds {results['seeds']}; latency: batch "
        f"{results['latency']['batch_size']}, {results['latency']['input_size']} px, "
        f"{results['latency']['threads']} thread(s), {results['latency']['device_name']}.",
        "",
        "| model | what | top-1 % (mean ± 95 % CI) | p (searched better) | latency ms (IQR) "
        "| × searched | MFLOPs | params (M) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["models"]:
        p = "—" if r["p_searched_better"] is None else f"{r['p_searched_better']:.3g}"
        unmatched = not r.get("latency_match", {}).get("matched", True)
        lines.append(
            f"| {r['label']} | {r['what']} "
            f"| {r['top1']['mean']:.2f} ± {r['top1']['ci95']:.2f} | {p} "
            f"| {r['latency_ms']:.2f} ({r['latency_iqr_ms']:.2f}) | {r['latency_ratio']:.2f}"
            f"{' (no width matches)' if unmatched else ''} "
            f"| {r['mflops']:.1f} | {r['params_m']:.3f} |"
        )
    lines += ["", winner_line(results), ""]
    return "\n".join(lines)


def _architecture(
    name: str, label: str, found: dict[str, Any], space: SearchSpace, space_id: dict[str, Any]
) -> Entrant:
    """A searched architecture (``found``: its ``arch`` and ``actions``) as an entrant."""
    actions = tuple(found["actions"])
    return Entrant(
        name,
        label,
        found["arch"],
        {"arch": found["arch"], "space": space_id},
        lambda num_classes: space.build(actions, num_classes),
    )


def _matched_width(
    name: Baseline,
    reference: Entrant,
    num_classes: int,
    stem: Stem,
    latency: LatencyConfig,
    params: CompareParams,
    cache: AppendLog,
) -> dict[str, Any]:
    """The fixed width (``compare.widths``), the match recorded for this reference, latency
    setting and device, or a new match (then recorded)."""
    if name in params.widths:
        return {"width": params.widths[name], "fixed": True}
    key = json_digest(
        [
            name,
            reference.identity,
            num_classes,
            stem,
            latency.model_dump(),
            device_name(torch.device(latency.device)),
            params.match.model_dump(),
        ]
    )
    for record in cache:
        if record["key"] == key:
            return record["match"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = reference.build(num_classes)
    match = match_width(
        lambda w: build_baseline(name, w, num_classes, stem), model, latency, params.match
    )
    log.info(
        "compare: %s at width × %.3f runs at %.3f × the searched network's latency%s",
        name,
        match["width"],
        match["ratio"],
        "" if match["matched"] else " (NOT within the tolerance)",
    )
    cache.append([{"key": key, "match": match}])
    return match


def run_comparison(
    params: CompareParams,
    adapt: TargetSearchParams,
    best: dict[str, Any],
    random_config: SearcherConfig,
    inputs: StageInputs,
) -> dict[str, Any]:
    """The ``compare`` stage on ``adapt``'s target: entrants built, trained, ranked."""
    if adapt.task not in ("subdataset", "zero_cost"):
        raise ValueError(
            "compare trains classifiers on adapt's target: adapt.task must be subdataset or "
            f"zero_cost, got {adapt.task!r}"
        )
    space = inputs.trained_task.space.build()
    if best.get("space") != space.name:
        raise ValueError(
            f"adapt_best holds a {best.get('space')!r} architecture and trained_task.space is "
            f"{space.name!r}: rerun adapt"
        )
    splits = target_splits(inputs.image_source(), inputs.subdatasets, adapt.target)
    if best.get("task") != task_name(splits.search):
        raise ValueError(
            f"adapt_best was searched on {best.get('task')}, adapt.target now gives "
            f"{task_name(splits.search)}: rerun adapt with these parameters"
        )
    train, heldout = subdataset_data(splits.final, inputs.subdatasets, progress=True)
    data = TargetData(task_name(splits.final), train, heldout, len(splits.final.classes))
    space_id = inputs.trained_task.space.model_dump()
    run_dir = None
    if params.workdir is not None:
        run_dir = Path(params.workdir) / json_digest(
            [splits.final.sample_id, space_id, params.training.model_dump()]
        )
    entrants = [_architecture(SEARCHED, "searched (adapt)", best, space, space_id)]
    random_best = None
    if params.random_search:
        search = adapt.model_copy(  # as many evaluations as adapt made, whatever its budget now
            update={
                "searcher": "random",
                "budget": int(best["evaluations"]),
                "workdir": str(run_dir / "random_search") if run_dir is not None else None,
            }
        )
        history, _ = run_target_search(search, random_config, inputs)
        found = history.best()
        random_best = {k: found[k] for k in ("arch", "reward", "step")}
        random_best["evaluations"] = len(history)
        entrants.append(_architecture(RANDOM, "random search", found, space, space_id))
    stem: Stem = getattr(space, "stem", "small")
    latency = inputs.trained_task.latency
    cache = AppendLog(run_dir / "widths.jsonl" if run_dir is not None else None)
    matches = {}
    for name in params.baselines:
        matches[name] = _matched_width(
            name, entrants[0], data.num_classes, stem, latency, params, cache
        )
        width = float(matches[name]["width"])
        entrants.append(
            Entrant(
                name,
                f"{name} ×{width:.3f}",
                f"torchvision {name}, width × {width:.3f}",
                {"baseline": name, "width": width, "stem": stem},
                lambda k, name=name, width=width: build_baseline(name, width, k, stem),
            )
        )
    results = compare(entrants, data, params, latency, run_dir)
    results["searched"] = {k: best.get(k) for k in ("searcher", "task", "arch", "reward")}
    results["random_search"] = random_best
    for row in results["models"]:
        if row["model"] in matches:
            row["latency_match"] = matches[row["model"]]
    other = equal_latency(results)
    if other is not None:
        results["equal_latency"] = {
            "baseline": other["model"],
            "searched_margin": results["models"][0]["top1"]["mean"] - other["top1"]["mean"],
            "p_searched_better": other["p_searched_better"],
        }
    log.info(winner_line(results))
    return results
