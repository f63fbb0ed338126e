"""The report's pages, assembled from Jinja2 templates (``templates/*.html.j2``, autoescaped) and the data of
``loading``, ``analysis`` and ``figures``: a section per task, a page per run, a page per sweep. The figures
are written as PNG files under ``<out>/figures/`` and inlined in the page as data URIs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
from markupsafe import Markup, escape

import mcbench
from mcbench.atomic import atomic_path, write_text_atomic
from mcbench.results import schema
from mcbench.commands.report.analysis import (
    collision_findings, contingency, diagonal_order, matched_colors, page_subject, pca_2d, sample_members, shorten,
    subsample, sweep_board, swept_values, tsne_2d,
)
from mcbench.commands.report.figures import contingency_png, data_uri, loss_png, map_png, montage_png, thumbnail
from mcbench.commands.report.loading import (
    DatasetCache, TaskArtifacts, is_run_dir, is_sweep_dir, job_dirs, json_dict, load_tasks, overrides, read_text,
)

PER_CLUSTER = 12     # thumbnails per cluster
THUMB = 64           # thumbnail side in pixels
MAX_POINTS = 5000    # points per 2-D map


@dataclass
class Options:
    per_cluster: int = PER_CLUSTER
    thumb: int = THUMB
    max_points: int = MAX_POINTS
    tsne: bool = False
    cache_dir: str | None = None


def figure_name(slug: str, kind: str) -> str:
    """The file name of one of a task's figures (under the page's ``figures/``)."""
    return f"{slug}-{kind}.png"


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell's text: floats to ``digits`` decimals, None as empty."""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


@lru_cache(maxsize=1)
def environment():
    """The templates of this package (found through the package, so also from an installed wheel)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("mcbench.commands.report", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["fmt"] = fmt
    return env


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def _readable(path: Path) -> None:
    """Atomic writes leave mode 0600; a report is for sharing (a web folder, W&B)."""
    try:
        os.chmod(path, 0o644)
    except OSError:
        pass


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    _readable(path)


def _write_page(path: Path, text: str) -> Path:
    write_text_atomic(path, text)
    _readable(path)
    return path


def _written() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -------------------------------------------------------------------------------------------- task section


def render_task(task: TaskArtifacts, dataset, note: str, figures_dir: Path, opts: Options) -> Markup:
    """One task's section: findings, metrics, names, heat-maps, samples, loss and maps (``task.html.j2``)."""
    row, slug = task.row, task.slug
    seed = int(row.get("seed", 0) or 0)
    aspect = str(row["aspect"])
    names = {int(n["cluster"]): n for n in task.names}
    cluster_ids = sorted(set(int(c) for c in np.unique(task.partition) if c >= 0) | set(names))
    sizes = {c: int((task.partition == c).sum()) for c in cluster_ids}

    def save(kind: str, data: bytes) -> str:
        path = figures_dir / figure_name(slug, kind)
        _write_bytes(path, data)
        return f"figures/{path.name}"

    found_collisions = task.collisions
    collided = {c for cs in found_collisions.values() for c in cs}

    # row order: matched to the named aspect's classes (a diagonal heat-map), else cluster id
    order = list(range(len(cluster_ids)))
    aspects: list[str] = []
    tables: dict[str, np.ndarray] = {}  # per aspect: found clusters (cluster_ids order) x its classes
    if dataset is not None:
        aspects = [aspect] + [a for a in dataset.aspects if a != aspect]
        tables = {a: contingency(task.partition, dataset.labels[a], cluster_ids, dataset.aspects[a].k) for a in aspects}
        order = diagonal_order(tables[aspect])
    ordered = [cluster_ids[i] for i in order]

    findings = collision_findings(found_collisions)
    k_true = int(row.get("k") or 0)
    non_empty = sum(1 for c in cluster_ids if sizes[c])
    if k_true and non_empty < k_true:
        findings.append(f"only {non_empty} non-empty clusters for k={k_true}")
    if note:
        findings.append(note)

    others = json_dict(row.get("nmi_other_aspects"))
    metric_rows = [[m.title, row.get(m.name), row.get(f"{m.name}_std", "")] for m in schema.METRICS if m.name in row]
    metric_rows += [[f"NMI vs {a}", v, ""] for a, v in sorted(others.items())]

    # cluster names, with the majority true class of the named aspect
    majority: dict[int, tuple[str, float]] = {}
    if dataset is not None:
        classes = dataset.aspects[aspect].classes
        table = tables[aspect]
        for i, c in enumerate(cluster_ids):
            if table[i].sum():
                majority[c] = (classes[int(table[i].argmax())], float(table[i].max() / table[i].sum()))
    name_rows = []
    for c in ordered:
        n, maj = names.get(c, {}), majority.get(c)
        name_rows.append({"cells": [c, n.get("word", "?"), n.get("size", sizes[c]), n.get("score", ""),
                                    n.get("runner_up", ""), n.get("margin", ""), maj[0] if maj else "",
                                    f"{maj[1]:.0%}" if maj else ""], "collided": c in collided})
    agree = sum(1 for c in cluster_ids if c in majority and names.get(c, {}).get("word") == majority[c][0])

    def label(c: int) -> str:
        return f"c{c} · {names.get(c, {}).get('word', '?')}"

    heatmaps = []
    for a in aspects:
        classes = list(dataset.aspects[a].classes)
        table = tables[a][order]
        rows_lbl = [label(c) + (" ⚠" if c in collided else "") for c in ordered]
        link = save(f"contingency-{a}", contingency_png(table, rows_lbl, classes,
                                                        f"{row['method']} {aspect} clusters vs {a}"))
        heading = f"vs. {a}" + (" (the named aspect)" if a == aspect else f" (NMI {others[a]:.3f})"
                                if a in others else "")
        heatmaps.append({"aspect": a, "heading": heading, "link": link, "classes": classes,
                         "rows": [{"label": lbl, "cells": _heat_cells(counts), "total": int(counts.sum())}
                                  for lbl, counts in zip(rows_lbl, table)]})

    samples, grid_link = [], None
    if dataset is not None:
        grid_rows: list[tuple[str, list[bytes]]] = []
        truth, classes = dataset.labels[aspect], dataset.aspects[aspect].classes
        for c in ordered:
            n = names.get(c, {})
            thumbs = []
            images = []
            for i in sample_members(task.partition, c, opts.per_cluster, seed):
                data = thumbnail(dataset.image(int(i)), opts.thumb)
                images.append(data)
                tags = ", ".join(f"{a}: {dataset.aspects[a].classes[y]}" for a in dataset.aspects
                                 if (y := int(dataset.labels[a][i])) >= 0)
                image_id = dataset.image_ids[i]
                thumbs.append({"alt": image_id, "title": f"#{int(i)} {image_id} — {tags}",
                               "src": data_uri(data, "image/jpeg"),
                               "caption": classes[int(truth[i])] if truth[i] >= 0 else "–"})
            grid_rows.append((f"c{c} {n.get('word', '?')} ({sizes[c]})", images))
            samples.append({"cluster": c, "word": n.get("word", "?"), "collided": c in collided, "size": sizes[c],
                            "margin": fmt(n.get("margin", 0.0), 3), "runner_up": n.get("runner_up", ""),
                            "thumbs": thumbs})
        grid_link = save("samples", montage_png(grid_rows, opts.thumb))

    loss = None
    data = loss_png(task.history, f"{row['method']} · {row['dataset']}/{aspect}") if task.history else None
    if data is not None:
        loss = {"src": data_uri(data), "link": save("loss", data), "epochs": len(task.history)}

    maps: list[dict[str, str]] | None = None
    map_note = ""
    if task.representation is not None and task.order is not None:
        maps, map_note = _maps(task, dataset, aspects, save, opts, seed)

    html = render_template(
        "task.html.j2", slug=slug, row=row, seed=seed, aspect=aspect, n_clusters=len(cluster_ids),
        findings=findings, metric_rows=metric_rows, name_rows=name_rows, has_majority=bool(majority), agree=agree,
        dataset_ok=dataset is not None, note=note, heatmaps=heatmaps, per_cluster=opts.per_cluster, samples=samples,
        grid_link=grid_link, loss=loss, maps=maps, map_note=map_note)
    return Markup(html)


def _heat_cells(counts: np.ndarray) -> list[tuple[str, str]]:
    """(count text, cell style) per class: shaded by the share of the cluster (row)."""
    total = max(int(counts.sum()), 1)
    cells = []
    for v in counts:
        a = v / total
        style = f"background:rgba(31,101,180,{a:.2f}){';color:#fff' if a > 0.55 else ''}" if v else ""
        cells.append((str(int(v)) if v else "", style))
    return cells


def _maps(task: TaskArtifacts, dataset, aspects: list[str], save: Callable[[str, bytes], str], opts: Options,
          seed: int) -> tuple[list[dict[str, str]], str]:
    """The 2-D maps of the task's representation (PCA; t-SNE with ``--tsne``), or a note why there is none."""
    rep, order = task.representation, task.order
    if len(rep) != len(order):
        return [], f"representation.npy has {len(rep)} rows for {len(order)} task images: no map."
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
    xy, var = pca_2d(rep[pick])
    data = map_png(xy, panels, f"{title} · PCA", (f"PC1 ({var[0]:.0%})", f"PC2 ({var[1]:.0%})"))
    out = [{"alt": "PCA map", "kind": "PCA", "src": data_uri(data), "kept": kept, "link": save("map-pca", data)}]
    if opts.tsne:
        data = map_png(tsne_2d(rep[pick], seed), panels, f"{title} · t-SNE", ("t-SNE 1", "t-SNE 2"))
        out.append({"alt": "t-SNE map", "kind": "t-SNE", "src": data_uri(data), "kept": kept,
                    "link": save("map-tsne", data)})
    return out, ""


# ---------------------------------------------------------------------------------------------------- pages


def _summary(linked: list[tuple[str, TaskArtifacts]]) -> list[dict[str, Any]]:
    """The task table's rows (``(link, task)`` pairs): the link, the task's keys and metrics, its names and its
    name collisions."""
    return [{"href": href, "slug": t.slug, "text": [t.row.get(c, "") for c in ("method", "dataset", "aspect")],
             "numbers": [t.row.get(c, "") for c in ("seed", "k", "nmi", "ri", "ari", "acc")],
             "names": shorten(str(t.row.get("cluster_names", "")), 200, "; "),
             "collisions": ", ".join(f"{w}×{len(cs)}" for w, cs in sorted(t.collisions.items()))} for href, t in linked]


def render_run(run_dir: str | Path, out_dir: str | Path | None = None, opts: Options | None = None,
               datasets: DatasetCache | None = None, back_link: str | None = None,
               tasks: list[TaskArtifacts] | None = None) -> Path:
    """Write ``<out_dir>/index.html`` (default ``<run_dir>/report``) and its figures; return the page path.
    ``tasks``: the run's tasks when the caller has loaded them already (a sweep page)."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "report"
    opts = opts or Options()
    datasets = datasets or DatasetCache(opts.cache_dir)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    tasks = load_tasks(run_dir) if tasks is None else tasks
    sections = [render_task(task, *datasets.for_task(task, run_dir), figures_dir, opts) for task in tasks]
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    text = render_template(
        "run.html.j2", title=f"mcbench report · {page_subject([t.row for t in tasks])} · {run_dir.name}",
        back_link=back_link, run_dir=str(run_dir), n_tasks=len(tasks), written=_written(),
        version=mcbench.__version__, summary=_summary([(f"#{t.slug}", t) for t in tasks]), sections=sections,
        overrides=read_text(overrides_file) if overrides_file.is_file() else None,
        config=read_text(run_dir / ".hydra" / "config.yaml"))
    return _write_page(out_dir / "index.html", text)


def side_by_side(all_tasks: list[tuple[str, TaskArtifacts]], out_dir: Path) -> list[dict[str, Any]]:
    """Per dataset/aspect, the methods side by side (first seed of each): NMI, the contingency map against the named
    aspect and the sample grid, inlined from the job pages' figures, each linking to its task section."""
    groups: dict[tuple[str, str], dict[str, tuple[str, TaskArtifacts]]] = {}
    for job, t in sorted(all_tasks, key=lambda jt: (int(jt[1].row.get("seed", 0) or 0), int(jt[0]))):
        key = (str(t.row["dataset"]), str(t.row["aspect"]))
        groups.setdefault(key, {}).setdefault(str(t.row["method"]), (job, t))
    out = []
    for (dataset, aspect), by_method in sorted(groups.items()):
        methods = []
        for method, (job, t) in sorted(by_method.items()):
            figures = out_dir / f"job-{job}" / "figures"
            images = []
            for kind, alt in ((f"contingency-{aspect}", "contingency"), ("samples", "samples")):
                png = figures / figure_name(t.slug, kind)
                images.append({"alt": alt, "src": data_uri(png.read_bytes()) if png.is_file() else None})
            methods.append({"method": method, "href": f"job-{job}/index.html#{t.slug}", "seed": t.row.get("seed", ""),
                            "nmi": fmt(t.row.get("nmi")), "images": images})
        out.append({"dataset": dataset, "aspect": aspect, "methods": methods})
    return out


def render_sweep(sweep_dir: str | Path, out_dir: str | Path | None = None, opts: Options | None = None) -> Path:
    """Per-job pages under ``<out_dir>/job-<num>/`` and the sweep page ``<out_dir>/index.html``."""
    from mcbench.results.board_markdown import CEILING
    from mcbench.results.leaderboard import DEFAULT_METRICS as board_metrics
    from mcbench.results.sweep_files import read_failures

    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir else sweep_dir / "report"
    opts = opts or Options()
    datasets = DatasetCache(opts.cache_dir)
    jobs, all_tasks, job_overrides = [], [], []
    for job in job_dirs(sweep_dir):
        tasks = load_tasks(job)
        render_run(job, out_dir / f"job-{job.name}", opts, datasets, back_link="../index.html", tasks=tasks)
        job_overrides.append(overrides(job))
        jobs.append({"name": job.name, "overrides": " ".join(job_overrides[-1]), "n_tasks": len(tasks)})
        all_tasks += [(job.name, t) for t in tasks]
    rows = [t.row for _, t in all_tasks]
    varied, fixed = swept_values(job_overrides)
    summary = _summary([(f"job-{j}/index.html#{t.slug}", t) for j, t in all_tasks])
    multirun = sweep_dir / "multirun.yaml"
    text = render_template(
        "sweep.html.j2", title=f"mcbench sweep · {page_subject(rows)} · {sweep_dir.name}", sweep_dir=str(sweep_dir),
        n_rows=len(rows), written=_written(), version=mcbench.__version__, failures=read_failures(sweep_dir),
        jobs=jobs, varied=[[k, ", ".join(v)] for k, v in varied.items()], fixed=[[k, v] for k, v in fixed.items()],
        board=sweep_board(rows, board_metrics), board_metrics=board_metrics, ceiling=CEILING, compare=side_by_side(all_tasks, out_dir),
        summary=summary,
        multirun=read_text(multirun) if multirun.is_file() else None)
    return _write_page(out_dir / "index.html", text)


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


__all__ = ["Options", "escape", "fmt", "render", "render_run", "render_sweep", "render_task"]
