"""Scratch copies of the project and `kedro run` in them, as a user would type it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

KEDRO = str(Path(sys.executable).with_name("kedro"))


def kedro_env(project: Path) -> dict[str, str]:
    """A bare environment: the venv's tools, no telemetry, wide log lines (no wrapping)."""
    return {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "KEDRO_DISABLE_TELEMETRY": "true",
        "HOME": str(project),
        "COLUMNS": "200",
    }


def run_kedro(project: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KEDRO, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=kedro_env(project),
    )


def copy_project(dst: Path) -> Path:
    """The project's code, configuration and shipped sample data under ``dst``."""
    for item in (
        "pyproject.toml",
        ".telemetry",
        "conf/base",
        "conf/logging.yml",
        "data/01_raw/nb201",
        "data/01_raw/imagenet_sample",
        "data/01_raw/coco_sample",
        "data/01_raw/cityscapes_sample",
    ):
        src = ROOT / item
        (dst / item).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst / item)
    (dst / "conf/local").mkdir()
    shutil.copytree(
        ROOT / "src", dst / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    return dst
