"""Build the small COCO-format detection fixture shipped in data/01_raw/coco_sample/.

From the Tiny ImageNet subset in ../shared/data/tiny-imagenet: ``--classes`` classes (fixed
seed) that have boxes, ``--train`` train and ``--val`` val images each, JPEG bytes copied
unchanged, with their one real bounding box per image (Tiny ImageNet's ``*_boxes.txt`` and
``val_annotations.txt``) as COCO ``instances_{train,val}2017.json`` (COCO 2017's layout);
categories are the classes (names from ``words.txt``). Real images, real boxes, no download.

    python scripts/make_coco_sample.py --shared ../shared/data --out data/01_raw/coco_sample
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tarfile
from pathlib import Path

SHA = "43066af1efb82e4b55de99e23ac3b1665565e296d64716af65b143837ad6e5df"
TOP = "tiny-imagenet-200-subset"
SIZE = 64  # Tiny ImageNet images are 64×64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data/01_raw/coco_sample"))
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--train", type=int, default=12)
    parser.add_argument("--val", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()

    archive = args.shared / "tiny-imagenet" / "tiny-imagenet-200-subset.tar.gz"
    if hashlib.sha256(archive.read_bytes()).hexdigest() != SHA:
        raise SystemExit(f"{archive}: checksum differs from the published one")
    with tarfile.open(archive) as tar:
        files = {m.name: m for m in tar.getmembers() if m.isfile()}

        def text(name: str) -> str:
            return tar.extractfile(files[f"{TOP}/{name}"]).read().decode()

        words = dict(line.split("\t", 1) for line in text("words.txt").splitlines() if "\t" in line)
        with_boxes = sorted(
            n.split("/")[2] for n in files if n.endswith("_boxes.txt") and n.count("/") == 3
        )
        chosen = sorted(random.Random(args.seed).sample(with_boxes, args.classes))
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
            images, annotations = [], []
            for wnid in chosen:
                names = sorted(n for n, (w, _) in boxes[split].items() if w == wnid)
                for name in sorted(rng.sample(names, per_class)):
                    image_id = len(images) + 1
                    file_name = Path(name).name
                    data = tar.extractfile(files[f"{TOP}/{name}"]).read()
                    (args.out / folder / file_name).write_bytes(data)
                    x0, y0, x1, y1 = boxes[split][name][1]
                    w, h = x1 - x0 + 1, y1 - y0 + 1
                    images.append(
                        {"id": image_id, "file_name": file_name, "width": SIZE, "height": SIZE}
                    )
                    annotations.append(
                        {
                            "id": len(annotations) + 1,
                            "image_id": image_id,
                            "category_id": cat_id[wnid],
                            "bbox": [x0, y0, w, h],
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


if __name__ == "__main__":
    main()
