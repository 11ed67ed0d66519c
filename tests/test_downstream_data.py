"""Detection and segmentation inputs: malformed COCO files and Cityscapes masks are named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transfernas.data.cityscapes import (
    CLASSES,
    IGNORE,
    CityscapesLayoutError,
    id_to_train_id,
    prepare_split,
)
from transfernas.data.coco import CocoFormatError, check_coco

from .conftest import ROOT

COCO = ROOT / "data/01_raw/coco_sample"
CITYSCAPES = ROOT / "data/01_raw/cityscapes_sample"
FRAME = "frankfurt/frankfurt_000000_000294"


def test_shipped_coco_fixture_is_valid():
    for split in ("train", "val"):
        counts = check_coco(COCO / f"annotations/instances_{split}2017.json", COCO / f"{split}2017")
        assert counts["categories"] == 8 and counts["annotations"] == counts["images"]
        assert len(set(counts["classes"])) == 8


def _broken(tmp_path: Path, edit) -> Path:
    data = json.loads((COCO / "annotations/instances_val2017.json").read_text())
    edit(data)
    path = tmp_path / "instances_bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d.pop("categories"), "missing the list(s) ['categories']"),
        (lambda d: d.update(categories=[]), "'categories' is empty"),
        (
            lambda d: d["annotations"][3].update(bbox=[40, 40, 30, 10]),
            "1 box(es) under 1 px or outside their image: ids 4",
        ),
        (
            lambda d: d["annotations"][0].update(bbox=[5, 5, 0, 10]),
            "1 box(es) under 1 px or outside their image: ids 1",
        ),
        (
            lambda d: d["images"][2].update(file_name="val_99999.JPEG"),
            "1 image file(s) not in",
        ),
        (lambda d: d["annotations"][1].update(category_id=99), "unknown categories: ids 2"),
        (lambda d: d["annotations"][1].update(image_id=999), "unknown images: ids 2"),
        (lambda d: d["annotations"][1].pop("bbox"), "annotations[1] (id 2) bbox: Field required"),
    ],
)
def test_bad_coco_file_is_named(tmp_path, edit, expected):
    path = _broken(tmp_path, edit)
    with pytest.raises(CocoFormatError) as err:
        check_coco(path, COCO / "val2017")
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value)


def test_coco_file_that_is_not_json(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text("{'images': [")
    with pytest.raises(CocoFormatError, match="not valid JSON"):
        check_coco(path, COCO / "val2017")


def _layout(tmp_path: Path, masks: dict[str, np.ndarray | None]) -> Path:
    """A Cityscapes tree with the fixture frame and the given masks (None = copy the real one)."""
    root = tmp_path / "cityscapes"
    (root / "leftImg8bit/val/frankfurt").mkdir(parents=True)
    (root / "gtFine/val/frankfurt").mkdir(parents=True)
    shutil.copy(
        CITYSCAPES / f"leftImg8bit/val/{FRAME}_leftImg8bit.png", root / "leftImg8bit/val/frankfurt"
    )
    for kind, mask in masks.items():
        target = root / f"gtFine/val/{FRAME}_gtFine_{kind}.png"
        if mask is None:
            shutil.copy(CITYSCAPES / f"gtFine/val/{FRAME}_gtFine_{kind}.png", target)
        else:
            Image.fromarray(mask).save(target)
    return root


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_label_ids_are_converted_like_the_official_train_ids(tmp_path):
    """The official train-id masks are drawn from the polygons (json), ours from the labelIds
    raster: they agree but on a few boundary pixels of this down-scaled frame."""
    root = _layout(tmp_path, {"labelIds": None})
    report = prepare_split(root, "val", tmp_path / "out")
    assert report.frames == 1 and report.converted == 1 and not report.unknown_id_pixels
    ours = _read(tmp_path / f"out/{FRAME}_gtFine_labelTrainIds.png")
    official = _read(CITYSCAPES / f"gtFine/val/{FRAME}_gtFine_labelTrainIds.png")
    assert ours.shape == official.shape and (ours != official).mean() < 0.005
    assert set(np.unique(ours)) == set(np.unique(official))


def test_unknown_label_ids_are_mapped_to_ignore_and_counted(tmp_path):
    ids = _read(CITYSCAPES / f"gtFine/val/{FRAME}_gtFine_labelIds.png").copy()
    ids[:4, :5] = 77  # no Cityscapes label has id 77
    root = _layout(tmp_path, {"labelIds": ids})
    report = prepare_split(root, "val", tmp_path / "out")
    assert list(report.unknown_id_pixels.values()) == [20]
    ours = _read(tmp_path / f"out/{FRAME}_gtFine_labelTrainIds.png")
    assert (ours[:4, :5] == IGNORE).all()
    np.testing.assert_array_equal(ours[4:], id_to_train_id()[ids[4:]])


def test_train_id_mask_with_foreign_values_is_rejected(tmp_path):
    train_ids = _read(CITYSCAPES / f"gtFine/val/{FRAME}_gtFine_labelTrainIds.png").copy()
    train_ids[0, 0] = 19  # one past the 19 classes, not ignore
    root = _layout(tmp_path, {"labelTrainIds": train_ids})
    with pytest.raises(
        CityscapesLayoutError, match=r"labelTrainIds.png: values \[19\] are not train ids"
    ):
        prepare_split(root, "val", tmp_path / "out")


def test_existing_train_ids_are_linked_not_copied(tmp_path):
    root = _layout(tmp_path, {"labelTrainIds": None})
    report = prepare_split(root, "val", tmp_path / "out")
    assert report.converted == 0
    assert (tmp_path / f"out/{FRAME}_gtFine_labelTrainIds.png").is_symlink()
    assert len(CLASSES) == 19 and CLASSES[0] == "road" and CLASSES[-1] == "bicycle"


def test_missing_folder_and_missing_mask_are_named(tmp_path):
    with pytest.raises(CityscapesLayoutError, match="leftImg8bit/test: no such folder"):
        prepare_split(CITYSCAPES, "test", tmp_path / "out")
    root = _layout(tmp_path, {})
    with pytest.raises(CityscapesLayoutError, match=r"_leftImg8bit.png: no .*labelTrainIds.png or"):
        prepare_split(root, "val", tmp_path / "out")
