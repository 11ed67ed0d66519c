"""Cityscapes-layout segmentation data: pairs of ``leftImg8bit`` frames and ``gtFine`` labels.

mmseg trains on ``*_gtFine_labelTrainIds.png`` (19 classes, 255 = ignore). Where a frame has only
``*_gtFine_labelIds.png`` (the raw 34 ids), its train-id mask is made here with
cityscapesscripts' label table. Documented behaviour for bad masks:

- ``labelIds`` holding an id the label table does not know → mapped to 255 (ignore), counted
  and reported (the official conversion would crash on it);
- ``labelTrainIds`` holding a value outside 0..18 and 255 → rejected with an error naming the
  file (such a mask was not made by the official tools, and guessing would train on garbage).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as CITYSCAPES_LABELS
from PIL import Image

from transfernas.data.decode import PIL_ERRORS
from transfernas.errors import UserError

log = logging.getLogger(__name__)

IMG_SUFFIX = "_leftImg8bit.png"
TRAIN_IDS = "_gtFine_labelTrainIds.png"
LABEL_IDS = "_gtFine_labelIds.png"
IGNORE = 255
CLASSES = tuple(
    lab.name
    for lab in sorted(CITYSCAPES_LABELS, key=lambda lab: lab.trainId)
    if 0 <= lab.trainId < IGNORE
)


class CityscapesLayoutError(UserError, ValueError):
    """A folder or mask that does not follow the Cityscapes layout."""


def id_to_train_id() -> np.ndarray:
    """256-entry lookup table labelId → trainId; unknown ids and ignored classes → 255."""
    lut = np.full(256, IGNORE, dtype=np.uint8)
    for lab in CITYSCAPES_LABELS:
        if 0 <= lab.id < 256 and 0 <= lab.trainId < IGNORE:
            lut[lab.id] = lab.trainId
    return lut


KNOWN_IDS = np.zeros(256, dtype=bool)
KNOWN_IDS[[lab.id for lab in CITYSCAPES_LABELS if 0 <= lab.id < 256]] = True


@dataclass
class SplitReport:
    """What preparing one split found: frames, conversions, unknown-id pixels per file."""

    split: str
    frames: int = 0
    converted: int = 0
    unknown_id_pixels: dict[str, int] = field(default_factory=dict)


MASK_MODES = ("L", "P")  # 8-bit, one channel: what mmseg's loader reads back unchanged


def _mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The 8-bit, one-channel mask at ``path``, the size of its frame; anything mmseg would read
    differently (16-bit values wrapped, colour squeezed, another size) is refused."""
    try:
        with Image.open(path) as im:
            mode, mask_size = im.mode, im.size
            mask = np.asarray(im)
    except PIL_ERRORS as e:
        raise CityscapesLayoutError(f"{path}: unreadable mask ({type(e).__name__}: {e})") from None
    if mode not in MASK_MODES:
        raise CityscapesLayoutError(f"{path}: mode {mode!r}; a mask is 8-bit, one channel (L)")
    if mask_size != size:
        raise CityscapesLayoutError(
            f"{path}: {mask_size[0]}×{mask_size[1]}, its frame is {size[0]}×{size[1]}"
        )
    return mask


def _frame_size(frame: Path) -> tuple[int, int]:
    try:
        with Image.open(frame) as im:
            return im.size
    except PIL_ERRORS as e:
        raise CityscapesLayoutError(
            f"{frame}: unreadable frame ({type(e).__name__}: {e})"
        ) from None


def prepare_split(root: Path, split: str, out: Path) -> SplitReport:
    """Check ``root/leftImg8bit/<split>`` against ``root/gtFine/<split>`` and fill ``out`` with
    one train-id mask per frame (same relative path): existing ones checked and linked,
    missing ones converted from ``labelIds``. mmseg reads its seg maps from ``out``.
    """
    images = Path(root) / "leftImg8bit" / split
    labels = Path(root) / "gtFine" / split
    for folder in (images, labels):
        if not folder.is_dir():
            raise CityscapesLayoutError(f"{folder}: no such folder (Cityscapes layout expected)")
    frames = sorted(images.rglob(f"*{IMG_SUFFIX}"))
    if not frames:
        raise CityscapesLayoutError(f"{images}: no *{IMG_SUFFIX} frames")
    report, lut = SplitReport(split, frames=len(frames)), id_to_train_id()
    shutil.rmtree(out, ignore_errors=True)  # masks of another root must not linger
    for frame in frames:
        rel = frame.relative_to(images)
        stem = str(rel)[: -len(IMG_SUFFIX)]
        train_ids, label_ids = labels / f"{stem}{TRAIN_IDS}", labels / f"{stem}{LABEL_IDS}"
        target = Path(out) / f"{stem}{TRAIN_IDS}"
        size = _frame_size(frame)
        if train_ids.is_file():
            mask = _mask(train_ids, size)
            bad = np.unique(mask[(mask >= len(CLASSES)) & (mask != IGNORE)])
            if bad.size:
                raise CityscapesLayoutError(
                    f"{train_ids}: values {bad.tolist()[:10]} are not train ids "
                    f"(0..{len(CLASSES) - 1} or {IGNORE})"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(train_ids.resolve())
        elif label_ids.is_file():
            ids = _mask(label_ids, size)
            unknown = int((~KNOWN_IDS[ids]).sum())
            if unknown:
                report.unknown_id_pixels[str(label_ids)] = unknown
                log.warning("%s: %d pixels of unknown label ids → ignore", label_ids, unknown)
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(lut[ids]).save(target)
            report.converted += 1
        else:
            raise CityscapesLayoutError(f"{frame}: no {train_ids.name} or {label_ids.name}")
    return report
