"""The result tables a run prints: one line per task (``format_rows``) and, at the end of a multirun, one
aggregated table (``sweep_table``: method × dataset/aspect, mean ± std over seeds, failed jobs), like
lm-evaluation-harness's final table. No torch, no pandas: the CLI imports this module at start-up."""

from __future__ import annotations

import math
from typing import Any

from mcbench.results import schema


def format_rows(rows: list[dict[str, Any]]) -> str:
    metrics = schema.METRICS
    header = ("method", "dataset", "aspect", "seed", "k", *(m.title for m in metrics), "time s")
    lines = [header] + [
        (r["method"], r["dataset"], r["aspect"], str(r["seed"]), str(r["k"]), *(f"{r[m.name]:.4f}" for m in metrics),
         f"{r['runtime_s']:.1f}")
        for r in rows
    ]
    return _layout(lines)


def _layout(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    fmt = lambda line: "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(lines[0]), "  ".join("-" * w for w in widths)] + [fmt(line) for line in lines[1:]])


def _mean_std(values: list[float]) -> str:
    """``0.8123 ± 0.0100`` (sample std over seeds); one value: no std (it is not 0, it is unknown)."""
    if not values:
        return ""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.4f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.4f} ± {std:.4f}"


def _picked(overrides: list[str], key: str) -> str | None:
    for o in overrides:
        if o.startswith(f"{key}="):
            return o.split("=", 1)[1]
    return None


def sweep_summary(rows: list[dict[str, Any]], failures: list[dict[str, Any]] = ()) -> list[dict[str, str]]:
    """One record per (method, dataset and difficulty level, aspect): the method seeds and generated image sets
    (``dataset.seed``) pooled, mean ± std of each metric over them, failed jobs.

    A row counts once per ``run_id`` (the newest), whatever number of jobs listed it. A failed job has no aspect
    (it may have failed before the aspects were known): it is counted on every (method, dataset) line its
    overrides name, or on a line of its own when no line matches."""
    latest: dict[str, dict[str, Any]] = {}
    for i, r in enumerate(rows):
        latest[str(r.get("run_id") or f"row{i}")] = r
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in latest.values():
        dataset = str(r["dataset"])
        if _given(r.get("difficulty")):  # one line per level: levels are never pooled
            dataset = f"{dataset} ({r['difficulty']})"
        groups.setdefault((str(r["method"]), dataset, str(r["aspect"])), []).append(r)
    out = []
    matched: set[int] = set()
    for (method, dataset, aspect), members in sorted(groups.items()):
        failed = 0
        for j, f in enumerate(failures):
            m, d = _picked(f["overrides"], "method"), _picked(f["overrides"], "dataset")
            if (m in (None, method)) and (d in (None, dataset.split(" (")[0])) and (m or d):
                failed += 1
                matched.add(j)
        record = {"method": method, "dataset": dataset, "aspect": aspect,
                  "seeds": ",".join(str(s) for s in sorted({int(r["seed"]) for r in members})),
                  "image_sets": ",".join(sorted({str(r["dataset_seed"]) for r in members
                                                 if _given(r.get("dataset_seed"))}, key=_natural)),
                  "n": str(len(members)), "failed": str(failed)}
        for m in schema.metric_names():
            record[m] = _mean_std([float(r[m]) for r in members if r.get(m) is not None and r.get(m) == r.get(m)])
        out.append(record)
    for j, f in enumerate(failures):
        if j not in matched:
            out.append({"method": _picked(f["overrides"], "method") or "(default)",
                        "dataset": _picked(f["overrides"], "dataset") or "(default)", "aspect": "-", "seeds": "",
                        "image_sets": "",
                        "n": "0", "failed": "1", **{m: "" for m in schema.metric_names()}})
    return out


def _given(value: Any) -> bool:
    return value is not None and value == value and str(value) != ""


def _natural(text: str) -> tuple:
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


def sweep_table(rows: list[dict[str, Any]], failures: list[dict[str, Any]] = ()) -> str:
    """The aggregated table as aligned text (printed at the end of a sweep)."""
    records = sweep_summary(rows, failures)
    header = ("method", "dataset", "aspect", "seeds", "image sets", "n", "NMI", "RI", "ARI", "ACC", "failed jobs")
    keys = ("method", "dataset", "aspect", "seeds", "image_sets", "n", *schema.metric_names(), "failed")
    return _layout([header] + [tuple(r[k] for k in keys) for r in records])


def sweep_markdown(rows: list[dict[str, Any]], failures: list[dict[str, Any]] = ()) -> str:
    """The aggregated table in Markdown (written as ``summary.md`` into the sweep folder)."""
    records = sweep_summary(rows, failures)
    header = ["method", "dataset", "aspect", "seeds", "image sets (dataset.seed)", "n", "NMI", "RI", "ARI", "ACC",
              "failed jobs (method × dataset)"]
    keys = ("method", "dataset", "aspect", "seeds", "image_sets", "n", *schema.metric_names(), "failed")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r[k] for k in keys) + " |" for r in records]
    return "\n".join(lines) + "\n"
