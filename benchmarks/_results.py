"""The one results writer of the benchmarks: ``<stem>.json`` and ``<stem>.md`` side by side,
each with the machine that measured and the command that ran, as typed."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from transfernas.environment import machine_info

ROOT = Path(__file__).resolve().parents[1]


def command() -> str:
    """This process's command line from the repository root (every argument it was given)."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return shlex.join([".venv/bin/python", str(shown), *sys.argv[1:]])


def machine_line(info: dict[str, Any]) -> str:
    device = info.get("cuda_device") or "CPU only, no GPU"
    return f"{info['cpu']} ({info['cpu_count']} cores), torch {info['torch']}, {device}"


def _plain(value: Any) -> Any:
    """What ``json`` lacks: numpy numbers and arrays, paths, the rest as text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_results(out: Path, stem: str, payload: dict[str, Any], markdown: str | None) -> Path:
    """``out/<stem>.json`` (``payload`` + machine, command, date) and, unless ``markdown`` is
    None, ``out/<stem>.md`` (``markdown`` + a line naming the machine and the command)."""
    info, when = machine_info(), dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.mkdir(parents=True, exist_ok=True)
    record = {**payload, "machine": info, "command": command(), "date": when}
    path = out / f"{stem}.json"
    path.write_text(json.dumps(record, indent=2, default=_plain) + "\n")
    if markdown is not None:
        footer = f"Machine: {machine_line(info)}. Command: `{command()}` ({when}).\n"
        (out / f"{stem}.md").write_text(markdown.rstrip("\n") + "\n\n" + footer)
    return path
