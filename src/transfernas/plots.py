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


def best_so_far_figure(curves: pd.DataFrame, optimum: dict[str, float]) -> Figure:
    """Best reward vs number of evaluations: median over trials with the inter-quartile band."""
    datasets = list(dict.fromkeys(curves["dataset"]))
    fig, axes = _axes(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        sub = curves[curves["dataset"] == dataset]
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
