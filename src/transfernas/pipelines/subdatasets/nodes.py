"""Kedro nodes of ``subdatasets``: seeded specs → built (or reused) sub-datasets → manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from transfernas.config import validate_params
from transfernas.data.build import SubdatasetParams, build_subdataset, load_subdataset, make_specs
from transfernas.data.sources import DownsampledSource, ImageFolderSource
from transfernas.plots import contact_sheet
from transfernas.tasks.subdataset import task_name


def build_subdatasets(
    source: ImageFolderSource | DownsampledSource, params: dict[str, Any]
) -> tuple[list[dict[str, Any]], Figure]:
    """Build every spec; returns the manifests (with folders and task names) and a contact sheet
    of the first."""
    config = validate_params(SubdatasetParams, params, "subdatasets")
    manifests = []
    for spec in make_specs(source, config):
        folder = build_subdataset(
            spec, config.out_dir, workers=config.workers, chunk_size=config.chunk_size
        )
        manifests.append({"folder": str(folder), "task": task_name(spec), **_read_manifest(folder)})
    first = manifests[0]
    images, labels = load_subdataset(first["folder"])
    n_classes, size = len(first["classes"]), first["image_size"]
    title = f"sub-dataset {first['spec_id']}: {n_classes} classes, {size} px (train split)"
    return manifests, contact_sheet(images, labels, first["classes"], title)


def _read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())
