"""Every picture of a report, as bytes: JPEG thumbnails, and PNG figures drawn with matplotlib (contingency
heat-maps, the per-cluster sample grid, loss curves, the 2-D maps). Nothing here writes a file or HTML."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from mcbench.commands.report.analysis import loss_series, shorten, zoom_outliers


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


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
