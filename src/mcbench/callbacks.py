"""Hydra callbacks: the end-of-sweep summary (failed tasks listed with their errors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from filelock import FileLock
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

FAILURES = "failures.jsonl"


def record_failure(sweep_dir: str | Path, overrides: list[str], error: BaseException) -> None:
    """Append one failed job to the sweep's failure log (jobs may run in parallel processes)."""
    path = Path(sweep_dir) / FAILURES
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"overrides": list(overrides), "error": f"{type(error).__name__}: {error}"}) + "\n"
    with FileLock(str(path) + ".lock"), open(path, "a", encoding="utf-8") as fh:
        fh.write(line)


def read_failures(sweep_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(sweep_dir) / FAILURES
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class SweepSummary(Callback):
    """At the end of a multirun, list every failed task with its error (no row was written for them)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        failures = read_failures(config.hydra.sweep.dir)
        if not failures:
            print(f"[mcbench] sweep finished: no failed task ({config.hydra.sweep.dir})")
            return
        print(f"[mcbench] sweep finished with {len(failures)} failed job(s); no result row was written for them:")
        for f in failures:
            print(f"  - {' '.join(f['overrides'])}: {f['error']}")
        raise SystemExit(1)
