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
#: the files of one task folder; the writer (below) and the report's reader (mcbench.commands.report.loading) both
#: name them from here
PARTITION, REPRESENTATION, TASK_ORDER = "partition.npy", "representation.npy", "task_order.npy"
HISTORY, CLUSTER_NAMES, ROW = "history.json", "cluster_names.json", "row.json"


def task_dir(artifacts_dir: str | Path, row: dict[str, Any]) -> Path:
    """The folder of one task's artifacts."""
    return (Path(artifacts_dir) / TASKS
            / f"{row['method']}-{row['dataset']}-{row['aspect']}-s{row['seed']}-{row['run_id']}")


def save_task_artifacts(artifacts_dir: str | Path, row: dict[str, Any], result: Any) -> Path:
    """Write one task's artifacts (``result`` is the method's ``FitResult`` after the runner's scoring)."""
    path = task_dir(artifacts_dir, row)
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / PARTITION, result.info["partition_dataset_order"])
    if result.representation is not None:
        np.save(path / REPRESENTATION, result.representation.astype(np.float32))
        np.save(path / TASK_ORDER, result.info["task_order"])  # row i of the representation = image order[i]
    (path / HISTORY).write_text(json.dumps(result.history))
    (path / CLUSTER_NAMES).write_text(json.dumps(result.info["cluster_names"], indent=1))
    (path / ROW).write_text(json.dumps(row, indent=1, default=str))
    return path
