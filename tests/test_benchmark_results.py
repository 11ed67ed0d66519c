"""The benchmarks' one results writer: json and markdown, each naming machine and command."""

from __future__ import annotations

import json
import sys

import numpy as np

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import write_results


def test_json_and_markdown_name_the_machine_and_the_command_as_typed(tmp_path, monkeypatch):
    argv = [str(ROOT / "benchmarks/latency.py"), "--measurements", "3", "--out", "a b"]
    monkeypatch.setattr(sys, "argv", argv)
    payload = {"rows": [{"ms": np.float32(1.5), "n": np.int64(3)}], "where": tmp_path}
    path = write_results(tmp_path, "latency", payload, "# Latency\n\n| a |\n")
    record = json.loads(path.read_text())
    command = ".venv/bin/python benchmarks/latency.py --measurements 3 --out 'a b'"
    assert record["command"] == command and record["rows"] == [{"ms": 1.5, "n": 3}]
    assert record["where"] == str(tmp_path) and record["machine"]["cpu_count"] >= 1
    md = (tmp_path / "latency.md").read_text()
    assert md.startswith("# Latency\n\n| a |\n\nMachine: ") and f"Command: `{command}`" in md
    write_results(tmp_path, "only_json", {"x": 1}, None)
    assert not (tmp_path / "only_json.md").exists()
