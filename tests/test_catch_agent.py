"""CATCH as a searcher: variants, per-task resets, meta-training (held-out data, resume, benefit)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from transfernas.benchmark import NB201BenchmarkConfig, meta_train_for
from transfernas.meta import meta_train, scheduled
from transfernas.search import ResumeMismatchError, run_search
from transfernas.searchers import make_searcher
from transfernas.tasks.tabular import COLUMNS_12, NB201Table, TabularTask

from ._kill_meta_target import POOL_ID
from ._kill_meta_target import tasks as meta_pool
from .conftest import NB201_DIR, ROOT

TABLE = str(NB201_DIR / "nb201_12epoch.parquet")


def _states_equal(a, b) -> bool:
    return all(torch.equal(a[net][k], b[net][k]) for net in a for k in a[net])


def test_variant_latents(table):
    task = TabularTask(table, "cifar100")
    for name, check in [
        ("catch-zero", lambda z, kl: torch.count_nonzero(z) == 0 and kl == 0),
        ("catch-random", lambda z, kl: torch.count_nonzero(z) == len(z) and kl == 0),
        ("catch-meta", lambda z, kl: kl > 0),
    ]:
        agent = make_searcher(name, task.space, None, seed=0)
        run_search(task.space, task, agent, 6)
        z, kl = agent._z(agent._normalised())
        assert check(z, kl.item()), name


def test_begin_task_resets_task_state_but_keeps_networks(table):
    task = TabularTask(table, "cifar100")
    agent = make_searcher("catch-meta", task.space, None, seed=0)
    run_search(task.space, task, agent, 10)
    weights = {k: v.clone() for k, v in agent.network_state()["controller"].items()}
    assert (
        agent.epsilon < agent.config.epsilon_start
        and len(agent.reward_rows) == len(agent.evaluated) == 10
    )
    agent.begin_task()
    assert agent.epsilon == agent.config.epsilon_start
    assert not len(agent.reward_rows) and not agent.evaluated and len(agent.replay) == 0
    assert all(torch.equal(weights[k], v) for k, v in agent.network_state()["controller"].items())


def test_never_reevaluates_a_network_on_a_task(table):
    task = TabularTask(table, "ImageNet16-120")
    history = run_search(task.space, task, make_searcher("catch-sfs", task.space, None, seed=3), 80)
    archs = [r["arch"] for r in history]
    assert len(set(archs)) == len(archs)


def _poisoned(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    out = df.copy()
    rng = np.random.default_rng(0)
    for col in COLUMNS_12[dataset]:
        out[col] = rng.uniform(0, 100, size=len(df))
    return out


def test_held_out_table_is_never_read(nb201_12):
    """Meta-training for target D gives the same networks whatever D's columns contain."""
    config = NB201BenchmarkConfig(meta={"n_epochs": 3, "n_search": 12})
    clean = meta_train_for(NB201Table.from_frame(nb201_12), config, "catch-meta", "cifar10-valid")
    poisoned_frame = _poisoned(nb201_12, "cifar10-valid")
    poisoned = meta_train_for(
        NB201Table.from_frame(poisoned_frame), config, "catch-meta", "cifar10-valid"
    )
    assert _states_equal(clean, poisoned)
    other = meta_train_for(
        NB201Table.from_frame(_poisoned(nb201_12, "cifar100")),
        config,
        "catch-meta",
        "cifar10-valid",
    )
    assert not _states_equal(clean, other)  # ...while the training tables do matter


def test_held_out_columns_are_absent_from_the_training_table(table):
    train = table.without("ImageNet16-120")
    assert train.datasets == ["cifar10-valid", "cifar100"]
    with pytest.raises(KeyError, match="held out"):
        TabularTask(train, "ImageNet16-120")


def _uninterrupted(n_epochs=4, n_search=12):
    pool = meta_pool(TABLE, slow=False)
    agent = make_searcher("catch-meta", pool[0].space, None, seed=5)
    curves, _ = meta_train(
        pool[0].space, agent, scheduled(pool, n_epochs, 5), n_epochs, n_search, pool=POOL_ID
    )
    return agent, curves


def test_meta_training_sigkill_then_resume_equals_uninterrupted(tmp_path):
    reference, ref_curves = _uninterrupted()
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests._kill_meta_target", TABLE, str(tmp_path)], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 120
    # kill inside the second meta-epoch, after the first one was checkpointed
    while time.monotonic() < deadline:
        epoch1 = tmp_path / "epoch_0001.jsonl"
        if (
            (tmp_path / "meta.pt").exists()
            and epoch1.exists()
            and epoch1.read_text().count("\n") >= 5
        ):
            break
        assert proc.poll() is None, "meta-training ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    pool = meta_pool(TABLE, slow=False)
    calls = []
    for task in pool:
        real = task.evaluate
        task.evaluate = lambda a, real=real: calls.append(a) or real(a)
    agent = make_searcher("catch-meta", pool[0].space, None, seed=5)
    curves, records = meta_train(
        pool[0].space, agent, scheduled(pool, 4, 5), 4, 12, pool=POOL_ID, workdir=tmp_path
    )
    assert _states_equal(agent.network_state(), reference.network_state())
    assert [c["best_reward"] for c in curves] == [c["best_reward"] for c in ref_curves]
    finished = sum((tmp_path / f"epoch_{e:04d}.jsonl").read_text().count("\n") for e in range(4))
    assert finished == 4 * 12  # every evaluation on disk exactly once
    assert [(r["trial"], r["step"]) for r in records] == [
        (e, s) for e in range(4) for s in range(12)
    ]
    assert len(calls) < 3 * 12  # the first meta-epoch and part of the second were not redone


def test_meta_training_transfers(table):
    """Meta-trained on cifar100 + ImageNet16-120, CATCH beats search-from-scratch on cifar10."""
    config = NB201BenchmarkConfig(meta={"n_epochs": 12, "n_search": 40})
    pretrained = meta_train_for(table, config, "catch-meta", "cifar10-valid")
    task = TabularTask(table, "cifar10-valid")
    best = {"catch-meta": [], "catch-sfs": []}
    for seed in range(6):
        for name in best:
            agent = make_searcher(name, task.space, None, seed=30000 + seed)
            if name == "catch-meta":
                agent.load_network_state(pretrained)
            best[name].append(max(run_search(task.space, task, agent, 25).rewards()))
    assert np.mean(best["catch-meta"]) > np.mean(best["catch-sfs"])
    assert task.optimum_reward - np.mean(best["catch-meta"]) < 0.5


def test_meta_train_stage_never_reads_the_target(nb201_12):
    from transfernas.searchers.catch import CatchConfig
    from transfernas.stages import MetaTrainParams, StageInputs, run_meta_training

    params = MetaTrainParams(
        tasks="nb201", n_epochs=2, n_search=8, datasets=["cifar100", "ImageNet16-120"]
    )
    clean, _, _ = run_meta_training(params, CatchConfig(), StageInputs(nb201_12))
    poisoned, _, _ = run_meta_training(
        params, CatchConfig(), StageInputs(_poisoned(nb201_12, "cifar10-valid"))
    )
    assert _states_equal(clean["networks"], poisoned["networks"])
    assert clean["tasks"] == ["nb201/cifar100", "nb201/ImageNet16-120"]


def test_meta_train_refuses_a_searcher_that_cannot_be_meta_trained(table):
    task = TabularTask(table, "cifar100")
    with pytest.raises(TypeError, match="'rea' is not a meta-learner"):
        meta_train(
            task.space, make_searcher("rea", task.space, None, 0), lambda e: task, 1, 5, pool=[]
        )


def test_meta_train_resumed_with_another_task_pool_is_refused(table, tmp_path):
    """A resume mismatch is the project's error (exit 2 from `kedro run`), not a bare ValueError."""
    task = TabularTask(table, "cifar100")

    def run(pool: list[str]) -> None:
        agent = make_searcher("catch-meta", task.space, None, 0)
        meta_train(task.space, agent, lambda e: task, 1, 3, pool=pool, workdir=tmp_path)

    run(["nb201/cifar100"])
    with pytest.raises(ResumeMismatchError, match=r"meta\.pt is for .* not "):
        run(["nb201/ImageNet16-120"])
