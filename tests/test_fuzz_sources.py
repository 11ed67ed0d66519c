"""Property-based tests of the image-source readers: a downsampled-ImageNet batch and an
ImageNet-style validation label file are either read exactly as written or rejected with a
SourceError naming the file; no other exception, nothing else.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from transfernas.data.sources import ImageFolderSource, SourceError, _ArrayOnlyUnpickler, load_batch

RNG = np.random.default_rng(0)
VALID = {"data": RNG.integers(0, 256, (3, 3 * 4 * 4), dtype=np.uint8), "labels": [1, 7, 3]}
INTS = st.sampled_from([np.uint8, np.int16, np.int64, np.uint64, np.float32, np.bool_])
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(-300, 300), max_size=6),
    st.lists(st.lists(st.integers(-3, 300), max_size=4), max_size=3),
    hnp.arrays(INTS, hnp.array_shapes(max_dims=3, max_side=5)),
)


def _reference(raw: bytes) -> Any:
    """The same bytes through pickle with the same allow-list (the test made the bytes)."""

    class Ref(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            assert (module, name) in _ArrayOnlyUnpickler.ALLOWED
            return pickle.Unpickler.find_class(self, module, name)

    return Ref(io.BytesIO(raw)).load()


def _load(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        return load_batch(path)
    except SourceError as e:
        assert str(e).startswith(f"{path}: "), e
        return None


def _read_as_written(raw: bytes, images: np.ndarray, labels: np.ndarray) -> None:
    batch = _reference(raw)
    data, written = np.asarray(batch["data"]), np.asarray(batch["labels"])
    side = images.shape[1]
    assert np.array_equal(images.transpose(0, 3, 1, 2).reshape(len(images), 3 * side * side), data)
    assert np.array_equal(labels + 1, written) and labels.dtype == np.int64
    assert images.dtype == np.uint8 and (labels >= 0).all()


@st.composite
def batches(draw) -> Any:
    batch: Any = {"data": VALID["data"].copy(), "labels": list(VALID["labels"])}
    for _ in range(draw(st.integers(1, 2))):
        op = draw(st.sampled_from(["data", "labels", "labels", "drop", "top", "plausible"]))
        if op in ("data", "labels"):
            batch[op] = draw(ODD)
        elif op == "drop":
            batch.pop(draw(st.sampled_from(["data", "labels"])), None)
        elif op == "top":
            batch = draw(st.one_of(ODD, st.just([batch])))
            break
        else:  # a valid batch of another size, any integer dtype
            n, side = draw(st.integers(1, 4)), draw(st.integers(1, 5))
            dtype = draw(st.sampled_from([np.uint8, np.int32, np.int64]))
            batch = {
                "data": draw(hnp.arrays(dtype, (n, 3 * side * side), elements=st.integers(0, 255))),
                "labels": draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n)),
            }
    return batch


@given(batch=batches(), protocol=st.sampled_from([2, 4]))
@example(batch=VALID, protocol=4)
@example(batch=VALID | {"labels": [0, 1, 2]}, protocol=4)  # 0 is no 1-based label: was class -1
@example(batch=VALID | {"labels": [1.9, 2.0, 3.0]}, protocol=4)  # was truncated to 1
@example(batch=VALID | {"data": VALID["data"].astype(np.int64) + 200}, protocol=4)  # was wrapped
@example(batch=[VALID], protocol=2)
def test_batch_is_rejected_or_read_as_written(tmp_path_factory, batch, protocol):
    raw = pickle.dumps(batch, protocol=protocol)
    path = tmp_path_factory.mktemp("batch") / "train_data_batch_1"
    path.write_bytes(raw)
    read = _load(path)
    if read is not None:
        _read_as_written(raw, *read)


@given(
    edits=st.lists(st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=3)), max_size=4),
    truncate=st.one_of(st.none(), st.integers(0, 400)),
    protocol=st.sampled_from([2, 4]),
)
def test_batch_bytes_are_rejected_or_read_as_written(tmp_path_factory, edits, truncate, protocol):
    raw = bytearray(pickle.dumps(VALID, protocol=protocol))
    for at, new in edits:
        at = min(at, len(raw))
        raw[at : at + len(new)] = new
    raw = bytes(raw if truncate is None else raw[:truncate])
    path = tmp_path_factory.mktemp("batch") / "train_data_batch_1"
    path.write_bytes(raw)
    read = _load(path)
    if read is not None:
        _read_as_written(raw, *read)


NAMES = ["val_1.JPEG", "val_2.JPEG", "ü 3.png"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for wnid in ("n01", "n02"):
        (root / "train" / wnid).mkdir(parents=True)
        (root / "train" / wnid / "a.JPEG").write_bytes(b"x")
    (root / "val" / "images").mkdir(parents=True)
    for name in NAMES:
        (root / "val" / "images" / name).write_bytes(b"x")
    return root


LINE = st.one_of(
    st.tuples(
        st.sampled_from([*NAMES, "val_1", "missing.JPEG", ""]),
        st.sampled_from(["n01", "n02", "nX"]),
    ).map(lambda t: f"{t[0]}\t{t[1]}\t0\t0\t8\t8"),
    st.text(max_size=30),
    st.just("ImageId,PredictionString"),
)


@given(lines=st.lists(LINE, max_size=6), sep=st.sampled_from(["\n", "\r\n"]))
@example(lines=["val_1.JPEG\tn01", "ü 3.png\tn02"], sep="\n")
def test_val_label_file_is_rejected_or_read_as_written(tmp_path_factory, tree, lines, sep):
    text = sep.join(lines)
    label_file = f"labels_{abs(hash(text))}.txt"
    (tree / "val" / label_file).write_text(text)
    source = ImageFolderSource(tree, label_file=label_file)
    try:
        by_class = {w: source.files("val", w) for w in source._flat_val()}
    except SourceError as e:
        assert str(e).startswith(str(tree / "val" / label_file)), e
        return
    written: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.replace(",", " ").split()
        if len(parts) >= 2 and parts[0].lower() not in {"imageid", "file"}:
            name = parts[0] if Path(parts[0]).suffix else parts[0] + ".JPEG"
            written.setdefault(parts[1], []).append(name)
    assert {w: sorted(p.name for p in files) for w, files in by_class.items()} == {
        w: sorted(names) for w, names in written.items()
    }
