"""Each task's ceiling, scored once: the probe's NMI and ACC per (dataset revision, aspect, encoder).

The evaluator scores :func:`mcbench.ceiling.linear_probe_predictions` (5-fold cross-validated logistic
regression on the frozen image embeddings, trained *with the labels*) against the aspect's ground truth, with
the same metric code as the methods (``metrics.score``). It is a reference beside a method's row
(``ceiling_nmi``, ``ceiling_acc``), never given to a method. It depends only on the images, the aspect and the
encoder, so it is computed once and cached as JSON under ``<cache_dir>/ceiling/``; ``protocol.ceiling=false``
turns it off. Every labelled image of the aspect is used (``data.per_class`` subsets share the full set's
ceiling).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from mcbench.atomic import write_text_atomic
from mcbench.hashing import stable_hash

log = logging.getLogger(__name__)
FOLDS = 5
PROBE_SEED = 0
VERSION = 1  # bump when the probe or its scoring changes: old cache entries are then ignored


def ceiling_scores(embeddings: np.ndarray, labels: np.ndarray, revision: str, aspect: str, encoder: str,
                   cache_dir: str | Path) -> dict[str, float] | None:
    """``{"nmi", "acc"}`` of the probe's out-of-fold predictions for the labelled images (label >= 0), or
    ``None`` (with a warning that says why) when the probe cannot run, e.g. a class with fewer than 5 images."""
    key = stable_hash({"revision": revision, "aspect": aspect, "encoder": encoder, "folds": FOLDS,
                       "seed": PROBE_SEED, "version": VERSION})
    path = Path(cache_dir) / "ceiling" / f"{key}.json"
    if path.is_file():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            return {"nmi": float(cached["nmi"]), "acc": float(cached["acc"])}
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ceiling cache %s is unreadable; computing the ceiling again", path)
    from mcbench.ceiling import linear_probe_predictions
    from mcbench.metrics import score

    labels = np.asarray(labels)
    keep = labels >= 0
    try:
        predicted = linear_probe_predictions(np.asarray(embeddings)[keep], labels[keep], folds=FOLDS, seed=PROBE_SEED)
    except ValueError as exc:
        log.warning("no ceiling for aspect '%s' (left blank in the row): %s", aspect, exc)
        return None
    scores = score(labels[keep], predicted)
    out = {"nmi": round(scores["nmi"], 6), "acc": round(scores["acc"], 6)}
    try:
        write_text_atomic(path, json.dumps(out | {"revision": revision, "aspect": aspect, "encoder": encoder,
                                                 "n_images": int(keep.sum()), "folds": FOLDS, "seed": PROBE_SEED,
                                                 "version": VERSION}, sort_keys=True))
    except OSError as exc:  # a read-only cache costs a recomputation next time, never the run
        log.warning("could not cache the ceiling at %s (%s)", path, exc)
    return out
