"""What the NB201 benchmark scripts share: arguments, the tables, one timed run, the report."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from _results import write_results

from transfernas.benchmark import NB201BenchmarkConfig, results_markdown, run_trials, summarize
from transfernas.executors import ExecutorConfig
from transfernas.tasks.tabular import NB201Table

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data/01_raw/nb201"


def parse_args(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    add_ray_option(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    return parser.parse_args()


def add_ray_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run the trials as Ray tasks: a local Ray, or the cluster at ADDRESS "
        "(e.g. ray://head:10001); --workers is then unused",
    )


def executor_of(args: argparse.Namespace) -> ExecutorConfig | None:
    if args.ray is None:
        return None
    return ExecutorConfig(kind="ray", address=None if args.ray == "local" else args.ray)


@dataclass
class Run:
    args: argparse.Namespace
    config: NB201BenchmarkConfig
    table: NB201Table
    evals: pd.DataFrame
    results: pd.DataFrame
    search_s: float
    wall_s: float

    @property
    def optimum(self) -> dict[str, float]:
        return dict(zip(self.results["dataset"], self.results["optimum_val12"], strict=True))


def run(args: argparse.Namespace, methods: list[str], reference: str | None = None) -> Run:
    """All trials (trial seeds 0..trials-1) and their summary, timed."""
    table = NB201Table.from_frame(pd.read_parquet(RAW / "nb201_12epoch.parquet"))
    test200 = pd.read_parquet(RAW / "nb201_200epoch.parquet")
    config = NB201BenchmarkConfig(
        methods=methods,
        n_trials=args.trials,
        budget=args.budget,
        n_workers=args.workers,
        reference=reference,
    )
    start = time.perf_counter()
    evals = run_trials(table, config, executor=executor_of(args))
    search_s = time.perf_counter() - start
    results = summarize(
        evals, table, test200, n_resamples=config.bootstrap_resamples, reference=reference
    )
    return Run(args, config, table, evals, results, search_s, time.perf_counter() - start)


def report(
    r: Run, name: str, title: str, notes: str = "", extra: dict[str, Any] | None = None
) -> str:
    """Write ``<name>.json`` and ``<name>.md`` (table, wall time; machine and command by
    ``write_results``)."""
    args = r.args
    payload = {
        "protocol": f"{args.trials} trials × {args.budget} evaluations",
        "trial_seeds": [0, args.trials - 1],
        "reward": "NB201 12-epoch validation accuracy (hp='12')",
        "report": "200-epoch test accuracy of the best-of-N cell (never a reward)",
        "config": r.config.model_dump(),
        "wall_time_s": round(r.wall_s, 1),
        "search_time_s": round(r.search_s, 1),
        **(extra or {}),
        "results": r.results.to_dict(orient="records"),
    }
    md = results_markdown(r.results, title) + (f"\n{notes}\n" if notes else "")
    md += (
        f"\nTotal wall time {r.wall_s:.1f} s ({r.search_s:.1f} s searching, {args.workers} worker "
        "processes).\n"
    )
    write_results(args.out, name, payload, md)
    return md


def summed_wall_time(workdir: Path, seconds: float) -> float:
    """Wall time of durable work summed over the runs that did it (``wall_time.json`` in
    ``workdir``): a resumed run adds only its own ``seconds``."""
    clock = workdir / "wall_time.json"
    total = (json.loads(clock.read_text())["seconds"] if clock.exists() else 0.0) + seconds
    clock.write_text(json.dumps({"seconds": total}))
    return total


def base_params(stage: str) -> dict[str, Any]:
    """The ``stage`` block of conf/base/parameters_<stage>.yml: benchmarks use the project's
    own defaults."""
    path = ROOT / f"conf/base/parameters_{stage}.yml"
    return yaml.safe_load(path.read_text())[stage]
