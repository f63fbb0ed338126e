"""The shared clustering protocol (Multi-MaP ``main_eval.py``; research notes §1.5, §6): how a method's
representation becomes partitions. k = the aspect's true class count; k-means (k-means++, one init per fit, as
``n_init="auto"``) restarted with ``random_state`` 0..9; each partition is scored and the mean reported.

A method imports this module, never the evaluator (:mod:`mcbench.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans


@dataclass(frozen=True)
class KMeansProtocol:
    """How a representation becomes partitions: ``n_restarts`` k-means fits with seeds 0..n-1."""

    n_restarts: int = 10

    def describe(self) -> str:
        return f"kmeans++ x{self.n_restarts} (random_state 0..{self.n_restarts - 1}, n_init=1), mean"

    def partitions(self, representation: np.ndarray, k: int) -> list[np.ndarray]:
        x = np.asarray(representation, dtype=np.float64)
        if len(x) < k:
            raise ValueError(f"k={k} is larger than the number of images ({len(x)})")
        return [
            KMeans(n_clusters=k, random_state=seed, n_init=1).fit(x).labels_.astype(np.int64)
            for seed in range(self.n_restarts)
        ]
