"""The short result table a run prints."""

from __future__ import annotations

from typing import Any


def format_rows(rows: list[dict[str, Any]]) -> str:
    header = ("method", "dataset", "aspect", "seed", "k", "NMI", "RI", "ARI", "ACC", "time s")
    lines = [header] + [
        (r["method"], r["dataset"], r["aspect"], str(r["seed"]), str(r["k"]), f"{r['nmi']:.4f}", f"{r['ri']:.4f}",
         f"{r['ari']:.4f}", f"{r['acc']:.4f}", f"{r['runtime_s']:.1f}")
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    fmt = lambda line: "  ".join(c.ljust(w) for c, w in zip(line, widths))  # noqa: E731
    return "\n".join([fmt(lines[0]), "  ".join("-" * w for w in widths)] + [fmt(line) for line in lines[1:]])
