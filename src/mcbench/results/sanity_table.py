"""The sanity suite's verdict table (``sanity.csv``, written by ``mcbench-sanity``): its checks, the
per-(method, settings, check) summary and the leaderboard's "Sanity checks" section."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

#: label-free leak checks (docs/leakage.md), in the order the tables show them
CHECKS = ("random_encoder", "order_invariance", "interest_swap")


def summarize(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One line per (method, variant, check): passed on every dataset and aspect? Checks that do not apply
    (``applies`` false: the interest swap of an aspect-blind control) are left out."""
    if "applies" in verdicts:
        verdicts = verdicts[verdicts["applies"].astype(bool)]
    return (verdicts.groupby(["method", "variant", "check"])["passed"].agg(["all", "count"])
            .rename(columns={"all": "passed", "count": "cases"}).reset_index())


def sanity_markdown(folder: Path, link_from: Path | None = None) -> str:
    """Per method and settings: did the sanity suite pass (``folder/sanity.csv``; evidence in sanity.md, linked
    relative to ``link_from``, the folder of the Markdown that shows it, by default ``folder``)?"""
    path = Path(folder) / "sanity.csv"
    if not path.is_file():
        return ""
    link = Path(os.path.relpath(Path(folder) / "sanity.md", link_from or folder)).as_posix()
    verdicts = pd.read_csv(path)
    summary = summarize(verdicts)
    blind = set()
    if "applies" in verdicts:  # checks that do not apply (the interest swap of an aspect-blind control)
        off = verdicts[~verdicts["applies"].astype(bool)]
        blind = set(zip(off["method"], off["variant"], off["check"]))
    lines = ["## Sanity checks", "", f"Evidence: [sanity.md]({link}) (`mcbench-sanity`). A method above the "
             "random-encoder band is flagged as leaking.", "",
             "| method | settings | " + " | ".join(CHECKS) + " |", "|---|---|" + "---|" * len(CHECKS)]
    for (method, variant), part in summary.groupby(["method", "variant"]):
        marks = {r["check"]: "pass" if r["passed"] else "**FAIL**" for _, r in part.iterrows()}
        marks.update({c: "n/a" for m, v, c in blind if (m, v) == (method, variant) and c not in marks})
        lines.append(f"| {method} | {variant} | " + " | ".join(marks.get(c, "–") for c in CHECKS) + " |")
    return "\n".join(lines) + "\n"
