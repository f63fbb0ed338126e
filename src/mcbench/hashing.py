"""The two digests every cache and identity uses: of a JSON-able value (run identity, feature and LLM cache
keys) and of a file's bytes (weights, images). One implementation each, so a key never drifts between callers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def stable_hash(obj: Any, length: int = 16) -> str:
    """SHA-256 of ``obj`` as sorted-key JSON (non-JSON values by ``str``), the first ``length`` hex digits."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks), in hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
