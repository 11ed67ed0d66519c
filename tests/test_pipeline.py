"""`kedro run --pipeline nb201_benchmark` end to end in a scratch copy of the project.

Checks the files it writes, the MLflow run (params, metrics, artifacts), the error a bad
parameter gives, and that kedro-viz serves the pipeline.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

from transfernas.data.external import external_data
from transfernas.spaces.nasfpn import NASFPNSpace
from transfernas.spaces.nasnet import NASNetSpace
from transfernas.tasks.tabular import DATASETS

from ._kedro import KEDRO, kedro_env
from ._kedro import copy_project as _copy_project
from ._kedro import run_kedro as _kedro
from .conftest import ROOT

pytestmark = pytest.mark.slow
TINY = (
    "nb201_benchmark.n_trials=3,nb201_benchmark.budget=10,"
    "nb201_benchmark.meta.n_epochs=2,nb201_benchmark.meta.n_search=10"
)
METHODS = {"random", "rea", "reinforce", "catch-sfs", "catch-meta"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return _copy_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def tiny_run(project) -> subprocess.CompletedProcess:
    result = _kedro(project, "run", "--pipeline", "nb201_benchmark", "--params", TINY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _mlflow_run(project: Path, pipeline: str):
    """The first finished MLflow run of ``pipeline`` (kedro-mlflow names runs after it)."""
    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    exp = client.get_experiment_by_name("transfernas")
    runs = client.search_runs(
        [exp.experiment_id],
        f"tags.mlflow.runName = '{pipeline}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
    )
    assert runs, f"no MLflow run for {pipeline}"
    return client, runs[0]


def test_outputs_written(project, tiny_run):
    hist = pd.read_parquet(project / "data/07_model_output/nb201_histories.parquet")
    assert len(hist) == len(METHODS) * 3 * 3 * 10  # methods × datasets × trials × budget
    results = pd.read_csv(project / "data/08_reporting/nb201_results.csv")
    assert len(results) == 3 * len(METHODS) and set(results["method"]) == METHODS
    assert results.loc[results.method == "rea", "p_vs_catch-meta"].notna().all()
    assert (results["n_trials"] == 3).all() and (results["budget"] == 10).all()
    md = (project / "data/08_reporting/nb201_results.md").read_text()
    assert "12-epoch validation accuracy" in md and "200-epoch test accuracy" in md
    for png in ("nb201_sorted_trials.png", "nb201_best_so_far.png"):
        assert (project / "data/08_reporting" / png).stat().st_size > 10_000


def test_a_run_logs_no_warning_and_one_line_for_the_stage(project, tiny_run):
    output = tiny_run.stdout + tiny_run.stderr
    assert not [line for line in output.splitlines() if "warning" in line.lower()], output
    _, run = _mlflow_run(project, "nb201_benchmark")
    line = " ".join(output.split())
    assert (
        "nb201_benchmark: searchers compared on NAS-Bench-201 tables → "
        "data/08_reporting/nb201_best_so_far.csv" in line
    )
    assert "data/07_model_output/nb201_histories.parquet" in line
    assert f"MLflow run {run.info.run_id}" in line


def test_mlflow_run_has_params_metrics_artifacts(project, tiny_run):
    client, run = _mlflow_run(project, "nb201_benchmark")
    tags = run.data.tags
    assert len(tags["transfernas.params_hash"]) == 16 and "CPUs" in tags["transfernas.machine"]
    assert "mlflow.parentRunId" not in tags  # one stage: one run, no children
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.data.params["nb201_benchmark.n_trials"] == "3"
    assert run.data.params["searchers.rea.population_size"] == "10"
    assert "nb201.cifar100.rea.optimum_hit_rate" in run.data.metrics
    curve = client.get_metric_history(
        run.info.run_id, "nb201.ImageNet16-120.reinforce.best_so_far_mean"
    )
    assert [m.step for m in curve] == list(range(10))
    assert all(b.value >= a.value for a, b in itertools.pairwise(curve))
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "nb201_benchmark")}
    for name in (
        "nb201_histories.parquet",
        "nb201_results.csv",
        "nb201_results.md",
        "nb201_sorted_trials.png",
    ):
        assert f"nb201_benchmark/{name}" in artifacts


def test_a_working_run_is_running_in_mlflow_until_it_ends(tmp_path):
    """Queried from another process while the run works, and with the check a starting run
    makes (runs of dead processes on this host → KILLED): RUNNING until the run ends."""
    import platform

    from transfernas.hooks import mark_killed_runs

    project = _copy_project(tmp_path)
    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    # the store exists, as after earlier runs (artifacts under the project, as kedro-mlflow's)
    exp = client.create_experiment("transfernas", (project / "mlruns").as_uri())
    run = subprocess.Popen(
        [KEDRO, "run", "--pipeline", "nb201_benchmark", "--params", TINY],
        cwd=project,
        env=kedro_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    while run.poll() is None:
        ours = client.search_runs([exp], "tags.`transfernas.pid` != ''")
        if ours:  # tagged by the hook at the first node: the run is working
            assert len(ours) == 1 and ours[0].data.tags["transfernas.pid"] == str(run.pid)
            assert not mark_killed_runs(client, exp, platform.node())
            seen.append(client.get_run(ours[0].info.run_id).info.status)
        time.sleep(0.2)
    output = run.stdout.read()
    assert run.returncode == 0, output[-3000:]
    assert "KILLED" not in output
    working = seen[: seen.index("FINISHED")] if "FINISHED" in seen else seen
    assert len(working) >= 3 and set(working) == {"RUNNING"}, seen
    assert set(seen[len(working) :]) <= {"FINISHED"}, seen  # ended once, by the process
    (finished,) = client.search_runs([exp])
    assert finished.info.status == "FINISHED"


def test_rerun_reuses_finished_trials(project, tiny_run):
    before = pd.read_parquet(project / "data/07_model_output/nb201_histories.parquet")
    result = _kedro(project, "run", "--pipeline", "nb201_benchmark", "--params", TINY)
    assert result.returncode == 0
    after = pd.read_parquet(project / "data/07_model_output/nb201_histories.parquet")
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "nb201_benchmark.budget=-5",
            "nb201_benchmark.budget: Input should be greater than or equal to 1",
        ),
        (
            "nb201_benchmark.datasets=[cifar10]",
            "nb201_benchmark.datasets[0]: Input should be 'cifar10-valid', 'cifar100' or 'ImageNet16-120'",
        ),
        (
            "nb201_benchmark.methods=[bohb]",
            "nb201_benchmark.methods[0]: unknown searcher 'bohb'; allowed: random, rea, reinforce, catch-meta, catch-sfs, catch-zero, catch-random, l2nas, l2nas-transfer, tnas, pnas, nasnet-rnn",
        ),
    ],
)
def test_bad_parameter_is_named(project, override, expected):
    _assert_stopped_before_anything(project, "nb201_benchmark", override, expected)


def _state(project: Path) -> dict[str, int]:
    """Every file and folder a run could write (data/, mlruns/), with its modification time."""
    return {
        str(path): path.stat().st_mtime_ns
        for top in ("data", "mlruns")
        for path in (project / top).rglob("*")
    }


def _mlflow_runs(project: Path) -> int:
    if not (project / "mlflow.db").exists():
        return 0
    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    return sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())


def _assert_stopped_before_anything(
    project: Path, pipeline: str, override: str, expected: str
) -> None:
    """A bad value stops `kedro run` before a dataset is read, a state folder is made or an
    MLflow run is opened: exit 2, the message naming the key once, ≤ 8 lines at 80 columns."""
    state, runs = _state(project), _mlflow_runs(project)
    result = _kedro(project, "run", "--pipeline", pipeline, "--params", override, columns=80)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert " ".join(output.split()).count(expected) == 1, output
    assert "Traceback" not in output and len(output.splitlines()) <= 8, output
    assert _state(project) == state and _mlflow_runs(project) == runs


def _assert_short_error(result: subprocess.CompletedProcess, expected: str) -> None:
    """Exit 2, the project's message naming the file once, no traceback, one screen in all."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert " ".join(output.split()).count(expected) == 1, output
    assert "Traceback" not in output and len(output.splitlines()) <= 40, output


def test_verbose_shows_the_traceback(project):
    override = "nb201_benchmark.budget=-5"
    result = _kedro(project, "run", "--pipeline", "nb201_benchmark", "--params", override, "-v")
    assert result.returncode == 1 and "Traceback" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("pipeline", "override", "expected"),
    [
        (
            "meta_train",
            "meta_train.searcher=rea",
            "meta_train.searcher: 'rea' is not meta-trained; allowed: catch-meta, catch-zero, catch-random, l2nas-transfer",
        ),
        (
            "meta_train",
            "trained_task.training.epochs=0",
            "trained_task.training.epochs: Input should be greater than or equal to 1",
        ),
        (
            "search",
            "executor.kind=dask",
            "executor.kind: Input should be 'serial' or 'ray'",
        ),
        (
            "search",
            "search.dataset=mnist",
            "search.dataset: Input should be 'cifar10-valid', 'cifar100' or 'ImageNet16-120'",
        ),
        (
            "adapt",
            "adapt.budget=0",
            "adapt.budget: Input should be greater than or equal to 1",
        ),
        (
            "detection",
            "detection.schedule.max_iters=0",
            "detection.schedule.max_iters: Input should be greater than",
        ),
    ],
)
def test_bad_stage_parameter_is_named(project, pipeline, override, expected):
    _assert_stopped_before_anything(project, pipeline, override, expected)


def test_a_missing_data_folder_stops_the_run_naming_it_once(project):
    """Found while reading data, inside the run: still exit 2 and one short message."""
    override = "imagenet_root=/nonexistent/imagenet"
    result = _kedro(project, "run", "--pipeline", "subdatasets", "--params", override)
    _assert_short_error(result, "imagenet_root /nonexistent/imagenet: neither an ImageNet tree")


# trained sub-dataset tasks (the defaults), shrunk: 1 epoch, 16 px, few evaluations
TRAINED = (
    "subdatasets.image_sizes=[16],trained_task.training.epochs=1,trained_task.latency.repeats=5"
)
TRAINED_STAGES = [
    ("subdatasets", "subdatasets.image_sizes=[16]"),
    ("meta_train", TRAINED + ",meta_train.n_epochs=2,meta_train.n_search=3"),
    ("adapt", TRAINED + ",adapt.budget=4"),
    ("search", TRAINED + ",search.budget=4"),
]
TABLE_STAGES = [
    ("subdatasets", "subdatasets.n_subdatasets=1,subdatasets.image_sizes=[16]"),
    ("meta_train", "meta_train.tasks=nb201,meta_train.n_epochs=3,meta_train.n_search=10"),
    ("adapt", "adapt.task=nb201,adapt.budget=12"),
    ("search", "search.task=nb201,search.budget=12"),
]


def _run_chain(project: Path, stages: list[tuple[str, str]]) -> Path:
    for pipeline, params in stages:
        result = _kedro(project, "run", "--pipeline", pipeline, "--params", params)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project


@pytest.fixture(scope="module")
def chain(project) -> Path:
    """meta_train → adapt, then search from scratch, on trained sub-dataset tasks."""
    return _run_chain(project, TRAINED_STAGES)


@pytest.fixture(scope="module")
def table_chain(tmp_path_factory) -> Path:
    """The same chain on NB201 tables (leave-one-dataset-out)."""
    return _run_chain(_copy_project(tmp_path_factory.mktemp("tables")), TABLE_STAGES)


def test_meta_train_on_subdatasets_outputs_and_mlflow(chain):
    manifest = json.loads((chain / "data/06_models/meta_train_manifest.json").read_text())
    assert manifest["space"]["name"] == "resblock" and len(manifest["tasks"]) == 2
    assert all(t.startswith("subdataset/") and t.endswith("@16px") for t in manifest["tasks"])
    evaluations = pd.read_parquet(chain / "data/07_model_output/meta_train_evaluations.parquet")
    assert len(evaluations) == 6 and (evaluations["status"] == "ok").all()
    assert {"val_acc", "latency_ms", "latency_cv", "params_m"} <= set(evaluations.columns)
    client, run = _mlflow_run(chain, "meta_train")
    for name in ("reward", "val_acc", "latency_ms"):
        history = client.get_metric_history(run.info.run_id, f"meta_train.evaluation.{name}")
        assert [m.step for m in history] == list(range(6))
    assert [
        m.step for m in client.get_metric_history(run.info.run_id, "meta_train.best_reward")
    ] == [0, 1]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "meta_train")}
    assert {
        "meta_train/meta_checkpoint.pt",
        "meta_train/meta_train_curves.png",
        "meta_train/meta_train_evaluations.parquet",
        "meta_train/meta_train_fidelity.json",
    } <= artifacts
    # the last two meta-epochs' architectures trained again 4× longer on the same sub-datasets
    fidelity = json.loads((chain / "data/08_reporting/meta_train_fidelity.json").read_text())
    assert fidelity["reference"] == "4-epoch training (1 × 4)"
    assert [c["epoch"] for c in fidelity["epochs"]] == [0, 1]
    for check in fidelity["epochs"]:
        rows = evaluations[evaluations["trial"] == check["epoch"]]
        assert check["task"] == manifest["tasks"][check["epoch"]]
        assert check["n"] == rows["arch"].nunique() == len(check["archs"])
        assert {r["arch"]: r["reward"] for r in check["archs"]} == dict(
            zip(rows["arch"], rows["reward"], strict=True)
        )
    assert fidelity["n"] == sum(c["n"] for c in fidelity["epochs"])
    low, high = fidelity["spearman_ci95"]
    assert -1 <= low <= high <= 1  # 3 networks an epoch here: a wide interval
    for name, value in [("spearman", fidelity["spearman"]), ("spearman_ci95_low", low)]:
        logged = client.get_metric_history(run.info.run_id, f"meta_train.reward_fidelity.{name}")
        assert [m.value for m in logged] == [pytest.approx(value)]


@pytest.mark.parametrize("stage", ["adapt", "search"])
def test_trained_target_search_outputs_and_mlflow(chain, stage):
    best = json.loads((chain / f"data/08_reporting/{stage}_best.json").read_text())
    history = pd.read_parquet(chain / f"data/07_model_output/{stage}_history.parquet")
    assert len(history) == 4 and best["evaluations"] == 4
    assert best["task"].endswith("/40cls@16px")  # the whole embedded sample: the full dataset
    assert best["reward"] == history["reward"].max()
    # the reward is accuracy weighted by measured latency: R = P·(LAT/T)^w
    row = history.loc[history["reward"].idxmax()]
    assert row["reward"] == pytest.approx(row["val_acc"] * (row["latency_ms"] / 3.0) ** -0.05)
    client, run = _mlflow_run(chain, stage)
    for name in ("best_so_far", "val_acc", "latency_ms"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, f"{stage}.{name}")] == [
            0,
            1,
            2,
            3,
        ]


def test_meta_train_on_tables_outputs_and_mlflow(table_chain):
    manifest = json.loads((table_chain / "data/06_models/meta_train_manifest.json").read_text())
    assert manifest["tasks"] == ["nb201/cifar100", "nb201/ImageNet16-120"]  # target held out
    assert manifest["searcher"] == "catch-meta" and manifest["meta_train"]["n_epochs"] == 3
    curves = pd.read_csv(table_chain / "data/08_reporting/meta_train_curves.csv")
    assert curves["epoch"].tolist() == [0, 1, 2]
    client, run = _mlflow_run(table_chain, "meta_train")
    assert run.data.params["meta_train.n_search"] == "10"
    assert [
        m.step for m in client.get_metric_history(run.info.run_id, "meta_train.loss_evaluator")
    ] == [0, 1, 2]


@pytest.mark.parametrize("stage", ["adapt", "search"])
def test_table_target_search_outputs_and_mlflow(table_chain, nb201_200, stage):
    best = json.loads((table_chain / f"data/08_reporting/{stage}_best.json").read_text())
    history = pd.read_parquet(table_chain / f"data/07_model_output/{stage}_history.parquet")
    assert len(history) == 12 and best["evaluations"] == 12
    assert best["val_acc_12epoch"] == history["reward"].max()
    assert best["test_acc_200epoch"] == nb201_200["cifar10"][best["arch_index"]]
    assert best["searcher"] == {"adapt": "catch-meta", "search": "catch-sfs"}[stage]
    client, run = _mlflow_run(table_chain, stage)
    curve = client.get_metric_history(run.info.run_id, f"{stage}.best_so_far")
    assert [m.step for m in curve] == list(range(12))
    assert f"{stage}/{stage}_history.parquet" in {
        a.path for a in client.list_artifacts(run.info.run_id, stage)
    }


def test_a_run_of_several_stages_has_a_child_run_per_stage(table_chain):
    """As the default chain does: one parent run, each stage a child named after it, all tagged."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "scratch"]):
        subprocess.run([*git, *args], cwd=table_chain, check=True, capture_output=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=table_chain, capture_output=True, text=True, check=True
    ).stdout.strip()
    params = ",".join(p for _, p in TABLE_STAGES[2:])
    result = _kedro(table_chain, "run", "--pipelines", "adapt,search", "--params", params)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{table_chain}/mlflow.db")
    exp = client.get_experiment_by_name("transfernas")
    (parent,) = client.search_runs([exp.experiment_id], "tags.mlflow.runName LIKE '%+%'")
    children = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert {c.info.run_name for c in children} == {"adapt", "search"}
    for run in (parent, *children):
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.source.git.commit"] == head
        assert (
            run.data.tags["transfernas.params_hash"] == parent.data.tags["transfernas.params_hash"]
        )
    output = " ".join((result.stdout + result.stderr).split())
    for child in children:
        stage = child.info.run_name
        assert child.data.params[f"{stage}.budget"] == "12"  # the stage's own parameters
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id, stage)}
        assert f"{stage}/{stage}_history.parquet" in artifacts
        assert f"MLflow run {child.info.run_id}" in output
    assert not client.list_artifacts(parent.info.run_id, "adapt")


def test_adapt_refuses_a_checkpoint_of_another_space(chain):
    params = TRAINED_STAGES[2][1] + ",trained_task.space.channel_scale=0.5"
    result = _kedro(chain, "run", "--pipeline", "adapt", "--params", params)
    assert result.returncode != 0
    assert "the meta_train checkpoint was trained on space" in " ".join(result.stderr.split())


BASE_TINY = "subdatasets.image_sizes=[16],subdatasets.n_subdatasets=1"
BASE_STAGES = [
    ("subdatasets", BASE_TINY),
    (
        "meta_train",
        BASE_TINY + ",meta_train.searcher=base,meta_train.n_epochs=2,meta_train.base.channels=4,"
        "meta_train.base.inner_steps=2,meta_train.base.adapt_steps=3,"
        "meta_train.base.tasks_per_epoch=2",
    ),
    (
        "adapt",
        BASE_TINY + ",adapt.searcher=base,adapt.task=nb201,adapt.budget=2,"
        "adapt.target.n_classes=10",
    ),
]


def test_base_meta_trains_and_adapts_through_kedro(tmp_path_factory, nb201_200):
    """BASE: meta_train → adapt (cifar10-valid through a 10-class 16 px proxy), in MLflow."""
    project = _run_chain(_copy_project(tmp_path_factory.mktemp("base")), BASE_STAGES)
    manifest = json.loads((project / "data/06_models/meta_train_manifest.json").read_text())
    assert manifest["searcher"] == "base" and len(manifest["tasks"]) == 4
    client, run = _mlflow_run(project, "meta_train")
    for name in ("loss", "tau", "phi_entropy"):
        history = client.get_metric_history(run.info.run_id, f"meta_train.{name}")
        assert [m.step for m in history] == [0, 1]
    assert "meta_train/meta_checkpoint.pt" in {
        a.path for a in client.list_artifacts(run.info.run_id, "meta_train")
    }
    best = json.loads((project / "data/08_reporting/adapt_best.json").read_text())
    history = pd.read_parquet(project / "data/07_model_output/adapt_history.parquet")
    assert best["searcher"] == "base" and len(history) == 2
    assert best["test_acc_200epoch"] == nb201_200["cifar10"][best["arch_index"]]
    client, run = _mlflow_run(project, "adapt")
    curve = client.get_metric_history(run.info.run_id, "adapt.best_so_far")
    assert [m.step for m in curve] == [0, 1]


# (kedro's --params splits at every comma: lists of several values stay at their defaults)
COMPARE = (
    TRAINED + ",compare.training.epochs=1,compare.baselines=[resnet18],compare.match.rounds=1,"
    "compare.match.max_steps=3,compare.match.max_width=0.8"
)


@pytest.fixture(scope="module")
def compared(chain) -> Path:
    return _run_chain(chain, [("compare", COMPARE)])


def test_compare_outputs_and_a_child_run_per_model(compared):
    results = json.loads((compared / "data/08_reporting/compare_results.json").read_text())
    best = json.loads((compared / "data/08_reporting/adapt_best.json").read_text())
    models = [r["model"] for r in results["models"]]
    assert models == ["searched", "random_search", "resnet18"]
    assert results["models"][0]["arch"] == best["arch"] and results["num_classes"] == 40
    assert results["heldout_images"] == 400  # the sample's val/ folder: 40 classes × 10
    assert results["random_search"]["evaluations"] == best["evaluations"] == 4  # as adapt
    trace = results["models"][2]["latency_match"]["trace"]
    assert trace[0]["width"] == 0.05 and max(p["width"] for p in trace) <= 0.8
    md = (compared / "data/08_reporting/compare_results.md").read_text()
    assert "| searched (adapt) |" in md and "winner" in md
    png = compared / "data/08_reporting/compare_accuracy_latency.png"
    assert png.stat().st_size > 10_000
    client, run = _mlflow_run(compared, "compare")
    assert run.data.metrics["compare.searched.top1_mean"] == results["models"][0]["top1"]["mean"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "compare")}
    assert "compare/compare_results.json" in artifacts
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert sorted(c.data.tags["mlflow.runName"] for c in children) == sorted(
        f"compare/{m}" for m in models
    )
    for child in children:
        assert child.info.status == "FINISHED" and "top1_mean" in child.data.metrics
        curve = client.get_metric_history(child.info.run_id, "seed1.heldout_acc")
        assert [m.step for m in curve] == [0]


@pytest.mark.parametrize("broken", ["no_train", "empty_class"])
def test_a_bad_target_root_stops_with_exit_2_naming_the_folder(compared, tmp_path, broken):
    root = tmp_path / "mine"
    root.mkdir()
    folder = root / "train"
    if broken == "empty_class":
        sample = next((compared / "data/01_raw/imagenet_sample/train").iterdir())
        shutil.copytree(sample, folder / "a")
        (folder / "b").mkdir()
        folder = folder / "b"
    result = _kedro(compared, "run", "--pipeline", "adapt", "--params", f"target_root={root}")
    _assert_short_error(result, str(folder))


# export → detection → segmentation after the trained chain, shrunk to a few iterations
DOWNSTREAM = (
    "export_backbone.training.epochs=1,export_backbone.pretrain.image_size=32,"
    "export_backbone.latency.repeats=3,"
    "detection.schedule.max_iters=4,detection.schedule.checkpoint_interval=2,"
    "detection.schedule.warmup_iters=1,detection.schedule.log_interval=1,"
    "detection.latency.repeats=3,"
    "segmentation.schedule.max_iters=4,segmentation.schedule.checkpoint_interval=2,"
    "segmentation.schedule.warmup_iters=1,segmentation.schedule.log_interval=1,"
    "segmentation.latency.repeats=3"
)
DOWNSTREAM_STAGES = [(p, DOWNSTREAM) for p in ("export_backbone", "detection", "segmentation")]


@pytest.fixture(scope="module")
def downstream(chain) -> Path:
    return _run_chain(chain, DOWNSTREAM_STAGES)


@pytest.fixture(scope="module")
def detection_compared(compared, downstream) -> Path:
    return _run_chain(compared, [("detection_compare", DOWNSTREAM)])


def test_detection_side_by_side_with_the_latency_matched_resnet18(detection_compared):
    project = detection_compared
    results = json.loads((project / "data/08_reporting/detection_compare_results.json").read_text())
    matched = json.loads((project / "data/08_reporting/compare_results.json").read_text())
    width = next(r["width"] for r in matched["models"] if r["model"] == "resnet18")
    assert results["resnet18_width"] == width and results["iterations"] == 4
    assert [m["backbone"] for m in results["models"]] == ["searched", "resnet18"]
    assert all(len(m["per_seed"]) == 3 for m in results["models"])
    assert results["models"][1]["channels"][0] == max(1, round(64 * width))
    _, run = _mlflow_run(project, "detection_compare")
    assert "detection_compare.searched.map_mean" in run.data.metrics
    runs = project / "data/06_models/detection_compare/runs.jsonl"
    before = runs.read_text()
    again = _kedro(project, "run", "--pipeline", "detection_compare", "--params", DOWNSTREAM)
    assert again.returncode == 0 and runs.read_text() == before  # read back, not retrained


def test_explore_results_notebook_runs_on_the_results(downstream, tiny_run):
    """notebooks/explore_results.ipynb, executed as CI would, over the chain's and NB201's results."""
    (downstream / "notebooks").mkdir(exist_ok=True)
    nb = nbformat.read(ROOT / "notebooks/explore_results.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # committed clean
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(downstream / "notebooks")}},
    ).execute()
    text = ""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", out
            text += out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            text += str(out.get("data", {}).get("text/markdown", ""))
    assert "not written yet" not in text
    assert "catch-meta" in text and "cifar100" in text  # the NB201 table
    card = json.loads((downstream / "data/06_models/backbone/model_card.json").read_text())
    assert card["arch"] in text  # the backbone's card
    assert "export_backbone" in text and "latency" in text  # latencies read from MLflow
    assert any(o.get("data", {}).get("image/png") for c in nb.cells for o in c.get("outputs", []))


def test_export_backbone_outputs_and_mlflow(downstream):
    best = json.loads((downstream / "data/08_reporting/adapt_best.json").read_text())
    card = json.loads((downstream / "data/06_models/backbone/model_card.json").read_text())
    assert card["arch"] == best["arch"] and card["backbone"]["type"] == "TransferNASResNet"
    assert card["pretrain"]["image_size"] == 32 and card["params_m"] > 0
    snippet = (downstream / "data/06_models/backbone/backbone_config.py").read_text()
    assert "{{ fileDirname }}/backbone.pth" in snippet and best["arch"] in snippet
    client, run = _mlflow_run(downstream, "export_backbone")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "export_backbone")}
    assert {
        "export_backbone/backbone.pth",
        "export_backbone/backbone_config.py",
        "export_backbone/model_card.json",
        "export_backbone/model_card.md",
    } <= artifacts
    assert run.data.metrics["export_backbone.latency_ms"] > 0


@pytest.mark.parametrize(
    ("task", "score", "latency"),
    [
        ("detection", "coco.bbox_mAP", "latency_1333x800_ms"),
        ("segmentation", "mIoU", "latency_1024x1024_ms"),
    ],
)
def test_downstream_task_outputs_and_mlflow(downstream, task, score, latency):
    results = json.loads((downstream / f"data/08_reporting/{task}_results.json").read_text())
    assert results["iterations"] == 4 and results["train_device"] == "cpu"
    client, run = _mlflow_run(downstream, task)
    metrics = run.data.metrics
    assert 0 <= metrics[f"{task}.{score}"] <= 100 and metrics[f"{task}.{latency}"] > 0
    losses = client.get_metric_history(run.info.run_id, f"{task}.train.loss")
    assert [m.step for m in losses] == [1, 2, 3, 4]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, task)}
    assert {
        f"{task}/{task}_results.json",
        f"{task}/{task}_config.py",
        f"{task}/{task}_training.png",
    } <= artifacts


# MorphNet on the exported backbone (FLOPs at 224 px), then detection on its result
MORPHNET = (
    "morphnet.shrink.epochs=1,morphnet.retrain.epochs=1,morphnet.data.image_size=32,"
    "morphnet.budget.latency.repeats=3,morphnet.strength=1000"  # one short epoch must prune
)


@pytest.fixture(scope="module")
def morphnet_chain(downstream) -> Path:
    return _run_chain(downstream, [("morphnet", MORPHNET), ("detection_morphnet", DOWNSTREAM)])


def test_morphnet_resizes_the_backbone_and_detection_trains_on_it(morphnet_chain):
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.config import Config
    from mmseg.registry import MODELS as SEG_MODELS

    folder = morphnet_chain / "data/06_models/morphnet_backbone"
    card = json.loads((folder / "model_card.json").read_text())
    seed = json.loads((morphnet_chain / "data/06_models/backbone/model_card.json").read_text())
    m = card["morphnet"]
    assert card["arch"] == seed["arch"] and m["seed_widths"] == seed["widths"]
    assert m["budget"]["value"] == pytest.approx(m["seed_cost"])  # null: the seed's own FLOPs
    # within 2 % is the unit tests' (a net this narrow moves in coarser steps)
    assert 0.9 * m["budget"]["value"] <= m["final_cost"] <= m["budget"]["value"]
    assert m["widths"] != m["seed_widths"] and card["widths"] == m["widths"]
    assert card["backbone"]["widths"] == m["widths"]
    cfg = Config.fromfile(folder / "backbone_config.py")
    state = torch.load(folder / "backbone.pth", weights_only=True)
    for registry in (DET_MODELS, SEG_MODELS):
        model = registry.build(cfg.backbone)
        model.init_weights()
        for key, value in state.items():
            torch.testing.assert_close(model.state_dict()[key], value)
        with torch.no_grad():
            outs = model.eval()(torch.randn(1, 3, 64, 64))
        assert [o.shape[1] for o in outs] == card["out_channels"]
    client, run = _mlflow_run(morphnet_chain, "morphnet")
    assert run.data.metrics["morphnet.final_cost"] <= run.data.metrics["morphnet.budget"]
    curve = client.get_metric_history(run.info.run_id, "morphnet.round0.cost_fraction")
    assert [p.step for p in curve] == [0]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "morphnet")}
    assert {"morphnet/backbone.pth", "morphnet/model_card.md", "morphnet/morphnet_widths.png"} <= (
        artifacts
    )
    results = json.loads(
        (morphnet_chain / "data/08_reporting/morphnet_detection_results.json").read_text()
    )
    assert results["iterations"] == 4
    _, det = _mlflow_run(morphnet_chain, "detection_morphnet")
    assert 0 <= det.data.metrics["morphnet_detection.coco.bbox_mAP"] <= 100


@pytest.mark.parametrize(
    ("stage", "params", "score"),
    [
        (
            "search",
            "search.task=detection,search.searcher=random,search.budget=2,"
            "detection.search.schedule.max_iters=2,detection.search.target_ms=50",
            "coco.bbox_mAP",
        ),
        (
            "adapt",
            "adapt.task=segmentation,adapt.budget=2,segmentation.search.schedule.max_iters=2",
            "mIoU",
        ),
    ],
)
def test_search_on_detection_and_segmentation_tasks(chain, stage, params, score):
    """DetNAS-style: candidates trained as the detector's / segmenter's backbone."""
    params = TRAINED + "," + params
    result = _kedro(chain, "run", "--pipeline", stage, "--params", params)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    history = pd.read_parquet(chain / f"data/07_model_output/{stage}_history.parquet")
    best = json.loads((chain / f"data/08_reporting/{stage}_best.json").read_text())
    assert len(history) == 2 and (history["status"] == "ok").all()
    assert best["space"] == "resblock" and best["task"].split("/")[0] in params
    if stage == "search":  # R = mAP(%)·(LAT/50 ms)^-0.05
        expected = history["score"] * (history["latency_ms"] / 50) ** -0.05
        np.testing.assert_allclose(history["reward"], expected)
    else:
        np.testing.assert_allclose(history["reward"], history[score])


SHARED_ARCHIVE = external_data(ROOT) / "tiny-imagenet/tiny-imagenet-200-subset.tar.gz"


@pytest.mark.skipif(
    not SHARED_ARCHIVE.exists(), reason="needs the Tiny ImageNet subset (docs/data.md)"
)
def test_nasfpn_neck_search_through_kedro(tmp_path_factory):
    """NAS-FPN: REA searches the merge-cell neck over the fixed ResNet on a small mosaic
    detection set (the benchmark's set at 4 classes), selected with coco_root."""
    project = _copy_project(tmp_path_factory.mktemp("nasfpn"))
    coco = project / "data/01_raw/tiny_coco"
    build = [sys.executable, str(ROOT / "scripts/make_coco_sample.py"), "--data",
             str(SHARED_ARCHIVE.parents[1]), "--out", str(coco), "--classes", "4",
             "--train", "6", "--val", "3", "--grid", "2"]  # fmt: skip
    subprocess.run(build, check=True, capture_output=True)
    params = (
        f"coco_root={coco},search.task=detection,search.searcher=rea,search.budget=3,"
        "detection.search.space=nasfpn,detection.search.nasfpn.cells=5,"
        "detection.search.schedule.max_iters=2,detection.search.schedule.batch_size=2"
    )
    result = _kedro(project, "run", "--pipeline", "search", "--params", params)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    history = pd.read_parquet(project / "data/07_model_output/search_history.parquet")
    best = json.loads((project / "data/08_reporting/search_best.json").read_text())
    assert len(history) == 3 and (history["status"] == "ok").all()
    assert best["space"] == "nasfpn" and best["task"] == "detection/tiny_coco"
    space = NASFPNSpace(5)
    for arch, actions in zip(history["arch"], history["actions"], strict=True):
        assert space.encode(arch) == tuple(actions)  # the neck, readable, in the history
    assert (history["gflops"] > 0).all() and (history["latency_ms"] > 0).all()
    np.testing.assert_allclose(history["reward"], history["score"])  # no target: mAP alone
    client, run = _mlflow_run(project, "search")
    for key in ("search.reward", "search.score", "search.gflops", "search.latency_ms"):
        steps = client.get_metric_history(run.info.run_id, key)
        assert len(steps) == 3, key


def test_subdatasets_pipeline_builds_and_reuses(project):
    params = "subdatasets.n_subdatasets=2,subdatasets.image_sizes=[16]"
    result = _kedro(project, "run", "--pipeline", "subdatasets", "--params", params)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    manifests = json.loads((project / "data/03_primary/subdataset_manifests.json").read_text())
    assert len(manifests) == 2
    for m in manifests:
        folder = project / m["folder"]
        assert (folder / "train_images.npy").exists() and m["image_size"] == 16
        assert len(m["classes"]) in (10, 20, 30) and m["splits"]["val"]["n_images"] == 10 * len(
            m["classes"]
        )
    assert (project / "data/08_reporting/subdataset_contact_sheet.png").stat().st_size > 10_000
    client, run = _mlflow_run(project, "subdatasets")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "subdatasets")}
    assert {
        "subdatasets/subdataset_manifests.json",
        "subdatasets/subdataset_contact_sheet.png",
    } <= artifacts
    stamp = (project / manifests[0]["folder"] / "train_images.npy").stat().st_mtime_ns
    assert _kedro(project, "run", "--pipeline", "subdatasets", "--params", params).returncode == 0
    assert (
        project / manifests[0]["folder"] / "train_images.npy"
    ).stat().st_mtime_ns == stamp  # reused


def _free_port() -> int:
    """A free port below 49152: kedro-viz refuses ports in the ephemeral range."""
    for port in range(41000, 49000, 7):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for kedro viz")


def test_kedro_viz_lists_the_pipeline(project):
    port = _free_port()
    proc = subprocess.Popen(
        [KEDRO, "viz", "run", "--host", "127.0.0.1", "--port", str(port), "--no-browser"],
        cwd=project,
        stdout=open(project / "viz.log", "w"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,  # kedro viz serves from a child process: stop the whole group
        env=kedro_env(project),
    )
    try:
        deadline, data = time.monotonic() + 90, None
        while time.monotonic() < deadline and data is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/main", timeout=5) as resp:
                    data = json.load(resp)
            except OSError:
                assert proc.poll() is None, (project / "viz.log").read_text()[-2000:]
                time.sleep(0.5)
        assert data is not None, (
            "kedro viz did not answer: " + (project / "viz.log").read_text()[-2000:]
        )
        assert {"nb201_benchmark", "export_backbone", "__default__"} <= {
            p["id"] for p in data["pipelines"]
        }
        # the default pipeline is the whole CATCH chain, one connected lineage graph
        names = {n["id"]: n["name"] for n in data["nodes"]}
        assert {
            "build_subdatasets",
            "meta_train_agent",
            "adapt_agent",
            "export_backbone",
            "train_detector",
            "train_segmenter",
        } <= set(names.values())
        linked = {n: {n} for n in names}
        for edge in data["edges"]:
            merged = linked[edge["source"]] | linked[edge["target"]]
            for n in merged:
                linked[n] = merged
        assert len({frozenset(group) for group in linked.values()}) == 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


# zero-cost tasks on the NB201 cell space: meta_train → adapt, and search from scratch; the
# space is switched with --params over conf/base's resblock keys, as a user would
ZERO_COST_TINY = (
    "subdatasets.image_sizes=[16],subdatasets.n_subdatasets=1,trained_task.space.name=nb201,"
    "trained_task.space.channels=4,trained_task.space.cells=1,trained_task.training.epochs=1,"
    "trained_task.zero_cost.weights.params=2.0,trained_task.zero_cost.batch_size=16"
)
ZERO_COST_STAGES = [
    ("subdatasets", ZERO_COST_TINY),
    ("meta_train", ZERO_COST_TINY + ",meta_train.tasks=zero_cost,meta_train.n_epochs=2,"
     "meta_train.n_search=4"),
    ("adapt", ZERO_COST_TINY + ",adapt.task=zero_cost,adapt.budget=5"),
    ("search", ZERO_COST_TINY + ",search.task=zero_cost,search.searcher=rea,search.budget=5"),
]  # fmt: skip


def test_zero_cost_tasks_through_kedro(tmp_path_factory, nb201_200):
    project = _run_chain(_copy_project(tmp_path_factory.mktemp("zero_cost")), ZERO_COST_STAGES)
    manifest = json.loads((project / "data/06_models/meta_train_manifest.json").read_text())
    assert manifest["space"]["name"] == "nb201" and len(manifest["tasks"]) == 2
    rho = manifest["reward_spearman"]
    assert set(rho) == {f"{d}/{s}" for d in DATASETS for s in ("val12", "test200")}
    assert all(-1 <= v <= 1 for v in rho.values())
    client, run = _mlflow_run(project, "meta_train")
    history = client.get_metric_history(
        run.info.run_id, "meta_train.reward_spearman.ImageNet16-120.test200"
    )
    assert [m.value for m in history] == [pytest.approx(rho["ImageNet16-120/test200"])]
    # zero-cost rewards are checked against a training too (1 epoch × 4)
    fidelity = json.loads((project / "data/08_reporting/meta_train_fidelity.json").read_text())
    evaluations = pd.read_parquet(project / "data/07_model_output/meta_train_evaluations.parquet")
    last = evaluations[(evaluations["trial"] == 1) & (evaluations["status"] == "ok")]
    assert fidelity["reward"] == "zero_cost"
    assert fidelity["epochs"][0]["n"] == last["arch"].nunique()
    for stage, searcher in (("adapt", "catch-meta"), ("search", "rea")):
        best = json.loads((project / f"data/08_reporting/{stage}_best.json").read_text())
        history = pd.read_parquet(project / f"data/07_model_output/{stage}_history.parquet")
        assert len(history) == 5 and best["searcher"] == searcher
        assert best["space"] == "nb201" and best["zero_cost"]["batch_size"] == 16
        row = nb201_200[nb201_200["arch_str"] == best["arch"]].iloc[0]
        assert best["nb201_test_acc_200epoch"]["ImageNet16-120"] == row["ImageNet16-120"]
        # the reward is the configured weighted sum of the proxies' features (conf/base's
        # naswot + 0.82·synflow, and params added by --params)
        ok = history[history["degenerate"] == 0]
        expected = ok["naswot"] + 0.82 * np.log(ok["synflow"]) + 2.0 * np.log(ok["params"])
        np.testing.assert_allclose(ok["reward"], expected, rtol=1e-9)
        client, run = _mlflow_run(project, stage)
        curve = client.get_metric_history(run.info.run_id, f"{stage}.best_so_far")
        assert [m.step for m in curve] == list(range(5))


# the NASNet cell space on a 16 px sub-dataset, switched with --params over conf/base's
# resblock keys: CATCH meta-trains on it, adapts, and REA / CATCH-sfs search from scratch
NASNET_TINY = (
    "subdatasets.image_sizes=[16],subdatasets.n_subdatasets=1,trained_task.space.name=nasnet,"
    "trained_task.space.blocks=2,trained_task.space.channels=4,trained_task.training.epochs=1,"
    "trained_task.latency.repeats=3,meta_train.fidelity.n_archs=0"
)
NASNET_STAGES = [
    ("subdatasets", NASNET_TINY),
    ("meta_train", NASNET_TINY + ",meta_train.n_epochs=2,meta_train.n_search=2"),
    ("adapt", NASNET_TINY + ",adapt.budget=3"),
    ("search", NASNET_TINY + ",search.searcher=rea,search.budget=3"),
    ("search", NASNET_TINY + ",search.searcher=catch-sfs,search.budget=3"),
]


def test_nasnet_space_through_meta_train_adapt_and_search(tmp_path_factory):
    project = _run_chain(_copy_project(tmp_path_factory.mktemp("nasnet")), NASNET_STAGES)
    manifest = json.loads((project / "data/06_models/meta_train_manifest.json").read_text())
    assert manifest["space"] == {
        "name": "nasnet", "blocks": 2, "channels": 4, "cells": 1, "stages": 3
    }  # fmt: skip
    space = NASNetSpace(blocks=2)
    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs(
        [client.get_experiment_by_name("transfernas").experiment_id],
        "tags.mlflow.runName = 'search' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
    )
    assert [r.data.params["search.searcher"] for r in runs] == ["rea", "catch-sfs"]
    for run in runs:
        assert len(client.get_metric_history(run.info.run_id, "search.val_acc")) == 3
    for stage in ("adapt", "search"):
        best = json.loads((project / f"data/08_reporting/{stage}_best.json").read_text())
        history = pd.read_parquet(project / f"data/07_model_output/{stage}_history.parquet")
        assert best["space"] == "nasnet" and len(history) == 3
        assert (history["status"] == "ok").all() and (history["val_acc"] >= 0).all()
        for arch, actions in zip(history["arch"], history["actions"], strict=True):
            assert space.encode(arch) == tuple(actions)  # the genotype, readable
