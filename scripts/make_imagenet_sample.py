"""Build the small ImageNet-format sample shipped in data/01_raw/imagenet_sample/.

From the Tiny ImageNet subset archive (``--data``, docs/data.md; real ImageNet images, 64×64):
``--classes`` classes chosen with a fixed seed, ``--train`` train and ``--val`` val images each,
written as an ImageNet-style tree ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` (bytes
copied unchanged), plus ``wnids.txt``/``words.txt`` lines of those classes and README.md with
the origin and license note. The defaults rebuild the committed sample byte for byte
(``tests/test_subdatasets.py`` checks it when the archive is there).

    python scripts/make_imagenet_sample.py --out data/01_raw/imagenet_sample
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import random
import tarfile
from collections import defaultdict
from pathlib import Path

from transfernas.data.external import external_data

SHA = "43066af1efb82e4b55de99e23ac3b1665565e296d64716af65b143837ad6e5df"
TOP = "tiny-imagenet-200-subset"
README = """\
# ImageNet-format sample (embedded default of the `subdatasets` stage)

{classes} ImageNet classes × ({train} train + {val} val) real ImageNet images at 64×64, as an
ImageNet-style tree `train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`, with `wnids.txt` and `words.txt`
(wnid → name). Made by `python scripts/make_imagenet_sample.py` (these are its defaults: classes
chosen with seed {seed}, images with `random.Random(wnid)`; bytes copied unchanged) from
`../shared/data/tiny-imagenet/`, which is the Tiny ImageNet Visual Recognition Challenge data
(Stanford CS231N) as committed to GitHub rangeetpan/IMagenet at
6125d8a1069df02232eb57678fd46c700411dd45.

License: the images come from ImageNet; ImageNet's terms allow non-commercial research and
educational use only. Keep this note with any copy.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=external_data(Path(__file__).resolve().parents[1])
    )
    parser.add_argument("--out", type=Path, default=Path("data/01_raw/imagenet_sample"))
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--val", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()

    archive = args.data / "tiny-imagenet" / "tiny-imagenet-200-subset.tar.gz"
    data = archive.read_bytes()
    if hashlib.sha256(data).hexdigest() != SHA:
        raise SystemExit(f"{archive}: checksum differs from the published one")
    # decompressed in memory (~100 MB): a gzip stream rewinds to its start on every backward seek
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}

        def text(name: str) -> str:
            return tar.extractfile(members[f"{TOP}/{name}"]).read().decode()

        wnids = text("wnids.txt").split()
        chosen = sorted(random.Random(args.seed).sample(sorted(wnids), args.classes))
        train = defaultdict(list)
        for name in members:
            parts = name.split("/")
            is_image = len(parts) == 5 and parts[1] == "train" and name.endswith(".JPEG")
            if is_image and parts[2] in chosen:
                train[parts[2]].append(name)
        val = defaultdict(list)
        for line in text("val/val_annotations.txt").splitlines():
            file, wnid = line.split("\t")[:2]
            if wnid in chosen:
                val[wnid].append(f"{TOP}/val/images/{file}")
        for wnid in chosen:
            rng = random.Random(wnid)
            picks = (("train", train[wnid], args.train), ("val", val[wnid], args.val))
            for split, names, k in picks:
                for name in rng.sample(sorted(names), k):
                    dst = args.out / split / wnid / Path(name).name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    dst.write_bytes(tar.extractfile(members[name]).read())
        words = [w for w in text("words.txt").splitlines() if w.split("\t")[0] in chosen]
        (args.out / "wnids.txt").write_text("\n".join(chosen) + "\n")
        (args.out / "words.txt").write_text("\n".join(words) + "\n")
    (args.out / "README.md").write_text(
        README.format(classes=args.classes, train=args.train, val=args.val, seed=args.seed)
    )
    print(f"{args.classes} classes × ({args.train} train + {args.val} val) → {args.out}")


if __name__ == "__main__":
    main()
