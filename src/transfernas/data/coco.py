"""COCO-format detection annotations: checked before any training starts.

A malformed annotation file must stop the run with an error that names it — not train on
silently dropped boxes (mmdet's ``CocoDataset`` skips what it cannot use without a word).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from transfernas.errors import UserError

REQUIRED = ("images", "annotations", "categories")


class CocoFormatError(UserError, ValueError):
    """A COCO annotation file that cannot be trained or evaluated on as it is."""


def _fail(ann_file: Path, what: str) -> CocoFormatError:
    return CocoFormatError(f"{ann_file}: {what}")


def _preview(items: list[Any], n: int = 5) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def check_coco(ann_file: Path, img_dir: Path, tolerance: float = 1.0) -> dict[str, Any]:
    """Validate ``ann_file`` against the images in ``img_dir``; returns counts and ``classes``
    (category names in id order: mmdet's ``metainfo.classes`` for this file).

    Checks: valid JSON with ``images``, ``annotations`` and non-empty ``categories``; every
    image file exists; every annotation names a known image and category and has a box of
    positive size inside its image (``tolerance`` px of rounding allowed).
    """
    ann_file, img_dir = Path(ann_file), Path(img_dir)
    try:
        data = json.loads(ann_file.read_text())
    except FileNotFoundError:
        raise _fail(ann_file, "annotation file not found") from None
    except json.JSONDecodeError as e:
        raise _fail(ann_file, f"not valid JSON ({e})") from None
    missing = [k for k in REQUIRED if not isinstance(data.get(k), list)]
    if missing:
        raise _fail(ann_file, f"missing the list(s) {missing}: a COCO file needs {REQUIRED}")
    if not data["categories"]:
        raise _fail(ann_file, "'categories' is empty")
    try:
        images = {im["id"]: im for im in data["images"]}
        sizes = {i: (float(im["width"]), float(im["height"])) for i, im in images.items()}
        files = [im["file_name"] for im in data["images"]]
        categories = {c["id"] for c in data["categories"]}
        classes = tuple(c["name"] for c in sorted(data["categories"], key=lambda c: c["id"]))
        anns = data["annotations"]
        ann_ids = [a["id"] for a in anns]
        image_of = [a["image_id"] for a in anns]
        category_of = [a["category_id"] for a in anns]
        boxes = np.array([a["bbox"] for a in anns], dtype=float).reshape(-1, 4)
    except (KeyError, TypeError, ValueError) as e:
        raise _fail(ann_file, f"malformed entry ({type(e).__name__}: {e})") from None

    absent = [f for f in files if not (img_dir / f).is_file()]
    if absent:
        raise _fail(ann_file, f"{len(absent)} image file(s) not in {img_dir}: {_preview(absent)}")
    unknown_images = [a for a, i in zip(ann_ids, image_of, strict=True) if i not in images]
    if unknown_images:
        raise _fail(ann_file, f"annotations of unknown images: ids {_preview(unknown_images)}")
    unknown_cats = [a for a, c in zip(ann_ids, category_of, strict=True) if c not in categories]
    if unknown_cats:
        raise _fail(ann_file, f"annotations of unknown categories: ids {_preview(unknown_cats)}")
    if len(anns):
        wh = np.array([sizes[i] for i in image_of])
        x, y, w, h = boxes.T
        bad = (
            (w <= 0)
            | (h <= 0)
            | (x < -tolerance)
            | (y < -tolerance)
            | (x + w > wh[:, 0] + tolerance)
            | (y + h > wh[:, 1] + tolerance)
        )
        if bad.any():
            ids = [ann_ids[i] for i in np.flatnonzero(bad)]
            raise _fail(
                ann_file, f"{len(ids)} box(es) empty or outside their image: ids {_preview(ids)}"
            )
    return {
        "images": len(images),
        "annotations": len(anns),
        "categories": len(categories),
        "classes": classes,
    }
