"""Build the mmcv 2.1.0 wheel (with its compiled CPU ops) once, into a cache outside the clone.

PyPI has only mmcv 2.1.0's source, and it does not build as is against torch 2.14 (see
../shared/DESIGN.md § Dependencies): its setup.py imports ``pkg_resources`` (so it is built
without build isolation, with ``setuptools<81`` present) and compiles with ``-std=c++17`` while
torch's headers need C++20. This script downloads the sdist (sha256 checked against PyPI's
record), patches the standard flag, builds the wheel with ``MMCV_WITH_OPS=1 FORCE_CUDA=0`` and
leaves it in ``$TRANSFERNAS_WHEELS`` (default ``~/.cache/transfernas/wheels``). A later run —
another clone, a fresh venv on the same machine — finds the wheel and does nothing (~20 min
saved on 2 cores). It restores a current setuptools afterwards (torch declares >=77).

    .venv/bin/python scripts/build_mmcv.py        # prints the wheel's path
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VERSION = "2.1.0"
CACHE = Path(os.environ.get("TRANSFERNAS_WHEELS", Path.home() / ".cache/transfernas/wheels"))


def pip(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env)


def sdist(dest: Path) -> Path:
    """Download mmcv's sdist from PyPI and check it against the sha256 PyPI publishes."""
    with urllib.request.urlopen(f"https://pypi.org/pypi/mmcv/{VERSION}/json", timeout=60) as r:
        release = json.load(r)
    (entry,) = [u for u in release["urls"] if u["packagetype"] == "sdist"]
    path = dest / entry["filename"]
    with urllib.request.urlopen(entry["url"], timeout=300) as r:
        path.write_bytes(r.read())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["digests"]["sha256"]:
        raise SystemExit(f"{path.name}: sha256 {digest} != PyPI's {entry['digests']['sha256']}")
    return path


def build() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"mmcv-{VERSION}-*.whl"))
    if found:
        return found[-1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with tarfile.open(sdist(tmp_path)) as tar:
            tar.extractall(tmp_path, filter="data")
        src = tmp_path / f"mmcv-{VERSION}"
        setup = src / "setup.py"
        text = setup.read_text()
        patched = text.replace("-std=c++14", "-std=c++20").replace("-std=c++17", "-std=c++20")
        if patched == text:
            raise SystemExit(f"{setup}: no -std=c++14/17 flag to patch; the recipe needs a look")
        setup.write_text(patched)
        pip("install", "--quiet", "setuptools<81", "wheel")
        env = os.environ | {"MMCV_WITH_OPS": "1", "FORCE_CUDA": "0", "MAX_JOBS": "2"}
        try:
            pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(CACHE), str(src), env=env)
        finally:
            pip("install", "--quiet", "setuptools>=77")
    return sorted(CACHE.glob(f"mmcv-{VERSION}-*.whl"))[-1]


if __name__ == "__main__":
    print(build())
