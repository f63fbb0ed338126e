"""Run identity: a hash of *what* a task is (MTEB/CLIP_benchmark-style), never a job number or time; the
image set a row was scored on, and whether that image set was used to tune its method (``conf/tuned_on.yaml``).

Resume, deduplication and the leaderboard's grouping all key on it.
"""

from __future__ import annotations

import json
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The source tree's commit (with ``-dirty`` for uncommitted changes), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip()[:12] + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# --- what a row's images are, and whether they chose its method's hyperparameters -------------------------

#: dataset settings that say where the data lies or how to treat unreadable files, not what the images are (the
#: revision fingerprints the content): left out of the run identity
NOT_IDENTITY_DATASET_KEYS = ("root", "on_bad_image")

TUNED_ON_FILE = "tuned_on.yaml"
UNTUNED = "untuned"


def image_set(dataset: str, difficulty: Any = "", dataset_seed: Any = "") -> str:
    """The unit of replication: one draw of images, ``dataset`` + ``difficulty`` + generator ``dataset_seed``
    (``synth_cards/hard/seed=10``). A dataset that is not generated has one image set: its name."""
    parts = [str(dataset)]
    if _given(difficulty):
        parts.append(str(difficulty))
    if _given(dataset_seed):
        parts.append(f"seed={_int_text(dataset_seed)}")
    return "/".join(parts)


def tuned_on(method: str, path: str | Path | None = None) -> str:
    """What ``method``'s hyperparameters were chosen on, as recorded in ``conf/tuned_on.yaml`` by the tuning
    command: its entry as JSON text (``datasets``, ``levels``, ``dataset_seeds``, ``command``, ...), or
    ``"untuned"`` when the method has no entry."""
    import yaml

    if path is None:
        from importlib import resources

        path = Path(str(resources.files("mcbench.conf"))) / TUNED_ON_FILE
    path = Path(path)
    if not path.is_file():
        return UNTUNED
    try:
        record = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML ({exc}); fix it or rerun the tuning command that writes it") from exc
    if not isinstance(record, dict) or not all(isinstance(v, dict) for v in record.values()):
        raise ValueError(f"{path} must map each method to {{datasets: [...], levels: [...], dataset_seeds: [...], "
                         f"command: ...}}; fix it or rerun the tuning command that writes it")
    entry = record.get(method)
    return json.dumps(entry, sort_keys=True, default=str) if entry else UNTUNED


def used_for_tuning(tuned: Any, dataset: str, difficulty: Any = "", dataset_seed: Any = "") -> bool:
    """Whether the image set (``dataset``, ``difficulty``, ``dataset_seed``) is one the method was tuned on,
    per a row's ``tuned_on`` text. A list the entry leaves out (or empty) means "all of them"."""
    if not isinstance(tuned, str) or not tuned.strip() or tuned == UNTUNED:
        return False
    try:
        entry = json.loads(tuned)
    except json.JSONDecodeError:
        return False
    if not isinstance(entry, dict):
        return False

    def covers(key: str, value: Any) -> bool:
        allowed = entry.get(key) or []
        return not allowed or (_given(value) and _int_text(value) in {_int_text(a) for a in allowed})

    return (covers("datasets", dataset) and covers("levels", difficulty)
            and covers("dataset_seeds", dataset_seed))


def _given(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and value != value:  # NaN: an empty CSV cell
        return False
    return str(value).strip() != ""


def _int_text(value: Any) -> str:
    """``10``, ``10.0`` and ``"10"`` (a CSV cell read back as a float) are the same seed."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
