"""Scratch copies of the project and `kedro run` in them, as a user would type it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

KEDRO = str(Path(sys.executable).with_name("kedro"))

# conf/local/parameters.yml of a scratch project: the default chain, tiny (merged key by key;
# the chaos test, and gpu-check on CUDA)
_DOWNSTREAM = {
    "schedule": {"max_iters": 6, "checkpoint_interval": 2, "warmup_iters": 1, "log_interval": 1},
    "latency": {"sizes": [[64, 64]], "repeats": 3},
}
TINY_CHAIN = {
    "subdatasets": {"n_subdatasets": 2, "image_sizes": [16], "train_per_class": 20},
    "trained_task": {
        "training": {"epochs": 1},
        "latency": {"repeats": 3},  # the reward is conf/base's: latency-aware (target_ms)
    },
    "meta_train": {
        "n_epochs": 2,
        "n_search": 3,
        "fidelity": {"n_archs": 3, "epochs_factor": 2, "last_epochs": 1},
    },
    "adapt": {"budget": 3},
    "export_backbone": {
        "training": {"epochs": 1},
        "pretrain": {"image_size": 32},
        "latency": {"input_size": [64, 64], "repeats": 3},
    },
    "compare": {  # fixed widths: a latency match is wall-clock, so not the same twice
        "seeds": [0, 1],
        "training": {"epochs": 1},
        "widths": {"resnet18": 0.25, "mobilenet_v3_small": 0.25},
        "match": {"rounds": 1},
    },
    "detection": _DOWNSTREAM,
    "segmentation": _DOWNSTREAM,
}


def kedro_env(project: Path, columns: int = 200) -> dict[str, str]:
    """A bare environment: the venv's tools, no telemetry, log lines ``columns`` wide (200: no
    wrapping; 80: a plain terminal's, where Rich wraps Kedro's lines)."""
    return {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "KEDRO_DISABLE_TELEMETRY": "true",
        "HOME": str(project),
        "COLUMNS": str(columns),
    }


def run_kedro(
    project: Path, *args: str, timeout: int = 300, columns: int = 200
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KEDRO, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=kedro_env(project, columns),
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
