"""`kedro run`'s short errors: a UserError exits 2 with its message, anything else keeps its
traceback; and the hook's helpers (git commit, parameter hash, stage descriptions)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError
from mlflow.tracking import MlflowClient

from transfernas import cli as project_cli
from transfernas.config import ParameterError
from transfernas.data.cityscapes import CityscapesLayoutError
from transfernas.data.coco import CocoFormatError
from transfernas.data.sources import SourceError
from transfernas.errors import UserError, user_error
from transfernas.hooks import git_commit, mark_killed_runs, params_hash, stage_description
from transfernas.search import ResumeMismatchError

from .conftest import ROOT


def _wrapped(error: Exception) -> DatasetError:
    """As Kedro raises a dataset's error: a DatasetError whose cause is the project's."""
    try:
        raise DatasetError("Failed while loading data from dataset imagenet_source") from error
    except DatasetError as wrapped:
        return wrapped


ERRORS = [
    ParameterError("invalid parameters:\n  adapt.budget: Input should be greater than 0"),
    _wrapped(SourceError("imagenet_root /data/in: neither an ImageNet tree nor batches")),
    CocoFormatError("data/coco/annotations.json: 'images' is missing"),
    CityscapesLayoutError("data/cityscapes/leftImg8bit/val: missing folder"),
    ResumeMismatchError("data/07_model_output/adapt_history.json was written by rea, not catch"),
]


@pytest.fixture
def fake_run(monkeypatch):
    """Replace the Kedro run the project's command wraps; the raised error is the parameter."""

    def use(error: BaseException):
        def raise_it(**kwargs):
            raise error

        monkeypatch.setattr(kedro_run, "callback", raise_it)
        monkeypatch.delenv(project_cli.TRACEBACK_ENV, raising=False)

    return use


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_user_error_exits_2_with_its_message(fake_run, error):
    fake_run(error)
    result = CliRunner().invoke(project_cli.cli, ["run", "--pipeline", "adapt"])
    assert result.exit_code == 2
    message = str(user_error(error))
    assert f"Error: {message}" in result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) <= 2 + len(
        message.splitlines()
    )


def test_verbose_and_the_env_var_keep_the_traceback(fake_run, monkeypatch):
    fake_run(ERRORS[0])
    result = CliRunner().invoke(project_cli.cli, ["run", "--verbose"])
    assert isinstance(result.exception, ParameterError) and result.exit_code == 1
    monkeypatch.setenv(project_cli.TRACEBACK_ENV, "1")
    result = CliRunner().invoke(project_cli.cli, ["run"])
    assert isinstance(result.exception, ParameterError)


def test_a_bug_keeps_its_traceback(fake_run):
    fake_run(_wrapped(ZeroDivisionError("division by zero")))
    result = CliRunner().invoke(project_cli.cli, ["run"])
    assert isinstance(result.exception, DatasetError) and result.exit_code == 1


def test_run_takes_kedros_options():
    names = {p.name for p in project_cli.cli.commands["run"].params}
    assert {p.name for p in kedro_run.params} | {"verbose"} == names


def test_user_error_follows_causes_and_contexts():
    try:
        try:
            raise SourceError("bad folder")
        except SourceError:
            raise RuntimeError("while loading") from None
    except RuntimeError as outer:
        assert user_error(outer) is None  # `from None` hides the cause on purpose
    inner = SourceError("bad folder")
    try:
        try:
            raise inner
        except SourceError:
            raise RuntimeError("while loading")  # noqa: B904 - the implicit context is the point
    except RuntimeError as outer:
        assert user_error(outer) is inner
    assert all(isinstance(e, ValueError | RuntimeError) for e in ERRORS[:1] + ERRORS[2:])
    assert issubclass(ResumeMismatchError, UserError)


def test_params_hash_is_stable_and_order_free():
    a = {"adapt": {"budget": 4, "seed": 0}, "search": {"dataset": "cifar100"}}
    b = {"search": {"dataset": "cifar100"}, "adapt": {"seed": 0, "budget": 4}}
    assert params_hash(a) == params_hash(b) and len(params_hash(a)) == 16
    assert params_hash(a) != params_hash({**a, "adapt": {"budget": 5, "seed": 0}})


def test_git_commit_of_the_checkout_and_outside_git(tmp_path: Path):
    commit = git_commit(ROOT)
    if (ROOT / ".git").exists():
        assert commit is not None and len(commit[0]) == 40
    assert git_commit(tmp_path) is None


def test_every_stage_has_a_description():
    stages = [
        p.name
        for p in (ROOT / "src/transfernas/pipelines").iterdir()
        if (p / "pipeline.py").exists()
    ]
    assert len(stages) >= 10
    for stage in stages:
        text = stage_description(stage)
        assert text and "kedro run" not in text and not text.endswith("."), (stage, text)


def test_runs_of_killed_processes_are_marked_killed(tmp_path: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.create_experiment("transfernas")
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now names no process
    runs = {
        name: client.create_run(exp, tags={"transfernas.host": host, "transfernas.pid": str(pid)})
        for name, host, pid in [
            ("killed", "here", gone.pid),
            ("running", "here", os.getppid()),
            ("elsewhere", "there", gone.pid),
            ("this process's", "here", os.getpid()),
            ("reused pid", "here", os.getpid()),  # a dead run's pid, now this process's
        ]
    }
    runs["untagged"] = client.create_run(exp)  # started before the hook tagged it: left alone
    own = frozenset([runs["this process's"].info.run_id])
    killed = mark_killed_runs(client, exp, "here", own)
    assert sorted(killed) == sorted(runs[k].info.run_id for k in ("killed", "reused pid"))
    status = {k: client.get_run(r.info.run_id).info.status for k, r in runs.items()}
    assert status == {
        "killed": "KILLED",
        "running": "RUNNING",
        "elsewhere": "RUNNING",
        "this process's": "RUNNING",
        "reused pid": "KILLED",
        "untagged": "RUNNING",
    }


def test_the_blocks_a_run_reads_are_checked_together_and_others_left_alone():
    from transfernas.pipelines.params import BLOCKS, validate_blocks

    every = {"adapt": {"budget": 0}, "executor": {"kind": "dask"}, "compare": {"seeds": "x"}}
    with pytest.raises(ParameterError) as caught:
        validate_blocks(["adapt", "executor", "imagenet_root"], every)
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid parameters:" and len(lines) == 3
    assert lines[1].startswith("  adapt.budget: ") and lines[2].startswith("  executor.kind: ")
    validate_blocks(["subdatasets", "search"], every)  # the defaults of blocks not given
    with pytest.raises(ParameterError, match=r"^invalid parameters:\n  nb201_benchmark\.searchers"):
        validate_blocks(["nb201_benchmark"], {"nb201_benchmark": {"searchers": {}}})
    assert {"detection", "segmentation", "meta_train", "nb201_benchmark"} <= BLOCKS.keys()


def test_a_project_error_inside_a_node_is_logged_once_by_the_cli():
    import logging

    from transfernas.pipelines.logs import shown

    def record(name: str, level: int, msg: str) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, msg, None, None)

    failed = record("kedro.pipeline.node", logging.ERROR, "Node %s failed with error: \n%s")
    for error, printed_by_kedro in [(ERRORS[1], False), (RuntimeError("bug"), True)]:
        try:
            raise error
        except Exception:
            assert shown(failed) is printed_by_kedro
    assert shown(failed)  # outside an except block: an ordinary error line
    assert not shown(
        record("kedro.runner.sequential_runner", logging.INFO, "Using synchronous mode")
    )
    assert shown(record("transfernas.hooks", logging.INFO, "adapt: searched"))
