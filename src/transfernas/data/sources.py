"""Where images come from: an ImageNet-style folder tree, or downsampled-ImageNet batches.

Folder tree: ``<root>/train/<wnid>/**/*.JPEG`` (Tiny ImageNet's extra ``images/`` level is
fine), validation either ``<root>/val/<wnid>/...`` (or, without ``val/``, ``<root>/test/<wnid>``:
a user's own tree) or a flat ``<root>/val/**`` folder plus a
label file whose lines start with ``<file name> <wnid>`` (whitespace, tab or comma separated:
Tiny ImageNet's ``val_annotations.txt`` and Kaggle's ``LOC_val_solution.csv`` both work).

Downsampled ImageNet (Chrabąszcz et al. 2017; ImageNet16-120 uses it): pickled dicts with
uint8 ``data`` (N × 3·s·s, channel-major) and 1-based ``labels``. Pickle can run code, so these
files are read with an unpickler that only rebuilds numpy arrays and plain containers and
refuses anything else — never unpickle files from unknown sources with plain ``pickle``.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from transfernas.errors import UserError

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}


class SourceError(UserError, ValueError):
    """A missing or malformed input: the message names the file or folder."""


def _images_under(folder: Path) -> list[Path]:
    """Image files under ``folder``; a broken link is kept, so the build counts it bad by name
    instead of dropping it without a word (torchvision's ImageFolder lists it too)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_file() or not p.exists())
    )


@dataclass
class ImageFolderSource:
    """An ImageNet-style tree; classes are the sub-folders of ``train/``."""

    root: Path
    label_file: str | None = None  # for a flat val/ folder
    _cache: dict[tuple[str, str], list[Path]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not (self.root / "train").is_dir():
            raise SourceError(f"{self.root / 'train'}: no such folder (expected train/<wnid>/...)")

    @property
    def classes(self) -> list[str]:
        return sorted(p.name for p in (self.root / "train").iterdir() if p.is_dir())

    def files(self, split: str, wnid: str) -> list[Path]:
        """Image files of one class in ``train`` or ``val``; missing or empty → SourceError."""
        key = (split, wnid)
        if key not in self._cache:
            self._cache[key] = self._list(split, wnid)
        return self._cache[key]

    @property
    def _val_dir(self) -> str:
        """Where the labelled validation images are: ``val/``, else ``test/`` when it holds
        class folders (ImageNet's flat, unlabelled ``test/`` does not count)."""
        test = self.root / "test"
        labelled = test.is_dir() and any(p.is_dir() for p in test.iterdir())
        return "test" if not (self.root / "val").is_dir() and labelled else "val"

    def _list(self, split: str, wnid: str) -> list[Path]:
        folder = self.root / (self._val_dir if split == "val" else split) / wnid
        if split == "val" and not folder.is_dir() and self.label_file is not None:
            return self._flat_val().get(wnid, [])
        if not folder.is_dir():
            raise SourceError(f"{folder}: class folder is missing")
        files = _images_under(folder)
        if not files:
            raise SourceError(f"{folder}: class folder has no images")
        return files

    def has_val(self) -> bool:
        return (self.root / self._val_dir).is_dir()

    def _flat_val(self) -> dict[str, list[Path]]:
        if "flat" not in self._cache:
            path = self.root / "val" / self.label_file if self.label_file else None
            if path is None or not path.is_file():
                raise SourceError(f"{path}: validation label file is missing")
            by_name = {p.name: p for p in _images_under(self.root / "val")}
            labels: dict[str, list[Path]] = {}
            for n, line in enumerate(path.read_text().splitlines(), start=1):
                parts = re.split(r"[\s,]+", line.strip())
                if len(parts) < 2 or parts[0].lower() in {"imageid", "file"}:
                    continue
                name = parts[0] if Path(parts[0]).suffix else parts[0] + ".JPEG"
                if name not in by_name:
                    raise SourceError(f"{path}:{n}: image {name!r} is not in {self.root / 'val'}")
                labels.setdefault(parts[1], []).append(by_name[name])
            self._cache["flat"] = {k: sorted(v) for k, v in labels.items()}  # type: ignore[assignment]
        return self._cache["flat"]  # type: ignore[return-value]


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and builtin containers; any other global is refused."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("builtins", "list"),
        ("builtins", "dict"),
        ("builtins", "tuple"),
        ("_codecs", "encode"),  # protocol-2 pickles store bytes through it
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only numpy arrays are allowed"
        )


def _integers(path: Path, key: str, value: Any, low: int, high: int | None) -> np.ndarray:
    """``value`` as an integer array within [low, high]; floats, bools and objects refused
    (numpy would truncate or wrap them without a word)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise SourceError(f"{path}: '{key}' is not an array ({exc})") from None
    if not np.issubdtype(array.dtype, np.integer):
        raise SourceError(f"{path}: '{key}' must hold integers, got dtype {array.dtype}")
    if array.size and (array.min() < low or (high is not None and array.max() > high)):
        bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise SourceError(
            f"{path}: '{key}' values must be {bounds}, got {array.min()}..{array.max()}"
        )
    return array


def load_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One downsampled-ImageNet batch → images ``(N, s, s, 3)`` uint8 and 0-based labels."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = _ArrayOnlyUnpickler(f).load()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc})") from None
    except Exception as exc:  # a malformed pickle fails in many ways: one error names the file
        raise SourceError(
            f"{path}: not a downsampled-ImageNet batch ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(batch, dict) or not {"data", "labels"} <= batch.keys():
        raise SourceError(f"{path}: not a downsampled-ImageNet batch (a dict of data, labels)")
    data = _integers(path, "data", batch["data"], 0, 255).astype(np.uint8)
    labels = _integers(path, "labels", batch["labels"], 1, None).astype(np.int64) - 1
    side = round((data.shape[1] / 3) ** 0.5) if data.ndim == 2 else 0
    shape_ok = side > 0 and 3 * side * side == data.shape[1] and labels.ndim == 1
    if not shape_ok or len(labels) != len(data):
        raise SourceError(
            f"{path}: data must be N × 3·s·s with N labels, got data {data.shape} and "
            f"labels {labels.shape}"
        )
    return data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1), labels


def write_batch(path: str | Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write the downsampled-ImageNet format (for tests and for converting our own data)."""
    images = np.asarray(images, dtype=np.uint8)
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as f:
        pickle.dump({"data": data, "labels": [int(x) + 1 for x in labels]}, f, protocol=4)


@dataclass
class DownsampledSource:
    """Downsampled-ImageNet batches in a folder, seen like a tree: classes are 1-based label
    ids (``'0001'`` ... as the batches number them), "files" are ``<batch>#<row>`` items."""

    root: Path
    train_glob: str = "train_data_batch_*"
    val_glob: str = "val_data*"
    _labels: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self._batches("train"):
            raise SourceError(
                f"{self.root}: no downsampled-ImageNet batches matching {self.train_glob!r}"
            )

    def _batches(self, split: str) -> list[Path]:
        return sorted(self.root.glob(self.train_glob if split == "train" else self.val_glob))

    def _labels_of(self, batch: Path) -> np.ndarray:
        if batch.name not in self._labels:  # loads one batch at a time; keeps only its labels
            self._labels[batch.name] = load_batch(batch)[1]
        return self._labels[batch.name]

    @property
    def classes(self) -> list[str]:
        labels = np.unique(np.concatenate([self._labels_of(b) for b in self._batches("train")]))
        return [f"{label + 1:04d}" for label in labels]

    def has_val(self) -> bool:
        return bool(self._batches("val"))

    def files(self, split: str, cls: str) -> list[Path]:
        label = int(cls) - 1
        items = [
            self.root / f"{b.name}#{row:07d}"
            for b in self._batches(split)
            for row in np.flatnonzero(self._labels_of(b) == label)
        ]
        if not items:
            raise SourceError(f"{self.root}: class {cls} has no images in the {split} batches")
        return items
