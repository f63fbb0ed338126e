"""Experiment trackers: ``logger=wandb`` (one W&B run per task, offline unless configured) or ``none``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol

from mcbench.registry import Registry

_log = logging.getLogger(__name__)


class Tracker(Protocol):
    def log_task(self, row: dict[str, Any], history: list[dict[str, float]]) -> str | None:
        """Record one finished task; return the tracker's run id, if any."""


class NullTracker:
    def __init__(self, **_: Any) -> None:
        pass

    def log_task(self, row: dict[str, Any], history: list[dict[str, float]]) -> str | None:
        return None


class WandbTracker:
    """One W&B run per task, grouped by sweep; offline unless the user configured W&B.

    Offline runs land under ``<dir>/wandb/offline-run-*``; upload them later with ``wandb sync <run dir>``.
    """

    def __init__(self, project: str = "mcbench", entity: str | None = None, mode: str | None = None,
                 dir: str = "outputs", group: str | None = None, tags: list[str] | None = None) -> None:
        self.project = project
        self.entity = entity
        self.mode = mode or self._default_mode()
        self.dir = Path(dir)
        self.group = group
        self.tags = list(tags or [])

    @staticmethod
    def _default_mode() -> str:
        if os.environ.get("WANDB_MODE"):
            return os.environ["WANDB_MODE"]
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"

    def log_task(self, row: dict[str, Any], history: list[dict[str, float]]) -> str | None:
        import wandb

        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{row['method']}-{row['dataset']}-{row['aspect']}-s{row['seed']}"
        run = wandb.init(
            project=self.project, entity=self.entity, mode=self.mode, dir=str(self.dir), group=self.group,
            name=name, config=row, tags=self.tags + [row["method"], row["dataset"]], reinit="finish_previous",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )
        for step, entry in enumerate(history):
            run.log(dict(entry), step=step)
        run.summary.update({k: row[k] for k in ("nmi", "ri", "ari", "ami", "acc") if k in row})
        run_id = run.id
        run.finish()
        return run_id


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
