"""BASE in the ``meta_train`` and ``adapt`` stages (``searcher: base``).

meta_train — meta-epoch e adapts the meta-network to ``tasks_per_epoch`` sub-datasets (specs
  e·C … e·C + C − 1 of the ``subdatasets`` sampling, restricted to ``base.num_classes``-class
  tasks as BASE uses 10 random classes) and takes one Reptile step; a checkpoint after each
  meta-epoch (``kill -9`` loses at most the epoch in progress; it is redone identically).
adapt — fine-tunes the meta-network on the target's training split (a sub-dataset; for
  ``task: nb201`` the target sub-dataset is the dataset's proxy), derives a cell and lets the
  task evaluate it: the NB201 table's 12-epoch accuracy, or the cell trained from scratch by the
  trained task. With ``budget`` > 1 the next candidates are further samples of q(z | D).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from transfernas.bayes.base import BASE, BASEConfig
from transfernas.data.build import SubdatasetParams, SubdatasetSpec, make_spec
from transfernas.digest import json_digest
from transfernas.search import load_checkpoint, resume_checkpoint, save_checkpoint
from transfernas.searchers.base import Searcher, sample_masked
from transfernas.spaces.base import Actions
from transfernas.tasks.base import Task
from transfernas.tasks.subdataset import Source, subdataset_data, target_splits, task_name
from transfernas.tasks.trained import ImageData

if TYPE_CHECKING:
    from transfernas.stages import MetaTrainParams, StageInputs, TargetSearchParams

log = logging.getLogger(__name__)

SPACE_IDENTITY = {"name": "nb201", "supernet": "base"}


def task_data(
    source: Source, sub: SubdatasetParams, config: BASEConfig, k: int
) -> tuple[SubdatasetSpec, ImageData]:
    """Train split of meta-training task k: spec k among ``num_classes``-class sub-datasets."""
    sampling = sub.model_copy(
        update={
            "n_classes": [config.num_classes],
            "image_sizes": [s for s in sub.image_sizes if s in config.image_sizes]
            or config.image_sizes,
        }
    )
    spec = make_spec(source, sampling, k)
    train, _ = subdataset_data(spec, sampling)
    return spec, train


def meta_train_base(
    config: BASEConfig,
    source: Source,
    sub: SubdatasetParams,
    n_epochs: int,
    seed: int,
    workdir: Path | None = None,
    on_epoch: Any = None,
) -> tuple[BASE, list[dict[str, Any]], list[str]]:
    """Meta-train from scratch or from ``workdir/base_meta.pt``; curves and task names."""
    base = BASE(config, seed)
    identity = {"config": config.model_dump(), "seed": seed, "source": str(source.root)}
    curves: list[dict[str, Any]] = []
    tasks: list[str] = []
    state = resume_checkpoint(workdir / "base_meta.pt" if workdir is not None else None, identity)
    if state is not None:
        base.load_state_dict(state["base"])
        curves, tasks = state["curves"], state["tasks"]
    for epoch in range(base.epoch, n_epochs):
        batch = []
        for i in range(config.tasks_per_epoch):
            spec, train = task_data(source, sub, config, epoch * config.tasks_per_epoch + i)
            tasks.append(task_name(spec))
            batch.append(train)
        curves.append(base.meta_epoch(batch, n_epochs))
        if workdir is not None:
            save_checkpoint(
                workdir / "base_meta.pt",
                {"identity": identity, "base": base.state_dict(), "curves": curves, "tasks": tasks},
            )
        if on_epoch is not None:
            on_epoch(curves[-1])
    return base, curves, tasks


def base_checkpoint(base: BASE, params: dict[str, Any], tasks: Sequence[str]) -> dict[str, Any]:
    """What ``adapt`` starts from, in the meta_checkpoint format the CATCH agents use."""
    return {
        "searcher": "base",
        "space": SPACE_IDENTITY,
        "searcher_config": base.config.model_dump(),
        "meta_train": params,
        "tasks": list(dict.fromkeys(tasks)),
        "networks": base.state_dict(),
    }


class PosteriorSampler(Searcher):
    """Proposes BASE's derived cell first, then distinct samples of q(z | D) = Cat(softmax φ_D)."""

    name = "base"

    def __init__(self, space, derived: Actions, phi: torch.Tensor, seed: int = 0):
        super().__init__(space, None, seed)
        self.derived = tuple(int(a) for a in derived)
        self.probs = torch.softmax(phi, dim=-1).numpy()
        self.proposed: list[Actions] = []

    def ask(self, n: int = 1) -> list[Actions]:
        out = []
        for _ in range(n):
            cand = self.derived
            for _ in range(100):  # later proposals: fresh posterior samples
                if cand not in self.proposed:
                    break
                cand = sample_masked(self.space, self.probs, self.rng)
            self.proposed.append(cand)
            out.append(cand)
        return out

    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        """The posterior was fixed by adaptation; rewards only choose the best at the end."""

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"proposed": [list(a) for a in self.proposed]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.proposed = [tuple(a) for a in state["proposed"]]


def adapt_base(
    checkpoint: dict[str, Any],
    source: Source,
    sub: SubdatasetParams,
    target: Any,
    seed: int,
    cache: Path | None = None,
) -> tuple[Actions, torch.Tensor, dict[str, Any]]:
    """Fine-tune the meta-network on the target sub-dataset; the derived cell and φ_D.

    ``cache`` keeps the result so a rerun (after ``kill -9``) does not adapt again.
    """
    if cache is not None and cache.exists():
        done = load_checkpoint(cache)
        return tuple(done["actions"]), done["phi"], done["info"]
    config = BASEConfig(**checkpoint["searcher_config"])
    base = BASE(config, seed)
    base.load_state_dict(checkpoint["networks"])
    spec = target_splits(source, sub, target).search  # never the held-out split
    if str(spec.image_size) not in base.net.heads:
        raise ValueError(
            f"adapt.target.image_size: {spec.image_size} px has no head in the meta-network; "
            f"allowed: {config.image_sizes} (meta_train.base.image_sizes)"
        )
    train, val = subdataset_data(spec, sub)
    actions, phi, info = base.adapt(train, val, seed)
    info = info | {
        "target": task_name(spec),
        "posterior": np.round(torch.softmax(phi, -1).numpy(), 4).tolist(),
    }
    if cache is not None:
        save_checkpoint(cache, {"actions": list(actions), "phi": phi, "info": info})
    return actions, phi, info


def curves_frame(
    curves: list[dict[str, Any]], tasks: Sequence[str], per_epoch: int
) -> pd.DataFrame:
    """Meta-training curves with the epoch's tasks (the format of the CATCH curves' ``task``)."""
    frame = pd.DataFrame(curves)
    frame["task"] = [",".join(tasks[e * per_epoch : (e + 1) * per_epoch]) for e in frame["epoch"]]
    return frame


class BASEMetaNetwork:
    """BASE (``bayes/``): Reptile over sub-dataset tasks; adapted, a posterior sampler."""

    name = "base"

    def meta_train(
        self, params: MetaTrainParams, inputs: StageInputs
    ) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
        if params.tasks != "subdatasets":
            raise ValueError(
                "meta_train.tasks: BASE trains its supernet on images; allowed: subdatasets"
            )
        workdir = None
        if params.workdir is not None:
            workdir = Path(params.workdir) / json_digest(
                [
                    params.model_dump(exclude={"fidelity"}),
                    str(inputs.image_source().root),
                    inputs.subdatasets.model_dump(),
                ]
            )
        base, curves, tasks = meta_train_base(
            params.base,
            inputs.image_source(),
            inputs.subdatasets,
            params.n_epochs,
            params.seed,
            workdir,
        )
        checkpoint = base_checkpoint(base, params.model_dump(), tasks)
        frame = curves_frame(curves, tasks, params.base.tasks_per_epoch)
        return checkpoint, frame, pd.DataFrame()

    def for_target(
        self,
        params: TargetSearchParams,
        task: Task,
        inputs: StageInputs,
        checkpoint: dict[str, Any] | None,
        run_dir: Path | None,
    ) -> Searcher:
        """A sampler of BASE's posterior on the target's data, the derived cell first."""
        if checkpoint is None or checkpoint.get("searcher") != self.name:
            held = None if checkpoint is None else checkpoint.get("searcher")
            raise ValueError(
                f"searcher: base adapts a BASE meta_checkpoint (this one holds {held!r})"
            )
        if task.space.name != "nb201":  # detection/segmentation search resblock backbones
            raise ValueError(
                "searcher: base derives NB201 cells: use task nb201, or task subdataset with "
                "trained_task.space.name: nb201"
            )
        if checkpoint["space"] != SPACE_IDENTITY:
            raise ValueError(f"the meta_train checkpoint is for {checkpoint['space']}")
        cache = run_dir / "posterior.pt" if run_dir is not None else None
        actions, phi, info = adapt_base(
            checkpoint, inputs.image_source(), inputs.subdatasets, params.target, params.seed, cache
        )
        log.info("BASE adapted on %s: derived %s", info["target"], task.space.decode(actions))
        return PosteriorSampler(task.space, actions, phi, params.seed)
