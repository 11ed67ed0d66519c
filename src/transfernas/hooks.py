"""Kedro hooks: parameters checked first, quiet logs, MLflow run tags, one child run per stage of
a chained run, one log line per stage.

``ValidateFirst`` checks every parameter block the run's nodes read before anything starts;
``QuietLogs`` filters the log lines no one acts on. kedro-mlflow opens one run per
``kedro run``, named after the pipeline. ``RunTracking`` tags it with what makes a run
reproducible (git commit, a hash of the parameters, the machine), sets the experiment's kind
tag (MLflow 3's UI still opens the GenAI view: ``make mlflow-ui`` prints the URL of the
model-training view), and — when a run covers several stages, as the
default chain does — gives each stage a nested child run named after it, so a stage's
artifacts, metrics and parameters sit together under the one parent. When a stage's last node
is done it logs one line: what the stage did, the files it wrote and its MLflow run id.
A run whose process was killed (``kill -9``, a crash) stays RUNNING in MLflow; the next run on
the same host marks it KILLED.
"""

from __future__ import annotations

import ast
import logging
import os
import platform
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines as registered
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from mlflow.tracking import MlflowClient

from transfernas.digest import json_digest
from transfernas.environment import machine_info
from transfernas.pipeline_registry import CHAIN
from transfernas.pipelines.logs import shown
from transfernas.pipelines.params import validate_blocks

log = logging.getLogger(__name__)

EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
MAX_PARAM = 6000  # MLflow's limit on a parameter value; longer ones become tags


def git_commit(project: Path) -> tuple[str, bool] | None:
    """The checked-out commit and whether the work tree differs from it; None outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head, bool(dirty)


def params_hash(parameters: dict[str, Any]) -> str:
    """A short digest of every parameter: two runs with the same hash ran the same config."""
    return json_digest(parameters, length=16)


def machine() -> str:
    """The host and the hardware benchmarks record (``environment.machine_info``), one line."""
    info = machine_info()
    gpu = info.get("cuda_device", "no GPU")
    return f"{platform.node()} · {info['cpu']} · {info['cpu_count']} CPUs · {gpu}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return pid != os.getpid()  # this process's pid on another run: a dead one's, reused


def mark_killed_runs(
    client: MlflowClient, experiment_id: str, host: str, own: frozenset[str] = frozenset()
) -> list[str]:
    """Runs started on ``host`` by a process that is gone but which MLflow still shows RUNNING
    (killed before kedro-mlflow could end them): marked KILLED. Returns their ids. ``own``:
    this process's live runs, never marked (another run with this pid is a dead one's)."""
    stale = [
        run.info.run_id
        for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'")
        if run.info.run_id not in own
        and run.data.tags.get("transfernas.host") == host
        and "transfernas.pid" in run.data.tags  # untagged: it died before its first node
        and not _alive(int(run.data.tags["transfernas.pid"]))
    ]
    for run_id in stale:
        client.set_terminated(run_id, "KILLED")
    return stale


def stage_description(stage: str) -> str:
    """The stage's one-line summary: its pipeline module's docstring after the command."""
    path = Path(__file__).parent / "pipelines" / stage / "pipeline.py"
    doc = ast.get_docstring(ast.parse(path.read_text())) if path.exists() else None
    first = (doc or stage).splitlines()[0]
    return first.split(": ", 1)[-1].rstrip(".")


def _stage_of_nodes(pipeline: Pipeline, names: list[str]) -> dict[str, str]:
    """Node name → its stage in this run: one of the pipelines the run was asked for, the
    default one read as its chain of stages (a node shared by several pipelines, as
    ``detection`` and ``detection_morphnet`` share theirs, belongs to the one that was run)."""
    stages = [s for name in names for s in (CHAIN if name == "__default__" else (name,))]
    owner: dict[str, str] = {}
    for stage in stages:
        if stage in registered:
            for node in registered[stage].nodes:
                owner.setdefault(node.name, stage)
    return {node.name: owner.get(node.name, "+".join(names)) for node in pipeline.nodes}


def _flat_params(inputs: dict[str, Any]) -> dict[str, str]:
    """A node's ``params:`` inputs as MLflow parameters, nested keys joined with dots."""
    values = {k.removeprefix("params:"): v for k, v in inputs.items() if k.startswith("params:")}
    if not values:
        return {}
    return {k: str(v) for k, v in pd.json_normalize(values, sep=".").iloc[0].items()}


def run_parameters(catalog) -> dict[str, Any]:
    """Every parameter of the run (``--params`` applied), read without the catalog's log line."""
    dataset = catalog.get("parameters")
    return dataset.load() if dataset is not None else {}


class QuietLogs:
    """Puts ``pipelines.logs.shown`` on the log handlers before anything logs (the earliest
    hook; Kedro's logging file cannot name a project filter)."""

    @hook_impl(tryfirst=True)
    def after_context_created(self) -> None:
        for handler in logging.getLogger().handlers:
            if shown not in handler.filters:
                handler.addFilter(shown)


class ValidateFirst:
    """Validates the parameter blocks the run's nodes read before any other hook or node runs:
    a bad value stops ``kedro run`` (exit 2, ``cli``) before a dataset is loaded, an MLflow run
    is opened or a state folder is made. Registered first in ``settings.HOOKS``."""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, pipeline: Pipeline, catalog) -> None:
        keys = {
            name.removeprefix("params:").split(".")[0]
            for node in pipeline.nodes
            for name in node.inputs
            if name.startswith("params:")
        }
        validate_blocks(keys, run_parameters(catalog))


class RunTracking:
    """See the module docstring; registered in ``settings.HOOKS``.

    The child runs share MLflow's fluent run stack with kedro-mlflow, which re-activates the
    pipeline's run before every node: this hook activates the stage's child after it
    (``trylast``), closes the last child before kedro-mlflow closes the parent (``tryfirst``),
    and after a failure restores the status of the stages that had finished (kedro-mlflow marks
    every run on the stack failed).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Forget the previous run (one hook object serves every run of a session)."""
        self._stage: dict[str, str] = {}
        self._outputs: dict[str, set[str]] = {}
        self._left: Counter[str] = Counter()
        self._children: dict[str, str] = {}
        self._ended: dict[str, int] = {}
        self._current: str | None = None
        self._parent: str | None = None
        self._tags: dict[str, str] = {}
        self._project = Path.cwd()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        self._reset()
        self._project = Path(run_params.get("project_path") or Path.cwd())
        names = list(run_params.get("pipeline_names") or ["__default__"])
        self._stage = _stage_of_nodes(pipeline, names)
        self._left = Counter(self._stage.values())
        for node in pipeline.nodes:
            self._outputs.setdefault(self._stage[node.name], set()).update(node.outputs)
        self._tags = {
            "transfernas.machine": machine(),
            "transfernas.host": platform.node(),
            "transfernas.pid": str(os.getpid()),
        }
        if "parameters" in catalog:
            self._tags["transfernas.params_hash"] = params_hash(run_parameters(catalog))
        commit = git_commit(self._project)
        if commit is not None:
            self._tags["mlflow.source.git.commit"] = commit[0]
            self._tags["transfernas.git_dirty"] = str(commit[1]).lower()

    @property
    def _chained(self) -> bool:
        return len(self._left) > 1

    @hook_impl(trylast=True)
    def before_node_run(self, node: Node, inputs: dict[str, Any]) -> None:
        run = mlflow.active_run()
        if run is None:  # tracking switched off for this pipeline
            return
        if self._parent is None:
            self._parent = run.info.run_id
            mlflow.set_tags(self._tags)
            client = MlflowClient()
            client.set_experiment_tag(run.info.experiment_id, *EXPERIMENT_KIND)
            killed = mark_killed_runs(
                client, run.info.experiment_id, platform.node(), frozenset([self._parent])
            )
            if killed:
                log.info("MLflow: %d run(s) of killed processes marked KILLED", len(killed))
        if not self._chained:
            return
        stage = self._stage[node.name]
        if self._current not in (None, stage):
            MlflowClient().set_terminated(self._children[self._current])
        self._current = stage
        if stage in self._children:
            mlflow.start_run(run_id=self._children[stage], nested=True)
        else:
            child = mlflow.start_run(run_name=stage, nested=True, tags=self._tags)
            self._children[stage] = child.info.run_id
        for key, value in _flat_params(inputs).items():
            if len(value) <= MAX_PARAM:
                mlflow.log_param(key, value)
            else:
                mlflow.set_tag(f"param.{key}", value[:MAX_PARAM])

    @hook_impl
    def after_node_run(self, node: Node, catalog) -> None:
        stage = self._stage.get(node.name)
        if stage is None:
            return
        self._left[stage] -= 1
        if self._left[stage] == 0:
            self._ended[stage] = int(time.time() * 1000)
            self._log_stage(stage, catalog)

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        run = mlflow.active_run()
        if run is not None and run.info.run_id == self._children.get(self._current or ""):
            mlflow.end_run()  # the last stage's child; kedro-mlflow then ends the parent

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        client = MlflowClient()
        for stage, run_id in self._children.items():
            if stage in self._ended:
                client.set_terminated(run_id, "FINISHED", end_time=self._ended[stage])

    def _log_stage(self, stage: str, catalog) -> None:
        paths = []
        for name in sorted(self._outputs.get(stage, ())):
            filepath = getattr(catalog.get(name), "_filepath", None) if name in catalog else None
            if filepath is not None:
                path = Path(str(filepath))
                if path.is_absolute() and path.is_relative_to(self._project):
                    path = path.relative_to(self._project)
                paths.append(str(path))
        run_id = self._children.get(stage, self._parent) or "off"
        where = ", ".join(paths) if paths else "no files"
        log.info("%s: %s → %s · MLflow run %s", stage, stage_description(stage), where, run_id)
