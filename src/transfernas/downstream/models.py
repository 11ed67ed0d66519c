"""Our modules in the OpenMMLab registries: the residual backbone (and the searched neck).

Importing this module registers ``TransferNASResNet`` in ``mmdet.registry.MODELS`` and in
``mmseg.registry.MODELS`` (whichever of the two is installed), so a plain config can say

    custom_imports = dict(imports=["transfernas.downstream.models"], allow_failed_imports=False)
    model = dict(backbone=dict(type="TransferNASResNet", arch="64_111-2111-1211-12", ...))

and build it with ``MODELS.build`` outside Kedro. ``SearchedNASFPN`` is the neck of a NAS-FPN
genotype (:mod:`transfernas.spaces.nasfpn`), registered in mmdet's ``MODELS``:

    neck = dict(type="SearchedNASFPN", genotype="gp:P6,P4>P4 ...", in_channels=[...],
                out_channels=256, num_outs=5, stack_times=7)
 Weights exported by ``export_backbone`` are a
plain tensor state dict of this class (keys ``net.…``), loaded through
``init_cfg=dict(type="Pretrained", checkpoint=...)`` — torch's ``weights_only`` loading works
on them as they hold nothing but tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from transfernas.spaces.nasfpn import FIRST_LEVEL, MergeCellPyramid, Pyramid
from transfernas.spaces.resblock import ResArch, ResNetBackbone, Widths


class TransferNASResNet(BaseModule):
    """A residual-block architecture of the CATCH space as a detection/segmentation backbone.

    ``widths`` (``{"groups": [...], "inner": [[...], ...]}``, see ``Widths``) sets every channel
    count, as MorphNet's resized backbones need; null = the arch's own widths.
    ``frozen_stages``: -1 trains everything, 0 freezes the stem, k also stages 1..k (as mmdet's
    ResNet). ``norm_eval`` keeps BatchNorm statistics fixed while training (small batches).
    """

    def __init__(
        self,
        arch: str,
        block: str = "basic",
        stem: str = "imagenet",
        channel_scale: float = 1.0,
        in_channels: int = 3,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        frozen_stages: int = -1,
        norm_cfg: dict[str, Any] | None = None,
        norm_eval: bool = False,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
        widths: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(init_cfg)
        norm_cfg = norm_cfg or {"type": "BN", "requires_grad": True}

        def norm(channels: int) -> nn.Module:
            return build_norm_layer(norm_cfg, channels)[1]

        self.net = ResNetBackbone(
            ResArch.parse(arch),
            block,
            stem,
            out_indices,
            channel_scale,
            in_channels,
            norm,
            Widths.from_dict(widths) if widths is not None else None,
        )
        if not -1 <= frozen_stages <= len(self.net.stages):
            raise ValueError(f"frozen_stages must be in -1..{len(self.net.stages)}")
        self.out_channels = self.net.out_channels
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        self._freeze()

    def _freeze(self) -> None:
        frozen = [] if self.frozen_stages < 0 else [self.net.stem]
        frozen += list(self.net.stages[: max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            for p in module.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> TransferNASResNet:
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x):
        return self.net(x)


class SearchedNASFPN(BaseModule):
    """A NAS-FPN neck from a genotype string: ``num_outs`` levels from P3 (RetinaNet: 5), the
    first ``len(in_channels)`` from the backbone, the rest by 1×1 conv + max pooling."""

    def __init__(
        self,
        genotype: str,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int = 5,
        stack_times: int = 1,
        norm_cfg: dict[str, Any] | None = None,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(init_cfg or {"type": "Caffe2Xavier", "layer": "Conv2d"})
        levels = range(FIRST_LEVEL, FIRST_LEVEL + num_outs)
        self.pyramid = MergeCellPyramid(
            Pyramid.parse(genotype, levels), in_channels, out_channels, stack_times, norm_cfg
        )

    def forward(self, inputs):
        return self.pyramid(inputs)


# (class, the toolboxes whose MODELS registry gets it)
MODULES = ((TransferNASResNet, ("mmdet", "mmseg")), (SearchedNASFPN, ("mmdet",)))


def register() -> list[str]:
    """Register our modules in every installed OpenMMLab registry; returns their names."""
    done = []
    for package in ("mmdet", "mmseg"):
        try:
            registry = __import__(f"{package}.registry", fromlist=["MODELS"]).MODELS
        except ImportError:
            continue
        for module, packages in MODULES:
            if package in packages and registry.get(module.__name__) is None:
                registry.register_module(name=module.__name__, module=module)
        done.append(package)
    return done


REGISTERED = register()
