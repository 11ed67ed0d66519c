"""Figures a person would rather look at than read: CATCH Fig-3 sorted trials, best-so-far curves.

Every axis says which NB201 training schedule its accuracy comes from: the 12-epoch
validation accuracy is the search reward, the 200-epoch test accuracy is report-only.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are files and MLflow artifacts, never windows

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from transfernas.spaces.resblock import ResArch, Widths, block_layout

REWARD_LABEL = "best 12-epoch validation acc. (%)"


def _axes(n: int) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
    return fig, axes[0]


def sorted_trials_figure(best: pd.DataFrame, optimum: dict[str, float], budget: int) -> Figure:
    """CATCH Fig. 3: each trial's final best reward, trials sorted, one line per method."""
    datasets = list(dict.fromkeys(best["dataset"]))
    fig, axes = _axes(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        sub = best[best["dataset"] == dataset]
        for method, grp in sub.groupby("method", sort=False):
            values = np.sort(grp["reward"].to_numpy())
            ax.plot(np.arange(1, len(values) + 1), values, label=method, lw=1.6)
        ax.axhline(optimum[dataset], color="k", ls="--", lw=0.8, label="optimum")
        ax.set_title(f"NB201 {dataset} — {len(sub) // sub['method'].nunique()} trials × {budget}")
        ax.set_xlabel("trial (sorted by final best reward)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(REWARD_LABEL)
        lo = np.percentile(sub["reward"], 2)
        ax.set_ylim(lo - 0.2, optimum[dataset] + 0.3)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle("Final best of each trial, sorted (search reward: 12-epoch validation accuracy)")
    fig.tight_layout()
    return fig


def best_so_far_figure(
    curves: pd.DataFrame, optimum: dict[str, float], log_x: bool = False
) -> Figure:
    """Best reward vs number of evaluations: median over trials with the inter-quartile band."""
    datasets = list(dict.fromkeys(curves["dataset"]))
    fig, axes = _axes(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        sub = curves[curves["dataset"] == dataset]
        ax.set_prop_cycle(color=plt.cm.tab20.colors)  # more methods than the default 10 colours
        if log_x:
            ax.set_xscale("log")
        for method, grp in sub.groupby("method", sort=False):
            x = grp["step"].to_numpy() + 1
            (line,) = ax.plot(x, grp["median"], label=method, lw=1.6)
            ax.fill_between(x, grp["q25"], grp["q75"], color=line.get_color(), alpha=0.15)
        ax.axhline(optimum[dataset], color="k", ls="--", lw=0.8, label="optimum")
        ax.set_title(f"NB201 {dataset}")
        ax.set_xlabel("evaluations")
        ax.set_ylabel(REWARD_LABEL)
        ax.set_ylim(np.percentile(sub["q25"], 10), optimum[dataset] + 0.3)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle("Best-so-far (median and IQR over trials; 12-epoch validation accuracy)")
    fig.tight_layout()
    return fig


CATCH_LOSSES = ("loss_controller", "loss_evaluator", "kl", "entropy")


def meta_training_figure(curves: pd.DataFrame, fidelity: dict | None = None) -> Figure:
    """Meta-training curves: best reward of each meta-epoch (by task) and the loss terms; with
    a fidelity check, each checked architecture's reward against its longer training's."""
    checked = (fidelity or {}).get("epochs", [])
    fig, axes = plt.subplots(1, 3 if checked else 2, figsize=(16.5 if checked else 11, 4.2))
    ax_r, ax_l = axes[:2]
    if "best_reward" in curves:  # searchers: each meta-epoch is a search
        for task, grp in curves.groupby("task", sort=False):
            ax_r.plot(grp["epoch"], grp["best_reward"], "o-", ms=3, lw=1, label=task)
        ax_r.set_ylabel("best reward of the epoch's search")
        ax_r.set_title("Meta-training: best reward per meta-epoch")
    else:  # BASE: the architecture posterior sharpens as the temperature falls
        for name in ("phi_entropy", "tau"):
            ax_r.plot(curves["epoch"], curves[name], "o-", ms=3, lw=1, label=name)
        ax_r.set_title("Meta-training: op entropy of the posterior, temperature")
    ax_r.set_xlabel("meta-epoch")
    ax_r.legend(fontsize=7)
    ax_r.grid(alpha=0.3)
    for name in (*CATCH_LOSSES, "loss_critic", "loss_actor", "loss"):
        if name in curves:
            ax_l.plot(curves["epoch"], curves[name], lw=1.4, label=name)
    ax_l.set_xlabel("meta-epoch")
    ax_l.set_title("Loss terms (mean over the epoch's updates)")
    ax_l.legend(fontsize=8)
    ax_l.grid(alpha=0.3)
    if checked:
        ax_f = axes[2]
        for check in checked:
            rows = pd.DataFrame(check["archs"])
            rho = "n/a" if check["spearman"] is None else f"{check['spearman']:.2f}"
            label = f"epoch {check['epoch']}: ρ {rho} (n={check['n']})"
            ax_f.plot(rows["reward"], rows["reference_reward"], "o", ms=5, label=label)
        ax_f.set_xlabel("meta-training reward")
        ax_f.set_ylabel(f"reward after the {fidelity['reference']}")
        ci = fidelity.get("spearman_ci95")
        span = f"\nmean ρ 95% bootstrap CI {ci[0]:.2f} to {ci[1]:.2f}" if ci else ""
        ax_f.set_title(f"Does the reward rank like a longer training?{span}")
        ax_f.legend(fontsize=7)
        ax_f.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def search_figure(
    history: pd.DataFrame, title: str, ylabel: str, optimum: float | None = None
) -> Figure:
    """One search: reward of each evaluation and the best so far; with measured latency, also
    accuracy against latency (the trade-off the reward encodes)."""
    trade_off = "latency_ms" in history and "val_acc" in history
    fig, axes = plt.subplots(1, 2 if trade_off else 1, figsize=(11 if trade_off else 6.5, 4.2))
    ax = axes[0] if trade_off else axes
    steps = history["step"].to_numpy() + 1
    ax.plot(steps, history["reward"], "o", ms=3, alpha=0.6, label="evaluation")
    ax.plot(steps, np.maximum.accumulate(history["reward"].to_numpy()), lw=1.8, label="best so far")
    if optimum is not None:
        ax.axhline(optimum, color="k", ls="--", lw=0.8, label="optimum")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if trade_off:
        ok = history[history.get("status", "ok") == "ok"]
        points = axes[1].scatter(ok["latency_ms"], ok["val_acc"], c=ok["step"], s=14)
        fig.colorbar(points, ax=axes[1], label="evaluation")
        axes[1].set_xlabel("latency (ms, median)")
        axes[1].set_ylabel("validation accuracy (%)")
        axes[1].set_title("accuracy vs measured latency")
        axes[1].grid(alpha=0.3)
    fig.tight_layout()
    return fig


def contact_sheet(
    images: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    title: str,
    per_class: int = 8,
    max_classes: int = 10,
) -> Figure:
    """A grid of sample images, one row per class: a glance shows decoding went right."""
    shown = classes[:max_classes]
    fig, axes = plt.subplots(
        len(shown), per_class, figsize=(per_class * 0.9, len(shown) * 0.95), squeeze=False
    )
    for row, wnid in enumerate(shown):
        idx = np.flatnonzero(labels == row)[:per_class]
        for col in range(per_class):
            ax = axes[row, col]
            ax.set_axis_off()
            if col < len(idx):
                ax.imshow(images[idx[col]], interpolation="nearest")
        axes[row, 0].text(
            -0.1, 0.5, wnid, transform=axes[row, 0].transAxes, ha="right", va="center", fontsize=7
        )
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.14, wspace=0.05, hspace=0.05)
    return fig


def training_log_figure(rows: list[dict], title: str) -> Figure:
    """mmengine's per-iteration scalars: every loss term, and the learning rate."""
    frame = pd.DataFrame([r for r in rows if "loss" in r])
    fig, (ax_loss, ax_lr) = _axes(2)
    if not frame.empty:
        step = frame["step"] if "step" in frame else frame["iter"]
        for name in sorted(c for c in frame if c.startswith("loss")):
            ax_loss.plot(step, frame[name], label=name)
        if "lr" in frame:
            ax_lr.plot(step, frame["lr"])
    ax_loss.set(xlabel="iteration", ylabel="training loss", title=title)
    if ax_loss.lines:
        ax_loss.legend(fontsize=8)
    ax_lr.set(xlabel="iteration", ylabel="learning rate", title="schedule")
    fig.tight_layout()
    return fig


def conv_widths(arch: str, block: str, widths: dict) -> list[int]:
    """Output width of every conv of the backbone in forward order (stem, then each block's
    inner convs and its output; shortcuts share their block's output)."""
    w = Widths.from_dict(widths)
    out = [w.groups[0]]
    for (_, group, _), inner in zip(block_layout(ResArch.parse(arch), block), w.inner, strict=True):
        out += [*inner, w.groups[group]]
    return out


def morphnet_figure(card: dict) -> Figure:
    """Widths per layer (seed, each shrink, the final net) and each round's shrink curve."""
    m, arch, block = card["morphnet"], card["arch"], card["backbone"]["block"]
    fig, (ax_w, ax_c) = plt.subplots(1, 2, figsize=(13, 4.2), width_ratios=(2, 1))
    ax_w.step(
        range(len(seed := conv_widths(arch, block, m["seed_widths"]))),
        seed,
        where="mid",
        lw=1.6,
        color="0.4",
        label=f"seed: {m['seed_cost']:.3g} {m['budget']['unit']}",
    )
    for r in m["rounds"]:
        shrunk = conv_widths(arch, block, r["shrunk"])
        ax_w.step(
            range(len(shrunk)),
            shrunk,
            where="mid",
            lw=1,
            ls="--",
            label=f"round {r['round'] + 1} shrunk: {r['shrunk_cost']:.3g}",
        )
    final = conv_widths(arch, block, m["widths"])
    ax_w.step(
        range(len(final)),
        final,
        where="mid",
        lw=1.8,
        label=f"final (×{m['rounds'][-1]['factor']:.2f}): {m['final_cost']:.3g}",
    )
    ax_w.set_xlabel("conv layer (forward order)")
    ax_w.set_ylabel("output channels")
    ax_w.set_title(f"MorphNet widths of {arch} ({m['budget']['kind']} budget)")
    ax_w.legend(fontsize=7)
    ax_w.grid(alpha=0.3)
    for r in m["rounds"]:
        curve = pd.DataFrame(r["shrink_curve"])
        ax_c.plot(
            curve["epoch"] + 1, curve["cost_fraction"], "o-", ms=3, label=f"round {r['round'] + 1}"
        )
    ax_c.set_xlabel("shrink epoch")
    ax_c.set_ylabel("alive cost / seed cost")
    ax_c.set_title("Shrink: cost of the channels alive")
    ax_c.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_c.legend(fontsize=7)
    ax_c.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def compare_figure(results: dict) -> Figure:
    """``compare``: held-out top-1 against measured latency, every seed a point, each model's
    mean a larger marker, and the Pareto front of the means (faster and more accurate wins)."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    means = []
    for i, row in enumerate(results["models"]):
        color = f"C{i}"
        accs = [s["heldout_acc"] for s in row["seeds"]]
        ax.scatter([row["latency_ms"]] * len(accs), accs, s=14, alpha=0.6, color=color)
        mean = row["top1"]["mean"]
        ax.errorbar(
            row["latency_ms"],
            mean,
            yerr=row["top1"]["ci95"],
            xerr=row["latency_iqr_ms"] / 2,
            fmt="D",
            ms=7,
            color=color,
            capsize=3,
            label=row["label"],
        )
        means.append((row["latency_ms"], mean))
    front, best = [], -np.inf
    for lat, acc in sorted(means):
        if acc > best:
            front.append((lat, acc))
            best = acc
    ax.step(
        *zip(*front, strict=True), where="post", color="k", lw=0.8, ls="--", label="Pareto front"
    )
    ax.set_xlabel(f"latency (ms, median; batch {results['latency']['batch_size']})")
    ax.set_ylabel("held-out top-1 (%)")
    ax.set_title(f"{results['target']}: {len(results['seeds'])} seeds each", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
