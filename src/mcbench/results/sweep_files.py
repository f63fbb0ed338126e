"""A sweep folder's files: every job's rows and failures (appended under a file lock: jobs may run in other
processes, joblib or submitit) and the end-of-sweep summary (``summary.md``, ``summary.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from filelock import FileLock

FAILURES = "failures.jsonl"
ROWS = "rows.jsonl"            # every job's rows (those written and those skipped as already in the results)
SUMMARY_MD = "summary.md"      # the aggregated table
SUMMARY_JSON = "summary.json"


def _append(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"), open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(lines))


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def record_failure(sweep_dir: str | Path, overrides: list[str], error: BaseException) -> None:
    """Append one failed job to the sweep's failure log (jobs may run in parallel processes)."""
    _append(Path(sweep_dir) / FAILURES,
            [json.dumps({"overrides": list(overrides), "error": f"{type(error).__name__}: {error}"}) + "\n"])


def read_failures(sweep_dir: str | Path) -> list[dict[str, Any]]:
    return _read(Path(sweep_dir) / FAILURES)


def record_rows(sweep_dir: str | Path, overrides: list[str], rows: list[dict[str, Any]]) -> None:
    """Append one job's result rows to the sweep's row log."""
    _append(Path(sweep_dir) / ROWS, [json.dumps({"overrides": list(overrides), "row": row}, default=str) + "\n"
                                     for row in rows])


def read_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    return [entry["row"] for entry in _read(Path(sweep_dir) / ROWS)]


def write_summary(sweep_dir: str | Path) -> str:
    """Aggregate the sweep's rows and failures; write ``summary.md`` and ``summary.json``; return the table."""
    from mcbench.atomic import write_text_atomic
    from mcbench.results.sweep_table import sweep_markdown, sweep_summary, sweep_table

    sweep_dir = Path(sweep_dir)
    rows, failures = read_rows(sweep_dir), read_failures(sweep_dir)
    records = sweep_summary(rows, failures)
    write_text_atomic(sweep_dir / SUMMARY_MD, f"# Sweep {sweep_dir}\n\n{sweep_markdown(rows, failures)}")
    write_text_atomic(sweep_dir / SUMMARY_JSON, json.dumps(records, indent=1))
    return sweep_table(rows, failures)
