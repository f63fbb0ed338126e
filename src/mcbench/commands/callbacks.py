"""Hydra callbacks: the end-of-sweep summary, one aggregated table (method × dataset/aspect, mean ± std over
seeds, failed jobs) printed and written into the sweep folder, and the failed tasks listed with their errors.

Jobs may run in other processes (joblib, submitit): each appends its rows and failures to the sweep folder under
a file lock (:mod:`mcbench.results.sweep_files`), and the callback reads them back when the sweep ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mcbench.results.sweep_files import SUMMARY_MD, read_failures, read_rows, write_summary


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
