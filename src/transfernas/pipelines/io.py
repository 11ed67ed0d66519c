"""Kedro dataset for torch state dicts (agent checkpoints, exported weights).

Saved with ``torch.save`` and loaded with ``weights_only=True``: tensors and plain Python
containers only, so loading a checkpoint cannot run code.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import torch
from kedro.io import AbstractDataset

from transfernas.data.sources import DownsampledSource, ImageFolderSource, SourceError
from transfernas.search import save_checkpoint


class TorchStateDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        return torch.load(Path(self._filepath), weights_only=True)

    def save(self, data: dict[str, Any]) -> None:
        save_checkpoint(Path(self._filepath), data)

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class ImageNetDataset(AbstractDataset[ImageFolderSource | DownsampledSource, None]):
    """Read-only: ImageNet under ``path``, in either layout, told apart by what is there —
    an ImageNet-style tree (``train/<wnid>/*.JPEG``, ``val/``) loads as a lazy
    ``ImageFolderSource``, a folder of downsampled-ImageNet batches (Imagenet16/32/64
    ``train_data_batch_*``, ``val_data``) as a ``DownsampledSource``. The catalog takes the
    root at run time: ``--params imagenet_root=/data/imagenet``."""

    def __init__(
        self,
        *,
        path: str,
        label_file: str | None = None,
        train_glob: str = "train_data_batch_*",
        val_glob: str = "val_data*",
        metadata: dict[str, Any] | None = None,
    ):
        self._path, self._label_file = path, label_file
        self._train_glob, self._val_glob = train_glob, val_glob
        self.metadata = metadata

    def _layout(self) -> str | None:
        """``tree``, ``batches``, or ``None`` when ``path`` holds neither."""
        root = Path(self._path)
        if (root / "train").is_dir():
            return "tree"
        return "batches" if any(root.glob(self._train_glob)) else None

    def load(self) -> ImageFolderSource | DownsampledSource:
        root = Path(self._path)
        layout = self._layout()
        if layout == "tree":
            return ImageFolderSource(root, self._label_file)
        if layout == "batches":
            return DownsampledSource(root, self._train_glob, self._val_glob)
        raise SourceError(
            f"imagenet_root {root}: neither an ImageNet tree (train/<class>/ images) nor "
            f"downsampled-ImageNet batches ({self._train_glob})"
        )

    def save(self, data: None) -> None:
        raise NotImplementedError("ImageNetDataset is read-only: it points at images on disk")

    def _exists(self) -> bool:
        return self._layout() is not None

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "label_file": self._label_file}


class CocoDetectionDataset(AbstractDataset[dict[str, str], None]):
    """Read-only: a COCO-format dataset (annotation files + image folders under ``path``).

    Loads as the paths the detection config needs; the files are checked when the detection
    node starts (``transfernas.data.coco.check_coco``). Real COCO 2017 is
    ``path: /data/coco`` with the defaults below.
    """

    def __init__(
        self,
        *,
        path: str,
        train_ann: str = "annotations/instances_train2017.json",
        train_img: str = "train2017",
        val_ann: str = "annotations/instances_val2017.json",
        val_img: str = "val2017",
        metadata: dict[str, Any] | None = None,
    ):
        self._data = {
            "root": path,
            "train_ann": train_ann,
            "train_img": train_img,
            "val_ann": val_ann,
            "val_img": val_img,
        }
        self.metadata = metadata

    def load(self) -> dict[str, str]:
        return dict(self._data)

    def save(self, data: None) -> None:
        raise NotImplementedError("CocoDetectionDataset is read-only: it points at files on disk")

    def _exists(self) -> bool:
        return (Path(self._data["root"]) / self._data["train_ann"]).is_file()

    def _describe(self) -> dict[str, Any]:
        return dict(self._data)


class CityscapesLayoutDataset(AbstractDataset[dict[str, str], None]):
    """Read-only: a Cityscapes tree (``leftImg8bit/<split>``, ``gtFine/<split>``).

    ``labels_dir`` is where train-id masks are linked or converted from ``labelIds``.
    """

    def __init__(
        self,
        *,
        path: str,
        train_split: str = "train",
        val_split: str = "val",
        labels_dir: str = "data/02_intermediate/cityscapes_train_ids",
        metadata: dict[str, Any] | None = None,
    ):
        self._data = {
            "root": path,
            "train_split": train_split,
            "val_split": val_split,
            "labels_dir": labels_dir,
        }
        self.metadata = metadata

    def load(self) -> dict[str, str]:
        return dict(self._data)

    def save(self, data: None) -> None:
        raise NotImplementedError("CityscapesLayoutDataset is read-only")

    def _exists(self) -> bool:
        return (Path(self._data["root"]) / "leftImg8bit").is_dir()

    def _describe(self) -> dict[str, Any]:
        return dict(self._data)
