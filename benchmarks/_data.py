"""``--data DIR`` for the benchmarks that read data the clone does not ship (docs/data.md).

Its default is :func:`transfernas.data.external.external_data` (``$TRANSFERNAS_DATA``, else
``data/external``).
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

from transfernas.data.external import ENV, external_data, need
from transfernas.data.sources import ImageFolderSource

ROOT = Path(__file__).resolve().parents[1]
TINY_SUBSET = "tiny-imagenet/tiny-imagenet-200-subset.tar.gz"  # 150 classes, as measured
TINY_FULL = "tiny-imagenet-200"  # the official download, unzipped
FULLRES = "imagenet-fullres-sample/images"


def add_data_option(parser: argparse.ArgumentParser, flag: str = "--data") -> None:
    parser.add_argument(
        flag,
        type=Path,
        default=external_data(ROOT),
        help=f"folder of the external data (docs/data.md); default ${ENV}, else data/external",
    )


def tiny_imagenet(data: Path, workdir: Path) -> ImageFolderSource:
    """Tiny ImageNet: the official ``tiny-imagenet-200`` folder if ``data`` has it, else the
    150-class subset archive the published results used, extracted once into ``workdir``."""
    full = data / TINY_FULL
    if (full / "wnids.txt").exists():
        return ImageFolderSource(full, label_file="val_annotations.txt")
    root = workdir / "tiny-imagenet-200-subset"
    if not (root / "wnids.txt").exists():
        archive = need(data / TINY_SUBSET, f"Tiny ImageNet ({TINY_FULL}/ or {TINY_SUBSET})")
        with tarfile.open(archive) as tar:
            tar.extractall(workdir, filter="data")
    return ImageFolderSource(root, label_file="val_annotations.txt")
