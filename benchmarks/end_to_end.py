"""The payoff, end to end: meta-train on ImageNet sub-datasets, adapt to classes the project
never saw, and compare the found network with latency-matched baselines on a held-out split.

- Source (meta-training): the embedded ImageNet sample (``data/01_raw/imagenet_sample``, 40
  classes), sub-datasets of 10/20/30 classes at 16 px as the default chain builds them.
- Target: ``--classes`` Tiny-ImageNet classes of the 150-class archive (``--data``, docs/data.md)
  that are not in the embedded sample, as a user's own tree (``train/<class>`` with its 100
  images, ``val/<class>`` with its 50): the search rewards on a seeded 20 % of ``train/``,
  the comparison reports on ``val/``, which no search evaluation reads.
- Stages, each through the same core functions as its Kedro node: subdatasets, meta_train
  (CATCH, ``--meta-epochs`` × 8 trained evaluations), adapt (``--budget`` evaluations), compare
  (random search at the same budget; resnet18 / mobilenet_v3_small latency-matched; every
  model ``--epochs`` epochs × ``--seeds`` seeds).
Every stage keeps its durable state under ``--workdir``: a rerun resumes and skips what is done.
Writes ``benchmarks/results/end_to_end.{json,md}`` and ``end_to_end.png``.

    .venv/bin/python benchmarks/end_to_end.py [--classes 50 --budget 16 --seeds 4 --epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import yaml
from _data import add_data_option, tiny_imagenet
from _nb201 import ROOT, base_params
from _results import write_results

from transfernas.compare import CompareParams, markdown, run_comparison
from transfernas.config import validate_searchers
from transfernas.data.build import SubdatasetParams, build_subdataset, make_specs
from transfernas.data.sources import ImageFolderSource
from transfernas.executors import ExecutorConfig
from transfernas.plots import compare_figure
from transfernas.stages import (
    MetaTrainParams,
    StageInputs,
    TargetSearchParams,
    best_architecture,
    run_meta_training,
    run_target_search,
    stage_searcher_config,
)
from transfernas.tasks.subdataset import TrainedTaskParams

SAMPLE = ROOT / "data/01_raw/imagenet_sample"


def target_tree(tiny: ImageFolderSource, n: int, seed: int, root: Path) -> list[str]:
    """``n`` archive classes that the embedded sample lacks, linked as ``train/`` + ``val/``."""
    seen = set(ImageFolderSource(SAMPLE).classes)
    unseen = [c for c in tiny.classes if c not in seen]
    classes = sorted(np.random.default_rng(seed).choice(unseen, size=n, replace=False).tolist())
    for split in ("train", "val"):
        for wnid in classes:
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for path in tiny.files(split, wnid):
                link = folder / path.name
                if not link.exists():
                    os.symlink(path.resolve(), link)
    return classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--workdir", type=Path, default=ROOT / "data/07_model_output/end_to_end")
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--meta-epochs", type=int, default=4)
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    target_root = work / "target"
    classes = target_tree(tiny_imagenet(args.data, work), args.classes, 0, target_root)

    sub = SubdatasetParams(**base_params("subdatasets") | {"out_dir": str(work / "subdatasets")})
    trained = TrainedTaskParams(**base_params("trained_task"))
    executor = ExecutorConfig(
        **yaml.safe_load((ROOT / "conf/base/parameters_trained_task.yml").read_text())["executor"]
    )
    settings = validate_searchers(base_params("searchers"))
    inputs = StageInputs(
        source=ImageFolderSource(SAMPLE), subdatasets=sub, trained_task=trained, executor=executor
    )
    wall: dict[str, float] = {}

    start = time.perf_counter()
    for spec in make_specs(inputs.source, sub):
        build_subdataset(spec, sub.out_dir, workers=sub.workers, chunk_size=sub.chunk_size)
    wall["subdatasets"] = time.perf_counter() - start

    start = time.perf_counter()
    meta = MetaTrainParams(
        **base_params("meta_train")
        | {"n_epochs": args.meta_epochs, "workdir": str(work / "meta_train")}
    )
    checkpoint, curves, _ = run_meta_training(
        meta, stage_searcher_config(settings, meta.searcher), inputs
    )
    wall["meta_train"] = time.perf_counter() - start

    start = time.perf_counter()
    adapt_block = base_params("adapt")
    adapt = TargetSearchParams(
        **adapt_block
        | {
            "budget": args.budget,
            "target": adapt_block["target"] | {"path": str(target_root)},
            "workdir": str(work / "adapt"),
        }
    )
    history, task = run_target_search(
        adapt, stage_searcher_config(settings, adapt.searcher), inputs, checkpoint
    )
    best = best_architecture(history, adapt, task, None)
    wall["adapt"] = time.perf_counter() - start

    start = time.perf_counter()
    params = CompareParams(
        **base_params("compare")
        | {"seeds": list(range(args.seeds)), "workdir": str(work / "compare")}
    )
    params = params.model_copy(
        update={"training": params.training.model_copy(update={"epochs": args.epochs})}
    )
    results = run_comparison(params, adapt, best, stage_searcher_config(settings, "random"), inputs)
    wall["compare"] = time.perf_counter() - start
    clock = work / "wall.json"  # summed over the runs that built the state (a rerun adds ~0)
    before = json.loads(clock.read_text()) if clock.exists() else {}
    wall = {k: v + before.get(k, 0.0) for k, v in wall.items()}
    clock.write_text(json.dumps(wall))

    total = sum(wall.values())
    md = markdown(results) + (
        "\n## The chain\n\n"
        f"Meta-training: CATCH on {args.meta_epochs} sub-datasets of the embedded 40-class "
        f"ImageNet sample × {meta.n_search} trained evaluations. Adaptation: "
        f"{adapt.searcher}, {args.budget} evaluations on {len(classes)} Tiny-ImageNet classes "
        f"not in the sample (reward {trained.reward.model_dump()}); found `{best['arch']}` "
        f"at evaluation {best['found_at_step'] + 1}. Random search: `{results['random_search']['arch']}`"
        f" (reward {results['random_search']['reward']:.2f} vs adapt's {best['reward']:.2f}).\n\n"
        "| stage | wall (min) |\n|---|---|\n"
        + "".join(f"| {stage} | {s / 60:.1f} |\n" for stage, s in wall.items())
        + f"| **total** | **{total / 60:.1f}** |\n\n"
        "Wall times are summed over the runs that built the durable state (a rerun reads it "
        "back).\n"
    )
    payload = {
        "wall_s": wall,
        "target_classes": classes,
        "meta_curves": curves.to_dict("records"),
        "adapt_best": best,
        "results": results,
    }
    write_results(args.out, "end_to_end", payload, md)
    compare_figure(results).savefig(args.out / "end_to_end.png", dpi=120)
    print(md)


if __name__ == "__main__":
    main()
