"""A task's artifacts (``artifacts_dir``, set by the CLI to the Hydra job folder): what ``mcbench-report`` draws.

``<artifacts_dir>/tasks/<method>-<dataset>-<aspect>-s<seed>-<run_id>/`` holds ``partition.npy`` (dataset order),
``representation.npy`` with ``task_order.npy`` (row i of the representation is image ``task_order[i]``),
``history.json`` (loss terms per epoch), ``cluster_names.json`` and ``row.json`` (the result row).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

TASKS = "tasks"


def task_dir(artifacts_dir: str | Path, row: dict[str, Any]) -> Path:
    """The folder of one task's artifacts."""
    return (Path(artifacts_dir) / TASKS
            / f"{row['method']}-{row['dataset']}-{row['aspect']}-s{row['seed']}-{row['run_id']}")


def save_task_artifacts(artifacts_dir: str | Path, row: dict[str, Any], result: Any) -> Path:
    """Write one task's artifacts (``result`` is the method's ``FitResult`` after the runner's scoring)."""
    path = task_dir(artifacts_dir, row)
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / "partition.npy", result.info["partition_dataset_order"])
    if result.representation is not None:
        np.save(path / "representation.npy", result.representation.astype(np.float32))
        np.save(path / "task_order.npy", result.info["task_order"])  # row i of the representation = image order[i]
    (path / "history.json").write_text(json.dumps(result.history))
    (path / "cluster_names.json").write_text(json.dumps(result.info["cluster_names"], indent=1))
    (path / "row.json").write_text(json.dumps(row, indent=1, default=str))
    return path
