"""Evaluation cache: reruns repeat latency-aware histories to the bit, foreign entries are never
used, torn writes are never read, and processes share it without duplicate or lost entries."""

from __future__ import annotations

import json
import multiprocessing as mp

import numpy as np
import pytest

from transfernas.evalcache import CacheParams, EvaluationCache
from transfernas.pipelines.search_nodes import cache_metrics
from transfernas.search import run_search
from transfernas.searchers import make_searcher
from transfernas.spaces import NB201Space
from transfernas.tasks import trained
from transfernas.tasks.latency import LatencyConfig
from transfernas.tasks.trained import RewardConfig, TrainedTask, TrainingConfig

from .conftest import learnable_images

SPACE = NB201Space(channels=4, cells=1)
TRAINING = TrainingConfig(epochs=1, batch_size=32, crop_padding=0, threads=1)


def _task(cache: EvaluationCache | None, training: TrainingConfig = TRAINING) -> TrainedTask:
    return TrainedTask(
        "toy",
        SPACE,
        learnable_images(48, 8, 3, 0),
        learnable_images(24, 8, 3, 1),
        3,
        training,
        RewardConfig(target_ms=0.5),  # latency-aware: the latency is in the reward
        LatencyConfig(input_size=(8, 8), repeats=3, warmup=1),
        seed=0,
        cache=cache,
    )


def _search(task: TrainedTask, budget: int = 6):
    return run_search(SPACE, task, make_searcher("catch-sfs", SPACE, None, seed=1), budget)


def _results(history) -> list[tuple]:
    return [(r["actions"], r["reward"], r["metrics"], r["cost_s"]) for r in history]


def test_a_cached_rerun_repeats_the_history_latency_included(tmp_path):
    first = _search(_task(EvaluationCache(tmp_path)))
    assert {r["cache_latency"] for r in first} == {"miss"}
    again_cache = EvaluationCache(tmp_path)  # another process, as after a kill
    again = _search(_task(again_cache))
    assert _results(again) == _results(first)  # bit for bit: floats compared exactly
    assert {r["cache_trained"] for r in again} == {r["cache_latency"] for r in again} == {"hit"}
    assert again_cache.stats["latency.hits"] == len(again)
    # what the cache stands for: a real measurement. Its fresh latencies change the rewards, so
    # the search may go elsewhere after its first update; a network both ran trains the same.
    uncached = _search(_task(None))
    trained_first = {tuple(r["actions"]): r["metrics"]["val_acc"] for r in first}
    both = [r for r in uncached if tuple(r["actions"]) in trained_first]
    assert both[0] is uncached[0]  # the same seed proposes the same first network
    assert all(r["metrics"]["val_acc"] == trained_first[tuple(r["actions"])] for r in both)
    assert all("cache_latency" not in r for r in uncached)


def test_another_training_config_or_device_is_never_read(tmp_path, monkeypatch):
    cache = EvaluationCache(tmp_path)
    actions = SPACE.sample(np.random.default_rng(0))
    with monkeypatch.context() as m:  # written by another machine into the same folder
        m.setattr(trained, "device_fingerprint", lambda d: {"device": "Other GPU", "torch": "0"})
        assert _task(cache).evaluate(actions).cached == {"trained": False, "latency": False}
    here = _task(EvaluationCache(tmp_path)).evaluate(actions)
    assert here.cached == {"trained": False, "latency": False}
    longer = _task(cache, TRAINING.model_copy(update={"epochs": 2})).evaluate(actions)
    assert longer.cached == {"trained": False, "latency": True}  # same network, same timing
    assert len(cache.path("trained").read_text().splitlines()) == 3
    assert len(cache.path("latency").read_text().splitlines()) == 2


def test_a_torn_or_corrupt_write_is_never_read_and_is_repaired(tmp_path):
    cache = EvaluationCache(tmp_path)
    cache.put("latency", "a", {"latency_ms": 1.0})
    path = cache.path("latency")
    good = json.loads(path.read_text())
    bad = dict(good, key="b", value={"latency_ms": 2.0})  # check no longer matches
    with open(path, "a") as f:
        f.write(json.dumps(bad) + "\n")
        f.write('{"key": "c", "value": {"latency_ms": 3.0}, "che')  # killed mid-append
    reader = EvaluationCache(tmp_path)
    assert reader.get("latency", "a") == {"latency_ms": 1.0}
    assert reader.get("latency", "b") is None and reader.get("latency", "c") is None
    assert reader.stats["corrupt"] == 1
    reader.put("latency", "c", {"latency_ms": 4.0})  # the next writer cuts the torn tail
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(line.endswith("}") for line in lines)
    assert EvaluationCache(tmp_path).get("latency", "c") == {"latency_ms": 4.0}


def _writer(folder: str, worker: int, queue) -> None:
    cache = EvaluationCache(folder)
    got = {}
    for i in range(150):  # keys 0..149 in both workers: every one contended
        key = str((i * 7 + worker * 50) % 150)
        got[key] = cache.put("latency", key, {"by": worker, "i": i})
    queue.put(got)


def test_two_processes_share_the_cache_without_duplicate_or_lost_entries(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, queue)) for w in (0, 1)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    keys = [
        json.loads(line)["key"] for line in (tmp_path / "latency.jsonl").read_text().splitlines()
    ]
    assert sorted(keys, key=int) == [str(i) for i in range(150)]  # each key once, none lost
    stored = {k: EvaluationCache(tmp_path).get("latency", k) for k in keys}
    assert results[0] == results[1] == stored  # both processes use the value stored first


def test_cache_params_default_to_the_environment_and_can_be_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERNAS_CACHE", str(tmp_path / "env"))
    assert CacheParams().build().folder == tmp_path / "env"
    assert CacheParams(dir=str(tmp_path / "x")).build().folder == tmp_path / "x"
    assert CacheParams(enabled=False).build() is None
    with pytest.raises(ValueError, match="enabled"):
        CacheParams(enabled="sometimes")


def test_hits_and_misses_become_mlflow_metrics(tmp_path):
    first = _search(_task(EvaluationCache(tmp_path)), budget=3).to_frame()
    again = _search(_task(EvaluationCache(tmp_path)), budget=4).to_frame()
    assert cache_metrics(first) == {
        "cache.trained.hits": {"step": 0, "value": 0.0},
        "cache.trained.misses": {"step": 0, "value": 3.0},
        "cache.latency.hits": {"step": 0, "value": 0.0},
        "cache.latency.misses": {"step": 0, "value": 3.0},
    }
    assert cache_metrics(again)["cache.trained.hits"]["value"] == 3.0
    assert cache_metrics(again)["cache.trained.misses"]["value"] == 1.0
