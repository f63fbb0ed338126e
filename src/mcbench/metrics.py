"""Metrics (Multi-MaP ``main_eval.py``; research notes §1.5, §6); the clustering protocol is :mod:`mcbench.protocol`.

* NMI: ``normalized_mutual_info_score`` with ``average_method="arithmetic"`` (the papers' sklearn default).
* RI: the unadjusted ``rand_score`` the papers report; ARI, AMI and ACC (Hungarian matching) beside it.
* Each partition of the protocol is scored and the mean reported (``score_partitions``); which metrics, is
  declared once in :mod:`mcbench.results.schema`.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import normalized_mutual_info_score

from mcbench.registry import resolve
from mcbench.results import schema

#: a metric's scorer from its ``"module:attr"`` reference, imported once (``score`` runs per partition)
_scorer = functools.lru_cache(maxsize=None)(resolve)


def nmi(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """NMI with the arithmetic mean normaliser (sklearn's default, the papers' choice)."""
    return float(normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic"))


def clustering_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """ACC: the fraction of images right under the best one-to-one cluster-to-class matching."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    classes, t = np.unique(y_true, return_inverse=True)
    clusters, p = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(y_true))


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Every metric of one partition against one labeling; images labelled -1 (missing) are left out."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    keep = y_true >= 0
    y_true, y_pred = y_true[keep], y_pred[keep]
    return {m.name: float(_scorer(m.function)(y_true, y_pred)) for m in schema.METRICS}


def mean_nmi(y_true: np.ndarray, partitions: list[np.ndarray]) -> float:
    """The mean NMI over the protocol's partitions: ``score_partitions(...)["nmi"]`` without the other metrics
    (a row's NMI on the aspects it was not asked for); images labelled -1 are left out, as in :func:`score`."""
    y_true = np.asarray(y_true)
    keep = y_true >= 0
    return float(np.array([nmi(y_true[keep], np.asarray(p)[keep]) for p in partitions]).mean())


def score_partitions(y_true: np.ndarray, partitions: list[np.ndarray]) -> dict[str, float]:
    """Mean of each metric over the protocol's partitions, plus ``<metric>_std`` over them."""
    scores = [score(y_true, p) for p in partitions]
    out: dict[str, float] = {}
    for m in schema.metric_names():
        values = np.array([s[m] for s in scores])
        out[m] = float(values.mean())
        out[f"{m}_std"] = float(values.std())
    return out
