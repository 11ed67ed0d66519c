"""Benchmark maths on hand-made trials, and the trial runner's determinism and resume."""

import numpy as np
import pandas as pd
import pytest

from transfernas.benchmark import NB201BenchmarkConfig, best_so_far, run_trials, summarize
from transfernas.executors import ExecutorConfig
from transfernas.tasks.tabular import TabularTask


def _evals(task, trials):
    rows = []
    for t, idxs in enumerate(trials):
        for s, i in enumerate(idxs):
            rows.append(
                {
                    "dataset": task.dataset,
                    "method": "m",
                    "trial": t,
                    "seed": t,
                    "step": s,
                    "arch_index": i,
                    "reward": task.val[i],
                    "test_acc": task.test[i],
                }
            )
    return pd.DataFrame(rows)


def test_summary_on_known_trials(table, nb201_200):
    task = TabularTask(table, "cifar10-valid")
    order = np.argsort(-task.val, kind="stable")
    opt, third, poor, worst = order[0], order[2], order[100], order[-1]
    ev = _evals(task, [[worst, opt], [third, worst], [poor, worst]])
    res = summarize(ev, table, nb201_200, n_resamples=200).iloc[0]
    assert res.n_trials == 3 and res.budget == 2 and res.optimum_hits == 1
    assert res.optimum_hit_rate == pytest.approx(1 / 3)
    assert res.top5_hit_rate == pytest.approx(2 / 3)
    regrets = task.optimum_reward - task.val[[opt, third, poor]]
    assert res.regret_mean == pytest.approx(regrets.mean())
    assert res.regret_median == pytest.approx(np.median(regrets))
    assert res.regret_mean_ci_low <= res.regret_mean <= res.regret_mean_ci_high
    assert res.test200_mean == pytest.approx(
        nb201_200["cifar10"].to_numpy()[[opt, third, poor]].mean()
    )


def test_best_so_far_is_running_max(table):
    task = TabularTask(table, "cifar100")
    ev = _evals(task, [[5, 9000, 7], [100, 3, 10000]])
    curve = best_so_far(ev)
    per_trial = np.maximum.accumulate(task.val[[[5, 9000, 7], [100, 3, 10000]]], axis=1)
    assert np.allclose(curve["mean"], per_trial.mean(axis=0))
    assert (np.diff(curve["median"]) >= 0).all()


def _config(**kw):
    base = {"methods": ["random", "rea"], "datasets": ["cifar100"], "n_trials": 4, "budget": 12}
    return NB201BenchmarkConfig(**(base | kw))


def test_trials_are_deterministic_and_seeded(table):
    a = run_trials(table, _config(), progress=False)
    b = run_trials(table, _config(), progress=False)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 2 * 4 * 12
    assert a.groupby(["method", "trial"])["seed"].first().tolist() == [0, 1, 2, 3] * 2
    c = run_trials(table, _config(seed=100), progress=False)
    assert not a["arch_index"].equals(c["arch_index"])


def test_trial_log_resumes_and_extends(table, tmp_path, monkeypatch):
    small = run_trials(table, _config(trial_log_dir=str(tmp_path)), progress=False)
    import transfernas.benchmark as bm

    calls = []
    real = bm.run_trial
    monkeypatch.setattr(bm, "run_trial", lambda *a: calls.append(a[2:5]) or real(*a))
    big = run_trials(table, _config(n_trials=6, trial_log_dir=str(tmp_path)), progress=False)
    assert sorted(calls) == sorted(
        (d, m, t) for d in ["cifar100"] for m in ["random", "rea"] for t in (4, 5)
    )
    assert big[big.trial < 4].reset_index(drop=True).equals(small)
    pd.testing.assert_frame_equal(big, run_trials(table, _config(n_trials=6), progress=False))


def test_meta_trained_states_are_keyed_by_what_meta_training_reads(table, tmp_path):
    """nb201_all runs one meta-training for several budgets: the state is reused."""
    config = _config(
        methods=["catch-meta"], n_trials=1, budget=6, meta={"n_epochs": 1, "n_search": 4}
    )
    config = config.model_copy(update={"trial_log_dir": str(tmp_path)})
    run_trials(table, config, progress=False)
    (state,) = tmp_path.glob("meta-catch-meta-*.pt")
    written = state.stat().st_mtime_ns
    run_trials(table, config.model_copy(update={"budget": 8, "seed": 50}), progress=False)
    assert list(tmp_path.glob("meta-catch-meta-*.pt")) == [state]
    assert state.stat().st_mtime_ns == written  # read, not meta-trained again
    longer = config.meta.model_copy(update={"n_search": 5})
    run_trials(table, config.model_copy(update={"meta": longer}), progress=False)
    assert len(list(tmp_path.glob("meta-catch-meta-*.pt"))) == 2


def test_parallel_workers_give_the_same_frame(table):
    """Serial trials run on one thread like a worker's: CATCH's 80%-of-memory batches reduce
    differently on two threads, and a trial's history would depend on how it was run."""
    config = _config(methods=["reinforce", "rea", "catch-sfs"], n_trials=2, budget=60)
    serial = run_trials(table, config, progress=False)
    parallel = run_trials(table, config.model_copy(update={"n_workers": 2}), progress=False)
    pd.testing.assert_frame_equal(serial, parallel)


@pytest.mark.slow
def test_trials_on_ray_are_the_process_pools(table, tmp_path):
    """Trials and leave-one-out meta-trainings as Ray tasks: the same frame and trial log."""
    config = _config(
        methods=["rea", "catch-meta"],
        n_trials=2,
        budget=6,
        n_workers=2,
        meta={"n_epochs": 2, "n_search": 6},
    )
    pool = run_trials(
        table, config.model_copy(update={"trial_log_dir": str(tmp_path / "pool")}), progress=False
    )
    on_ray = config.model_copy(update={"trial_log_dir": str(tmp_path / "ray")})
    try:
        ray_frame = run_trials(
            table, on_ray, executor=ExecutorConfig(kind="ray", local_cpus=2), progress=False
        )
    finally:
        import ray

        ray.shutdown()
    pd.testing.assert_frame_equal(pool, ray_frame)
    logs = [
        sorted((tmp_path / kind / "trials.jsonl").read_text().splitlines())
        for kind in ("pool", "ray")
    ]
    assert logs[0] == logs[1] and len(logs[0]) == 2 * 2
    assert len(list((tmp_path / "ray").glob("meta-catch-meta-*.pt"))) == 1


def test_near_tied_optimum_counts_as_hit(table, nb201_200):
    """cifar100's two best cells differ by 7e-8 points (float32 noise): both are optimum hits."""
    task = TabularTask(table, "cifar100")
    first, second = np.argsort(-task.val, kind="stable")[:2]
    assert 0 < task.val[first] - task.val[second] < 1e-6
    res = summarize(
        _evals(task, [[5, second], [first, 5]]), table, nb201_200, n_resamples=200
    ).iloc[0]
    assert res.optimum_hits == 2
    assert res.evals_to_optimum_median == 1.5  # found at evaluation 2 and 1
