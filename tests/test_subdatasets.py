"""Sub-dataset builder: determinism, bad files, errors naming files, pickle format, resume, memory."""

import io
import json
import pickle
import shutil
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from PIL import Image

import transfernas.data.decode as decode_mod
from transfernas.data.build import SamplingConfig, build_subdataset, load_subdataset, make_specs
from transfernas.data.decode import BadImage, decode_resized
from transfernas.data.external import external_data
from transfernas.data.sources import ImageFolderSource, SourceError, load_batch, write_batch
from transfernas.tasks.subdataset import task_name

from .conftest import ROOT

SAMPLE = ROOT / "data" / "01_raw" / "imagenet_sample"


def _tree(tmp_path, n_classes=4, per_class=6):
    """A small tree of real images (copied from the shipped sample), train/ + val/."""
    root = tmp_path / "tree"
    for wnid in sorted(p.name for p in (SAMPLE / "train").iterdir())[:n_classes]:
        for split, k in (("train", per_class), ("val", 2)):
            (root / split / wnid).mkdir(parents=True)
            for f in sorted((SAMPLE / split / wnid).iterdir())[:k]:
                shutil.copy(f, root / split / wnid / f.name)
    return root


def _jpeg_bytes(mode: str, fmt: str = "JPEG") -> bytes:
    img = Image.open(next((SAMPLE / "train").rglob("*.JPEG"))).convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def messy_tree(tmp_path):
    root = _tree(tmp_path)
    folder = next((root / "train").iterdir())
    good = (next(folder.iterdir())).read_bytes()
    (folder / "corrupt.JPEG").write_bytes(np.random.default_rng(0).bytes(3000))
    (folder / "truncated.JPEG").write_bytes(good[: len(good) // 3])
    (folder / "empty.JPEG").write_bytes(b"")
    (folder / "cmyk.JPEG").write_bytes(_jpeg_bytes("CMYK"))
    (folder / "gray.JPEG").write_bytes(_jpeg_bytes("L"))
    (folder / "disguised.JPEG").write_bytes(_jpeg_bytes("RGB", "PNG"))
    return root


def _config(**kw):
    return SamplingConfig(
        **({"n_subdatasets": 2, "n_classes": [3], "image_sizes": [16], "workers": 1} | kw)
    )


def test_bad_files_are_skipped_counted_and_named(messy_tree, tmp_path):
    source = ImageFolderSource(messy_tree)
    config = _config(n_subdatasets=1, n_classes=[4], chunk_size=4)
    (spec,) = make_specs(source, config)
    folder = build_subdataset(spec, tmp_path / "out", workers=1, chunk_size=4, progress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["splits"]["train"]["n_bad"] == 3
    assert manifest["splits"]["train"]["n_images"] == 4 * 6 + 3  # cmyk, gray, png-in-disguise kept
    for name in ("corrupt.JPEG", "truncated.JPEG", "empty.JPEG"):
        assert any(name in line for line in manifest["bad_files"]), name
    images, labels = load_subdataset(folder)
    assert images.shape == (27, 16, 16, 3) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == list(manifest["splits"]["train"]["per_class"].values())
    files = [json.loads(x) for x in (folder / "files.jsonl").read_text().splitlines()]
    assert sum(1 for f in files if f["sha256"] == "") == 3


@pytest.mark.parametrize("mode", ["CMYK", "L", "P", "RGBA"])
def test_decode_modes_become_rgb(mode):
    out = decode_resized(_jpeg_bytes(mode, "PNG" if mode in ("P", "RGBA") else "JPEG"), 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_decode_error_names_the_file():
    with pytest.raises(BadImage, match=r"broken\.JPEG"):
        decode_resized(b"not an image", 16, name="broken.JPEG")


def test_same_seed_same_subdatasets(tmp_path):
    source = ImageFolderSource(_tree(tmp_path))
    a = [
        build_subdataset(s, tmp_path / "a", workers=1, progress=False)
        for s in make_specs(source, _config())
    ]
    b = [
        build_subdataset(s, tmp_path / "b", workers=2, progress=False)
        for s in make_specs(source, _config())
    ]
    assert [p.name for p in a] == [p.name for p in b]
    for pa, pb in zip(a, b, strict=True):
        for f in ("train_images.npy", "train_labels.npy", "val_images.npy", "manifest.json"):
            assert (pa / f).read_bytes() == (pb / f).read_bytes()
    other = make_specs(source, _config(seed=1))
    assert [s.spec_id for s in other] != [p.name for p in a]


def test_a_moved_tree_is_another_build_but_the_same_task(tmp_path):
    """The build folder is keyed by the tree's path; the task name, which seeds every training,
    is not: a clone elsewhere repeats the same history."""
    here = _tree(tmp_path / "here")
    there = shutil.copytree(here, tmp_path / "there" / "tree")
    (a,) = make_specs(ImageFolderSource(here), _config(n_subdatasets=1))
    (b,) = make_specs(ImageFolderSource(there), _config(n_subdatasets=1))
    assert a.spec_id != b.spec_id
    assert a.sample_id == b.sample_id and task_name(a) == task_name(b)
    (c,) = make_specs(ImageFolderSource(here), _config(n_subdatasets=1, seed=1))
    assert c.sample_id != a.sample_id


def test_specs_respect_caps_exclusions_and_split(tmp_path):
    root = _tree(tmp_path, n_classes=5)
    shutil.rmtree(root / "val")
    source = ImageFolderSource(root)
    excluded = source.classes[0]
    specs = make_specs(
        source,
        _config(
            n_subdatasets=4, n_classes=[4], exclude=[excluded], train_per_class=3, val_fraction=0.5
        ),
    )
    for spec in specs:
        assert excluded not in spec.classes
        assert all(len(f) == 3 for f in spec.files["train"])
        assert all(len(f) == 3 for f in spec.files["val"])  # 6 images: half held out
        for t, v in zip(spec.files["train"], spec.files["val"], strict=True):
            assert not set(t) & set(v)


def test_missing_or_empty_class_folder_is_named(tmp_path):
    root = _tree(tmp_path)
    source = ImageFolderSource(root)
    with pytest.raises(SourceError, match="n00000000: class folder is missing"):
        source.files("train", "n00000000")
    empty = root / "train" / "n99999999"
    empty.mkdir()
    with pytest.raises(SourceError, match="n99999999: class folder has no images"):
        make_specs(ImageFolderSource(root), _config(n_subdatasets=1, n_classes=[5]))
    with pytest.raises(SourceError, match="no such folder"):
        ImageFolderSource(tmp_path / "nowhere")


def test_flat_val_with_label_file(tmp_path):
    root = _tree(tmp_path)
    flat = root / "val_flat"
    flat.mkdir()
    lines = []
    for folder in (root / "val").iterdir():
        for f in folder.iterdir():
            shutil.copy(f, flat / f.name)
            lines.append(f"{f.name}\t{folder.name}\t0 0 10 10")
    shutil.rmtree(root / "val")
    flat.rename(root / "val")
    (root / "val" / "labels.txt").write_text("\n".join(lines) + "\n")
    source = ImageFolderSource(root, label_file="labels.txt")
    assert len(source.files("val", source.classes[0])) == 2
    (root / "val" / "labels.txt").write_text("missing.JPEG n01\n")
    with pytest.raises(SourceError, match=r"labels.txt:1: image 'missing.JPEG'"):
        ImageFolderSource(root, label_file="labels.txt").files("val", "n01")


def test_downsampled_batch_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 120, size=7)
    write_batch(tmp_path / "train_data_batch_1", images, labels)
    got_images, got_labels = load_batch(tmp_path / "train_data_batch_1")
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels)
    with open(tmp_path / "train_data_batch_1", "rb") as f:
        raw = pickle.load(f)  # the file is the standard format: 1-based labels, channel-major rows
    assert raw["labels"][0] == labels[0] + 1 and raw["data"].shape == (7, 3 * 16 * 16)


def test_batch_loader_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (eval, ("print('pwned')",))  # not print: Ray, once imported, replaces it

    (tmp_path / "evil").write_bytes(pickle.dumps({"data": Evil(), "labels": [1]}))
    with pytest.raises(SourceError, match=r"refusing to load builtins\.eval"):
        load_batch(tmp_path / "evil")


def test_interrupted_build_resumes_with_missing_chunks_only(tmp_path, monkeypatch):
    source = ImageFolderSource(_tree(tmp_path))
    (spec,) = make_specs(source, _config(n_subdatasets=1))
    reference = build_subdataset(spec, tmp_path / "ref", workers=1, chunk_size=4, progress=False)
    real, calls = decode_mod.decode_chunk, []

    def crash_on_third(*args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies mid-build
        return real(*args)

    monkeypatch.setattr(decode_mod, "decode_chunk", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        build_subdataset(spec, tmp_path / "out", workers=1, chunk_size=4, progress=False)
    assert not (tmp_path / "out" / spec.spec_id).exists()  # nothing half-built is published
    calls.clear()
    monkeypatch.setattr(decode_mod, "decode_chunk", lambda *a: calls.append(a) or real(*a))
    folder = build_subdataset(spec, tmp_path / "out", workers=1, chunk_size=4, progress=False)
    n_chunks = sum(-(-len(spec.paths(s)) // 4) for s in ("train", "val"))
    assert len(calls) == n_chunks - 2
    for f in ("train_images.npy", "val_images.npy", "train_labels.npy"):
        assert (folder / f).read_bytes() == (reference / f).read_bytes()
    calls.clear()
    build_subdataset(spec, tmp_path / "out", workers=1, chunk_size=4, progress=False)
    assert not calls  # finished: reused, not rebuilt


def test_224px_build_streams_to_disk(tmp_path):
    source = ImageFolderSource(_tree(tmp_path, n_classes=4, per_class=12))
    (spec,) = make_specs(source, _config(n_subdatasets=1, n_classes=[4], image_sizes=[224]))
    total = sum(len(spec.paths(s)) for s in ("train", "val")) * 224 * 224 * 3
    tracemalloc.start()
    build_subdataset(spec, tmp_path / "out", workers=1, chunk_size=4, progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total > 8_000_000 and peak < total / 3  # never all decoded images in memory at once


def _batches(tmp_path, n_classes=5, per_batch=40, size=16):
    rng = np.random.default_rng(1)
    root = tmp_path / "imagenet16"
    root.mkdir()
    for name in ("train_data_batch_1", "train_data_batch_2", "val_data"):
        images = rng.integers(0, 256, size=(per_batch, size, size, 3), dtype=np.uint8)
        write_batch(root / name, images, rng.integers(0, n_classes, size=per_batch))
    return root


def test_subdatasets_from_downsampled_batches(tmp_path):
    from transfernas.data.sources import DownsampledSource

    root = _batches(tmp_path)
    source = DownsampledSource(root)
    assert source.classes == ["0001", "0002", "0003", "0004", "0005"] and source.has_val()
    (spec,) = make_specs(source, _config(n_subdatasets=1, n_classes=[3], image_sizes=[16]))
    folder = build_subdataset(spec, tmp_path / "out", workers=2, chunk_size=8, progress=False)
    images, labels = load_subdataset(folder)
    expected = []
    for name in ("train_data_batch_1", "train_data_batch_2"):
        batch_images, batch_labels = load_batch(root / name)
        for row, lab in enumerate(batch_labels):
            if f"{lab + 1:04d}" in spec.classes:
                expected.append((batch_images[row], spec.classes.index(f"{lab + 1:04d}")))
    assert len(images) == len(expected)
    assert np.array_equal(images, np.stack([e[0] for e in expected]))  # same size: pixels as stored
    assert labels.tolist() == [e[1] for e in expected]
    (spec32,) = make_specs(source, _config(n_subdatasets=1, n_classes=[3], image_sizes=[32]))
    images32, _ = load_subdataset(
        build_subdataset(spec32, tmp_path / "out", workers=1, progress=False)
    )
    assert images32.shape[1:] == (32, 32, 3)


def test_malformed_batch_stops_with_its_name(tmp_path):
    from transfernas.data.sources import DownsampledSource

    root = _batches(tmp_path)
    (root / "train_data_batch_2").write_bytes(
        pickle.dumps({"data": np.zeros((3, 10), np.uint8), "labels": [1, 2, 3]})
    )
    with pytest.raises(SourceError, match="train_data_batch_2: data must be N × 3·s·s"):
        _ = DownsampledSource(root).classes


def test_folder_to_batches_round_trip(tmp_path):
    from transfernas.data.build import folder_to_batches
    from transfernas.data.sources import DownsampledSource

    tree = ImageFolderSource(_tree(tmp_path, n_classes=3, per_class=4))
    folder_to_batches(tree, tmp_path / "batches", size=16)
    batches = DownsampledSource(tmp_path / "batches")
    assert batches.classes == ["0001", "0002", "0003"]
    images, labels = load_batch(tmp_path / "batches" / "train_data_batch_1")
    assert images.shape == (12, 16, 16, 3) and np.bincount(labels).tolist() == [4, 4, 4]
    first = decode_resized((tree.files("train", tree.classes[0])[0]).read_bytes(), 16)
    assert np.array_equal(images[0], first)


SHARED_ARCHIVE = external_data(ROOT) / "tiny-imagenet/tiny-imagenet-200-subset.tar.gz"


@pytest.mark.skipif(
    not SHARED_ARCHIVE.exists(), reason="needs the Tiny ImageNet subset (docs/data.md)"
)
def test_embedded_sample_rebuilds_byte_for_byte(tmp_path):
    out = tmp_path / "sample"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/make_imagenet_sample.py"),
            "--data",
            str(SHARED_ARCHIVE.parents[1]),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    files = sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert all((SAMPLE / f).read_bytes() == (out / f).read_bytes() for f in files)


def test_imagenet_dataset_tells_a_tree_from_batches(tmp_path):
    """``imagenet_root`` may name either layout; a folder with neither is named in the error."""
    from kedro.io import DatasetError

    from transfernas.data.sources import DownsampledSource
    from transfernas.pipelines.io import ImageNetDataset

    tree = ImageNetDataset(path=str(_tree(tmp_path, n_classes=3, per_class=2))).load()
    assert isinstance(tree, ImageFolderSource) and len(tree.classes) == 3
    batches = ImageNetDataset(path=str(_batches(tmp_path))).load()
    assert isinstance(batches, DownsampledSource) and len(batches.classes) == 5
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: neither an ImageNet tree") as err:
        ImageNetDataset(path=str(tmp_path / "empty")).load()
    assert isinstance(err.value.__cause__, SourceError)
