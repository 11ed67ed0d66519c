"""One content digest for durable state: folders and files named by what produced them."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def json_digest(*parts: Any, length: int = 12) -> str:
    """sha256 of ``parts`` as canonical JSON (sorted keys, ``str`` for what JSON lacks), cut to
    ``length`` hex digits: equal inputs name the same folder in every process and Python run."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
