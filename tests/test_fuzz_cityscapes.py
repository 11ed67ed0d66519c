"""Property-based test of the Cityscapes reader: a frame's gtFine mask of any mode, size, value
or byte corruption is either prepared into the train-id mask mmseg reads back exactly as meant,
or rejected with a CityscapesLayoutError naming the file."""

from __future__ import annotations

import io
import shutil

import mmcv
import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from transfernas.data.cityscapes import CityscapesLayoutError, id_to_train_id, prepare_split

from .conftest import ROOT

SAMPLE = ROOT / "data/01_raw/cityscapes_sample"
FRAME = "frankfurt/frankfurt_000000_000294"
W, H = 256, 128
MODES = {
    "L": np.uint8,
    "P": np.uint8,
    "I;16": np.uint16,
    "RGB": np.uint8,
    "F": np.float32,
    "1": bool,
}


def _png(mode: str, values: np.ndarray) -> bytes:
    if mode == "RGB":
        image = Image.fromarray(np.repeat(values[..., None], 3, axis=2).astype(np.uint8))
    elif mode == "1":
        image = Image.fromarray(values.astype(bool))
    elif mode == "P":
        image = Image.fromarray(values.astype(np.uint8)).convert("P")
    else:
        image = Image.fromarray(values.astype(MODES[mode]))  # L, I;16, F from the dtype
    buf = io.BytesIO()
    image.save(buf, format="TIFF" if mode == "F" else "PNG")
    return buf.getvalue()


@st.composite
def masks(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["labelIds", "labelTrainIds"]))
    mode = draw(st.sampled_from(list(MODES)))
    size = draw(st.sampled_from([(W, H), (W, H), (W - 1, H), (H, W)]))
    top = draw(st.sampled_from([19, 34, 256, 300, 70000]))
    values = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, top, (size[1], size[0]))
    raw = _png(mode, np.clip(values, 0, 65535))
    if draw(st.integers(0, 4)) == 0:  # and sometimes the bytes themselves are broken
        raw = bytearray(raw)
        for at, new in draw(
            st.lists(
                st.tuples(st.integers(0, len(raw)), st.binary(min_size=1, max_size=3)), max_size=3
            )
        ):
            raw[at : at + len(new)] = new
        raw = bytes(raw[: draw(st.integers(0, len(raw)))]) if draw(st.booleans()) else bytes(raw)
    return kind, raw


@given(mask=masks())
@example(mask=("labelIds", _png("L", np.arange(H * W).reshape(H, W) % 34)))  # accepted, converted
@example(mask=("labelTrainIds", _png("L", np.arange(H * W).reshape(H, W) % 19)))  # accepted, linked
@example(mask=("labelIds", _png("I;16", np.full((H, W), 263))))  # was read as id 7 by mmseg
@example(mask=("labelTrainIds", _png("RGB", np.ones((H, W), int))))  # was squeezed to 3 channels
@example(mask=("labelIds", _png("L", np.ones((W - 1, H), int).T)))  # another size than its frame
@example(mask=("labelIds", b"\x89PNG\r\n\x1a\n broken"))
def test_mask_is_rejected_or_read_back_as_meant(tmp_path_factory, mask):
    kind, raw = mask
    root = tmp_path_factory.mktemp("cityscapes")
    (root / "leftImg8bit/val/frankfurt").mkdir(parents=True)
    (root / "gtFine/val/frankfurt").mkdir(parents=True)
    shutil.copy(
        SAMPLE / f"leftImg8bit/val/{FRAME}_leftImg8bit.png", root / "leftImg8bit/val/frankfurt"
    )
    written = root / f"gtFine/val/{FRAME}_gtFine_{kind}.png"
    written.write_bytes(raw)
    out = root / "seg"
    try:
        prepare_split(root, "val", out)
    except CityscapesLayoutError as e:
        assert str(e).startswith(str(root)), e
        return
    # mmseg's LoadAnnotations: imfrombytes(unchanged, pillow), squeeze, astype(uint8)
    read = mmcv.imfrombytes(
        (out / f"{FRAME}_gtFine_labelTrainIds.png").read_bytes(), flag="unchanged", backend="pillow"
    )
    read = read.squeeze().astype(np.uint8)
    source = np.asarray(Image.open(io.BytesIO(raw)))
    meant = id_to_train_id()[source] if kind == "labelIds" else source
    assert read.shape == (H, W) and np.array_equal(read, meant)
