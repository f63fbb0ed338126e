"""``mcbench-report``: see and name the clusters of a run (or a sweep) on one static HTML page.

Per task: the metrics and the cluster names with their margins (two clusters with one name are flagged),
contingency heat-maps of the found clusters against the named aspect's true classes and against every other
aspect, a bounded grid of sample images per cluster under its name, the loss curve, and the 2-D map of the
clustered representation coloured by found cluster and by each aspect (PCA; t-SNE with ``--tsne``). Per run:
its full config. A sweep page links the per-job pages and embeds the leaderboard of the sweep's rows.

The page needs no server, no internet and no script: every image is inlined (thumbnails as small JPEGs,
figures as PNGs), and the figures are also written as PNG files under ``report/figures/``. Its size does not
grow with the number of images: at most ``--per-cluster`` thumbnails per cluster, at most ``--max-points``
points per map (a seeded subsample), both drawn into PNGs rather than HTML elements.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

import mcbench
from mcbench.atomic import atomic_path, write_text_atomic

PER_CLUSTER = 12     # thumbnails per cluster
THUMB = 64           # thumbnail side in pixels
MAX_POINTS = 5000    # points per 2-D map
META_KEYS = {"epoch", "step", "round", "phase"}  # history fields that are not curves
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ------------------------------------------------------------------------------------------------ loading


@dataclass
class TaskArtifacts:
    """One task folder written by ``mcbench.runner._save_artifacts``."""

    path: Path
    row: dict[str, Any]
    names: list[dict[str, Any]]
    partition: np.ndarray                 # dataset order, -1 = not in the task
    history: list[dict[str, Any]]
    representation: np.ndarray | None = None
    order: np.ndarray | None = None       # row i of the representation is dataset image order[i]

    @property
    def slug(self) -> str:
        return self.path.name

    @classmethod
    def load(cls, path: Path) -> "TaskArtifacts":
        row = json.loads((path / "row.json").read_text(encoding="utf-8"))
        names_file = path / "cluster_names.json"
        names = json.loads(names_file.read_text(encoding="utf-8")) if names_file.is_file() else []
        history_file = path / "history.json"
        history = json.loads(history_file.read_text(encoding="utf-8")) if history_file.is_file() else []
        rep = order = None
        if (path / "representation.npy").is_file() and (path / "task_order.npy").is_file():
            rep = np.load(path / "representation.npy", allow_pickle=False)
            order = np.load(path / "task_order.npy", allow_pickle=False)
        return cls(path, row, names, np.load(path / "partition.npy", allow_pickle=False), history, rep, order)


def is_run_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / "tasks").is_dir()


def is_sweep_dir(path: Path) -> bool:
    return (path / "multirun.yaml").is_file() or any(
        d.is_dir() and d.name.isdigit() and is_run_dir(d) for d in path.iterdir())


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((d for d in sweep.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))


def find_last(root: Path) -> Path:
    """The newest run or sweep folder: ``outputs/<date>/<time>`` or ``multirun/<date>/<time>`` under ``root``."""
    candidates = []
    for top in ("outputs", "multirun"):
        for day in sorted((root / top).glob("*")):
            if not day.is_dir() or not _DATE.match(day.name):
                continue
            for d in day.iterdir():
                if d.is_dir() and (is_run_dir(d) or is_sweep_dir(d)):
                    candidates.append(((day.name, d.name, d.stat().st_mtime), d))
    if not candidates:
        raise FileNotFoundError(f"no run under {root}/outputs or {root}/multirun: run `mcbench` there first")
    return max(candidates, key=lambda c: c[0])[1]


def load_tasks(run_dir: Path) -> list[TaskArtifacts]:
    tasks_dir = run_dir / "tasks"
    if not tasks_dir.is_dir():
        return []
    return [TaskArtifacts.load(d) for d in sorted(tasks_dir.iterdir()) if (d / "row.json").is_file()]


def _config_text(run_dir: Path) -> str:
    path = run_dir / ".hydra" / "config.yaml"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def _run_config(run_dir: Path):
    """The run's ``.hydra/config.yaml`` (unresolved; interpolations resolve here, on access), or None."""
    try:
        from omegaconf import OmegaConf

        import mcbench.paths  # noqa: F401  (the ${mcbench_datasets_dir:} resolver)

        return OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    except Exception:  # noqa: BLE001  (an unreadable config only costs the thumbnails)
        return None


def _select(cfg, key: str) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    try:
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
        return value
    except Exception:  # noqa: BLE001
        return None


def dataset_spec(row: dict[str, Any], run_dir: Path) -> tuple[str, dict[str, Any], str | None]:
    """(registered dataset name, its parameters, cache dir) to rebuild a task's dataset.

    The row's ``dataset_params`` are the identity; the run's config adds what the identity leaves out (the
    data's location, ``dataset.root``) and the registered name (a folder dataset's row names the data, not the
    loader)."""
    params = _json(row.get("dataset_params"))
    name = str(row["dataset"])
    cfg = _run_config(run_dir)
    cache_dir = None
    if cfg is not None:
        cache_dir = _select(cfg, "paths.cache_dir")
        node = cfg.get("dataset")
        if node is not None and hasattr(node, "keys"):
            for key in node.keys():
                if key != "name" and key not in params:
                    value = _select(cfg, f"dataset.{key}")
                    if value is not None:
                        params[key] = value
            name = str(_select(cfg, "dataset.name") or name)
    return name, params, (str(cache_dir) if cache_dir else None)


class DatasetCache:
    """Rebuilds each dataset once per report (see ``dataset_spec``)."""

    def __init__(self, cache_dir: str | None = None) -> None:
        self.cache_dir = cache_dir
        self._memo: dict[tuple[str, str, str], Any] = {}

    def get(self, row: dict[str, Any], run_dir: Path):
        """(dataset or None, note): the note says why there is none or why it may differ from the run's."""
        from mcbench.data.base import build_dataset
        from mcbench.data.synthetic import default_cache_dir

        name, params, run_cache = dataset_spec(row, run_dir)
        cache_dir = self.cache_dir or run_cache or str(default_cache_dir())
        key = (name, json.dumps(params, sort_keys=True, default=str), cache_dir)
        if key not in self._memo:
            try:
                self._memo[key] = (build_dataset(name, **params, cache_dir=cache_dir), "")
            except Exception as exc:  # noqa: BLE001
                self._memo[key] = (None, f"the dataset could not be rebuilt ({type(exc).__name__}: {exc}); "
                                         f"no thumbnails and no contingencies")
        dataset, note = self._memo[key]
        if dataset is not None and row.get("dataset_revision") and dataset.revision != row["dataset_revision"]:
            note = (f"the dataset rebuilt here (revision {dataset.revision}) differs from the one the run used "
                    f"(revision {row['dataset_revision']}): thumbnails and contingencies may not match the run")
        return dataset, note


# --------------------------------------------------------------------------------------------- analysis


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


def collision_findings(names: list[dict[str, Any]]) -> list[str]:
    found = _collisions(names)
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


# -------------------------------------------------------------------------------------------------- images


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    _readable(path)


def _readable(path: Path) -> None:
    """Atomic writes leave mode 0600; a report is for sharing (a web folder, W&B)."""
    try:
        os.chmod(path, 0o644)
    except OSError:
        pass


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


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


def _colors(labels: np.ndarray, k: int) -> np.ndarray:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if k <= 10 else "tab20" if k <= 20 else "turbo"]
    palette = np.array([cmap(i if k <= 20 else i / max(1, k - 1)) for i in range(max(k, 1))])
    out = np.tile(np.array([[0.82, 0.82, 0.82, 1.0]]), (len(labels), 1))  # grey: no label
    ok = (labels >= 0) & (labels < k)
    out[ok] = palette[labels[ok]]
    return out


def thumbnail(image, size: int) -> bytes:
    im = image.convert("RGB")
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def montage_png(rows: list[tuple[str, list[bytes]]], size: int) -> bytes:
    """The per-cluster sample grid as one PNG: a labelled row of thumbnails per cluster."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    label_w, pad = 190, 3
    cols = max([len(t) for _, t in rows] + [1])
    canvas = Image.new("RGB", (label_w + cols * (size + pad) + pad, max(1, len(rows)) * (size + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, thumbs) in enumerate(rows):
        y = pad + r * (size + pad)
        draw.text((4, y + size // 2 - 7), shorten(label, 30), fill="black", font=font)
        for j, data in enumerate(thumbs):
            with Image.open(io.BytesIO(data)) as im:
                canvas.paste(im.convert("RGB"), (label_w + pad + j * (size + pad), y))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def contingency_png(table: np.ndarray, row_labels: list[str], col_labels: list[str], title: str) -> bytes:
    from matplotlib.figure import Figure

    frac = table / np.maximum(table.sum(1, keepdims=True), 1)
    fig = Figure(figsize=(1.6 + 0.42 * len(col_labels), 1.2 + 0.3 * len(row_labels)))
    ax = fig.add_subplot()
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    if table.size <= 900:
        for (i, j), v in np.ndenumerate(table):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.6 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _png(fig)


def loss_series(history: list[dict[str, Any]], max_terms: int = 8) -> dict[str, np.ndarray]:
    """Each loss term over the epochs, NaN where the epoch has no such term (Multi-Sub's phases): a plotted line
    breaks there instead of joining the phases with a straight line."""
    keys = [k for k in dict.fromkeys(k for h in history for k in h)
            if k not in META_KEYS and all(isinstance(h.get(k, 0.0), (int, float)) for h in history)]
    return {k: np.array([float(h[k]) if isinstance(h.get(k), (int, float)) else np.nan for h in history])
            for k in keys[:max_terms]}


def loss_png(history: list[dict[str, Any]], title: str) -> bytes | None:
    from matplotlib.figure import Figure

    series = loss_series(history)
    if not history or not series:
        return None
    keys = list(series)
    fig = Figure(figsize=(min(3.0 * len(keys), 15), 2.6))
    for i, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        ys = series[key]
        present = int(np.isfinite(ys).sum())
        ax.plot(range(len(history)), ys, marker=".", ms=5 if present < 40 else 1.5, lw=1.2)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _png(fig)


def map_png(xy: np.ndarray, panels: list[tuple[str, np.ndarray, list[str | None]]], title: str,
            axis_labels: tuple[str, str]) -> bytes:
    """The papers' Figure 3 style: the same 2-D points, one panel per colouring.

    A panel is (title, colour index per point, legend text per colour index); the palette of a panel has one
    colour per legend entry, so two panels with the same number of entries give index i the same colour (the found
    clusters are indexed by their matched class: ``matched_colors``). A ``None`` legend entry is left out."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    n = len(panels)
    legend_rows = max([(sum(c is not None for c in classes) + 1) // 2 for _, _, classes in panels
                       if len(classes) <= 20] + [0])
    fig = Figure(figsize=(3.6 * n, 4.0 + 0.22 * legend_rows))
    size = float(np.clip(3000 / max(len(xy), 1), 2, 14))
    xy, outside = zoom_outliers(xy)
    for i, (name, labels, classes) in enumerate(panels):
        ax = fig.add_subplot(1, n, i + 1)
        colors = _colors(labels, len(classes))
        ax.scatter(xy[~outside, 0], xy[~outside, 1], c=colors[~outside], s=size, linewidths=0, rasterized=True)
        if outside.any():
            ax.scatter(xy[outside, 0], xy[outside, 1], c=colors[outside], s=size * 2.5, marker="x", linewidths=1,
                       rasterized=True)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(axis_labels[0], fontsize=8)
        ax.set_ylabel(axis_labels[1], fontsize=8)
        if len(classes) <= 20:
            palette = _colors(np.arange(len(classes)), len(classes))
            handles = [Line2D([], [], ls="", marker="o", ms=7, color=palette[j], label=shorten(c, 22))
                       for j, c in enumerate(classes) if c is not None]
            ax.legend(handles=handles, fontsize=8.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.1),
                      frameon=False, handletextpad=0.2, columnspacing=0.8)
    if outside.any():
        title += f" · {int(outside.sum())} outlier(s) drawn as × on the edge"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


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


# ---------------------------------------------------------------------------------------------------- html

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1240px;
padding:0 18px 40px;color:#1d2330;background:#fff;font-size:14px}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 6px;padding-top:10px;border-top:2px solid #d7dce5}
h3{font-size:15px;margin:18px 0 6px}h4{font-size:13px;margin:12px 0 4px}
.meta{color:#5a6475;font-size:12px}code{background:#f1f3f7;padding:0 3px;border-radius:3px}
table{border-collapse:collapse;margin:4px 0 10px;font-size:12px}
th,td{border:1px solid #d7dce5;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f1f3f7}td.l,th.l{text-align:left}
table.contingency td{min-width:26px;text-align:center}
.findings{background:#fff6e0;border-left:4px solid #f0a500;padding:6px 10px;margin:8px 0}
.findings.ok{background:#eef8ef;border-left-color:#3b9b48}
.note{color:#8a5a00}.clusters{display:flex;flex-wrap:wrap;gap:6px}.heatmaps{display:flex;flex-wrap:wrap;gap:0 28px}
td.wrap{white-space:normal;min-width:240px;max-width:420px}
.cluster-samples{border:1px solid #e3e7ee;border-radius:4px;padding:4px 6px}
.cluster-samples h4{margin:2px 0 4px}.thumbs{display:flex;flex-wrap:wrap;gap:4px}
figure.thumb{margin:0;width:70px;text-align:center}figure.thumb img{width:64px;height:64px;object-fit:contain;
image-rendering:auto;border:1px solid #ccd}figure.thumb figcaption{font-size:9px;color:#5a6475;overflow:hidden;
text-overflow:ellipsis;white-space:nowrap}
img.figure{max-width:100%;height:auto;border:1px solid #e3e7ee}
pre{background:#f6f8fa;border:1px solid #e3e7ee;padding:8px;overflow:auto;font-size:12px;max-height:520px}
.collide{color:#b3261e;font-weight:600}nav table td{text-align:left}
.compare{display:flex;flex-wrap:wrap;gap:12px}.compare-method{border:1px solid #e3e7ee;border-radius:4px;padding:4px 8px;
max-width:600px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def _table(header: list[str], rows: list[list[Any]], cls: str = "", left: tuple[int, ...] = (0,)) -> str:
    """A plain table; columns in ``left`` are text (left-aligned), the rest numbers."""
    out = [f'<table class="{cls}">' if cls else "<table>", "<thead><tr>"]
    out += [f'<th class="l">{_e(h)}</th>' if i in left else f"<th>{_e(h)}</th>" for i, h in enumerate(header)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="l">{_e(_fmt(v))}</td>' if i in left else f"<td>{_e(_fmt(v))}</td>"
                                    for i, v in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def markdown_to_html(text: str) -> str:
    """The leaderboard's markdown (headings, paragraphs, pipe tables, **bold**, `code`) as simple HTML."""

    def inline(s: str) -> str:
        s = _e(s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", s)

    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if not table:
            return
        head, body = table[0], [r for r in table[1:] if not all(re.fullmatch(r"-{3,}:?|:?-{3,}", c) for c in r)]
        out.append('<table class="leaderboard"><thead><tr>' + "".join(f"<th>{inline(c)}</th>" for c in head)
                   + "</tr></thead><tbody>")
        out.extend("<tr>" + "".join(("<td class=\"l\">" if i == 0 else "<td>") + f"{inline(c)}</td>"
                                    for i, c in enumerate(r))
                   + "</tr>" for r in body)
        out.append("</tbody></table>")
        table.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            table.append([c.strip() for c in stripped.strip("|").split("|")])
            continue
        flush()
        if stripped.startswith("## "):
            out.append(f"<h4>{inline(stripped[3:])}</h4>")
        elif stripped.startswith("# "):
            out.append(f"<h3>{inline(stripped[2:])}</h3>")
        elif stripped:
            out.append(f"<p>{inline(stripped)}</p>")
    flush()
    return "\n".join(out)


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


# -------------------------------------------------------------------------------------------- task section


@dataclass
class Options:
    per_cluster: int = PER_CLUSTER
    thumb: int = THUMB
    max_points: int = MAX_POINTS
    tsne: bool = False
    cache_dir: str | None = None


@dataclass
class Section:
    html: str
    figures: list[Path] = field(default_factory=list)


def render_task(task: TaskArtifacts, dataset, note: str, figures_dir: Path, opts: Options) -> Section:
    row, slug = task.row, task.slug
    seed = int(row.get("seed", 0) or 0)
    aspect = str(row["aspect"])
    names = {int(n["cluster"]): n for n in task.names}
    cluster_ids = sorted(set(int(c) for c in np.unique(task.partition) if c >= 0) | set(names))
    written: list[Path] = []

    def save(kind: str, data: bytes) -> str:
        path = figures_dir / f"{slug}-{kind}.png"
        _write_bytes(path, data)
        written.append(path)
        return f"figures/{path.name}"

    collided = {c for cs in _collisions(task.names).values() for c in cs}

    def label(c: int) -> str:
        word = names.get(c, {}).get("word", "?")
        return f"c{c} · {word}"

    # row order: matched to the named aspect's classes (a diagonal heat-map), else cluster id
    order = list(range(len(cluster_ids)))
    aspects: list[str] = []
    if dataset is not None:
        aspects = [aspect] + [a for a in dataset.aspects if a != aspect]
        k = dataset.aspects[aspect].k
        order = diagonal_order(contingency(task.partition, dataset.labels[aspect], cluster_ids, k))
    ordered = [cluster_ids[i] for i in order]

    out = [f'<section class="task" id="{_e(slug)}" data-clusters="{len(cluster_ids)}">',
           f"<h2>{_e(row['method'])} · {_e(row['dataset'])} / {_e(aspect)} · seed {seed}</h2>",
           f'<p class="meta">task <code>{_e(slug)}</code> · run_id <code>{_e(row.get("run_id", ""))}</code> · '
           f"{_e(row.get('n_images', ''))} images · k={_e(row.get('k', ''))} · representation "
           f"<code>{_e(row.get('representation', ''))}</code> · encoder <code>{_e(row.get('encoder', ''))}</code></p>"]

    # findings
    findings = collision_findings(task.names)
    k_true = int(row.get("k") or 0)
    non_empty = sum(1 for c in cluster_ids if (task.partition == c).any())
    if k_true and non_empty < k_true:
        findings.append(f"only {non_empty} non-empty clusters for k={k_true}")
    if note:
        findings.append(note)
    if findings:
        out.append('<div class="findings"><b>Findings</b><ul>' + "".join(f"<li>{_e(f)}</li>" for f in findings)
                   + "</ul></div>")
    else:
        out.append('<div class="findings ok">No finding: every cluster has its own name.</div>')

    # metrics
    others = _json(row.get("nmi_other_aspects"))
    metric_rows = [[m.upper(), row.get(m), row.get(f"{m}_std", "")] for m in ("nmi", "ri", "ari", "ami", "acc")
                   if m in row]
    metric_rows += [[f"NMI vs {a}", v, ""] for a, v in sorted(others.items())]
    out.append("<h3>Metrics</h3>" + _table(["metric", "value", "std over restarts"], metric_rows, "metrics"))
    out.append(f'<p class="meta">protocol: {_e(row.get("protocol", ""))} · runtime {_e(row.get("runtime_s", ""))} s'
               f" · words: {_e(row.get('words_source', ''))} ({_e(row.get('n_words', ''))})</p>")

    # cluster names, with the majority true class of the named aspect
    majority: dict[int, tuple[str, float]] = {}
    if dataset is not None:
        classes = dataset.aspects[aspect].classes
        table = contingency(task.partition, dataset.labels[aspect], cluster_ids, len(classes))
        for i, c in enumerate(cluster_ids):
            if table[i].sum():
                majority[c] = (classes[int(table[i].argmax())], float(table[i].max() / table[i].sum()))
    name_rows = []
    for c in ordered:
        n = names.get(c, {})
        maj = majority.get(c)
        name_rows.append([c, n.get("word", "?"), n.get("size", int((task.partition == c).sum())), n.get("score", ""),
                          n.get("runner_up", ""), n.get("margin", ""),
                          maj[0] if maj else "", f"{maj[1]:.0%}" if maj else "",
                          "collision" if c in collided else ""])
    out.append("<h3>Cluster names</h3>" + _table(
        ["cluster", "name", "size", "cosine", "runner-up", "margin", f"majority {aspect}", "purity", ""],
        name_rows, "names", left=(1, 4, 6, 8)).replace('<td class="l">collision</td>',
                                                         '<td class="l collide">same name</td>'))
    if majority:
        agree = sum(1 for c in cluster_ids if c in majority and names.get(c, {}).get("word") == majority[c][0])
        out.append(f'<p class="meta">{agree} of {len(cluster_ids)} clusters are named after their majority '
                   f"true class.</p>")

    # contingency heat-maps
    if dataset is not None:
        out.append("<h3>Found clusters vs. true classes</h3>"
                   '<p class="meta">Counts; shading = share of the cluster (row). Rows: found clusters by name; '
                   "columns: the aspect's true classes.</p>")
        out.append('<div class="heatmaps">')
        for a in aspects:
            classes = list(dataset.aspects[a].classes)
            table = contingency(task.partition, dataset.labels[a], cluster_ids, len(classes))[order]
            rows_lbl = [label(c) + (" ⚠" if c in collided else "") for c in ordered]
            link = save(f"contingency-{a}", contingency_png(table, rows_lbl, classes,
                                                            f"{row['method']} {aspect} clusters vs {a}"))
            heading = f"vs. {a}" + (" (the named aspect)" if a == aspect else f" (NMI {others[a]:.3f})"
                                    if a in others else "")
            out.append(f'<div><h4>{_e(heading)} <a href="{_e(link)}">png</a></h4>'
                       + _heat_table(table, rows_lbl, classes, a) + "</div>")
        out.append("</div>")

    # sample images per cluster
    out.append(f"<h3>Sample images per cluster</h3><p class=\"meta\">Up to {opts.per_cluster} per cluster, a "
               f"seeded draw (seed {seed}); caption = true {_e(aspect)}.</p>")
    if dataset is None:
        out.append(f'<p class="note">{_e(note)}</p>')
    else:
        grid_rows: list[tuple[str, list[bytes]]] = []
        out.append('<div class="clusters">')
        truth = dataset.labels[aspect]
        classes = dataset.aspects[aspect].classes
        for c in ordered:
            members = sample_members(task.partition, c, opts.per_cluster, seed)
            n = names.get(c, {})
            size = int((task.partition == c).sum())
            head = (f"c{c} · <b>{_e(n.get('word', '?'))}</b>"
                    + (' <span class="collide">(same name as another cluster)</span>' if c in collided else "")
                    + f' <span class="meta">{size} image{"s" if size != 1 else ""} · margin '
                      f"+{_fmt(n.get('margin', 0.0), 3)} over '{_e(n.get('runner_up', ''))}'</span>")
            thumbs, figs = [], []
            for i in members:
                data = thumbnail(dataset.image(int(i)), opts.thumb)
                thumbs.append(data)
                tags = ", ".join(f"{a}: {dataset.aspects[a].classes[y]}" for a in dataset.aspects
                                 if (y := int(dataset.labels[a][i])) >= 0)
                cap = classes[int(truth[i])] if truth[i] >= 0 else "–"
                image_id = _e(dataset.image_ids[i])
                figs.append(f'<figure class="thumb"><img alt="{image_id}" title="#{int(i)} {image_id} — {_e(tags)}" '
                            f'src="{_data_uri(data, "image/jpeg")}"><figcaption>{_e(cap)}</figcaption></figure>')
            grid_rows.append((f"c{c} {n.get('word', '?')} ({size})", thumbs))
            out.append(f'<div class="cluster-samples" data-cluster="{c}" data-size="{size}"><h4>{head}</h4>'
                       f'<div class="thumbs">{"".join(figs)}</div></div>')
        out.append("</div>")
        link = save("samples", montage_png(grid_rows, opts.thumb))
        out.append(f'<p class="meta"><a href="{_e(link)}">the grid as one png</a></p>')

    # loss curve
    out.append("<h3>Training loss</h3>")
    loss = loss_png(task.history, f"{row['method']} · {row['dataset']}/{aspect}") if task.history else None
    if loss is None:
        out.append('<p class="meta">No training history (a training-free method).</p>')
    else:
        link = save("loss", loss)
        out.append(f'<img class="figure" alt="loss curve" src="{_data_uri(loss)}"> '
                   f'<p class="meta">{len(task.history)} epochs · <a href="{_e(link)}">png</a></p>')

    # 2-D maps
    out.append("<h3>2-D map of the clustered representation</h3>")
    if task.representation is None or task.order is None:
        out.append('<p class="meta">The method kept no representation for this task.</p>')
    else:
        out.extend(_maps(task, dataset, aspects, save, opts, seed))
    out.append("</section>")
    return Section("\n".join(out), written)


def _maps(task: TaskArtifacts, dataset, aspects: list[str], save: Callable[[str, bytes], str], opts: Options,
          seed: int) -> list[str]:
    rep, order = task.representation, task.order
    if len(rep) != len(order):
        return [f'<p class="note">representation.npy has {len(rep)} rows for {len(order)} task images: no map.</p>']
    pick = subsample(len(order), opts.max_points, seed)
    idx = order[pick]
    names = {int(n["cluster"]): n.get("word", "?") for n in task.names}
    found_ids = sorted(set(int(c) for c in np.unique(task.partition) if c >= 0))
    lookup = {c: j for j, c in enumerate(found_ids)}
    found = np.array([lookup.get(int(c), -1) for c in task.partition[idx]])
    cluster_legend = [f"c{c} {names.get(c, '?')}" for c in found_ids]
    panels = [("found clusters", found, cluster_legend)]
    if dataset is not None:
        named = str(task.row["aspect"])
        k = dataset.aspects[named].k
        # each found cluster drawn in the colour of the true class it is matched to (same palette in both panels)
        point, of_cluster, n_colors = matched_colors(found, dataset.labels[named][idx], k, len(found_ids))
        legend: list[str | None] = [None] * n_colors
        for j, colour in enumerate(of_cluster):
            legend[int(colour)] = cluster_legend[j]
        panels = [("found clusters (colour of the matched class)", point, legend)]
        classes = list(dataset.aspects[named].classes) + [None] * (n_colors - k)
        panels.append((f"true {named} (named)", dataset.labels[named][idx], classes))
        panels += [(f"true {a}", dataset.labels[a][idx], list(dataset.aspects[a].classes))
                   for a in aspects if a != named]
    kept = (f"{len(pick)} of {len(order)} points (seeded subsample)" if len(pick) < len(order)
            else f"{len(order)} points")
    row = task.row
    title = f"{row['method']} · {row['dataset']}/{row['aspect']} · {row.get('representation', '')}"
    out = []
    xy, var = pca_2d(rep[pick])
    data = map_png(xy, panels, f"{title} · PCA", (f"PC1 ({var[0]:.0%})", f"PC2 ({var[1]:.0%})"))
    link = save("map-pca", data)
    out.append(f'<img class="figure" alt="PCA map" src="{_data_uri(data)}"><p class="meta">PCA · {kept} · '
               f'<a href="{_e(link)}">png</a></p>')
    if opts.tsne:
        data = map_png(tsne_2d(rep[pick], seed), panels, f"{title} · t-SNE", ("t-SNE 1", "t-SNE 2"))
        link = save("map-tsne", data)
        out.append(f'<img class="figure" alt="t-SNE map" src="{_data_uri(data)}"><p class="meta">t-SNE · {kept} · '
                   f'<a href="{_e(link)}">png</a></p>')
    return out


def _heat_table(table: np.ndarray, row_labels: list[str], classes: list[str], aspect: str) -> str:
    out = [f'<table class="contingency" data-aspect="{_e(aspect)}"><thead><tr><th class="l">cluster</th>']
    out += [f"<th>{_e(c)}</th>" for c in classes] + ["<th>n</th></tr></thead><tbody>"]
    for lbl, counts in zip(row_labels, table):
        total = max(int(counts.sum()), 1)
        cells = []
        for v in counts:
            a = v / total
            style = f' style="background:rgba(31,101,180,{a:.2f}){";color:#fff" if a > 0.55 else ""}"' if v else ""
            cells.append(f"<td{style}>{int(v) if v else ''}</td>")
        out.append(f'<tr class="cluster-row"><th class="l">{_e(lbl)}</th>{"".join(cells)}'
                   f"<td>{int(counts.sum())}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _collisions(names: list[dict[str, Any]]) -> dict[str, list[int]]:
    by_word: dict[str, list[int]] = {}
    for n in names:
        by_word.setdefault(str(n.get("word")), []).append(int(n["cluster"]))
    return {w: cs for w, cs in by_word.items() if len(cs) > 1}


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        out = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


# ---------------------------------------------------------------------------------------------------- pages


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


def _summary_table(tasks: list[TaskArtifacts], href: Callable[[TaskArtifacts], str]) -> str:
    out = ['<table class="summary"><thead><tr><th class="l">task</th><th class="l">method</th><th class="l">dataset'
           '</th><th class="l">aspect</th><th>seed</th><th>k</th><th>NMI</th><th>RI</th><th>ARI</th><th>ACC</th>'
           '<th class="l">cluster names (size, +margin)</th><th class="l">same name</th></tr></thead><tbody>']
    for t in tasks:
        r = t.row
        coll = ", ".join(f"{w}×{len(cs)}" for w, cs in sorted(_collisions(t.names).items()))
        out.append(f'<tr class="task-row"><td class="l"><a href="{_e(href(t))}">{_e(t.slug)}</a></td>'
                   + "".join(f'<td class="l">{_e(r.get(c, ""))}</td>' for c in ("method", "dataset", "aspect"))
                   + "".join(f"<td>{_e(_fmt(r.get(c, '')))}</td>" for c in ("seed", "k", "nmi", "ri", "ari", "acc"))
                   + f'<td class="l wrap">{_e(shorten(str(r.get("cluster_names", "")), 200, "; "))}</td>'
                   + f'<td class="l collide">{_e(coll)}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def render_run(run_dir: str | Path, out_dir: str | Path | None = None, opts: Options | None = None,
               datasets: DatasetCache | None = None, back_link: str | None = None) -> Path:
    """Write ``<out_dir>/index.html`` (default ``<run_dir>/report``) and its figures; return the page path."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "report"
    opts = opts or Options()
    datasets = datasets or DatasetCache(opts.cache_dir)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    tasks = load_tasks(run_dir)
    body = [f'<p class="meta"><a href="{_e(back_link)}">← the sweep</a></p>'] if back_link else []
    body += [f"<h1>mcbench report · {_e(page_subject([t.row for t in tasks]))} · {_e(run_dir.name)}</h1>",
             f'<p class="meta">run folder <code>{_e(run_dir)}</code> · {len(tasks)} task(s) · written '
             f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} by mcbench {_e(mcbench.__version__)}</p>"]
    if tasks:
        body.append("<nav><h3>Tasks</h3>" + _summary_table(tasks, lambda t: f"#{t.slug}") + "</nav>")
    else:
        body.append('<div class="findings">No task artifacts in this run: every task may have been skipped '
                    "(already in the results file; <code>force=true</code> reruns it), or the run failed.</div>")
    for task in tasks:
        dataset, note = datasets.get(task.row, run_dir)
        if dataset is not None and (task.row["aspect"] not in dataset.aspects or len(dataset) != len(task.partition)):
            dataset, note = None, (f"the dataset rebuilt here ({len(dataset)} images, aspects "
                                   f"{', '.join(dataset.aspects)}) does not fit this task ({len(task.partition)} "
                                   f"images, aspect {task.row['aspect']}): no thumbnails and no contingencies")
        body.append(render_task(task, dataset, note, figures_dir, opts).html)
    config = _config_text(run_dir)
    overrides = run_dir / ".hydra" / "overrides.yaml"
    body.append('<section id="config"><h2>Configuration</h2>'
                + (f"<h3>Overrides</h3><pre>{_e(overrides.read_text(encoding='utf-8'))}</pre>"
                   if overrides.is_file() else "")
                + (f'<h3>Full config (<code>.hydra/config.yaml</code>)</h3><pre class="config">{_e(config)}</pre>'
                   if config else '<p class="meta">No .hydra/config.yaml in this folder.</p>') + "</section>")
    page = out_dir / "index.html"
    write_text_atomic(page, _page(f"mcbench report · {page_subject([t.row for t in tasks])} · {run_dir.name}", body))
    _readable(page)
    return page


def sweep_leaderboard_html(rows: list[dict[str, Any]]) -> str:
    """The leaderboard of these rows (``leaderboard.aggregate`` + ``to_markdown``), as HTML."""
    from mcbench.results.leaderboard import aggregate, load_rows, to_markdown
    from mcbench.results.store import ResultStore

    if not rows:
        return '<p class="meta">No result rows in this sweep.</p>'
    with tempfile.TemporaryDirectory() as tmp:  # the rows go through the results store, as the CSV would
        store = ResultStore(Path(tmp) / "runs.csv")
        for row in rows:
            store.append({k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                          for k, v in row.items()})
        board = aggregate(load_rows(store.path, include_sanity=True))
    return markdown_to_html(to_markdown(board))


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


def swept_values_html(job_overrides: list[list[str]]) -> str:
    """The values actually swept (from every job's overrides), not the base config."""
    varied, fixed = swept_values(job_overrides)
    rows = [[k, ", ".join(v)] for k, v in varied.items()]
    out = ["<h2>Swept values</h2>"]
    out.append(_table(["swept", "values (one job per combination)"], rows, cls="swept", left=(0, 1)) if rows
               else '<p class="meta">No value varies between the jobs.</p>')
    if fixed:
        out.append(_table(["set for every job", "value"], [[k, v] for k, v in fixed.items()], cls="fixed",
                          left=(0, 1)))
    return "\n".join(out)


def side_by_side_html(all_tasks: list[tuple[str, TaskArtifacts]], out_dir: Path) -> str:
    """Per dataset/aspect, the methods side by side (first seed of each): NMI, the contingency map against the named
    aspect and the sample grid, inlined from the job pages' figures, each linking to its task section."""
    groups: dict[tuple[str, str], dict[str, tuple[str, TaskArtifacts]]] = {}
    for job, t in sorted(all_tasks, key=lambda jt: (int(jt[1].row.get("seed", 0) or 0), int(jt[0]))):
        key = (str(t.row["dataset"]), str(t.row["aspect"]))
        groups.setdefault(key, {}).setdefault(str(t.row["method"]), (job, t))
    if not groups:
        return ""
    out = ["<h2>Methods side by side, per aspect</h2>"]
    for (dataset, aspect), by_method in sorted(groups.items()):
        out.append(f'<h3 class="aspect-compare">{_e(dataset)} / {_e(aspect)}</h3><div class="compare">')
        for method, (job, t) in sorted(by_method.items()):
            figures = out_dir / f"job-{job}" / "figures"
            cell = [f'<div class="compare-method" data-method="{_e(method)}"><h4><a href="job-{_e(job)}/index.html'
                    f'#{_e(t.slug)}">{_e(method)}</a> · seed {_e(t.row.get("seed", ""))} · NMI '
                    f'{_e(_fmt(t.row.get("nmi")))}</h4>']
            for kind, alt in ((f"contingency-{aspect}", "contingency"), ("samples", "samples")):
                png = figures / f"{t.slug}-{kind}.png"
                if png.is_file():
                    cell.append(f'<img class="figure" alt="{alt} {_e(method)}" src="{_data_uri(png.read_bytes())}">')
                else:
                    cell.append(f'<p class="meta">no {alt} figure (the dataset was not rebuilt)</p>')
            out.append("".join(cell) + "</div>")
        out.append("</div>")
    return "\n".join(out)


def render_sweep(sweep_dir: str | Path, out_dir: str | Path | None = None, opts: Options | None = None) -> Path:
    """Per-job pages under ``<out_dir>/job-<num>/`` and the sweep page ``<out_dir>/index.html``."""
    from mcbench.results.sweep_files import read_failures

    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir else sweep_dir / "report"
    opts = opts or Options()
    datasets = DatasetCache(opts.cache_dir)
    jobs = job_dirs(sweep_dir)
    job_rows, all_tasks, rows, job_overrides = [], [], [], []
    for job in jobs:
        render_run(job, out_dir / f"job-{job.name}", opts, datasets, back_link="../index.html")
        tasks = load_tasks(job)
        overrides = job / ".hydra" / "overrides.yaml"
        text = overrides.read_text(encoding="utf-8") if overrides.is_file() else ""
        over = " ".join(line[2:].strip() for line in text.splitlines() if line.startswith("- "))
        job_overrides.append([line[2:].strip() for line in text.splitlines() if line.startswith("- ")])
        job_rows.append(f'<tr><td class="l"><a href="job-{_e(job.name)}/index.html">job {_e(job.name)}</a></td>'
                        f'<td class="l wrap"><code>{_e(over)}</code></td><td>{len(tasks)}</td></tr>')
        for t in tasks:
            all_tasks.append((job.name, t))
            rows.append(t.row)
    body = [f"<h1>mcbench sweep · {_e(page_subject(rows))} · {_e(sweep_dir.name)}</h1>",
            f'<p class="meta">sweep folder <code>{_e(sweep_dir)}</code> · {len(jobs)} job(s) · '
            f"{len(rows)} task(s) · "
            f"written {datetime.now(timezone.utc).isoformat(timespec='seconds')} by mcbench "
            f"{_e(mcbench.__version__)}</p>"]
    failures = read_failures(sweep_dir)
    if failures:
        body.append('<div class="findings"><b>Failed jobs (no row written)</b><ul>' + "".join(
            f"<li><code>{_e(' '.join(f['overrides']))}</code>: {_e(f['error'])}</li>" for f in failures)
            + "</ul></div>")
    body.append('<h2>Jobs</h2><table class="jobs"><thead><tr><th class="l">page</th><th class="l">overrides</th>'
                "<th>tasks</th></tr></thead><tbody>" + "".join(job_rows) + "</tbody></table>")
    body.append(swept_values_html(job_overrides))
    body.append('<h2>Leaderboard</h2><div class="board">' + sweep_leaderboard_html(rows) + "</div>")
    body.append(side_by_side_html(all_tasks, out_dir))
    by_task = {id(t): j for j, t in all_tasks}
    body.append("<h2>Tasks</h2>" + _summary_table([t for _, t in all_tasks],
                                                  lambda t: f"job-{by_task[id(t)]}/index.html#{t.slug}"))
    multirun = sweep_dir / "multirun.yaml"
    if multirun.is_file():
        body.append('<section id="config"><h2>Sweep configuration (<code>multirun.yaml</code>)</h2>'
                    f'<details><summary>show</summary><pre class="config">{_e(multirun.read_text(encoding="utf-8"))}'
                    "</pre></details></section>")
    page = out_dir / "index.html"
    write_text_atomic(page, _page(f"mcbench sweep · {page_subject(rows)} · {sweep_dir.name}", body))
    _readable(page)
    return page


def render(path: str | Path, out_dir: str | Path | None = None, opts: Options | None = None) -> Path:
    """A run folder or a sweep folder, whichever ``path`` is."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no folder at {path}")
    if is_run_dir(path):
        return render_run(path, out_dir, opts)
    if is_sweep_dir(path):
        return render_sweep(path, out_dir, opts)
    raise FileNotFoundError(f"{path} is neither a run folder (outputs/<date>/<time>, with .hydra/ or tasks/) "
                            f"nor a sweep folder (multirun/<date>/<time>, with numbered job folders)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mcbench-report", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="a run folder (outputs/<date>/<time>) or a sweep folder "
                                               "(multirun/<date>/<time>)")
    parser.add_argument("--last", action="store_true", help="the newest run or sweep under ./outputs and ./multirun")
    parser.add_argument("--root", default=".", help="where --last looks (default: the current folder)")
    parser.add_argument("--out", help="folder for index.html and figures/ (default: <path>/report)")
    parser.add_argument("--cache-dir", help="dataset cache for the thumbnails (default: the run's paths.cache_dir)")
    parser.add_argument("--per-cluster", type=int, default=PER_CLUSTER, help=f"thumbnails per cluster ({PER_CLUSTER})")
    parser.add_argument("--thumb-size", type=int, default=THUMB, help=f"thumbnail side in pixels ({THUMB})")
    parser.add_argument("--max-points", type=int, default=MAX_POINTS,
                        help=f"points per 2-D map; more are subsampled ({MAX_POINTS})")
    parser.add_argument("--tsne", action="store_true", help="also draw a t-SNE map (slower)")
    args = parser.parse_args(argv)
    if bool(args.path) == bool(args.last):
        parser.error("give one run or sweep folder, or --last")
    try:
        path = find_last(Path(args.root)) if args.last else Path(args.path)
        opts = Options(max(0, args.per_cluster), max(8, args.thumb_size), max(10, args.max_points), args.tsne,
                       args.cache_dir)
        page = render(path, args.out, opts)
    except FileNotFoundError as exc:
        parser.exit(2, f"mcbench-report: error: {exc}\n")
    print(f"[mcbench] report for {path} → {page}")


if __name__ == "__main__":
    main()
