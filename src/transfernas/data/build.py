"""Sub-dataset specs (seeded, content-addressed) and the streaming, resumable builder.

A spec says which classes and images a sub-dataset holds and at what size; its id is the hash
of its canonical JSON, so the same parameters always map to the same folder and a finished
sub-dataset is reused instead of rebuilt. Building writes straight into memory-mapped
``.npy`` files chunk by chunk (memory stays at one chunk per worker, whatever the size) and
logs finished chunks durably, so an interrupted build resumes with the chunks it lacks.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import Progress

from transfernas.data import decode
from transfernas.data.decode import Resize
from transfernas.data.sources import DownsampledSource, ImageFolderSource, write_batch
from transfernas.digest import json_digest
from transfernas.history import AppendLog
from transfernas.locks import owned

SPLITS = ("train", "val")


class SubdatasetSpec(BaseModel):
    """One sub-dataset: exactly which files go in, at which size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str  # the source tree, resolved: part of the id, so another tree is another dataset
    seed: int
    image_size: int
    resize: Resize = "squash"
    classes: list[str]
    files: dict[str, list[list[str]]]  # split -> per class (``classes`` order) -> paths under root

    def paths(self, split: str) -> list[str]:
        return [str(Path(self.root) / p) for per_class in self.files[split] for p in per_class]

    @property
    def spec_id(self) -> str:
        """Names the build folder: another tree is another build."""
        return json_digest(self.model_dump(), length=16)

    @property
    def sample_id(self) -> str:
        """The same files at the same size wherever the tree lies: names the task (and seeds its
        trainings), so a clone elsewhere repeats the same history."""
        return json_digest(self.model_dump(exclude={"root"}), length=16)


class SamplingConfig(BaseModel):
    """``subdatasets`` parameters: how many sub-datasets, how many classes, sizes, caps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_subdatasets: int = Field(3, ge=1)
    n_classes: list[int] = Field(default_factory=lambda: [10, 20, 30], min_length=1)
    image_sizes: list[int] = Field(default_factory=lambda: [16, 32], min_length=1)
    train_per_class: int | None = Field(None, ge=1, description="cap; None = all images")
    val_per_class: int | None = Field(None, ge=1, description="cap on val/ images, or the split")
    val_fraction: float = Field(0.2, ge=0, lt=1, description="held out of train/ when no val/")
    exclude: list[str] = Field(default_factory=list, description="wnids never sampled (targets)")
    resize: Resize = "squash"
    seed: int = Field(0, ge=0)
    workers: int = Field(2, ge=1)
    chunk_size: int = Field(256, ge=1)


class SubdatasetParams(SamplingConfig):
    """The ``subdatasets`` block: sampling plus where built sub-datasets live."""

    out_dir: str = "data/03_primary/subdatasets"


def make_specs(
    source: ImageFolderSource | DownsampledSource, config: SamplingConfig
) -> list[SubdatasetSpec]:
    """Specs 0 .. n_subdatasets − 1 (see :func:`make_spec`)."""
    return [make_spec(source, config, k) for k in range(config.n_subdatasets)]


def make_spec(
    source: ImageFolderSource | DownsampledSource, config: SamplingConfig, k: int
) -> SubdatasetSpec:
    """Spec k: rng([seed, k]) picks its class count, size, classes and images.

    Spec k does not depend on how many specs are made, so a meta-training run that needs a new
    sub-dataset per epoch reuses the ones the ``subdatasets`` stage already built.
    """
    pool = [c for c in source.classes if c not in set(config.exclude)]
    rng = np.random.default_rng([config.seed, k])
    n = int(rng.choice(config.n_classes))
    size = int(rng.choice(config.image_sizes))
    if n > len(pool):
        raise ValueError(
            f"subdatasets.n_classes: {n} > {len(pool)} classes available in {source.root}"
        )
    classes = sorted(str(c) for c in rng.choice(pool, size=n, replace=False))
    files: dict[str, list[list[str]]] = {"train": [], "val": []}
    for wnid in classes:
        train = [str(p.relative_to(source.root)) for p in source.files("train", wnid)]
        if source.has_val():
            val = [str(p.relative_to(source.root)) for p in source.files("val", wnid)]
        else:
            perm = rng.permutation(len(train))
            n_val = round(config.val_fraction * len(train))
            val, train = (
                [train[i] for i in sorted(perm[:n_val])],
                [train[i] for i in sorted(perm[n_val:])],
            )
        files["train"].append(_cap(train, config.train_per_class, rng))
        files["val"].append(_cap(val, config.val_per_class, rng))
    return SubdatasetSpec(
        root=str(source.root.resolve()),
        seed=config.seed,
        image_size=size,
        resize=config.resize,
        classes=classes,
        files=files,
    )


def _cap(files: list[str], cap: int | None, rng: np.random.Generator) -> list[str]:
    if cap is None or len(files) <= cap:
        return files
    return [files[i] for i in sorted(rng.choice(len(files), size=cap, replace=False))]


def build_subdataset(
    spec: SubdatasetSpec,
    out_root: str | Path,
    workers: int = 2,
    chunk_size: int = 256,
    progress: bool = True,
) -> Path:
    """Build (or reuse, or resume) one sub-dataset; returns its folder ``out_root/<spec_id>``."""
    final = Path(out_root) / spec.spec_id
    if (final / "manifest.json").exists():
        return final
    work = Path(out_root) / f"{spec.spec_id}.partial"
    work.mkdir(parents=True, exist_ok=True)
    with owned(work):
        (work / "spec.json").write_text(spec.model_dump_json())
        done = AppendLog(work / "chunks.jsonl")
        finished = {(r["split"], r["start"]): r for r in done}

        with Progress(disable=not progress, transient=True) as bar, _pool(workers) as pool:
            for split in SPLITS:
                paths, labels = _ordered(spec, split)
                np.save(work / f"{split}_labels_all.npy", labels)
                images = _open_memmap(
                    work / f"{split}_images_all.npy",
                    (len(paths), spec.image_size, spec.image_size, 3),
                )
                starts = [s for s in range(0, len(paths), chunk_size) if (split, s) not in finished]
                task = bar.add_task(
                    f"{split} {spec.image_size}px",
                    total=len(paths),
                    completed=len(paths) - sum(min(chunk_size, len(paths) - s) for s in starts),
                )
                jobs = [(paths[s : s + chunk_size], spec.image_size, spec.resize) for s in starts]
                results = (pool.map if pool is not None else map)(decode.decode_chunk, jobs)
                for start, (block, hashes, errors) in zip(starts, results, strict=True):
                    images[start : start + len(block)] = block
                    images.flush()
                    record = {"split": split, "start": start, "hashes": hashes, "errors": errors}
                    done.append([record])
                    finished[(split, start)] = record
                    bar.advance(task, len(block))
                del images
        _finalise(spec, work, final, finished, chunk_size)
        return final


def _ordered(spec: SubdatasetSpec, split: str) -> tuple[list[str], np.ndarray]:
    """A split's files and labels in path order: class folders stay together, and items of a
    downsampled batch are contiguous, so each worker loads each batch about once."""
    paths = spec.paths(split)
    labels = np.repeat(np.arange(len(spec.classes)), [len(f) for f in spec.files[split]])
    order = sorted(range(len(paths)), key=paths.__getitem__)
    return [paths[i] for i in order], labels[order].astype(np.int64)


def _open_memmap(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    if path.exists():
        arr = np.load(path, mmap_mode="r+")
        if arr.shape == shape:
            return arr
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)


def _pool(workers: int) -> ProcessPoolExecutor | nullcontext[None]:
    """Decode in ``workers`` processes (spawned: safe beside torch), or here when 1."""
    if workers <= 1:
        return nullcontext(None)
    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))


def _finalise(
    spec: SubdatasetSpec,
    work: Path,
    final: Path,
    chunks: dict[tuple[str, int], dict[str, Any]],
    chunk_size: int,
) -> None:
    """Drop bad files from the arrays, write shards + manifest, then publish atomically."""
    manifest: dict[str, Any] = {
        "spec_id": spec.spec_id,
        "seed": spec.seed,
        "image_size": spec.image_size,
        "resize": spec.resize,
        "classes": spec.classes,
        "splits": {},
        "bad_files": [],
    }
    file_rows = []
    for split in SPLITS:
        paths, _ = _ordered(spec, split)
        hashes = [h for s in range(0, len(paths), chunk_size) for h in chunks[(split, s)]["hashes"]]
        errors = [e for s in range(0, len(paths), chunk_size) for e in chunks[(split, s)]["errors"]]
        good = np.array([h != "" for h in hashes], dtype=bool)
        images = np.load(work / f"{split}_images_all.npy", mmap_mode="r")
        labels = np.load(work / f"{split}_labels_all.npy")
        out = np.lib.format.open_memmap(
            work / f"{split}_images.npy",
            mode="w+",
            dtype=np.uint8,
            shape=(int(good.sum()), *images.shape[1:]),
        )
        for s in range(0, len(paths), chunk_size):  # copy in chunks: bounded memory
            keep = good[s : s + chunk_size]
            dst = int(good[:s].sum())
            out[dst : dst + int(keep.sum())] = images[s : s + chunk_size][keep]
        out.flush()
        del out, images
        np.save(work / f"{split}_labels.npy", labels[good])
        counts = np.bincount(labels[good], minlength=len(spec.classes)).tolist()
        manifest["splits"][split] = {
            "n_images": int(good.sum()),
            "per_class": dict(zip(spec.classes, counts, strict=True)),
            "n_bad": int((~good).sum()),
        }
        manifest["bad_files"] += errors
        file_rows += [
            {"split": split, "path": p, "label": int(lab), "sha256": h}
            for p, lab, h in zip(paths, labels, hashes, strict=True)
        ]
        (work / f"{split}_images_all.npy").unlink()
        (work / f"{split}_labels_all.npy").unlink()
    manifest["sources_sha256"] = hashlib.sha256(
        "".join(r["sha256"] for r in file_rows).encode()
    ).hexdigest()
    with open(work / "files.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in file_rows)
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (work / "chunks.jsonl").unlink()
    if final.exists():
        shutil.rmtree(final)
    os.replace(work, final)


def load_subdataset(
    folder: str | Path, split: str = "train", mmap: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, H, W, 3)`` uint8 (memory-mapped by default) and int labels."""
    folder = Path(folder)
    return np.load(folder / f"{split}_images.npy", mmap_mode="r" if mmap else None), np.load(
        folder / f"{split}_labels.npy"
    )


def folder_to_batches(source: ImageFolderSource, out_dir: str | Path, size: int) -> list[Path]:
    """Write a tree as downsampled-ImageNet batches (``train_data_batch_1``, ``val_data``).

    Labels are 1-based positions in ``source.classes``. For tests and small conversions: the
    whole split is decoded in memory.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for split, name in (("train", "train_data_batch_1"), ("val", "val_data")):
        if split == "val" and not source.has_val():
            continue
        per_class = [[str(p) for p in source.files(split, c)] for c in source.classes]
        images, _, errors = decode.decode_chunk(
            ([p for ps in per_class for p in ps], size, "squash")
        )
        if errors:
            raise ValueError(f"cannot convert {source.root}: {errors[0]}")
        labels = np.repeat(np.arange(len(per_class)), [len(ps) for ps in per_class])
        write_batch(out_dir / name, images, labels)
        written.append(out_dir / name)
    return written
