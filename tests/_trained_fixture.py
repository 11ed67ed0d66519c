"""A tiny trained sub-dataset task pool (embedded sample, 16 px, NB201 cells C=4 N=1).

Reward = validation accuracy: deterministic on CPU, so runs can be compared bit for bit (a
measured latency differs from one timing to the next).
"""

from __future__ import annotations

import sys
from pathlib import Path

from transfernas.data.build import SubdatasetParams
from transfernas.data.sources import ImageFolderSource
from transfernas.meta import meta_train
from transfernas.searchers import make_searcher
from transfernas.spaces.nb201 import NB201SpaceParams
from transfernas.tasks.subdataset import TrainedTaskParams, meta_task_pool

ROOT = Path(__file__).resolve().parents[1]
PARAMS = TrainedTaskParams(
    space=NB201SpaceParams(channels=4, cells=1),
    training={"epochs": 1, "batch_size": 64},
    reward={"measure_latency": False},
)


def pool(out_dir: str | Path):
    sub = SubdatasetParams(n_classes=[10], image_sizes=[16], workers=1, out_dir=str(out_dir))
    return meta_task_pool(ImageFolderSource(ROOT / "data/01_raw/imagenet_sample"), sub, PARAMS, 0)


def run(workdir: str | Path | None, out_dir: str | Path, n_epochs: int = 3, n_search: int = 4):
    task_at, identity = pool(out_dir)
    space = PARAMS.space.build()
    agent = make_searcher("catch-meta", space, None, seed=7)
    curves, records = meta_train(
        space, agent, task_at, n_epochs, n_search, pool=identity, workdir=workdir
    )
    return agent, curves, records


if __name__ == "__main__":  # the SIGKILL test's child: meta-train into a durable workdir
    run(sys.argv[1], sys.argv[2])
