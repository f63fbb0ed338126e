"""Hydra callbacks: the end-of-sweep summary, one aggregated table (method × dataset/aspect, mean ± std over
seeds, failed jobs) printed and written into the sweep folder, and the failed tasks listed with their errors.

Jobs may run in other processes (joblib, submitit): each appends its rows and failures to the sweep folder under
a file lock, and the callback reads them back when the sweep ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from filelock import FileLock
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

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
    from mcbench.report_table import sweep_markdown, sweep_summary, sweep_table

    sweep_dir = Path(sweep_dir)
    rows, failures = read_rows(sweep_dir), read_failures(sweep_dir)
    records = sweep_summary(rows, failures)
    write_text_atomic(sweep_dir / SUMMARY_MD, f"# Sweep {sweep_dir}\n\n{sweep_markdown(rows, failures)}")
    write_text_atomic(sweep_dir / SUMMARY_JSON, json.dumps(records, indent=1))
    return sweep_table(rows, failures)


class SweepSummary(Callback):
    """At the end of a multirun: print and write one aggregated table, log it to W&B (``logger=wandb``), and
    list every failed task with its error (no row was written for them)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = config.hydra.sweep.dir
        failures = read_failures(sweep_dir)
        if Path(sweep_dir).is_dir():
            table = write_summary(sweep_dir)
            print(f"[mcbench] sweep results (mean ± std over seeds; {Path(sweep_dir) / SUMMARY_MD}):\n{table}")
            self._log_table(config, sweep_dir)
        if not failures:
            print(f"[mcbench] sweep finished: no failed task ({sweep_dir})")
            return
        print(f"[mcbench] sweep finished with {len(failures)} failed job(s); no result row was written for them:")
        for f in failures:
            print(f"  - {' '.join(f['overrides'])}: {f['error']}")
        raise SystemExit(1)

    @staticmethod
    def _log_table(config: DictConfig, sweep_dir: str) -> None:
        logger = config.get("logger")
        if logger is None or logger.get("name") != "wandb":
            return
        from omegaconf import OmegaConf

        from mcbench.tracking import log_sweep_table

        params = OmegaConf.to_container(logger, resolve=True)
        params.pop("name", None)
        try:
            log_sweep_table(sweep_dir, read_rows(sweep_dir), read_failures(sweep_dir), **params)
        except Exception as exc:  # noqa: BLE001  (logging is optional: the rows and summary.md are written)
            print(f"[mcbench] warning: the sweep's W&B table was not logged ({type(exc).__name__}: {exc}); "
                  f"the table is in {Path(sweep_dir) / SUMMARY_MD}")
