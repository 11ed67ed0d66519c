"""A downstream kind as a search task. Two things can be searched:

- the **backbone** (DetNAS-style; CATCH §4.3 adapts on COCO and Cityscapes): a candidate of the
  residual-block space, built with the ImageNet stem (stride 4), becomes the backbone of the
  kind's model and is trained for a short schedule from scratch;
- the **neck** (NAS-FPN, detection only): a merge-cell pyramid of
  :class:`~transfernas.spaces.nasfpn.NASFPNSpace` between a fixed backbone (any registered
  mmdet backbone: a ResNet, or ``TransferNASResNet`` with exported weights) and the head.

Either way the reward is the kind's score (mAP / mIoU, percent), combined with the measured
latency as R = P·(LAT/T)^w when a target T is set; FLOPs of the network forward are recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path
from typing import Any

import torch

from transfernas.downstream.backbone import backbone_cfg
from transfernas.downstream.kind import DownstreamKind
from transfernas.downstream.runner import (
    DownstreamParams,
    LatencySizes,
    TensorForward,
    latency_metrics,
    model_latency,
    train_and_evaluate,
)
from transfernas.spaces.base import SearchSpace
from transfernas.spaces.nasfpn import NASFPNSpace
from transfernas.spaces.resblock import ResArch, ResBlockSpace, ResNetBackbone
from transfernas.tasks.base import Evaluation
from transfernas.tasks.reward import latency_reward
from transfernas.tasks.trained import count_flops

log = logging.getLogger(__name__)


def backbone_channels(backbone: dict[str, Any]) -> list[int]:
    """Output channels of every stage of a registered backbone config (built once on CPU,
    one 64-px forward with ``out_indices`` 0..3)."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    from transfernas.downstream.models import register

    register()
    with DefaultScope.overwrite_default_scope("mmdet"):  # mmdet imports its modules lazily
        net = MODELS.build(backbone | {"out_indices": (0, 1, 2, 3), "init_cfg": None})
    net.eval()  # not chained: mmdet's ResNet.train returns None
    with torch.inference_mode():
        return [int(x.shape[1]) for x in net(torch.zeros(1, 3, 64, 64))]


class DownstreamTask:
    """Evaluate = build the candidate's model, train it briefly, score it, time it."""

    def __init__(
        self,
        kind: DownstreamKind,
        space: SearchSpace,
        data: dict[str, str],
        params: DownstreamParams,
    ) -> None:
        self.kind, self.space, self.data, self.params = kind, space, data, params
        self.search = params.search
        self.name = f"{kind.name}/{Path(data['root']).name}"
        if isinstance(space, NASFPNSpace):
            if kind.name != "detection":
                raise ValueError(f"{kind.name}: only detection has a neck to search (nasfpn)")
            self.fixed_channels = backbone_channels(self.search.backbone)
        elif not isinstance(space, ResBlockSpace):
            raise ValueError(f"{kind.name} searches space resblock or nasfpn, not {space.name}")
        # the data are checked (and Cityscapes masks converted) once, not per candidate
        self.prepared, self.data_summary = kind.prepare(data)

    def model_parts(self, actions: Sequence[int]) -> tuple[dict, list[int], dict | None]:
        """The candidate's backbone dict, its stage channels, and its neck (None = default)."""
        if isinstance(self.space, NASFPNSpace):
            neck = {
                "type": "SearchedNASFPN",
                "genotype": self.space.key(actions),
                "out_channels": self.params.neck_channels,
                "num_outs": len(self.space.levels),
                "stack_times": self.search.nasfpn.stack_times,
            }
            return dict(self.search.backbone), self.fixed_channels, neck
        space = self.space
        arch = space.key(actions)
        backbone = backbone_cfg(arch, space.block, "imagenet", space.channel_scale, (0, 1, 2, 3))
        net = ResNetBackbone(
            ResArch.parse(arch), space.block, "imagenet", None, space.channel_scale
        )
        return backbone, list(net.out_channels), None

    def config(self, actions: Sequence[int], work_dir: Path) -> dict[str, Any]:
        """The candidate's complete Runner config (short schedule, its own work dir)."""
        backbone, channels, neck = self.model_parts(actions)
        params = self.params.model_copy(
            update={"schedule": self.search.schedule, "work_dir": str(work_dir)}
        )
        return self.kind.build(backbone, channels, self.data, self.prepared, params, neck=neck)

    def evaluate(self, actions: Sequence[int]) -> Evaluation:
        start = time.perf_counter()
        arch = str(self.space.key(actions))
        work_dir = Path(self.params.work_dir) / "search" / sha256(arch.encode()).hexdigest()[:12]
        scores, _, model = train_and_evaluate(self.config(actions, work_dir))
        if self.kind.score not in scores:  # mmdet reports nothing when no box clears score_thr
            log.warning("%s: no %s (nothing above score_thr): score 0", arch, self.kind.score)
        score = scores.get(self.kind.score, 0.0) * self.kind.scale
        size = self.search.latency_size
        (latency,) = model_latency(
            model,
            LatencySizes(
                sizes=(size,),
                warmup=1,
                repeats=self.search.latency_repeats,
                threads=self.search.threads,
            ),
        )
        metrics = {k.replace("/", "."): v for k, v in scores.items()}
        metrics |= {"score": score, "latency_ms": latency.median_ms, "gflops": gflops(model, size)}
        metrics |= latency_metrics([latency])
        reward = score
        if self.search.target_ms is not None:
            reward = float(
                latency_reward(score, latency.median_ms, self.search.target_ms, self.search.w)
            )
        return Evaluation(reward, metrics, time.perf_counter() - start)


def gflops(model: torch.nn.Module, size: tuple[int, int]) -> float:
    """Forward GFLOPs (multiply-add = 2) of the network (backbone, neck, head) at (H, W)."""
    return count_flops(TensorForward(model), (3, *size), torch.device("cpu")) / 1e9
