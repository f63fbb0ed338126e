"""The numbers behind a report page: contingencies and their diagonal order, the name findings, seeded
samples, 2-D maps (PCA, t-SNE), the colour matching of clusters to classes, loss series, what a sweep varied,
and the sweep's leaderboard (``mcbench.results.leaderboard`` on the rows in memory). No drawing, no HTML."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

META_KEYS = {"epoch", "step", "round", "phase"}  # history fields that are not curves
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def contingency(clusters: np.ndarray, labels: np.ndarray, cluster_ids: list[int], k: int) -> np.ndarray:
    """Counts: rows = ``cluster_ids``, columns = classes 0..k-1, over images with both a cluster and a label."""
    clusters, labels = np.asarray(clusters), np.asarray(labels)
    ids = np.asarray(cluster_ids, dtype=np.int64)
    table = np.zeros((len(ids), k), dtype=np.int64)
    if not len(ids):
        return table
    order = np.argsort(ids)
    pos = np.clip(np.searchsorted(ids[order], clusters), 0, len(ids) - 1)
    known = (clusters >= 0) & (ids[order][pos] == clusters) & (labels >= 0) & (labels < k)
    np.add.at(table, (order[pos[known]], labels[known]), 1)
    return table


def diagonal_order(table: np.ndarray) -> list[int]:
    """Row order that puts each cluster next to its matched class (Hungarian), leftovers by majority class."""
    from scipy.optimize import linear_sum_assignment

    if table.size == 0:
        return list(range(len(table)))
    rows, cols = linear_sum_assignment(-table)
    key = {int(r): (int(c), 0, 0) for r, c in zip(rows, cols)}
    for r in range(len(table)):
        key.setdefault(r, (int(table[r].argmax()), 1, -int(table[r].sum())))
    return sorted(range(len(table)), key=lambda r: key[r])


def collision_findings(found: dict[str, list[int]]) -> list[str]:
    """One line per word that names several clusters (``found``: ``mcbench.naming.collisions``)."""
    lines = []
    for word, clusters in sorted(found.items()):
        count = NUMBER_WORDS.get(len(clusters), str(len(clusters)))
        lines.append(f"{count} clusters named '{word}' (clusters {', '.join(str(c) for c in clusters)}): "
                     f"the method split the images of one word")
    return lines


def sample_members(partition: np.ndarray, cluster: int, per_cluster: int, seed: int) -> np.ndarray:
    """Up to ``per_cluster`` dataset indices of the cluster, a seeded draw (same seed, same thumbnails)."""
    members = np.flatnonzero(partition == cluster)
    if len(members) <= per_cluster:
        return members
    rng = np.random.default_rng([int(seed), int(cluster)])
    return np.sort(rng.choice(members, per_cluster, replace=False))


def subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Deterministic PCA to 2-D (SVD, signs fixed so each component's largest loading is positive)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    x = x - x.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    vt = vt[:2]
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
    vt = vt * np.where(signs == 0, 1, signs)[:, None]
    y = x @ vt.T
    if y.shape[1] < 2:
        y = np.hstack([y, np.zeros((len(y), 2 - y.shape[1]))])
    var = s**2 / max((s**2).sum(), 1e-12)
    var = np.concatenate([var, np.zeros(2)])[:2]
    return y, (float(var[0]), float(var[1]))


def tsne_2d(x: np.ndarray, seed: int) -> np.ndarray:
    """Seeded t-SNE on one thread: the same map on every machine (and no OpenMP spin on a busy one)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    perplexity = float(max(2.0, min(30.0, (len(x) - 1) / 3)))
    with threadpool_limits(1):
        return TSNE(2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(x)


def matched_colors(found: np.ndarray, truth: np.ndarray, k: int, m: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """Colour indices for found clusters ``0..m-1``: each cluster takes the index of the true class it is matched
    to (Hungarian on the contingency), so a cluster and its class share a colour across panels; unmatched clusters
    take indices ``k, k+1, ...``. Returns (colour index per point, colour index per cluster, palette size)."""
    from scipy.optimize import linear_sum_assignment

    if m is None:
        m = int(found.max()) + 1 if (found >= 0).any() else 0
    table = contingency(found, truth, list(range(m)), k)
    of_cluster = np.full(m, -1, dtype=np.int64)
    if table.size:
        rows, cols = linear_sum_assignment(-table)
        of_cluster[rows] = cols
    extra = np.flatnonzero(of_cluster < 0)
    of_cluster[extra] = k + np.arange(len(extra))
    point = np.where(found >= 0, of_cluster[np.clip(found, 0, max(m - 1, 0))], -1) if m else found
    return point, of_cluster, k + len(extra)


def zoom_outliers(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A few far points would squash the rest into a line: on an axis whose full extent is over 4× the
    2.5-97.5 percentile range (padded by a quarter), points beyond that range are moved onto its edge and
    flagged (drawn as ×)."""
    outside = np.zeros(len(xy), dtype=bool)
    if len(xy) < 20:
        return xy, outside
    xy = xy.copy()
    for axis in range(xy.shape[1]):
        v = xy[:, axis]
        lo, hi = np.percentile(v, [2.5, 97.5])
        pad = 0.25 * max(hi - lo, 1e-12)
        lo, hi = lo - pad, hi + pad
        if v.max() - v.min() > 4 * (hi - lo):
            outside |= (v < lo) | (v > hi)
            xy[:, axis] = np.clip(v, lo, hi)
    return xy, outside


def loss_series(history: list[dict[str, Any]], max_terms: int = 8) -> dict[str, np.ndarray]:
    """Each loss term over the epochs, NaN where the epoch has no such term (Multi-Sub's phases): a plotted line
    breaks there instead of joining the phases with a straight line."""
    keys = [k for k in dict.fromkeys(k for h in history for k in h)
            if k not in META_KEYS and all(isinstance(h.get(k, 0.0), (int, float)) for h in history)]
    return {k: np.array([float(h[k]) if isinstance(h.get(k), (int, float)) else np.nan for h in history])
            for k in keys[:max_terms]}


def shorten(text: str, width: int, sep: str = " ") -> str:
    """``text`` cut to at most ``width`` characters at a ``sep`` boundary (never inside a name), with "…" when cut;
    a first token longer than ``width`` is kept whole."""
    text = str(text)
    if len(text) <= width:
        return text
    parts, out = text.split(sep), ""
    for part in parts:
        candidate = part if not out else out + sep + part
        if len(candidate) + 1 > width and out:
            break
        out = candidate
    return out + "…"


def page_subject(rows: list[dict[str, Any]]) -> str:
    """What a page is about, for its title: methods, then dataset/aspects (``multi_map · synth_fruit/color, species``)."""
    if not rows:
        return "no task"
    methods = list(dict.fromkeys(str(r.get("method", "?")) for r in rows))
    by_dataset: dict[str, list[str]] = {}
    for r in rows:
        aspects = by_dataset.setdefault(str(r.get("dataset", "?")), [])
        if str(r.get("aspect", "?")) not in aspects:
            aspects.append(str(r.get("aspect", "?")))
    data = "; ".join(f"{d}/{', '.join(a)}" for d, a in by_dataset.items())
    return shorten(f"{', '.join(methods)} · {data}", 160)


def swept_values(job_overrides: list[list[str]]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(key -> the values its jobs took, for keys that vary; key -> value, for overrides every job shares)."""
    values: dict[str, list[str]] = {}
    for overrides in job_overrides:
        for o in overrides:
            if "=" in o:
                key, value = o.split("=", 1)
                if value not in values.setdefault(key, []):
                    values[key].append(value)
    missing = {k for k in values if any(not any(o.startswith(f"{k}=") for o in job) for job in job_overrides)}
    varied = {k: v for k, v in values.items() if len(v) > 1 or k in missing}
    fixed = {k: v[0] for k, v in values.items() if k not in varied}
    return varied, fixed


def sweep_board(rows: list[dict[str, Any]], metrics: tuple[str, ...]):
    """The leaderboard tables (``board_markdown.BoardTable``) of a sweep's rows, as ``mcbench-leaderboard``
    aggregates a results file (``load_rows`` + ``aggregate``: one row per run_id, mean ± std over seeds), from
    the rows in memory. A field holding a dict or list (as in ``row.json``) is its JSON text, as in the CSV."""
    import pandas as pd

    from mcbench.results.board_markdown import board_tables
    from mcbench.results.leaderboard import aggregate, load_rows

    if not rows:
        return []
    frame = pd.DataFrame([{k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                           for k, v in row.items()} for row in rows])
    return board_tables(aggregate(load_rows(frame, include_sanity=True)), metrics)
