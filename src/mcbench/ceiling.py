"""The ceiling: how well the frozen image embeddings separate an aspect's classes when the labels are known.

A diagnostic reference computed by the evaluator *with the labels* — never a method, never given to one. It is
a k-fold cross-validated linear probe: multinomial logistic regression (scikit-learn, L-BFGS, C = 1) on
standardised features (the scaler is fit on each training fold only), stratified folds shuffled with
``seed``. Every image is predicted by the probe trained on the folds that do not hold it, so the accuracy
(or NMI) of the returned labels is an out-of-sample estimate of what a linear read-out of the embeddings can
reach. Deterministic for given inputs.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def linear_probe_predictions(X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predicted labels (N,) of a ``folds``-fold cross-validated logistic-regression probe on X."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or y.shape != (len(X),):
        raise ValueError(f"need features X of shape (N, D) and labels y of shape (N,); got {X.shape} and {y.shape}")
    if not np.isfinite(X).all():
        raise ValueError("the features hold NaN or Inf; recompute them (the probe needs finite features)")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError("the labels hold a single class; a probe needs at least two")
    if folds < 2 or counts.min() < folds:
        raise ValueError(
            f"{folds}-fold cross-validation needs folds >= 2 and at least {folds} images of every class "
            f"(the smallest class has {counts.min()}); use more images or fewer folds"
        )
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return np.asarray(cross_val_predict(probe, X, y, cv=cv), dtype=y.dtype)
