"""The exported backbone in OpenMMLab: registries, stage shapes, freezing, and a saved config
that a plain mmdet/mmseg script builds and loads outside Kedro."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config
from mmseg.registry import MODELS as SEG_MODELS

from transfernas.downstream.backbone import backbone_cfg
from transfernas.downstream.detection import DetectionParams, coco_classes, detection_cfg
from transfernas.downstream.models import TransferNASResNet
from transfernas.export.backbone import (
    ExportParams,
    card_markdown,
    config_snippet,
    pretrain,
    pretrain_once,
)
from transfernas.tasks.trained import ImageData

from .conftest import ROOT

ARCH = "48_1111-2111-1211-12"  # 4 stages, 3 blocks each, doubling at each stage's start
FIVE = "56_111-211-1211-112-21"  # 5 stages


def _cfg(arch: str = ARCH, **kw) -> dict:
    return backbone_cfg(arch, "basic", "imagenet", 0.25, (0, 1, 2, 3)) | kw


@pytest.mark.parametrize("registry", [DET_MODELS, SEG_MODELS], ids=["mmdet", "mmseg"])
def test_registry_round_trip(registry):
    model = registry.build(_cfg())
    assert isinstance(model, TransferNASResNet)
    assert registry.get("TransferNASResNet") is TransferNASResNet


@pytest.mark.parametrize(
    ("arch", "out_indices", "strides"),
    [(ARCH, (0, 1, 2, 3), (4, 8, 16, 32)), (ARCH, (1, 3), (8, 32)), (FIVE, (2, 4), (16, 64))],
)
def test_out_indices_shapes_per_stage(arch, out_indices, strides):
    model = DET_MODELS.build(_cfg(arch, out_indices=list(out_indices))).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 128, 64))
    assert len(outs) == len(out_indices)
    for out, stride, channels in zip(outs, strides, model.out_channels, strict=True):
        assert out.shape == (1, channels, 128 // stride, 64 // stride)


def test_frozen_stages_and_norm_eval():
    model = DET_MODELS.build(_cfg(frozen_stages=2, norm_eval=True)).train()
    net = model.net
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for s in net.stages[:2] for p in s.parameters())
    assert all(p.requires_grad for s in net.stages[2:] for p in s.parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with pytest.raises(ValueError, match=r"frozen_stages must be in -1\.\.4"):
        DET_MODELS.build(_cfg(frozen_stages=5))


def test_gn_norm_cfg_reaches_every_norm_layer():
    model = SEG_MODELS.build(_cfg(norm_cfg={"type": "GN", "num_groups": 4}))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_bad_arch_parameter_is_rejected():
    with pytest.raises(ValueError, match="arch"):
        ExportParams(arch="64_121")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Pretrain a tiny backbone; save weights + config snippet as export_backbone does."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (24, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(24) % 3
    data = ImageData.from_arrays(images, labels)
    params = ExportParams(
        training={"epochs": 1, "batch_size": 8, "threads": 1},
        latency={"input_size": (64, 64), "warmup": 0, "repeats": 3},
    )
    cfg = _cfg()
    state, card = pretrain(ARCH, cfg, data, data, 3, params)
    folder = tmp_path_factory.mktemp("export")
    torch.save(state, folder / "backbone.pth")
    (folder / "backbone_config.py").write_text(
        config_snippet(cfg, "{{ fileDirname }}/backbone.pth")
    )
    return folder, state, card


def test_a_finished_pretraining_is_read_back_without_data_or_training(tmp_path):
    rng = np.random.default_rng(1)
    data = ImageData.from_arrays(
        rng.integers(0, 255, (16, 32, 32, 3), dtype=np.uint8), np.arange(16) % 2
    )
    params = ExportParams(
        training={"epochs": 2, "batch_size": 8, "threads": 1},
        latency={"input_size": (64, 64), "warmup": 0, "repeats": 3},
        workdir=str(tmp_path),
    )
    loads = []

    def load():
        loads.append(1)
        return data, data, 2

    state, card = pretrain_once(ARCH, _cfg(), "sample-a", load, params)
    (folder,) = tmp_path.iterdir()
    assert torch.load(folder / "training.pt", weights_only=False)["epoch"] == 1  # per epoch
    again_state, again_card = pretrain_once(ARCH, _cfg(), "sample-a", load, params)
    assert len(loads) == 1 and again_card == card
    assert all(torch.equal(state[k], again_state[k]) for k in state)
    pretrain_once(ARCH, _cfg(), "sample-b", load, params)  # other images: another pretraining
    assert len(loads) == 2 and len(list(tmp_path.iterdir())) == 2


def test_model_card(exported):
    _, state, card = exported
    assert all(k.startswith("net.") for k in state)
    assert card["out_channels"] == card["stage_channels"] == [12, 24, 48, 96]
    assert card["params_m"] == pytest.approx(
        sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k)
        / 1e6
    )
    assert card["gflops_64x64"] > 0 and card["latency"]["input_shape"] == "1x3x64x64"
    assert 0 <= card["pretrain"]["val_acc"] <= 100
    assert f"`{ARCH}`" in card_markdown(card)


@pytest.mark.parametrize("registry", [DET_MODELS, SEG_MODELS], ids=["mmdet", "mmseg"])
def test_saved_config_builds_and_loads_weights_outside_kedro(exported, registry):
    folder, state, _ = exported
    cfg = Config.fromfile(folder / "backbone_config.py")
    assert cfg.backbone.init_cfg.checkpoint == str(folder / "backbone.pth")
    model = registry.build(cfg.backbone)
    model.init_weights()
    loaded = model.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value)
    with torch.no_grad():
        outs = model.eval()(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [12, 24, 48, 96]


def test_retinanet_around_the_backbone_computes_losses_and_predicts(exported):
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.structures import InstanceData

    register_all_modules()  # mmdet's own modules, default scope mmdet (as its Runner does)

    folder, _, card = exported
    backbone = Config.fromfile(folder / "backbone_config.py").backbone.to_dict()
    coco = {
        "root": str(ROOT / "data/01_raw/coco_sample"),
        "train_ann": "annotations/instances_train2017.json",
        "train_img": "train2017",
        "val_ann": "annotations/instances_val2017.json",
        "val_img": "val2017",
    }
    params = DetectionParams(neck_channels=16, stacked_convs=1)
    cfg = detection_cfg(backbone, card["stage_channels"], coco, coco_classes(coco), params)
    model = DET_MODELS.build(Config(cfg).model)  # ConfigDicts, as the Runner passes them
    model.init_weights()
    sample = DetDataSample(
        metainfo={
            "img_shape": (64, 64),
            "ori_shape": (64, 64),
            "scale_factor": (1.0, 1.0),
            "pad_shape": (64, 64),
            "batch_input_shape": (64, 64),
        }
    )
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[4.0, 6.0, 40.0, 50.0]]), labels=torch.tensor([2])
    )
    losses = model(torch.randn(1, 3, 64, 64), [sample], mode="loss")
    assert {"loss_cls", "loss_bbox"} <= set(losses)
    model.eval()
    with torch.no_grad():
        (pred,) = model(torch.randn(1, 3, 64, 64), [sample], mode="predict")
    assert pred.pred_instances.bboxes.shape[1] == 4
