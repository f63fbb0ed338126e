"""What a report reads: run and sweep folders, each task's artifacts, and the task's dataset, rebuilt.

A run folder (``outputs/<date>/<time>``) holds ``tasks/<slug>/`` as ``mcbench.runner`` writes them and the
run's ``.hydra/`` config; a sweep folder (``multirun/<date>/<time>``) holds numbered job folders, each a run.
The dataset is rebuilt through the library (``mcbench.data.base.build_dataset``) from the row's
``dataset_params``, completed by the run's config (see ``dataset_spec``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcbench.naming import ClusterName, collisions
from mcbench.results import artifacts

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class TaskArtifacts:
    """One task folder as the runner writes it (``tasks/<method>-<dataset>-<aspect>-s<seed>-<run_id>/``)."""

    path: Path
    row: dict[str, Any]
    names: list[dict[str, Any]]
    partition: np.ndarray                 # dataset order, -1 = not in the task
    history: list[dict[str, Any]]
    representation: np.ndarray | None = None
    order: np.ndarray | None = None       # row i of the representation is dataset image order[i]

    @property
    def slug(self) -> str:
        return self.path.name

    @property
    def collisions(self) -> dict[str, list[int]]:
        """Words that name more than one cluster (``mcbench.naming.collisions``)."""
        return collisions([ClusterName.from_dict(n) for n in self.names])

    @classmethod
    def load(cls, path: Path) -> "TaskArtifacts":
        row = json.loads((path / artifacts.ROW).read_text(encoding="utf-8"))
        names_file = path / artifacts.CLUSTER_NAMES
        names = json.loads(names_file.read_text(encoding="utf-8")) if names_file.is_file() else []
        history_file = path / artifacts.HISTORY
        history = json.loads(history_file.read_text(encoding="utf-8")) if history_file.is_file() else []
        rep = order = None
        if (path / artifacts.REPRESENTATION).is_file() and (path / artifacts.TASK_ORDER).is_file():
            rep = np.load(path / artifacts.REPRESENTATION, allow_pickle=False)
            order = np.load(path / artifacts.TASK_ORDER, allow_pickle=False)
        return cls(path, row, names, np.load(path / artifacts.PARTITION, allow_pickle=False), history, rep, order)


def is_run_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / artifacts.TASKS).is_dir()


def is_sweep_dir(path: Path) -> bool:
    return (path / "multirun.yaml").is_file() or any(
        d.is_dir() and d.name.isdigit() and is_run_dir(d) for d in path.iterdir())


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((d for d in sweep.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))


def find_last(root: Path) -> Path:
    """The newest run or sweep folder: ``outputs/<date>/<time>`` or ``multirun/<date>/<time>`` under ``root``."""
    candidates = []
    for top in ("outputs", "multirun"):
        for day in sorted((root / top).glob("*")):
            if not day.is_dir() or not _DATE.match(day.name):
                continue
            for d in day.iterdir():
                if d.is_dir() and (is_run_dir(d) or is_sweep_dir(d)):
                    candidates.append(((day.name, d.name, d.stat().st_mtime), d))
    if not candidates:
        raise FileNotFoundError(f"no run under {root}/outputs or {root}/multirun: run `mcbench` there first")
    return max(candidates, key=lambda c: c[0])[1]


def load_tasks(run_dir: Path) -> list[TaskArtifacts]:
    tasks_dir = run_dir / artifacts.TASKS
    if not tasks_dir.is_dir():
        return []
    return [TaskArtifacts.load(d) for d in sorted(tasks_dir.iterdir()) if (d / artifacts.ROW).is_file()]


def read_text(path: Path) -> str:
    """A text file's content, or "" when there is none."""
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def overrides(run_dir: Path) -> list[str]:
    """The run's Hydra overrides (``.hydra/overrides.yaml``, one ``- key=value`` line each)."""
    return [line[2:].strip() for line in read_text(run_dir / ".hydra" / "overrides.yaml").splitlines()
            if line.startswith("- ")]


def json_dict(value: Any) -> dict[str, Any]:
    """A row field that holds a JSON object (as text, or already decoded); {} when it holds none."""
    if isinstance(value, dict):
        return value
    try:
        out = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _run_config(run_dir: Path):
    """The run's ``.hydra/config.yaml`` (unresolved; interpolations resolve here, on access), or None."""
    try:
        from omegaconf import OmegaConf

        import mcbench.paths  # noqa: F401  (the ${mcbench_datasets_dir:} resolver)

        return OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    except Exception:  # noqa: BLE001  (an unreadable config only costs the thumbnails)
        return None


def _select(cfg, key: str) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    try:
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
        return value
    except Exception:  # noqa: BLE001
        return None


_UNREAD = object()


def dataset_spec(row: dict[str, Any], run_dir: Path, cfg: Any = _UNREAD) -> tuple[str, dict[str, Any], str | None]:
    """(registered dataset name, its parameters, cache dir) to rebuild a task's dataset.

    The row's ``dataset_params`` are the identity; the run's config adds what the identity leaves out (the
    data's location, ``dataset.root``) and the registered name (a folder dataset's row names the data, not the
    loader). ``cfg``: the run's config when the caller has read it already (else it is read here)."""
    params = json_dict(row.get("dataset_params"))
    name = str(row["dataset"])
    if cfg is _UNREAD:
        cfg = _run_config(run_dir)
    cache_dir = None
    if cfg is not None:
        cache_dir = _select(cfg, "paths.cache_dir")
        node = cfg.get("dataset")
        if node is not None and hasattr(node, "keys"):
            for key in node.keys():
                if key != "name" and key not in params:
                    value = _select(cfg, f"dataset.{key}")
                    if value is not None:
                        params[key] = value
            name = str(_select(cfg, "dataset.name") or name)
    return name, params, (str(cache_dir) if cache_dir else None)


class DatasetCache:
    """Rebuilds each dataset once per report (see ``dataset_spec``)."""

    def __init__(self, cache_dir: str | None = None) -> None:
        self.cache_dir = cache_dir
        self._memo: dict[tuple[str, str, str], Any] = {}
        self._configs: dict[Path, Any] = {}  # each run's config, read once for all its tasks

    def get(self, row: dict[str, Any], run_dir: Path):
        """(dataset or None, note): the note says why there is none or why it may differ from the run's."""
        from mcbench.data.base import build_dataset
        from mcbench.data.synthetic import default_cache_dir

        if run_dir not in self._configs:
            self._configs[run_dir] = _run_config(run_dir)
        name, params, run_cache = dataset_spec(row, run_dir, self._configs[run_dir])
        cache_dir = self.cache_dir or run_cache or str(default_cache_dir())
        key = (name, json.dumps(params, sort_keys=True, default=str), cache_dir)
        if key not in self._memo:
            try:
                self._memo[key] = (build_dataset(name, **params, cache_dir=cache_dir), "")
            except Exception as exc:  # noqa: BLE001
                self._memo[key] = (None, f"the dataset could not be rebuilt ({type(exc).__name__}: {exc}); "
                                         f"no thumbnails and no contingencies")
        dataset, note = self._memo[key]
        if dataset is not None and row.get("dataset_revision") and dataset.revision != row["dataset_revision"]:
            note = (f"the dataset rebuilt here (revision {dataset.revision}) differs from the one the run used "
                    f"(revision {row['dataset_revision']}): thumbnails and contingencies may not match the run")
        return dataset, note

    def for_task(self, task: TaskArtifacts, run_dir: Path):
        """(dataset or None, note) for one task: None with a note when the rebuilt dataset does not fit it (other
        images or another aspect set than the task's partition)."""
        dataset, note = self.get(task.row, run_dir)
        if dataset is not None and (task.row["aspect"] not in dataset.aspects or len(dataset) != len(task.partition)):
            dataset, note = None, (f"the dataset rebuilt here ({len(dataset)} images, aspects "
                                   f"{', '.join(dataset.aspects)}) does not fit this task ({len(task.partition)} "
                                   f"images, aspect {task.row['aspect']}): no thumbnails and no contingencies")
        return dataset, note
