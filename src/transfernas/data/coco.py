"""COCO-format detection annotations: checked before any training starts.

A malformed annotation file must stop the run with an error that names it — not train on
silently dropped boxes (mmdet's ``CocoDataset`` skips what it cannot use without a word).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, ValidationError

from transfernas.errors import UserError

REQUIRED = ("images", "annotations", "categories")
MIN_SIDE = 1.0  # mmdet's CocoDataset drops a box narrower or lower than 1 px without a word
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # ints pass, bools do not
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]


class _Entry(BaseModel):
    """What pycocotools and mmdet read of an entry; other keys are the file's own business."""

    model_config = ConfigDict(extra="allow", strict=True)
    id: StrictInt  # pycocotools keys its dicts by id: 1, 1.0 and true would be one entry


class _Image(_Entry):
    file_name: Annotated[str, Field(min_length=1)]
    width: Positive
    height: Positive


class _Annotation(_Entry):
    image_id: StrictInt
    category_id: StrictInt
    bbox: Annotated[list[Number], Field(min_length=4, max_length=4)]
    area: Positive  # COCOeval's area ranges and mmdet's filter read it
    iscrowd: Literal[0, 1]  # COCOeval reads it for every ground-truth box


class _Category(_Entry):
    name: Annotated[str, Field(min_length=1)]


ENTRIES: dict[str, type[_Entry]] = {
    "images": _Image,
    "annotations": _Annotation,
    "categories": _Category,
}


class CocoFormatError(UserError, ValueError):
    """A COCO annotation file that cannot be trained or evaluated on as it is."""


def _fail(ann_file: Path, what: str) -> CocoFormatError:
    return CocoFormatError(f"{ann_file}: {what}")


def _preview(items: list[Any], n: int = 5) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def _entries(ann_file: Path, key: str, items: list[Any]) -> list[_Entry]:
    """``items`` validated as ``key`` entries; the error names each bad entry by index and id."""
    try:
        return TypeAdapter(list[ENTRIES[key]]).validate_python(items)
    except ValidationError as e:
        problems = []
        for err in e.errors()[:5]:
            index, *field = err["loc"]
            entry = items[index] if isinstance(index, int) else None
            ident = f" (id {entry['id']!r})" if isinstance(entry, dict) and "id" in entry else ""
            where = ".".join(map(str, field)) or "entry"
            problems.append(f"{key}[{index}]{ident} {where}: {err['msg']}")
        more = f" (+{e.error_count() - 5} more)" if e.error_count() > 5 else ""
        raise _fail(ann_file, "; ".join(problems) + more) from None


def _is_file(path: Path) -> bool:
    """False for a name the OS cannot even look up (too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _duplicates(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    return [v for v in values if v in seen or seen.add(v)]


def check_coco(ann_file: Path, img_dir: Path, tolerance: float = 1.0) -> dict[str, Any]:
    """Validate ``ann_file`` against the images in ``img_dir``; returns counts and ``classes``
    (category names in the file's order: mmdet numbers the labels of ``metainfo.classes`` in
    the order the file lists the categories, whatever their ids).

    Accepts only what pycocotools and mmdet's ``CocoDataset`` read exactly as written: a JSON
    object with lists ``images`` and ``categories`` (neither empty) and ``annotations``;
    integer ids, unique per list; unique category names; image files inside ``img_dir`` that
    exist; annotations of known images and categories with a finite box of at least 1×1 px
    inside its image (``tolerance`` px of rounding allowed), a positive ``area``, ``iscrowd``
    0 or 1 and no truthy ``ignore``. Anything else raises :class:`CocoFormatError` naming the
    file and the entries.
    """
    ann_file, img_dir = Path(ann_file), Path(img_dir)
    try:
        data = json.loads(ann_file.read_bytes())
    except FileNotFoundError:
        raise _fail(ann_file, "annotation file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise _fail(ann_file, f"not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise _fail(ann_file, f"the top level is a {type(data).__name__}, not a JSON object")
    missing = [k for k in REQUIRED if not isinstance(data.get(k), list)]
    if missing:
        raise _fail(ann_file, f"missing the list(s) {missing}: a COCO file needs {REQUIRED}")
    for key in ("images", "categories"):
        if not data[key]:
            raise _fail(ann_file, f"'{key}' is empty")
    images, anns, cats = (_entries(ann_file, k, data[k]) for k in REQUIRED)
    for key, entries in (("images", images), ("annotations", anns), ("categories", cats)):
        if dup := _duplicates([e.id for e in entries]):
            raise _fail(ann_file, f"duplicate {key} ids: {_preview(sorted(set(dup)))}")
    if dup := _duplicates([c.name for c in cats]):
        raise _fail(ann_file, f"duplicate category names: {_preview(sorted(set(dup)))}")

    names = {im.id: Path(im.file_name) for im in images}
    outside = [i for i, name in names.items() if name.is_absolute() or ".." in name.parts]
    if outside:
        raise _fail(ann_file, f"image file names outside {img_dir}: ids {_preview(outside)}")
    absent = [im.file_name for im in images if not _is_file(img_dir / im.file_name)]
    if absent:
        raise _fail(ann_file, f"{len(absent)} image file(s) not in {img_dir}: {_preview(absent)}")
    sizes = {im.id: (im.width, im.height) for im in images}
    categories = {c.id for c in cats}
    unknown_images = [a.id for a in anns if a.image_id not in sizes]
    if unknown_images:
        raise _fail(ann_file, f"annotations of unknown images: ids {_preview(unknown_images)}")
    ignored = [a.id for a in anns if (a.model_extra or {}).get("ignore")]
    if ignored:
        what = f"annotations marked 'ignore' (mmdet drops them): ids {_preview(ignored)}"
        raise _fail(ann_file, what)
    unknown_cats = [a.id for a in anns if a.category_id not in categories]
    if unknown_cats:
        raise _fail(ann_file, f"annotations of unknown categories: ids {_preview(unknown_cats)}")
    if anns:
        boxes = np.array([a.bbox for a in anns], dtype=float)
        wh = np.array([sizes[a.image_id] for a in anns])
        x, y, w, h = boxes.T
        bad = (
            (w < MIN_SIDE)
            | (h < MIN_SIDE)
            | (x < -tolerance)
            | (y < -tolerance)
            | (x + w > wh[:, 0] + tolerance)
            | (y + h > wh[:, 1] + tolerance)
        )
        if bad.any():
            ids = [anns[i].id for i in np.flatnonzero(bad)]
            raise _fail(
                ann_file,
                f"{len(ids)} box(es) under {MIN_SIDE:g} px or outside their image: "
                f"ids {_preview(ids)}",
            )
    return {
        "images": len(images),
        "annotations": len(anns),
        "categories": len(categories),
        "classes": tuple(c.name for c in cats),
    }
