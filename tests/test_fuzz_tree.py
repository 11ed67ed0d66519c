"""Property-based test of the ImageNet-style tree reader and the sub-dataset builder over it:
a tree of class folders with odd names, nested folders, non-images, corrupt, empty, cut and
disguised images, broken links and a missing or partial ``val/`` is either refused with a
SourceError naming a path in it, or built so that every image row is its file as PIL reads it,
under its folder's label, and every file PIL cannot read is counted and named — the same files
torchvision's ``ImageFolder`` would list.
"""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import numpy as np
from hypothesis import event, example, given
from hypothesis import strategies as st
from PIL import Image
from torchvision.datasets.folder import find_classes, make_dataset

from transfernas.data.build import SamplingConfig, build_subdataset, load_subdataset, make_specs
from transfernas.data.sources import IMAGE_SUFFIXES, ImageFolderSource, SourceError

SIZE = 8
NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    min_size=1,
    max_size=10,
).filter(lambda s: s not in {".", ".."} and len(s.encode()) < 200)
KIND = st.sampled_from(
    ["png", "png", "jpeg", "gray", "rgba", "corrupt", "empty", "cut", "text", "link"]
)
SUFFIX = st.sampled_from([".JPEG", ".jpg", ".png", ".PNG", ".jpeg", ".txt", ""])
ENTRY = st.tuples(NAME, KIND, SUFFIX, st.booleans())  # name, kind, suffix, in a sub-folder
CLASS = st.tuples(NAME, st.lists(ENTRY, max_size=4))
COUNTER = itertools.count()


def _bytes(kind: str, seed: int) -> bytes:
    """The file's content for ``kind``; images are SIZE × SIZE (no resize in the build)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    if kind in {"corrupt", "text"}:
        return rng.bytes(40)
    if kind == "empty":
        return b""
    image = Image.fromarray(pixels)
    image = {"gray": image.convert("L"), "rgba": image.convert("RGBA")}.get(kind, image)
    buf = io.BytesIO()
    image.save(buf, "JPEG" if kind == "jpeg" else "PNG")
    data = buf.getvalue()
    return data[: len(data) // 2] if kind == "cut" else data


def _write(folder: Path, entries: list[tuple[str, str, str, bool]], seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, kind, suffix, nested) in enumerate(entries):
        path = folder / "sub" / f"{name}{suffix}" if nested else folder / f"{name}{suffix}"
        path.parent.mkdir(exist_ok=True)
        if path.exists() or path.is_symlink():
            continue
        if kind == "link":
            path.symlink_to(folder / "no such file")
        else:
            path.write_bytes(_bytes(kind, seed + i))


def _reference(path: Path) -> np.ndarray | None:
    """PIL's own reading: the RGB pixels, None when it cannot read the file."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError):
        return None


@given(
    classes=st.lists(CLASS, max_size=4),
    val=st.sampled_from(["none", "all", "some"]),
    stray=st.booleans(),
    n_classes=st.integers(1, 3),
)
@example(  # a '#' in a file name: was read as "<batch file>#<row>" of a downsampled batch
    classes=[("n01", [("a#1", "png", ".JPEG", False)]), ("n02", [("b", "png", ".png", False)])],
    val="none",
    stray=False,
    n_classes=2,
)
def test_tree_is_refused_or_built_as_pil_reads_it(tmp_path_factory, classes, val, stray, n_classes):
    seed = next(COUNTER)
    root = tmp_path_factory.mktemp("tree")
    (root / "train").mkdir()
    for k, (wnid, entries) in enumerate(classes):
        _write(root / "train" / wnid, entries, 1000 * seed + 10 * k)
        if val == "all" or (val == "some" and k % 2 == 0):
            _write(root / "val" / wnid, entries[:2], 1000 * seed + 10 * k + 5)
    if val == "some":
        (root / "val").mkdir(exist_ok=True)
    if stray:
        (root / "train" / "README.txt").write_text("not a class")
    config = SamplingConfig(
        n_subdatasets=1, n_classes=[n_classes], image_sizes=[SIZE], workers=1, chunk_size=3
    )
    try:
        source = ImageFolderSource(root)
        (spec,) = make_specs(source, config)
        folder = build_subdataset(spec, root / "out", workers=1, chunk_size=3, progress=False)
    except SourceError as e:  # a tree is refused for a class folder, never for a file in it
        assert str(e).startswith(str(root)), e
        assert str(e).endswith(("class folder is missing", "class folder has no images")), e
        event("refused: a class folder")
        return
    except ValueError as e:
        assert str(e).startswith("subdatasets.n_classes: "), e
        event("refused: fewer classes than asked")
        return
    manifest = json.loads((folder / "manifest.json").read_text())
    event(f"built, {len(manifest['bad_files'])} bad")

    assert source.classes == find_classes(str(root / "train"))[0]
    rows = [json.loads(line) for line in (folder / "files.jsonl").read_text().splitlines()]
    class_to_idx = {c: i for i, c in enumerate(spec.classes)}

    def torchvision_lists(split: str) -> list[str]:
        found = make_dataset(str(root / split), class_to_idx, tuple(IMAGE_SUFFIXES), None, True)
        return sorted(p for p, _ in found)

    def listed(*splits: str) -> list[str]:
        return sorted(r["path"] for r in rows if r["split"] in splits)

    if source.has_val():  # the files torchvision lists, split by split
        assert listed("train") == torchvision_lists("train")
        assert listed("val") == torchvision_lists("val")
    else:  # the held-out split comes out of train/
        assert listed("train", "val") == torchvision_lists("train")
    for split in ("train", "val"):
        images, labels = load_subdataset(folder, split, mmap=False)
        good = [r for r in rows if r["split"] == split and r["sha256"]]
        assert len(good) == len(images) == manifest["splits"][split]["n_images"]
        for r, image, label in zip(good, images, labels, strict=True):
            assert r["label"] == label
            assert Path(r["path"]).relative_to(root).parts[1] == spec.classes[label]
            np.testing.assert_array_equal(image, _reference(Path(r["path"])), err_msg=r["path"])
        for r in rows:
            if r["split"] == split and not r["sha256"]:
                assert _reference(Path(r["path"])) is None, r["path"]
                assert any(e.startswith(r["path"]) for e in manifest["bad_files"]), r["path"]
