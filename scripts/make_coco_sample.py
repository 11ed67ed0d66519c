"""Build COCO-format detection sets from the Tiny ImageNet boxes (real images, real boxes).

From the Tiny ImageNet subset archive (``--data``, docs/data.md): ``--classes`` classes (fixed
seed; 0 = all 149 that have boxes), ``--train`` train and ``--val`` val images each, with their
one real bounding box per image (Tiny ImageNet's ``*_boxes.txt`` and ``val_annotations.txt``)
as COCO ``instances_{train,val}2017.json`` (COCO 2017's layout); categories are the classes
(names from ``words.txt``). No download; the same arguments rebuild the same bytes.

``--grid 1`` copies each 64-px JPEG unchanged (one object per image): the fixture shipped in
data/01_raw/coco_sample/. ``--grid G`` pastes the split's images, shuffled, into G×G mosaics of
64-px cells (each cell empty with probability ``--empty``), so an image holds 0…G² objects at
different places, boxes shifted with their tile — the detection set of the benchmarks:

    python scripts/make_coco_sample.py --out data/01_raw/coco_sample        # the fixture
    python scripts/make_coco_sample.py --classes 0 --train 100 --val 50 --grid 2 \
        --out data/01_raw/tiny_coco    # 149 classes, 3,700 + 1,850 mosaics (benchmarks)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import tarfile
from pathlib import Path

from PIL import Image

from transfernas.data.external import external_data

SHA = "43066af1efb82e4b55de99e23ac3b1665565e296d64716af65b143837ad6e5df"
TOP = "tiny-imagenet-200-subset"
SIZE = 64  # Tiny ImageNet images are 64×64
LICENSE = """# COCO-format detection set from Tiny ImageNet (real images, real boxes)

Built by `scripts/make_coco_sample.py --classes {args.classes} --train {args.train} --val \
{args.val} --grid {args.grid} --empty {args.empty} --seed {args.seed}` ({n} classes):
{args.grid}×{args.grid} mosaics of 64-px Tiny ImageNet images with their boxes, COCO 2017
layout.

Tiny ImageNet is derived from ImageNet: non-commercial research and educational use only
(ImageNet terms of access). Boxes from Tiny ImageNet's `*_boxes.txt` / `val_annotations.txt`.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=external_data(Path(__file__).resolve().parents[1])
    )
    parser.add_argument("--out", type=Path, default=Path("data/01_raw/coco_sample"))
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--train", type=int, default=12)
    parser.add_argument("--val", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--grid", type=int, default=1, help="G×G mosaics; 1 = bytes unchanged")
    parser.add_argument("--empty", type=float, default=0.25, help="chance a mosaic cell is empty")
    args = parser.parse_args()

    archive = args.data / "tiny-imagenet" / "tiny-imagenet-200-subset.tar.gz"
    if hashlib.sha256(archive.read_bytes()).hexdigest() != SHA:
        raise SystemExit(f"{archive}: checksum differs from the published one")
    # one sequential pass: random access into a .tar.gz decompresses from the start each time
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}

    def text(name: str) -> str:
        return files[f"{TOP}/{name}"].decode()

    words = dict(line.split("\t", 1) for line in text("words.txt").splitlines() if "\t" in line)
    with_boxes = sorted(
        n.split("/")[2] for n in files if n.endswith("_boxes.txt") and n.count("/") == 3
    )
    n_classes = args.classes or len(with_boxes)
    chosen = sorted(random.Random(args.seed).sample(with_boxes, n_classes))
    boxes = {"train": {}, "val": {}}
    for wnid in chosen:
        for line in text(f"train/{wnid}/{wnid}_boxes.txt").splitlines():
            name, *xyxy = line.split("\t")
            boxes["train"][f"train/{wnid}/images/{name}"] = (wnid, list(map(int, xyxy)))
    for line in text("val/val_annotations.txt").splitlines():
        name, wnid, *xyxy = line.split("\t")
        if wnid in chosen:
            boxes["val"][f"val/images/{name}"] = (wnid, list(map(int, xyxy)))

    categories = [
        {"id": i + 1, "name": words[w].split(",")[0].strip(), "wnid": w}
        for i, w in enumerate(chosen)
    ]
    cat_id = {c["wnid"]: c["id"] for c in categories}
    rng = random.Random(args.seed)
    for split, per_class in (("train", args.train), ("val", args.val)):
        folder = f"{split}2017"  # COCO 2017's names: only the root differs from real COCO
        (args.out / folder).mkdir(parents=True, exist_ok=True)
        tiles = [
            name
            for wnid in chosen
            for name in sorted(
                rng.sample(sorted(n for n, (w, _) in boxes[split].items() if w == wnid), per_class)
            )
        ]
        if args.grid > 1:
            rng.shuffle(tiles)
        images, annotations = [], []
        for cells in _layout(tiles, args.grid, args.empty, rng):
            image_id = len(images) + 1
            side = SIZE * args.grid
            if args.grid == 1:
                file_name = Path(cells[0][0]).name
                data = files[f"{TOP}/{cells[0][0]}"]
            else:
                file_name = f"{split}_{image_id:06d}.jpg"
                canvas = Image.new("RGB", (side, side), (114, 114, 114))
                for name, (dx, dy) in cells:
                    tile = Image.open(io.BytesIO(files[f"{TOP}/{name}"])).convert("RGB")
                    canvas.paste(tile, (dx, dy))
                buffer = io.BytesIO()
                canvas.save(buffer, format="JPEG", quality=95)
                data = buffer.getvalue()
            (args.out / folder / file_name).write_bytes(data)
            images.append({"id": image_id, "file_name": file_name, "width": side, "height": side})
            for name, (dx, dy) in cells:
                wnid, (x0, y0, x1, y1) = boxes[split][name]
                w, h = x1 - x0 + 1, y1 - y0 + 1
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": cat_id[wnid],
                        "bbox": [x0 + dx, y0 + dy, w, h],
                        "area": w * h,
                        "iscrowd": 0,
                    }
                )
        (args.out / "annotations").mkdir(exist_ok=True)
        coco = {"images": images, "annotations": annotations, "categories": categories}
        (args.out / "annotations" / f"instances_{folder}.json").write_text(
            json.dumps(coco, indent=1) + "\n"
        )
        print(split, len(images), "images")
    if args.grid > 1:  # the shipped fixture (grid 1) has its own README
        (args.out / "README.md").write_text(LICENSE.format(args=args, n=n_classes))


def _layout(
    tiles: list[str], grid: int, empty: float, rng: random.Random
) -> list[list[tuple[str, tuple[int, int]]]]:
    """Images as lists of (tile, (x, y) offset): one tile each for grid 1, else G×G cells
    filled in order, each left empty with probability ``empty`` (mosaics without any tile are
    dropped: a detection image has at least one object)."""
    if grid == 1:
        return [[(t, (0, 0))] for t in tiles]
    images, queue = [], list(tiles)
    while queue:
        cells = []
        for r in range(grid):
            for c in range(grid):
                if queue and rng.random() >= empty:
                    cells.append((queue.pop(0), (c * SIZE, r * SIZE)))
        if cells:
            images.append(cells)
    return images


if __name__ == "__main__":
    main()
