"""The per-training progress bar a method advances once per epoch (``ClusteringTask.progress``)."""

from __future__ import annotations

from typing import Any


def epoch_bar(total: int, description: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` epochs on stderr, cleared when done; a silent one unless ``enabled``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="epoch", leave=False, disable=not enabled, dynamic_ncols=True)
