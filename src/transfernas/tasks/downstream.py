"""Detection and segmentation as search tasks (DetNAS-style; CATCH §4.3 adapts on COCO and
Cityscapes): a candidate of the residual-block space, built with the ImageNet stem (stride 4),
becomes the backbone of the ``detection`` or ``segmentation`` model, is trained for a short
schedule from scratch and rewarded with its mAP or mIoU (percent), combined with its measured
latency as R = P·(LAT/T)^w.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from transfernas.export.backbone import backbone_cfg
from transfernas.spaces.resblock import ResArch, ResBlockSpace, ResNetBackbone
from transfernas.tasks.base import Evaluation
from transfernas.tasks.detection import DetectionParams, coco_classes, detection_cfg
from transfernas.tasks.mmlab import (
    DownstreamSearchParams,
    LatencySizes,
    latency_metrics,
    model_latency,
    train_and_evaluate,
)
from transfernas.tasks.reward import latency_reward
from transfernas.tasks.segmentation import (
    SegmentationParams,
    prepare_cityscapes,
    segmentation_cfg,
)

log = logging.getLogger(__name__)

# the score each toolbox's evaluator reports, and its scale to percent
SCORES = {"detection": ("coco/bbox_mAP", 100.0), "segmentation": ("mIoU", 1.0)}


class DownstreamTask:
    """Evaluate = build the candidate's detector/segmenter, train it briefly, score it."""

    def __init__(
        self,
        kind: Literal["detection", "segmentation"],
        space: ResBlockSpace,
        data: dict[str, str],
        params: DetectionParams | SegmentationParams,
    ) -> None:
        self.kind, self.space, self.data, self.params = kind, space, data, params
        self.search: DownstreamSearchParams = params.search
        self.name = f"{kind}/{Path(data['root']).name}"
        # the data are checked (and Cityscapes masks converted) once, not per candidate
        if kind == "detection":
            self.classes = coco_classes(data)
        else:
            prepare_cityscapes(data)

    def _cfg(self, arch: str, work_dir: Path) -> dict[str, Any]:
        backbone = backbone_cfg(
            arch, self.space.block, "imagenet", self.space.channel_scale, (0, 1, 2, 3)
        )
        channels = ResNetBackbone(
            ResArch.parse(arch),
            self.space.block,
            "imagenet",
            None,
            self.space.channel_scale,
        ).out_channels
        params = self.params.model_copy(
            update={"schedule": self.search.schedule, "work_dir": str(work_dir)}
        )
        if self.kind == "detection":
            return detection_cfg(backbone, list(channels[1:4]), self.data, self.classes, params)
        return segmentation_cfg(backbone, list(channels[:4]), self.data, params)

    def evaluate(self, actions: Sequence[int]) -> Evaluation:
        start = time.perf_counter()
        arch = self.space.key(actions)
        digest = hashlib.sha256(arch.encode()).hexdigest()[:12]
        work_dir = Path(self.params.work_dir) / "search" / digest
        scores, _, model = train_and_evaluate(self._cfg(arch, work_dir))
        key, scale = SCORES[self.kind]
        if key not in scores:  # mmdet reports nothing when no box clears score_thr
            log.warning("%s: no %s (no detection above score_thr): score 0", arch, key)
        score = scores.get(key, 0.0) * scale
        (latency,) = model_latency(
            model,
            LatencySizes(
                sizes=(self.search.latency_size,),
                warmup=1,
                repeats=self.search.latency_repeats,
                threads=self.search.threads,
            ),
        )
        metrics = {k.replace("/", "."): v for k, v in scores.items()}
        metrics |= {"score": score, "latency_ms": latency.median_ms}
        metrics |= latency_metrics([latency])
        reward = score
        if self.search.target_ms is not None:
            reward = float(
                latency_reward(score, latency.median_ms, self.search.target_ms, self.search.w)
            )
        return Evaluation(reward, metrics, time.perf_counter() - start)
