"""CATCH's own NB201 protocol at small scale: meta-train on Tiny-ImageNet sub-dataset tasks,
adapt on the three NAS-Bench-201 tables.

Meta-training: CATCH (catch-meta) searches the NB201 cell space; meta-epoch k rewards its
candidates on sub-dataset k of the Tiny-ImageNet subset (``--data``, docs/data.md; 10/20/30 random
classes of 150, 16 px, real ImageNet images) with
- ``--proxy zero_cost`` (default): the project's calibrated zero-cost reward
  (``trained_task.zero_cost`` of conf/base, chosen by benchmarks/proxy_fidelity.py) of the
  NB201 network (C=16, N=5) at initialisation on one batch of the sub-dataset, or
- ``--proxy trained``: the NB201 network (``--train-channels``/``--train-cells``, default C=8,
  N=1) trained ``--train-epochs`` epochs (validation accuracy).
``--prior adversarial`` meta-trains on the same tasks with the reward negated: the prior points
at the worst cells, which measures what a misleading prior costs against no prior.
No NB201 table is read while meta-training; afterwards the rewards' Spearman ρ against NB201
is computed for the report. Adaptation: 500 seeded trials × 50 table lookups per dataset, from
the meta-trained networks, next to CATCH-sfs, REA and random search (same trial seeds), and
CATCH meta-trained leave-one-dataset-out on the tables (as in benchmarks/nb201_catch.py). The meta-trained agent adapts as ``adapt.adaptation`` of
conf/base says (``--mode`` etc. override it; docs/catch.md). Meta-training state is durable (``--workdir``): a killed
run resumes. Curves, ρ and results go to MLflow (experiment ``transfernas-benchmarks``;
``MLFLOW_TRACKING_URI`` or ./mlflow.db).
Writes ``benchmarks/results/nb201_transfer[_trained][_adversarial].{json,md}`` and its
``_meta.png``.

    .venv/bin/python benchmarks/nb201_transfer.py [--proxy zero_cost --prior adversarial]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import matplotlib
from _results import write_results

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import pandas as pd
import torch
from _data import add_data_option, tiny_imagenet
from _nb201 import RAW, ROOT, base_params, summed_wall_time

from transfernas.benchmark import (
    NB201BenchmarkConfig,
    meta_train_for,
    results_markdown,
    run_trial,
    summarize,
)
from transfernas.data.build import SubdatasetParams
from transfernas.fidelity import nb201_spearman
from transfernas.history import AppendLog
from transfernas.meta import meta_train
from transfernas.searchers import make_searcher
from transfernas.searchers.adaptation import AdaptationConfig
from transfernas.spaces.nb201 import NB201SpaceParams
from transfernas.tasks.base import Evaluation, Task
from transfernas.tasks.latency import torch_threads
from transfernas.tasks.subdataset import TrainedTaskParams, meta_task_pool
from transfernas.tasks.tabular import DATASETS, NB201Table
from transfernas.tasks.zero_cost import ZeroCostParams

META = "catch-meta (sub-datasets)"
LOO = "catch-meta (leave-one-out tables)"
BASELINES = ("catch-sfs", "rea", "random")
_TABLE: NB201Table | None = None


class Inverted:
    """A task whose reward is negated: meta-training on it learns a prior for the worst cells."""

    def __init__(self, task: Task) -> None:
        self.task, self.name, self.space = task, f"inverted/{task.name}", task.space

    def evaluate(self, actions) -> Evaluation:
        ev = self.task.evaluate(actions)
        return Evaluation(-ev.reward, ev.metrics, ev.cost_s)


def stem_of(args: argparse.Namespace) -> str:
    """Result file stem: nb201_transfer[_trained][_adversarial]."""
    proxy = "" if args.proxy == "zero_cost" else "_trained"
    return f"nb201_transfer{proxy}{'_adversarial' if args.prior == 'adversarial' else ''}"


def adaptation_of(args: argparse.Namespace) -> AdaptationConfig:
    """conf/base's ``adapt.adaptation``, with the options given on the command line."""
    given = {
        k: getattr(args, k)
        for k in ("mode", "finetune", "prior_weight", "evidence_quantile", "uniform_share")
        if getattr(args, k) is not None
    }
    return AdaptationConfig(**base_params("adapt")["adaptation"] | given)


def meta_train_on_subdatasets(
    args: argparse.Namespace,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, float, TrainedTaskParams]:
    source = tiny_imagenet(args.data, args.workdir)
    sub = SubdatasetParams(
        n_classes=[10, 20, 30],
        image_sizes=[16],
        seed=0,
        workers=2,
        out_dir=str(args.workdir / "subdatasets"),
    )
    zero_cost = args.proxy == "zero_cost"
    if zero_cost:  # the calibrated default of the project, NB201's own network
        params = TrainedTaskParams(
            space=NB201SpaceParams(channels=16, cells=5),
            zero_cost=ZeroCostParams(**base_params("trained_task")["zero_cost"]),
        )
    else:
        params = TrainedTaskParams(
            space=NB201SpaceParams(channels=args.train_channels, cells=args.train_cells),
            training={"epochs": args.train_epochs, "batch_size": 128, "threads": 2},
            reward={"measure_latency": False},
        )
    proxy_at, pool = meta_task_pool(source, sub, params, seed=0, zero_cost=zero_cost)
    task_at = proxy_at
    if args.prior == "adversarial":
        pool = {"inverted": pool}

        def task_at(k: int) -> Task:
            return Inverted(proxy_at(k))

    space = params.space.build()
    agent = make_searcher("catch-meta", space, None, seed=12345)
    start = time.perf_counter()
    workdir = args.workdir / f"meta-{args.proxy}{'-adversarial' * (args.prior == 'adversarial')}"
    curves, records = meta_train(
        space,
        agent,
        task_at,
        args.meta_epochs,
        args.meta_search,
        pool=pool,
        workdir=workdir,
        progress=True,
    )
    # wall time summed over runs: a resumed run adds only what it did
    total = summed_wall_time(workdir, time.perf_counter() - start)
    records = pd.DataFrame(records)
    curves = pd.DataFrame(curves).assign(cost_s=records.groupby("trial")["cost_s"].sum().to_numpy())
    return agent.network_state(), curves, records, total, params


def _init(table: NB201Table) -> None:
    global _TABLE
    torch.set_num_threads(1)
    _TABLE = table


Arm = tuple[str, dict[str, dict] | None, str | None]  # searcher, state per dataset, origin


def _trials(job: tuple[str, str, list[int], Arm, NB201BenchmarkConfig]) -> list[dict]:
    dataset, label, trials, (method, states, origin), config = job
    state = states[dataset] if states is not None else None
    return [
        run_trial(_TABLE, config, dataset, method, t, state) | {"label": label, "origin": origin}
        for t in trials
    ]


def adapt(
    arms: dict[str, Arm], table: NB201Table, args: argparse.Namespace, adaptation: AdaptationConfig
) -> tuple[pd.DataFrame, float]:
    """Trials 0 … ``args.trials`` − 1 of every arm: label → (searcher, its meta-trained state
    per dataset or None, what meta-trained it). Finished trials are kept in
    ``<workdir>/trials.jsonl``, keyed by what they depend on: a rerun, or a run with another
    prior, reuses the baselines' and the leave-one-out agent's trials."""
    methods = sorted({method for method, _, _ in arms.values()})
    config = NB201BenchmarkConfig(methods=methods, budget=50, adaptation=adaptation)
    log = AppendLog(args.workdir / "trials.jsonl")

    def key(ds: str, method: str, trial: int, origin: str | None) -> tuple:
        return ds, method, trial, config.fingerprint(method), origin

    done = {key(r["dataset"], r["method"], r["trial"], r["origin"]): r for r in log}
    jobs = []
    for ds in DATASETS:
        for label, (method, states, origin) in arms.items():
            todo = [t for t in range(args.trials) if key(ds, method, t, origin) not in done]
            arm = (method, states, origin)
            jobs += [(ds, label, todo[i : i + 25], arm, config) for i in range(0, len(todo), 25)]
    start = time.perf_counter()
    with ProcessPoolExecutor(
        args.workers, mp.get_context("spawn"), initializer=_init, initargs=(table,)
    ) as pool:
        for records in pool.map(_trials, jobs):
            log.append(records)
            done.update(
                {key(r["dataset"], r["method"], r["trial"], r["origin"]): r for r in records}
            )
    wanted = [
        done[key(ds, method, t, origin)] | {"label": label}
        for ds in DATASETS
        for label, (method, _, origin) in arms.items()
        for t in range(args.trials)
    ]
    frame = pd.DataFrame(wanted).explode(["arch_index", "reward", "test_acc"], ignore_index=True)
    frame["step"] = frame.groupby(["dataset", "label", "trial"]).cumcount()
    frame = frame.astype({"arch_index": "int64", "reward": "float64", "test_acc": "float64"})
    frame["method"] = frame["label"]
    return frame.drop(columns=["label", "origin"]), time.perf_counter() - start


def leave_one_out(table: NB201Table) -> dict[str, dict]:
    """CATCH meta-trained on the other two tables, per target, on one thread (as
    benchmarks/nb201_catch.py: the same networks)."""
    config = NB201BenchmarkConfig(methods=["catch-meta"])
    with torch_threads(1):
        return {ds: meta_train_for(table, config, "catch-meta", ds) for ds in DATASETS}


def log_to_mlflow(
    args: argparse.Namespace, curves: pd.DataFrame, rho: dict[str, float], results: pd.DataFrame
) -> None:
    """Meta-training curves, the reward's ρ vs NB201 and the adaptation results, one run."""
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT}/mlflow.db"))
    mlflow.set_experiment("transfernas-benchmarks")
    with mlflow.start_run(run_name=stem_of(args)):
        mlflow.log_params({k: str(v) for k, v in vars(args).items()})
        for row in curves.to_dict("records"):
            for key in ("best_reward", "loss_controller", "loss_evaluator", "kl"):
                if key in row:
                    mlflow.log_metric(f"meta_train.{key}", float(row[key]), step=int(row["epoch"]))
        mlflow.log_metrics({f"reward_spearman.{k.replace('/', '.')}": v for k, v in rho.items()})
        for row in results.to_dict("records"):
            label = re.sub(r"[^\w.-]+", "_", row["method"])
            name = f"nb201.{row['dataset']}.{label}"
            mlflow.log_metrics(
                {f"{name}.optimum_hit_rate": row["optimum_hit_rate"],
                 f"{name}.regret_mean": row["regret_mean"]}
            )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", choices=["zero_cost", "trained"], default="zero_cost")
    parser.add_argument(
        "--prior",
        choices=["proxy", "adversarial"],
        default="proxy",
        help="adversarial: meta-train on the proxy reward negated (a misleading prior)",
    )
    parser.add_argument("--mode", choices=["prior", "decay", "evidence"])
    parser.add_argument(
        "--finetune",
        type=lambda v: {"true": True, "false": False}[v.lower()],
        help="true | false: whether the prior's networks keep learning on the target",
    )
    parser.add_argument("--prior-weight", type=float, help="adaptation.prior_weight (decay)")
    parser.add_argument("--evidence-quantile", type=float)
    parser.add_argument("--uniform-share", type=float)
    parser.add_argument("--meta-epochs", type=int, default=20)
    parser.add_argument("--meta-search", type=int, default=20)
    parser.add_argument("--train-epochs", type=int, default=3)
    parser.add_argument("--train-channels", type=int, default=8, help="--proxy trained: C")
    parser.add_argument("--train-cells", type=int, default=1, help="--proxy trained: N")
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--workdir", type=Path, default=ROOT / "data/02_intermediate/nb201_transfer"
    )
    add_data_option(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    state, curves, records, meta_s, params = meta_train_on_subdatasets(args)
    print(curves.to_string(), flush=True)
    t12 = pd.read_parquet(RAW / "nb201_12epoch.parquet")
    table = NB201Table.from_frame(t12)
    test200 = pd.read_parquet(RAW / "nb201_200epoch.parquet")
    agreement = nb201_spearman(records["arch"], records["reward"], t12, test200)
    adaptation = adaptation_of(args)
    origin = f"{args.proxy}/{args.prior}/{args.meta_epochs}x{args.meta_search}"
    if args.proxy == "trained":
        origin += f"/C{args.train_channels}N{args.train_cells}e{args.train_epochs}"
    loo_meta = NB201BenchmarkConfig().meta
    meta = META if args.prior == "proxy" else "catch-meta (sub-datasets, reward negated)"
    arms: dict[str, Arm] = {
        meta: ("catch-meta", dict.fromkeys(DATASETS, state), origin),
        LOO: ("catch-meta", leave_one_out(table), f"leave-one-out/{loo_meta.model_dump()}"),
    } | {b: (b, None, None) for b in BASELINES}
    evals, adapt_s = adapt(arms, table, args, adaptation)
    results = summarize(evals, table, test200, reference=meta)
    results = results.sort_values(["dataset", "method"], kind="stable")

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(curves["epoch"], curves["best_reward"], "o-")
    ax.set_xlabel("meta-epoch (one new Tiny-ImageNet sub-dataset each)")
    ax.set_ylabel(
        "best reward of the epoch"
        + (" (zero-cost)" if args.proxy == "zero_cost" else " (val. acc. %)")
    )
    ax.set_title(f"CATCH meta-training on {args.proxy} sub-dataset tasks (NB201 cells)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(
        args.out / f"{stem_of(args)}_meta.png",
        dpi=120,
    )

    if args.proxy == "zero_cost":
        reward = (
            "zero-cost evaluations (reward Σ w·feature with the calibrated "
            f"`trained_task.zero_cost.weights` {params.zero_cost.weights} of conf/base, NB201 network "
            "C=16, N=5 at initialisation"
        )
    else:
        reward = (
            f"trained evaluations (NB201 network C={args.train_channels}, N={args.train_cells}, "
            f"{args.train_epochs} epochs"
        )
    inverted = " with the reward negated (adversarial prior)" * (args.prior == "adversarial")
    md = results_markdown(
        results,
        f"CATCH meta-trained on {args.proxy} Tiny-ImageNet sub-dataset tasks{inverted} → "
        "NB201 tables",
    )
    md += (
        f"\nMeta-training: {args.meta_epochs} meta-epochs × {args.meta_search} {reward}, 16 px, "
        "10/20/30-class sub-datasets of the 150-class Tiny-ImageNet subset; no NB201 table "
        f"read): {meta_s / 60:.1f} min. Adaptation: {args.trials} trials × 50 lookups per dataset and "
        f"method, {adapt_s / 60:.1f} min with {args.workers} workers in this invocation (trials "
        "another invocation finished are read from the durable trial log); catch-meta adapts with "
        f"`adaptation` {adaptation.model_dump()}. p: one-sided "
        f"Mann–Whitney U test that {meta}'s final best rewards are larger. The leave-one-out "
        "rows: CATCH meta-trained on the other two tables (as in nb201_catch.md), adapted the "
        "same way, same trial seeds.\n"
        "\nDoes the meta-training reward rank cells like NB201? Spearman ρ between the reward "
        f"of the {len(records)} meta-training evaluations and the same cells' NB201 accuracies "
        "(12-epoch validation / 200-epoch test): "
        + ", ".join(
            f"{ds} {agreement[f'{ds}/val12']:+.2f} / {agreement[f'{ds}/test200']:+.2f}"
            for ds in DATASETS
        )
        + ".\n"
    )
    log_to_mlflow(args, curves, agreement, results)
    payload = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "meta_training_s": meta_s,
        "adaptation_s": adapt_s,
        "adaptation": adaptation.model_dump(),
        "proxy_spearman": agreement,
        "meta_curves": curves.to_dict("records"),
        "results": results.to_dict("records"),
    }
    write_results(args.out, stem_of(args), payload, md)
    print(md)


if __name__ == "__main__":
    main()
