"""json_digest names durable state: it must keep the names the hand-written digests gave."""

from __future__ import annotations

import hashlib
import json

from transfernas.digest import json_digest


def _as_before(value, length: int) -> str:
    """The digest the five hand-written places computed before they shared json_digest."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:length]


def test_one_value_is_hashed_as_itself():
    fingerprint = {"budget": 50, "seed": 0, "searcher": {"name": "rea", "population": 20}}
    assert json_digest(fingerprint) == _as_before(fingerprint, 12)
    assert json_digest(fingerprint, length=16) == _as_before(fingerprint, 16)
    parts = [{"b": 1, "a": [2, 3]}, "spec", 7]
    assert json_digest(parts) == _as_before(parts, 12)


def test_key_order_does_not_matter_and_values_do():
    assert json_digest({"a": 1, "b": 2}) == json_digest({"b": 2, "a": 1})
    assert json_digest({"a": 1, "b": 2}) != json_digest({"a": 1, "b": 3})
    assert json_digest(["x"]) != json_digest("x")


def test_what_json_lacks_is_written_as_text():
    from pathlib import Path

    assert json_digest([Path("/data/in")]) == json_digest(["/data/in"])
