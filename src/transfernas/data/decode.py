"""Decode an image file straight to a small uint8 RGB array.

JPEGs are decoded in the DCT domain at the smallest 1/1, 1/2, 1/4 or 1/8 scale that is still at
least the target size (PIL ``draft``, libjpeg-turbo), so a 500 px photo becomes a 16 px image
without ever being decoded at 500 px; an antialiased resize finishes the job. CMYK, grayscale,
palette and PNG files (ImageNet has all of them, some PNGs named .JPEG) become RGB. Files PIL
cannot read — zero-byte, truncated, not an image — raise ``BadImage`` naming the file.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from transfernas.errors import UserError

Resize = Literal["squash", "center_crop"]


# what PIL raises on bytes that are not a readable image (UnidentifiedImageError is an OSError)
PIL_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class BadImage(UserError, ValueError):
    """An input file that is not a decodable image."""


def decode_resized(data: bytes, size: int, resize: Resize = "squash", name: str = "") -> np.ndarray:
    """``(size, size, 3)`` uint8 RGB from encoded bytes."""
    try:
        img = Image.open(io.BytesIO(data))
        if resize == "center_crop":
            side = min(img.size)
            scale_ref = (size * img.size[0] // side, size * img.size[1] // side)
        else:
            scale_ref = (size, size)
        img.draft("RGB", scale_ref)  # JPEG only: pick the DCT scale; no-op for other formats
        img = img.convert("RGB")
        if resize == "center_crop":
            w, h = img.size
            side = min(w, h)
            img = img.crop(
                ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
            )
        img = img.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=None)
        return np.asarray(img, dtype=np.uint8)
    except PIL_ERRORS as exc:
        raise BadImage(f"{name or 'image'}: {exc}") from exc


def load_file(path: str | Path, size: int, resize: Resize = "squash") -> tuple[np.ndarray, str]:
    """Decoded image and the sha256 of the file's bytes (read once for both)."""
    data = Path(path).read_bytes()
    return decode_resized(data, size, resize, str(path)), hashlib.sha256(data).hexdigest()


# ``<batch file>#<row>``: an image of a downsampled-ImageNet batch. A file of an ImageNet tree
# always ends in an image suffix, so one named ``a#1.JPEG`` is a file, not row 1 of ``a``.
BATCH_ITEM = re.compile(r".+#\d+")


@lru_cache(maxsize=1)
def _batch(path: str) -> np.ndarray:
    """The images of one downsampled-ImageNet batch; one batch per process stays cached."""
    from transfernas.data.sources import load_batch

    return load_batch(path)[0]


def load_batch_item(item: str, size: int) -> tuple[np.ndarray, str]:
    """``<batch file>#<row>`` → the image resized to ``size`` and the sha256 of its pixels."""
    path, row = item.rsplit("#", 1)
    image = _batch(path)[int(row)]
    digest = hashlib.sha256(image.tobytes()).hexdigest()
    if image.shape[0] != size:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))
    return image, digest


def decode_chunk(job: tuple[Sequence[str], int, Resize]) -> tuple[np.ndarray, list[str], list[str]]:
    """Worker entry point: decoded images (zeros where bad), sha256s ('' where bad), errors.

    Lives here, not beside the builder, so a spawned worker imports only numpy and PIL.
    Items ``<batch>#<row>`` come from downsampled-ImageNet batches; a malformed batch stops
    the build (``SourceError`` names it) rather than being skipped image by image.
    """
    paths, size, resize = job
    out = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    hashes, errors = [], []
    for i, path in enumerate(paths):
        try:
            if BATCH_ITEM.fullmatch(Path(path).name):
                out[i], digest = load_batch_item(path, size)
            else:
                out[i], digest = load_file(path, size, resize)
            hashes.append(digest)
        except BadImage as exc:
            hashes.append("")
            errors.append(str(exc))
        except OSError as exc:  # unreadable: a broken link, a permission, an I/O error
            hashes.append("")
            errors.append(f"{path}: {exc.strerror or exc}")
    return out, hashes, errors
