"""Where benchmarks and fixture scripts find data that does not ship in the repository.

The bigger inputs (the Tiny ImageNet subset, full-size ImageNet JPEGs; docs/data.md says how
to get each) live in one folder: ``$TRANSFERNAS_DATA``; else ``data/external`` in the clone,
when it exists; else the ``shared/data`` folder beside the clone, where this project's CI and
development machines keep the same files.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "TRANSFERNAS_DATA"


def external_data(repo: Path) -> Path:
    """The external data folder for the clone at ``repo`` (see the module docstring)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    local = repo / "data/external"
    return local if local.exists() else repo.parent / "shared/data"


def need(path: Path, what: str) -> Path:
    """``path``, or an exit that names it and where to read how to get it."""
    if not path.exists():
        raise SystemExit(
            f"{path}: {what} not found. docs/data.md says how to get it; point --data "
            f"(or ${ENV}) at the folder that holds it."
        )
    return path
