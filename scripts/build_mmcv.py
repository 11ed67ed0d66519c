"""Build the mmcv 2.1.0 wheel (with its compiled CPU ops) once, into a cache outside the clone.

PyPI has only mmcv 2.1.0's source, and it does not build as is against torch 2.14 (see
../shared/DESIGN.md § Dependencies): its setup.py imports ``pkg_resources`` (so it is built
without build isolation, with ``setuptools<81`` present) and compiles with ``-std=c++17`` while
torch's headers need C++20. This script downloads the sdist (pip checks the index's sha256),
patches the standard flag, builds the wheel with ``MMCV_WITH_OPS=1 FORCE_CUDA=0`` and
leaves it in ``$TRANSFERNAS_WHEELS`` (default ``~/.cache/transfernas/wheels``). A later run —
another clone, a fresh venv on the same machine — finds the wheel and does nothing (~20 min
saved on 2 cores). It restores a current setuptools afterwards (torch declares >=77).

    .venv/bin/python scripts/build_mmcv.py        # prints the wheel's path
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "2.1.0"
CACHE = Path(os.environ.get("TRANSFERNAS_WHEELS", Path.home() / ".cache/transfernas/wheels"))


def pip(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env)


def sdist(dest: Path) -> Path:
    """Download mmcv's sdist from the package index (pip checks the index's sha256).

    pip prepares an sdist's metadata by running its setup.py, which needs torch and
    ``pkg_resources`` importable: hence ``--no-build-isolation`` with ``setuptools<81``.
    """
    pip(
        "download",
        "--no-deps",
        "--no-build-isolation",
        "--no-binary",
        "mmcv",
        f"mmcv=={VERSION}",
        "-d",
        str(dest),
    )
    (path,) = dest.glob(f"mmcv-{VERSION}.tar.gz")
    return path


def build() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"mmcv-{VERSION}-*.whl"))
    if found:
        return found[-1]
    pip("install", "--quiet", "setuptools<81", "wheel")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            with tarfile.open(sdist(tmp_path)) as tar:
                tar.extractall(tmp_path, filter="data")
            src = tmp_path / f"mmcv-{VERSION}"
            setup = src / "setup.py"
            text = setup.read_text()
            patched = text.replace("-std=c++14", "-std=c++20").replace("-std=c++17", "-std=c++20")
            if patched == text:
                raise SystemExit(f"{setup}: no -std=c++14/17 flag to patch; check the recipe")
            setup.write_text(patched)
            env = os.environ | {"MMCV_WITH_OPS": "1", "FORCE_CUDA": "0", "MAX_JOBS": "2"}
            pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(CACHE), str(src), env=env)
    finally:
        pip("install", "--quiet", "setuptools>=77")
    return sorted(CACHE.glob(f"mmcv-{VERSION}-*.whl"))[-1]


if __name__ == "__main__":
    print(build())
