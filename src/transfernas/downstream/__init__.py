"""Everything OpenMMLab: detection (mmdet) and segmentation (mmseg) on our backbones.

- ``runner``: the mmengine Runner schedule, training, latency — what every kind shares;
- ``backbone`` / ``models``: the backbone's config dict, and the modules registered in
  ``MODELS`` (``TransferNASResNet``, the searched NAS-FPN neck);
- ``detection``, ``segmentation``: one kind each — parameters, data check, Runner config;
- ``search``: a kind as a search task (DetNAS-style backbone search, NAS-FPN neck search).

A new kind is one module here that defines its parameters, ``prepare`` and ``build`` and a
``DownstreamKind``, added to ``KINDS`` below; then its parameter block, catalog entries and a
pipeline folder (docs/architecture.md).
"""

from transfernas.downstream.detection import DETECTION
from transfernas.downstream.kind import DownstreamKind
from transfernas.downstream.segmentation import SEGMENTATION

KINDS: dict[str, DownstreamKind] = {k.name: k for k in (DETECTION, SEGMENTATION)}

__all__ = ["KINDS", "DownstreamKind"]
