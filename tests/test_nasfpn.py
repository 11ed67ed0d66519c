"""NAS-FPN merge-cell space: masks, encoding, mmdet's pyramid, the registered neck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transfernas.data.external import external_data
from transfernas.searchers import SEARCHERS, make_searcher
from transfernas.spaces.base import is_valid, mutate_actions, sample_actions
from transfernas.spaces.nasfpn import MMDET_NASFPN, NASFPNSpace, Pyramid

from .conftest import ROOT

IN_CHANNELS = [8, 16, 32]  # backbone maps of stride 8, 16, 32


def _inputs(size: int = 64) -> list[torch.Tensor]:
    return [
        torch.randn(2, c, size // s, size // s)
        for c, s in zip(IN_CHANNELS, (8, 16, 32), strict=True)
    ]


@pytest.mark.parametrize("cells", [5, 7, 9])
def test_sampled_and_mutated_pyramids_are_valid(cells):
    space = NASFPNSpace(cells)
    rng = np.random.default_rng(cells)
    for _ in range(200):
        actions = sample_actions(space, rng)
        assert is_valid(space, actions)
        pyramid = space.decode(actions)
        for i, cell in enumerate(pyramid.cells):
            assert cell.input1 != cell.input2  # two different feature layers
            assert max(cell.input1, cell.input2) < len(space.levels) + i  # they exist already
        assert len(pyramid.outputs()) == 5  # every level P3–P7 is produced
        assert is_valid(space, mutate_actions(space, actions, rng))


def test_last_cells_are_masked_to_the_missing_levels():
    space = NASFPNSpace(5)
    prefix: list[int] = []
    for _ in range(5):  # every cell outputs P3 while it may: the rest must cover P4–P7
        prefix += [0, 1]
        mask = space.mask(prefix)
        prefix += [int(np.flatnonzero(mask)[0]), 0]
    assert [c.level for c in space.decode(prefix).cells] == [0, 1, 2, 3, 4]
    assert not space.mask([0, 1, 0, 0] * 1 + [0, 1])[0]  # P3 done, 4 cells for 4 levels


def test_encode_decode_round_trip():
    space = NASFPNSpace(7)
    rng = np.random.default_rng(0)
    for _ in range(100):
        actions = sample_actions(space, rng)
        text = space.key(actions)
        assert space.encode(text) == actions
        assert space.encode(space.decode(actions)) == actions
        assert str(Pyramid.parse(text, space.levels)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sum:P3,c0>P4", "does not exist"),
        ("sum:P3,P9>P4", "not one of the levels"),
        ("max:P3,P4>P4", "not a merge cell"),
        ("sum:P3,P4>P8", "not in"),
    ],
)
def test_bad_genotypes_are_rejected(text, message):
    with pytest.raises(ValueError, match=message):
        Pyramid.parse(text, range(3, 8))


def _mmdet_connectivity() -> str:
    """mmdet's NASFPN as a genotype string, read off its forward with hooks (which tensors
    each merge cell reads and the level of what it returns)."""
    from mmdet.models.necks import NASFPN

    neck = NASFPN(IN_CHANNELS, 16, num_outs=5, stack_times=1).eval()
    names: dict[int, str] = {}
    keep: list[torch.Tensor] = []  # hold every tensor: ids stay unique
    levels: dict[tuple[int, int], int] = {}

    def initial(level: int):
        def hook(module, args, out):
            keep.append(out)
            names[id(out)] = f"P{level}"
            levels[tuple(out.shape[-2:])] = level

        return hook

    for i, conv in enumerate(neck.lateral_convs):
        conv.register_forward_hook(initial(3 + i))
    for i, down in enumerate(neck.extra_downsamples):
        down.register_forward_hook(initial(6 + i))
    cells: list[str] = []

    def cell_hook(module, args, kwargs, out):
        keep.append(out)
        op = "gp" if type(module).__name__ == "GlobalPoolingCell" else "sum"
        a, b = (names[id(x)] for x in args)
        names[id(out)] = f"c{len(cells)}"
        cells.append(f"{op}:{a},{b}>P{levels[tuple(out.shape[-2:])]}")

    for cell in neck.fpn_stages[0].values():
        cell.register_forward_hook(cell_hook, with_kwargs=True)
    with torch.inference_mode():
        neck(_inputs(256))
    return " ".join(cells)


def test_mmdet_nasfpn_is_expressible_and_matches_its_connectivity():
    space = NASFPNSpace(9)
    actions = space.encode(MMDET_NASFPN)
    assert is_valid(space, actions) and space.key(actions) == MMDET_NASFPN
    assert _mmdet_connectivity() == MMDET_NASFPN
    # mmdet's outputs: P3 = c2, P4 = c3, P5 = c5, P6 = c8, P7 = c7; no unused node
    pyramid = space.decode(actions)
    assert pyramid.outputs() == [5 + i for i in (2, 3, 5, 8, 7)] and pyramid.unused() == []


def test_neck_registered_built_from_config_outputs_five_levels():
    from mmdet.registry import MODELS

    from transfernas.downstream.models import SearchedNASFPN

    assert MODELS.get("SearchedNASFPN") is SearchedNASFPN
    rng = np.random.default_rng(1)
    space = NASFPNSpace(7)
    for _ in range(3):
        cfg = {
            "type": "SearchedNASFPN",
            "genotype": space.key(sample_actions(space, rng)),
            "in_channels": IN_CHANNELS,
            "out_channels": 16,
            "num_outs": 5,
            "stack_times": 2,
        }
        neck = MODELS.build(cfg)
        neck.init_weights()
        outs = neck(_inputs(128))
        assert [tuple(o.shape) for o in outs] == [
            (2, 16, 128 // s, 128 // s) for s in (8, 16, 32, 64, 128)
        ]
        sum(o.sum() for o in outs).backward()  # every level reaches the backbone maps
        assert all(p.grad is not None for p in neck.pyramid.laterals.parameters())


def test_unused_nodes_are_added_to_their_levels_output():
    text = "sum:P3,P4>P3 sum:P4,P5>P4 sum:P5,P6>P5 sum:P6,P7>P6 sum:P7,P6>P7 sum:c0,P3>P4"
    pyramid = Pyramid.parse(text, range(3, 8))
    assert pyramid.outputs() == [5, 10, 7, 8, 9] and pyramid.unused() == [6]  # c1 → P4


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_proposes_valid_pyramids(name):
    """The merge-cell space through the ActionSpace contract: no searcher knows it."""
    space = NASFPNSpace(7)
    searcher = make_searcher(name, space, None, seed=0)
    for _ in range(6):
        cands = searcher.ask(2)
        assert all(is_valid(space, c) for c in cands)
        searcher.tell(cands, [float(len(set(space.key(c).split()))) for c in cands])


def test_segmentation_has_no_neck_to_search(tmp_path):
    from transfernas.downstream import KINDS
    from transfernas.downstream.search import DownstreamTask

    params = KINDS["segmentation"].params()
    with pytest.raises(ValueError, match="only detection has a neck"):
        DownstreamTask(KINDS["segmentation"], NASFPNSpace(5), {"root": str(tmp_path)}, params)


SHARED = external_data(ROOT)


@pytest.mark.skipif(
    not (SHARED / "tiny-imagenet").exists(), reason="needs the external data (docs/data.md)"
)
def test_mosaic_detection_set_rebuilds_byte_for_byte_with_real_boxes(tmp_path):
    import json
    import subprocess
    import sys

    from pycocotools.coco import COCO

    def build(out):
        args = ["--classes", "4", "--train", "6", "--val", "3", "--grid", "2"]
        script = str(ROOT / "scripts/make_coco_sample.py")
        cmd = [sys.executable, script, "--data", str(SHARED), "--out", str(out), *args]
        subprocess.run(cmd, check=True, capture_output=True)
        return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    first, second = build(tmp_path / "a"), build(tmp_path / "b")
    assert first == second
    ann = tmp_path / "a/annotations/instances_train2017.json"
    coco = COCO(str(ann))
    data = json.loads(ann.read_text())
    assert len(data["annotations"]) == 4 * 6 and len(data["categories"]) == 4
    for image in data["images"]:
        boxes = [a["bbox"] for a in coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))]
        assert 1 <= len(boxes) <= 4 and image["width"] == image["height"] == 128
        assert all(x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128 for x, y, w, h in boxes)
