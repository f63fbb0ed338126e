"""Read an offline W&B run back from its ``run-<id>.wandb`` file: what ``wandb sync`` would upload.

The file is a LevelDB-style log (7-byte header ``:W&B`` + magic + version, then 32 KiB blocks of records with a
7-byte header: CRC32C, length, type FULL/FIRST/MIDDLE/LAST) of ``wandb_internal_pb2.Record`` protobufs.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: str | Path) -> list[bytes]:
    data = Path(path).read_bytes()
    if len(data) < HEADER:  # not written yet
        return []
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pos, pending = [], HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0 and length == 0:
            pos += left  # zero padding up to the block end
            continue
        if pos + HEADER + length > len(data):  # a record still being written
            break
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
            pending = b""
    return out


@dataclass
class OfflineRun:
    run_id: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def _nested(items) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        keys = list(item.nested_key) or [item.key]
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = json.loads(item.value_json)
    return out


def read_run(run_dir: str | Path, wait_s: float = 60.0) -> OfflineRun:
    """The run, config (unwrapped from W&B's ``{"value": ...}``), history rows and final summary of one
    ``offline-run-*`` folder. W&B's service process writes the file after ``run.finish()`` returns and stays
    alive in this process: wait (up to ``wait_s``) until the run's exit record is on disk."""
    deadline = time.monotonic() + wait_s
    while True:
        run = _read_once(run_dir)
        if run.exit_code is not None or time.monotonic() > deadline:
            return run
        time.sleep(0.25)


def _read_once(run_dir: str | Path) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2 as pb

    found = list(Path(run_dir).glob("run-*.wandb"))
    run = OfflineRun()
    if not found:
        return run
    (path,) = found
    for data in records(path):
        rec = pb.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.run_id, run.group, run.job_type, run.name = r.run_id, r.run_group, r.job_type, r.display_name
            run.tags = list(r.tags)
            run.config.update(_nested(r.config.update))
        elif kind == "config":
            run.config.update(_nested(rec.config.update))
        elif kind == "history":
            run.history.append(_nested(rec.history.item))
        elif kind == "summary":
            run.summary.update(_nested(rec.summary.update))
        elif kind == "exit":
            run.exit_code = rec.exit.exit_code
    run.config = {k: (v["value"] if isinstance(v, dict) and set(v) <= {"value", "desc"} and "value" in v else v)
                  for k, v in run.config.items()}
    return run
