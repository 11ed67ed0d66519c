"""Build the mmcv 2.1.0 wheel with the compiled CPU ops mmdet and mmseg use, once, into a cache.

PyPI has only mmcv 2.1.0's source, and it does not build as is against torch 2.14: its
setup.py imports ``pkg_resources`` (so it is built without build isolation, with
``setuptools<81`` present) and compiles with ``-std=c++17`` while torch's headers need C++20.
A full build compiles 83 C++ files, one at a time without ninja: ~21 min on 2 cores.

This script downloads the sdist (pip checks the index's sha256), patches the standard flag and
compiles only the ops in ``OPS`` — those that run on CPU in the detectors and segmenters people
put a backbone into (NMS for every detector's test step, RoIAlign for two-stage ones, deformable
convolutions, PSANet's mask, box overlaps) — with ninja, in parallel. Every other op still
imports (mmdet and mmseg import dozens at start-up) and raises a clear error if called. The
wheel lands in ``$TRANSFERNAS_WHEELS`` (default ``~/.cache/transfernas/wheels``), in a folder
named after the op set, and a later run finds it and does nothing.
``TRANSFERNAS_MMCV_OPS=all`` builds every op (the stock wheel, ~11 min with ninja on 2 cores).

    .venv/bin/python scripts/build_mmcv.py        # prints the wheel's path
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "2.1.0"
OPS = ("nms", "roi_align", "deform_conv", "modulated_deform_conv", "psamask", "bbox_overlaps")
ALWAYS = ("info", "pybind")  # the compiler/CUDA version queries and the module definition
CACHE = Path(os.environ.get("TRANSFERNAS_WHEELS", Path.home() / ".cache/transfernas/wheels"))

LOADER = """    def load_ext(name, funcs):
        ext = importlib.import_module('mmcv.' + name)
        for fun in funcs:
            assert hasattr(ext, fun), f'{fun} miss in module {name}'
        return ext
"""
LOADER_TRIMMED = """    def _not_built(fun):

        def missing(*args, **kwargs):
            raise NotImplementedError(
                f'mmcv op {fun!r} is not in this build (transfernas scripts/build_mmcv.py '
                'compiles %s); rebuild with TRANSFERNAS_MMCV_OPS=all')

        return missing

    def load_ext(name, funcs):
        ext = importlib.import_module('mmcv.' + name)
        for fun in funcs:
            if not hasattr(ext, fun):
                setattr(ext, fun, _not_built(fun))
        return ext
"""
DEFINED = re.compile(r"^[A-Za-z][\w:<>, ]*?[\s*&]+(\w+)\s*\(", re.M)
BINDING = re.compile(r"\s*m\.def\(\s*\"\w+\",\s*&(\w+)")


def pip(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env)


def sdist(dest: Path) -> Path:
    """Download mmcv's sdist from the package index (pip checks the index's sha256).

    pip prepares an sdist's metadata by running its setup.py, which needs torch and
    ``pkg_resources`` importable: hence ``--no-build-isolation`` with ``setuptools<81``.
    """
    pip("download", "--quiet", "--no-deps", "--no-build-isolation", "--no-binary", "mmcv",
        f"mmcv=={VERSION}", "-d", str(dest))  # fmt: skip
    (path,) = dest.glob(f"mmcv-{VERSION}.tar.gz")
    return path


def trim(src: Path, ops: tuple[str, ...]) -> None:
    """Keep the C++ sources of ``ops`` and the bindings they define; stub the rest in Python."""
    csrc = src / "mmcv/ops/csrc/pytorch"
    keep = set(ops) | set(ALWAYS)
    for cpp in csrc.glob("*.cpp"):
        if cpp.stem not in keep:
            cpp.unlink()
    for cpp in (csrc / "cpu").glob("*.cpp"):
        if cpp.stem.removesuffix("_cpu") not in keep:
            cpp.unlink()
    defined = {
        name for cpp in csrc.glob("*.cpp") if cpp.stem != "pybind"
        for name in DEFINED.findall(cpp.read_text())
    }  # fmt: skip
    pybind = csrc / "pybind.cpp"
    head, sep, body = pybind.read_text().partition("PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {")
    statements = body.rsplit("}", 1)[0].split(";")[:-1]
    kept = [s for s in statements if (m := BINDING.match(s)) and m.group(1) in defined]
    if not sep or len(kept) < len(ops):
        raise SystemExit(f"{pybind}: found {len(kept)} bindings for {ops}; check the recipe")
    pybind.write_text(head + sep + ";".join(kept) + ";\n}\n")
    loader = src / "mmcv/utils/ext_loader.py"
    text = loader.read_text()
    if LOADER not in text:
        raise SystemExit(f"{loader}: load_ext is not the one this recipe patches")
    loader.write_text(text.replace(LOADER, LOADER_TRIMMED % ", ".join(ops)))


def build() -> Path:
    full = os.environ.get("TRANSFERNAS_MMCV_OPS") == "all"
    tag = "all" if full else hashlib.sha256(" ".join(OPS).encode()).hexdigest()[:10]
    cache = CACHE / f"mmcv-{VERSION}-ops-{tag}"
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"mmcv-{VERSION}-*.whl"))
    if found:
        return found[-1]
    pip("install", "--quiet", "setuptools<81", "wheel", "ninja")
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
            if not full:
                trim(src, OPS)
            jobs = str(len(os.sched_getaffinity(0)))
            env = os.environ | {"MMCV_WITH_OPS": "1", "FORCE_CUDA": "0", "MAX_JOBS": jobs}
            pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(cache),
                str(src), env=env)  # fmt: skip
    finally:
        pip("install", "--quiet", "setuptools>=77")
    return sorted(cache.glob(f"mmcv-{VERSION}-*.whl"))[-1]


if __name__ == "__main__":
    print(build())
