"""Property-based test of the COCO reader: every mutated annotation file is either rejected with
a CocoFormatError that names it, or read exactly as pycocotools and mmdet's CocoDataset read it.

Mutations start from a valid file and change its structure (wrong types, missing, extra and
duplicated keys and entries, non-finite and out-of-range numbers, empty and long values,
unicode, a wrong top level) or its bytes. 500 derandomised examples per property.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from pycocotools.coco import COCO

from transfernas.data.coco import CocoFormatError, check_coco

FILES = ("a.jpg", "ü b/c.jpg", "d.png")
VALID: dict[str, Any] = {
    "images": [
        {"id": 1, "file_name": FILES[0], "width": 64, "height": 48},
        {"id": 7, "file_name": FILES[1], "width": 32.0, "height": 32},
        {"id": 3, "file_name": FILES[2], "width": 20, "height": 20},
    ],
    "annotations": [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 5,
            "bbox": [2, 3, 20, 10],
            "area": 200,
            "iscrowd": 0,
        },
        {
            "id": 2,
            "image_id": 7,
            "category_id": 2,
            "bbox": [0, 0, 32, 32],
            "area": 1024,
            "iscrowd": 0,
        },
        {
            "id": 9,
            "image_id": 1,
            "category_id": 2,
            "bbox": [10.5, 5.25, 30, 40],
            "area": 1200.5,
            "iscrowd": 1,
        },
    ],
    "categories": [{"id": 5, "name": "cat"}, {"id": 2, "name": "dög", "supercategory": "x"}],
}
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.just("x" * 5000),
    st.lists(st.integers(-3, 100), max_size=6),
    st.dictionaries(
        st.sampled_from(["id", "name", "ignore", "bbox"]), st.integers(-1, 9), max_size=3
    ),
)
SIDE = st.floats(1, 30) | st.integers(1, 30)
PLAUSIBLE = {  # values a real file could hold: many mutations must be accepted, then compared
    "id": st.integers(-5, 10**12),
    "image_id": st.sampled_from([1, 7, 3, 4]),
    "category_id": st.sampled_from([5, 2, 6]),
    "file_name": st.sampled_from([*FILES, "missing.jpg"]),
    "width": SIDE | st.floats(30, 5000),
    "height": SIDE | st.floats(30, 5000),
    "area": st.floats(0, 1e6) | st.integers(0, 100),
    "iscrowd": st.sampled_from([0, 1, 2]),
    "ignore": st.sampled_from([0, 1, False, None]),
    "name": st.text(min_size=0, max_size=8),
}
KEYS = {
    "images": ["id", "file_name", "width", "height"],
    "annotations": ["id", "image_id", "category_id", "bbox", "area", "iscrowd", "ignore"],
    "categories": ["id", "name"],
}


@pytest.fixture(scope="module")
def img_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("coco_images")
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"\xff\xd8 not decoded by the checks")
    return root


@st.composite
def mutated(draw) -> Any:
    """VALID after 1–3 structural mutations."""
    data: Any = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(data, dict):
            break
        kind = draw(st.sampled_from(["top", "list", "entry", "field", "field", "bbox", "bbox"]))
        key = draw(st.sampled_from(list(KEYS)))
        if kind == "top":
            data = draw(st.one_of(ODD, st.just([VALID])))
        elif kind == "list":
            data[key] = draw(st.one_of(ODD, st.just([]), st.just(None)))
        elif not isinstance(data.get(key), list) or not data[key]:
            continue
        elif kind == "entry":
            i = draw(st.integers(0, len(data[key]) - 1))
            op = draw(st.sampled_from(["drop", "duplicate", "replace"]))
            if op == "drop":
                data[key].pop(i)
            elif op == "duplicate":
                data[key].append(copy.deepcopy(data[key][i]))
            else:
                data[key][i] = draw(ODD)
        else:
            i = draw(st.integers(0, len(data[key]) - 1))
            entry = data[key][i]
            if not isinstance(entry, dict):
                continue
            field = (
                "bbox"
                if kind == "bbox" and key == "annotations"
                else draw(st.sampled_from(KEYS[key]))
            )
            if kind == "bbox" and key == "annotations" and isinstance(entry.get("bbox"), list):
                box = entry["bbox"]
                op = draw(st.sampled_from(["value", "value", "shorter", "longer"]))
                if op == "value" and box:
                    box[draw(st.integers(0, len(box) - 1))] = draw(
                        st.floats(-2, 40) | st.integers(0, 40) | st.floats(allow_nan=True) | ODD
                    )
                elif op == "shorter" and box:
                    box.pop()
                elif op == "longer":
                    box.append(draw(st.integers(0, 9)))
            elif draw(st.integers(0, 3)) == 0:
                entry.pop(field, None)
            else:
                entry[field] = draw(PLAUSIBLE.get(field, ODD) | ODD)
    return data


@st.composite
def plausible(draw) -> dict[str, Any]:
    """Valid files of many shapes: lists in any order, boxes anywhere in their image (fractional
    too), crowd flags, extra keys, unicode names; most are accepted, then compared."""
    data = copy.deepcopy(VALID)
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    for ann in data["annotations"]:
        width, height = sizes[ann["image_id"]]
        w = draw(st.floats(0.5, width))
        h = draw(st.floats(0.5, height))
        x = draw(st.floats(-1.5, width - w + 1.5))
        y = draw(st.floats(-1.5, height - h + 1.5))
        ann.update(
            bbox=[x, y, w, h], area=draw(st.floats(0, w * h)), iscrowd=draw(st.sampled_from([0, 1]))
        )
        if draw(st.booleans()):
            ann["segmentation"] = [[x, y, x + w, y, x + w, y + h]]
    for cat in data["categories"]:
        cat["name"] = draw(st.text(min_size=1, max_size=6))
    for key in KEYS:
        data[key] = draw(st.permutations(data[key]))
    return data


def _check(path: Path, img_dir: Path) -> dict[str, Any] | None:
    try:
        return check_coco(path, img_dir)
    except CocoFormatError as e:
        assert str(e).startswith(f"{path}: "), e
        event("rejected")
        return None


def _same_as_libraries(path: Path, img_dir: Path, data: dict, counts: dict) -> None:
    """An accepted file reads the same in pycocotools and mmdet: nothing dropped or remapped."""
    event("accepted")
    from mmdet.datasets import CocoDataset

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    assert (len(coco.imgs), len(coco.anns), len(coco.cats)) == (
        counts["images"],
        counts["annotations"],
        counts["categories"],
    )
    for ann in data["annotations"]:
        assert coco.anns[ann["id"]]["bbox"] == ann["bbox"]
    names = {c["id"]: c["name"] for c in data["categories"]}
    dataset = CocoDataset(
        ann_file=str(path),
        data_prefix={"img": str(img_dir)},
        metainfo={"classes": counts["classes"]},
        pipeline=[],
        filter_cfg=None,
    )
    read = [
        (inst["bbox"], counts["classes"][inst["bbox_label"]], inst["ignore_flag"])
        for i in range(len(dataset))
        for inst in dataset.get_data_info(i)["instances"]
    ]
    written = [
        ([x, y, x + w, y + h], names[a["category_id"]], a["iscrowd"])
        for a in data["annotations"]
        for x, y, w, h in [a["bbox"]]
    ]
    assert sorted(map(repr, read)) == sorted(map(repr, written))


@given(data=mutated() | plausible())
@example(data=copy.deepcopy(VALID))
@example(data=[VALID])  # a list at the top level: was an AttributeError
@example(data=VALID | {"images": [], "annotations": []})  # mmdet cannot build an empty dataset
@example(data=VALID | {"categories": VALID["categories"][::-1]})  # labels follow file order
@example(data=VALID | {"annotations": [VALID["annotations"][0] | {"bbox": [2, 3, 0.5, 10]}]})
@example(data=VALID | {"annotations": [VALID["annotations"][0] | {"ignore": 1}]})
@example(
    data=VALID | {"annotations": [VALID["annotations"][0] | {"bbox": [2, 3, float("nan"), 10]}]}
)
@example(data=VALID | {"annotations": VALID["annotations"] + VALID["annotations"][:1]})
@example(data=VALID | {"images": [VALID["images"][0] | {"id": True}]})
@example(data=VALID | {"images": [VALID["images"][0] | {"file_name": "../a.jpg"}]})
def test_coco_file_is_rejected_or_read_as_the_libraries_read_it(tmp_path_factory, img_dir, data):
    path = tmp_path_factory.mktemp("coco") / "instances.json"
    path.write_text(json.dumps(data, ensure_ascii=False, allow_nan=True))
    counts = _check(path, img_dir)
    if counts is not None:
        _same_as_libraries(path, img_dir, data, counts)


@given(
    cuts=st.lists(st.tuples(st.integers(0, 2000), st.binary(max_size=4)), min_size=1, max_size=4),
    truncate=st.one_of(st.none(), st.integers(0, 2000)),
)
def test_coco_bytes_are_rejected_or_read_as_the_libraries_read_them(
    tmp_path_factory, img_dir, cuts, truncate
):
    raw = bytearray(json.dumps(VALID, ensure_ascii=False).encode())
    for at, new in cuts:
        at = min(at, len(raw))
        raw[at : at + len(new)] = new
    if truncate is not None:
        raw = raw[:truncate]
    path = tmp_path_factory.mktemp("coco") / "instances.json"
    path.write_bytes(bytes(raw))
    counts = _check(path, img_dir)
    if counts is not None:
        _same_as_libraries(path, img_dir, json.loads(bytes(raw)), counts)
