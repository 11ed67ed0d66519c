"""One content digest for durable state: folders, logs, tags and seeds named by their inputs."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def json_digest(value: Any, *, length: int = 12) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys, ``str`` for what JSON lacks), cut to
    ``length`` hex digits: equal inputs name the same folder in every process and Python run.

    Several parts go in as one list. Every state folder, durable log and task seed written
    before this was the one helper named its value the same way, so they stay valid.
    """
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
