"""Every CUDA path of the project, run briefly: what works on this GPU, and how fast.

Checks, each timed and recorded as ok / failed (with the error) so one broken path does not
hide the others:

* ``trained_evaluation`` — one candidate trained and evaluated by the trained task on the GPU
  (channels_last, the task's CUDA default; no AMP: the task trains in fp32);
* ``training_throughput`` — ``train_throughput.py``'s comparison on the GPU: our in-memory
  input path vs the torchvision ``DataLoader`` baseline, images/s and the GPU-busy share;
* ``latency`` — the searched network's batch-1 latency, eager vs replaying a captured CUDA
  graph, at the papers' input sizes (CATCH: 720×1080 classification, 800×1333 COCO,
  1024×1024 Cityscapes) and at 224×224;
* ``downstream`` — the default chain (sub-datasets → … → export → detection → segmentation)
  by ``kedro run`` on tiny settings in a scratch copy, candidates trained and timed on CUDA;
  mmengine trains the detector and segmenter on the GPU by itself (their `train_device`,
  metrics and latencies are read back from the results JSONs);
* ``ray_gpu`` — one evaluation as a Ray task holding ``num_gpus=1``.

Writes ``benchmarks/results/gpu_check.json`` (with the device name) and exits 1 if a check
failed. Without CUDA it says so and exits 0, writing nothing. ``--device cpu --out DIR`` runs
the same checks on the CPU (the CUDA-only parts are skipped): how the test suite keeps this
script working on machines without a GPU.

    make gpu-check        # = .venv/bin/python benchmarks/gpu_check.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests._kedro: the scratch-project helpers of the chaos test

from _results import write_results  # noqa: E402
from train_throughput import RESBLOCK_ARCH, run, sub_dataset  # noqa: E402

from transfernas.environment import device_name  # noqa: E402
from transfernas.executors import ExecutorConfig, RayExecutor  # noqa: E402
from transfernas.spaces import ResBlockSpace  # noqa: E402
from transfernas.tasks.latency import LatencyConfig, measure_latency  # noqa: E402
from transfernas.tasks.trained import (  # noqa: E402
    ImageData,
    RewardConfig,
    TrainedTask,
    TrainingConfig,
    use_channels_last,
)

PAPER_SIZES = {"classification": (720, 1080), "coco": (800, 1333), "cityscapes": (1024, 1024)}
Check = Callable[[argparse.Namespace], dict[str, Any]]
CHECKS: dict[str, Check] = {}


def check(fn: Check) -> Check:
    CHECKS[fn.__name__] = fn
    return fn


def _task(args: argparse.Namespace) -> tuple[TrainedTask, tuple[int, ...]]:
    """A trained task on a real 40-class, 32 px sub-dataset of the shipped sample."""
    images, labels = sub_dataset(32, 512 if args.quick else 4096)
    cut = len(images) * 4 // 5
    space = ResBlockSpace("basic", "small", 0.25)
    task = TrainedTask(
        "gpu-check",
        space,
        ImageData.from_arrays(images[:cut], labels[:cut]),
        ImageData.from_arrays(images[cut:], labels[cut:]),
        num_classes=40,
        training=TrainingConfig(epochs=1 if args.quick else 3, device=args.device),
        reward=RewardConfig(),
        latency=LatencyConfig(device=args.device, repeats=10),
    )
    return task, space.encode(RESBLOCK_ARCH)


@check
def trained_evaluation(args: argparse.Namespace) -> dict[str, Any]:
    task, actions = _task(args)
    evaluation = task.evaluate(actions)
    device = torch.device(args.device)
    return {
        "device": device_name(device),
        "channels_last": use_channels_last(task.training, device),
        "amp": False,
        "reward": evaluation.reward,
        "train_images_per_s": round(evaluation.metrics["train_images_per_s"]),
        "latency_ms": evaluation.metrics["latency_ms"],
        "seconds": round(evaluation.cost_s, 2),
    }


@check
def training_throughput(args: argparse.Namespace) -> dict[str, Any]:
    steps = {name: 2 for name in ("nb201-C4N1", "nb201-C8N1", "resblock-0.25", "nb201-C16N5")}
    rows = run(torch.device(args.device), [32], 1024 if args.quick else 4096, steps)
    return {"rows": rows}


@check
def latency(args: argparse.Namespace) -> dict[str, Any]:
    space = ResBlockSpace("basic", "imagenet", 1.0)
    torch.manual_seed(0)
    model = space.build(space.encode(RESBLOCK_ARCH), 1000)
    cuda = args.device.startswith("cuda")
    sizes = {"imagenet": (224, 224)} | ({} if args.quick else PAPER_SIZES)
    rows = []
    for label, size in sizes.items():
        base = LatencyConfig(input_size=size, device=args.device, warmup=10, repeats=50)
        eager = measure_latency(model, base)
        row = {"input": label, "size": list(size), "eager_ms": round(eager.median_ms, 3)}
        if cuda:  # a CUDA graph exists on CUDA only
            graph = measure_latency(model, base.model_copy(update={"cuda_graph": True}))
            row |= {
                "cuda_graph_ms": round(graph.median_ms, 3),
                "speedup": round(eager.median_ms / graph.median_ms, 2),
            }
        rows.append(row)
    return {"network": f"resblock {RESBLOCK_ARCH} (ImageNet stem)", "rows": rows}


@check
def downstream(args: argparse.Namespace) -> dict[str, Any]:
    from tests._kedro import KEDRO, TINY_CHAIN, copy_project, kedro_env

    device = {"device": args.device}
    params = json.loads(json.dumps(TINY_CHAIN))
    params["trained_task"]["training"] |= device
    params["trained_task"]["latency"] |= device
    params["export_backbone"]["training"] |= device
    params["export_backbone"]["latency"] |= device
    for stage in ("detection", "segmentation"):
        params[stage]["latency"] |= device
    with tempfile.TemporaryDirectory() as tmp:
        project = copy_project(Path(tmp) / "project")
        (project / "conf/local/parameters.yml").write_text(yaml.safe_dump(params))
        env = kedro_env(project) | {
            k: v for k, v in os.environ.items() if k.startswith(("CUDA", "LD_LIBRARY", "NVIDIA"))
        }
        start = time.perf_counter()
        done = subprocess.run(
            [KEDRO, "run"], cwd=project, env=env, capture_output=True, text=True, timeout=1800
        )
        seconds = time.perf_counter() - start
        log = done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"kedro run exited {done.returncode}:\n{log[-3000:]}")
        reports = {
            stage: json.loads((project / f"data/08_reporting/{stage}_results.json").read_text())
            for stage in ("detection", "segmentation")
        }
        return {
            "seconds": round(seconds, 1),
            "nodes_run": log.count("Running node:"),
            **{
                stage: {k: r[k] for k in ("train_device", "iterations", "metrics", "latency")}
                for stage, r in reports.items()
            },
        }


@check
def ray_gpu(args: argparse.Namespace) -> dict[str, Any]:
    task, actions = _task(args)
    gpus = 1 if args.device.startswith("cuda") else 0
    executor = RayExecutor(ExecutorConfig(kind="ray", num_gpus=gpus, local_cpus=2, max_retries=0))
    try:
        (outcome,) = list(executor.map(task, [actions]))
    finally:
        executor.close()
        executor.ray.shutdown()
    if outcome.evaluation is None:
        raise RuntimeError(outcome.error)
    return {"num_gpus": gpus, "reward": outcome.evaluation.reward}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda | cuda:N; cpu = dry run")
    parser.add_argument("--checks", nargs="+", default=list(CHECKS), choices=list(CHECKS))
    parser.add_argument("--quick", action="store_true", help="fewer images, 224 px only")
    parser.add_argument("--out", type=Path, help="default benchmarks/results (CUDA only)")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print(
            f"gpu-check: no CUDA device here (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda}): nothing checked, nothing written."
        )
        return 0
    if not cuda and args.out is None:
        parser.error("--device cpu is a dry run: give --out, the results are not a GPU's")
    out = args.out if args.out is not None else ROOT / "benchmarks/results"
    results: dict[str, Any] = {}
    for name in args.checks:
        print(f"gpu-check: {name} …", flush=True)
        start = time.perf_counter()
        try:
            results[name] = {"ok": True, **CHECKS[name](args)}
        except Exception:  # recorded: the point is to learn which paths fail
            results[name] = {"ok": False, "error": traceback.format_exc()[-4000:]}
        results[name]["wall_s"] = round(time.perf_counter() - start, 1)
        print(f"gpu-check: {name} {'ok' if results[name]['ok'] else 'FAILED'}", flush=True)
    payload = {
        "device": device_name(torch.device(args.device)),
        "quick": args.quick,
        "checks": results,
    }
    path = write_results(out, "gpu_check", payload, None)
    failed = [name for name, r in results.items() if not r["ok"]]
    print(f"gpu-check: wrote {path}; " + (f"FAILED: {', '.join(failed)}" if failed else "all ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
