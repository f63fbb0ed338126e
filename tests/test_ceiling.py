"""The ceiling probe: out-of-fold, deterministic, near-perfect on separable data, at chance on noise."""

from __future__ import annotations

import numpy as np
import pytest

from mcbench.ceiling import linear_probe_predictions


def _blobs(n_per: int = 40, k: int = 3, d: int = 8, spread: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per)
    centres = 3.0 * rng.standard_normal((k, d))
    return centres[y] + spread * rng.standard_normal((len(y), d)), y


def test_separable_classes_are_recovered_and_deterministic():
    X, y = _blobs()
    pred = linear_probe_predictions(X, y, folds=5, seed=0)
    assert pred.shape == y.shape
    assert (pred == y).mean() == 1.0
    assert np.array_equal(pred, linear_probe_predictions(X, y, folds=5, seed=0))


def test_predictions_are_out_of_fold():
    """Pure-noise features: an in-sample probe would memorise them; out-of-fold it stays near chance."""
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((200, 50)), np.repeat([0, 1], 100)
    assert (linear_probe_predictions(X, y) == y).mean() < 0.7


def test_bad_input_raises_one_clear_error():
    X, y = _blobs(n_per=3)
    with pytest.raises(ValueError, match="at least 5 images of every class"):
        linear_probe_predictions(X, y, folds=5)
    with pytest.raises(ValueError, match="shape"):
        linear_probe_predictions(X, y[:-1])
