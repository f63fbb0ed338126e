"""Experiment trackers: ``logger=wandb`` (one W&B run per task, offline unless configured) or ``none``.

A W&B run per task carries what a dashboard filters and groups by:

* ``config``: the nested, resolved Hydra config (``method.lr``, ``dataset.difficulty``, ``encoder.model``, ...),
  with every method hyperparameter (the Config dataclass's values, YAML or not) and a ``task`` node (aspect,
  run_id, k, reference words);
* live curves: each epoch's loss terms, logged as the method reports them (``ClusteringTask.log_epoch``);
* ``summary``: the metrics (NMI, RI, ARI, AMI, ACC, their std over the k-means restarts, NMI on every other
  aspect, times);
* ``group``: the sweep folder (every run of a sweep) or the run folder (every aspect of a single run);
  ``job_type``: ``sweep``, ``run`` or ``sanity``; ``tags``: method, dataset, ``aspect:``, ``seed:``, ``level:``.

At the end of a multirun, ``log_sweep_table`` logs one more run (``job_type=sweep-table``) holding a W&B Table
of the sweep's rows and one of its aggregated table. Offline runs land under ``<dir>/wandb/offline-run-*``;
upload them later with ``wandb sync <run dir>``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from mcbench.registry import Registry
from mcbench.results import schema

_log = logging.getLogger(__name__)



class Tracker(Protocol):
    def start_task(self, cfg: Any, ident: dict[str, Any], run_id: str) -> None:
        """A task starts (before its method fits)."""

    def log_epoch(self, terms: dict[str, float]) -> None:
        """One epoch's loss terms, while the method trains."""

    def log_task(self, row: dict[str, Any], history: list[dict[str, float]]) -> str | None:
        """Record one finished task; return the tracker's run id, if any."""

    def abort(self, error: BaseException) -> None:
        """The started task failed: close its record as failed."""


class NullTracker:
    def __init__(self, **_: Any) -> None:
        pass

    def start_task(self, cfg: Any, ident: dict[str, Any], run_id: str) -> None:
        pass

    def log_epoch(self, terms: dict[str, float]) -> None:
        pass

    def log_task(self, row: dict[str, Any], history: list[dict[str, float]]) -> str | None:
        return None

    def abort(self, error: BaseException) -> None:
        pass


def default_mode() -> str:
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def task_config(cfg: Any, ident: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The nested resolved config of one task: the job's Hydra config, the method's every hyperparameter, and a
    ``task`` node (what differs between the tasks of one job)."""
    from omegaconf import DictConfig, OmegaConf

    config = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    method = dict(config.get("method") or {})
    method.update(ident.get("hparams") or {})
    config["method"] = method
    config["aspect"] = ident["aspect"]
    config["task"] = {"run_id": run_id, "aspect": ident["aspect"], "encoder_identity": ident.get("encoder"),
                      "words": list(ident.get("words") or []), "method_version": ident.get("method_version"),
                      "dataset_revision": ident.get("dataset_revision")}
    return config


def task_tags(config: dict[str, Any]) -> list[str]:
    """method, dataset, aspect, seed, level (synthetic difficulty) and generator seed, as W&B tags."""
    dataset = config.get("dataset") or {}
    tags = [str((config.get("method") or {}).get("name", "")), str(dataset.get("name", "")),
            f"aspect:{config.get('aspect')}", f"seed:{config.get('seed')}"]
    if dataset.get("difficulty") is not None:
        tags.append(f"level:{dataset['difficulty']}")
    if "seed" in dataset and dataset.get("difficulty") is not None:
        tags.append(f"dataset_seed:{dataset['seed']}")
    if config.get("sanity_check"):
        tags.append(f"sanity:{config['sanity_check']}")
    return [t[:64] for t in tags if t]


class WandbTracker:
    """One W&B run per task, grouped by sweep (or by run folder); offline unless the user configured W&B."""

    def __init__(self, project: str = "mcbench", entity: str | None = None, mode: str | None = None,
                 dir: str = "outputs", group: str | None = None, tags: list[str] | None = None,
                 job_type: str | None = None) -> None:
        self.project = project
        self.entity = entity
        self.mode = mode or default_mode()
        self.dir = Path(dir)
        self.group = group
        self.tags = list(tags or [])
        self.job_type = job_type
        self._run = None
        self._epochs = 0

    def start_task(self, cfg: Any, ident: dict[str, Any], run_id: str) -> None:
        config = task_config(cfg, ident, run_id)
        self._start(config, f"{ident['method']}-{ident['dataset']}-{ident['aspect']}-s{ident['seed']}")

    def _start(self, config: dict[str, Any], name: str) -> None:
        import wandb

        self.dir.mkdir(parents=True, exist_ok=True)
        group = (self.group or config.get("sweep_id") or _relative(config.get("artifacts_dir"))
                 or f"run-{datetime.now().strftime('%Y-%m-%d_%H-%M-%S')}")
        job_type = self.job_type or ("sanity" if config.get("sanity_check") else
                                     "sweep" if config.get("sweep_id") else "run")
        self._run = wandb.init(
            # an absolute folder: W&B's service process is shared and keeps the folder it started in
            project=self.project, entity=self.entity, mode=self.mode, dir=str(self.dir.resolve()), group=str(group)[:128],
            job_type=job_type, name=name, config=config, tags=self.tags + task_tags(config),
            reinit="finish_previous", settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )
        self._epochs = 0

    def log_epoch(self, terms: dict[str, float]) -> None:
        if self._run is None:
            return
        self._run.log({"epoch": self._epochs, **_numbers(terms)}, step=self._epochs)
        self._epochs += 1

    def log_task(self, row: dict[str, Any], history: list[dict[str, float]]) -> str | None:
        if self._run is None:  # called without start_task: the row is all there is
            self._start({"method": {"name": row["method"]}, "dataset": {"name": row["dataset"]},
                         "aspect": row["aspect"], "seed": row["seed"]},
                        f"{row['method']}-{row['dataset']}-{row['aspect']}-s{row['seed']}")
        run = self._run
        for entry in history[self._epochs:]:  # epochs the method did not report live
            self.log_epoch(entry)
        summary = {k: row[k] for k in schema.summary_columns() if k in row and row[k] is not None}
        others = row.get("nmi_other_aspects")
        if others:
            for aspect, value in (json.loads(others) if isinstance(others, str) else others).items():
                summary[f"nmi_other/{aspect}"] = value
        summary.update({k: row[k] for k in ("run_id", "representation", "cluster_names", "status") if k in row})
        run.summary.update(summary)
        run_id = run.id
        run.finish()
        self._run = None
        return run_id

    def abort(self, error: BaseException) -> None:
        if self._run is not None:
            self._run.summary.update({"status": "failed", "error": f"{type(error).__name__}: {error}"[:500]})
            self._run.finish(exit_code=1)
            self._run = None


def _relative(path: str | None) -> str | None:
    """A run folder as the user wrote it (``outputs/<date>/<time>``), relative to the current folder if inside."""
    if not path:
        return None
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except (OSError, ValueError):
        return str(path)


def _numbers(terms: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in terms.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def log_sweep_table(sweep_dir: str | Path, rows: list[dict[str, Any]], failures: list[dict[str, Any]],
                    project: str = "mcbench", entity: str | None = None, mode: str | None = None,
                    dir: str = "outputs", **_: Any) -> str:
    """One W&B run (``job_type=sweep-table``, grouped with the sweep) holding two Tables: ``rows`` (every task
    row of the sweep) and ``summary`` (method × dataset/aspect, mean ± std over seeds). Returns its run id."""
    import wandb

    from mcbench.results.sweep_table import sweep_summary

    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = wandb.Table(columns=columns, data=[[_cell(r.get(c)) for c in columns] for r in rows], allow_mixed_types=True)
    records = sweep_summary(rows, failures)
    summary_columns = list(records[0]) if records else ["method"]
    summary = wandb.Table(columns=summary_columns, data=[[r[c] for c in summary_columns] for r in records])
    Path(dir).mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project, entity=entity, mode=mode or default_mode(), dir=str(Path(dir).resolve()),
                     group=str(sweep_dir)[:128], job_type="sweep-table", name=f"sweep-{Path(sweep_dir).name}",
                     config={"sweep_id": str(sweep_dir), "n_rows": len(rows), "n_failed": len(failures)},
                     tags=["sweep-table"], reinit="finish_previous",
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
    run.log({"rows": table, "summary": summary})
    run_id = run.id
    run.finish()
    return run_id


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return json.dumps(value, default=str)


TRACKERS: Registry[type] = Registry("logger")
TRACKERS.register("none")(NullTracker)
TRACKERS.register("wandb")(WandbTracker)


def build_tracker(name: str, **params: Any) -> Tracker:
    return TRACKERS.get(name)(**params)


class GuardedTracker:
    """A tracker whose failures are warnings, never lost work: logging is optional, the result row is not.

    Every call goes to the wrapped tracker; the first one that raises (``WANDB_MODE=online`` without a key, a
    network or disk error) logs one warning naming the logger and the fix, and the tracker is off for the rest
    of the job (the runner appends each row before it logs it)."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner = inner
        self.name = name
        self.failed: BaseException | None = None

    def current_run_id(self) -> str:
        """The id of the tracker's run for the task under way ('' when none is open)."""
        return "" if self.failed else str(getattr(getattr(self.inner, "_run", None), "id", "") or "")

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self.inner, attr)
        if not callable(method):
            return method

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.failed is not None:
                return None
            try:
                return method(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001  (any logger failure: a warning, the job goes on)
                self.failed = exc
                _log.warning(
                    "mcbench: logger=%s failed (%s: %s); result rows are still written to the results file, "
                    "logging is off for the rest of this job. Fix the logger (W&B: WANDB_MODE=offline, or set "
                    "WANDB_API_KEY) or use logger=none", self.name, type(exc).__name__, str(exc).replace("\n", " ")[:300])
                return None

        return guarded
