"""The leaderboard: result rows → leaderboard CSV/markdown and plots (derived, never edited; the command is
``mcbench-leaderboard``, :mod:`mcbench.commands.leaderboard`).

Rows are read once per ``run_id`` (the newest copy, ``store.latest_per_run``) and grouped by (method
variant, dataset, dataset settings, aspect, encoder, words source, selection, tuned-on-these-images); each group
gets mean ± std over its runs (image sets × method seeds) of every metric, its run count and the ceiling (the
probe's score, a reference). A method's variant label shows the hyperparameters that vary between its rows (a
sweep ``method.alpha=0.1,0.3`` gives two lines). Gains over the baselines and the share of headroom captured
are paired by image set and seed (``mcbench.results.gains``); the Markdown is written by ``mcbench.results.board_markdown``,
the figures by ``mcbench.results.board_plots``. The papers' published numbers (``results/reported.csv``) sit in
columns of their own, never mixed with ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mcbench.atomic import write_text_atomic
from mcbench.results.board_markdown import gains_markdown, headroom_markdown, to_markdown
from mcbench.results.sanity_table import sanity_markdown
from mcbench.results.board_plots import plot_bars, plot_levels
from mcbench.results import schema
from mcbench.results.gains import gains
from mcbench.results.identity import image_set, used_for_tuning
from mcbench.results.store import ResultStore, latest_per_run

DEFAULT_METRICS = schema.DEFAULT_BOARD_METRICS
GROUP = ["dataset", "setting", "aspect", "encoder", "words_source", "method", "variant", "selection", "tuned"]


def _variant_labels(df: pd.DataFrame) -> pd.Series:
    """Per row: the hyperparameters that differ between rows of the same method, as ``k=v`` text."""
    labels = pd.Series("", index=df.index)
    for _, rows in df.groupby("method"):
        params = rows["hparams"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
        keys = sorted({k for p in params for k in p})
        varying = [k for k in keys if len({json.dumps(p.get(k), sort_keys=True) for p in params}) > 1]
        labels.loc[rows.index] = params.map(lambda p: ",".join(f"{k}={p.get(k)}" for k in varying))
    return labels


def _params(text: object) -> dict:
    return json.loads(text) if isinstance(text, str) and text else {}


def _setting(params: str) -> str:
    """The dataset settings that matter for comparison (difficulty, size); never the generator seed, which
    draws another image set of the same setting."""
    p = _params(params)
    parts = [str(p["difficulty"])] if p.get("difficulty") else []
    if p.get("n"):
        parts.append(f"n={p['n']}")
    return " ".join(parts)


def _column(df: pd.DataFrame, name: str, fallback: pd.Series) -> pd.Series:
    """A row column, filled from ``fallback`` where empty (rows written before the column existed)."""
    if name not in df:
        return fallback
    values = df[name]
    empty = values.isna() | (values.astype(str) == "")
    return values.where(~empty, fallback)


def load_rows(results: str | Path | pd.DataFrame, dataset: str | None = None, method: str | None = None,
              encoder: str | None = None, include_sanity: bool = False) -> pd.DataFrame:
    """The intact ``ok`` rows, one per ``run_id`` (the newest), filtered, with the leaderboard's derived
    columns: ``variant``, ``setting``, ``image_set``, ``selection`` and ``tuned`` (scored on image sets used
    to tune that method). ``results`` is a results CSV or rows already in memory (a DataFrame with the
    file's columns, e.g. the report's ``row.json`` files)."""
    df = results.copy() if isinstance(results, pd.DataFrame) else ResultStore(results).read()
    if df.empty:
        return df
    df = latest_per_run(df[df["status"] == "ok"]).copy()
    if not include_sanity and "sanity_check" in df:
        df = df[df["sanity_check"].isna() | (df["sanity_check"].astype(str) == "")]
    for column, wanted in (("dataset", dataset), ("method", method), ("encoder", encoder)):
        if wanted:
            df = df[df[column].isin(wanted.split(","))]
    df = df.copy()
    params = df["dataset_params"].map(_params) if "dataset_params" in df else pd.Series([{}] * len(df), df.index)
    df["variant"] = _variant_labels(df) if len(df) else ""
    df["setting"] = df["dataset_params"].map(_setting) if "dataset_params" in df else ""
    df["difficulty"] = _column(df, "difficulty", params.map(lambda p: p.get("difficulty", "")))
    df["dataset_seed"] = _column(df, "dataset_seed", params.map(lambda p: p.get("seed", "")))
    df["image_set"] = [image_set(*v) for v in zip(df["dataset"], df["difficulty"], df["dataset_seed"])]
    df["selection"] = _column(df, "selection", pd.Series("named", index=df.index))
    tuned_text = df["tuned_on"] if "tuned_on" in df else pd.Series("", index=df.index)
    df["tuned"] = [used_for_tuning(*v) for v in zip(tuned_text, df["dataset"], df["difficulty"], df["dataset_seed"])]
    for column in ("ceiling_nmi", "ceiling_acc"):
        df[column] = pd.to_numeric(df[column], errors="coerce") if column in df else np.nan
    return df


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over runs per group (std empty for a single run), the run count, how many image sets and
    method seeds they cover, and the ceiling (mean over the group's image sets)."""
    if df.empty:
        return pd.DataFrame(columns=GROUP + ["n_runs", "n_image_sets", "n_seeds"])
    if "image_set" not in df:  # rows that did not come through load_rows
        df = df.assign(image_set=df["dataset"].astype(str))
    for column, default in (("selection", "named"), ("tuned", False), ("variant", ""), ("setting", "")):
        if column not in df:
            df = df.assign(**{column: default})
    grouped = df.groupby(GROUP, dropna=False)
    out = grouped.size().rename("n_runs").reset_index()
    out["n_image_sets"] = grouped["image_set"].nunique().values
    out["n_seeds"] = grouped["seed"].nunique().values
    for m in schema.metric_names():
        if m not in df:
            continue
        stats = grouped[m].agg(["mean", "std"]).reset_index(drop=True)
        out[f"{m}_mean"] = stats["mean"].round(4).values
        out[f"{m}_std"] = stats["std"].round(4).values  # NaN (blank) for a single run, never 0.0
    out["seeds"] = grouped["seed"].apply(lambda s: ",".join(str(int(v)) for v in sorted(set(s)))).values
    out["image_sets"] = grouped["image_set"].apply(lambda s: ",".join(sorted(set(map(str, s))))).values
    ceilings = [c for c in ("ceiling_nmi", "ceiling_acc") if c in df]
    if ceilings:
        per_set = df.groupby(GROUP + ["image_set"], dropna=False)[ceilings].mean().reset_index()
        out = out.merge(per_set.groupby(GROUP, dropna=False)[ceilings].mean().round(4).reset_index(), on=GROUP,
                        how="left")
    return out.sort_values(GROUP).reset_index(drop=True)


def attach_reported(board: pd.DataFrame, reported: Path) -> pd.DataFrame:
    """Add the published NMI/RI (and their source) beside our numbers, in separate columns."""
    if not reported.is_file() or board.empty:
        return board.assign(reported_nmi=np.nan, reported_ri=np.nan, reported_source="")
    rep = pd.read_csv(reported)
    rep = rep.rename(columns={"nmi": "reported_nmi", "ri": "reported_ri", "source": "reported_source"})
    return board.merge(rep[["method", "dataset", "aspect", "reported_nmi", "reported_ri", "reported_source"]],
                       on=["method", "dataset", "aspect"], how="left")


def attach_headroom(board: pd.DataFrame, gain_table: pd.DataFrame) -> pd.DataFrame:
    """Each method row's share of the NMI headroom over ``zeroshot_gpt`` (from the gains table)."""
    cols = ["dataset", "setting", "aspect", "encoder", "words_source", "method", "variant", "selection", "tuned"]
    if gain_table.empty or "headroom_share" not in gain_table or board.empty:
        return board.assign(headroom_share_nmi=np.nan)
    share = gain_table[(gain_table["baseline"] == "zeroshot_gpt") & (gain_table["metric"] == "nmi")]
    share = share[cols + ["headroom_share"]].rename(columns={"headroom_share": "headroom_share_nmi"})
    return board.merge(share, on=cols, how="left")


def build(results: str | Path, out_dir: str | Path, dataset: str | None = None, method: str | None = None,
          encoder: str | None = None, plots: bool = True, metrics: tuple[str, ...] = DEFAULT_METRICS,
          reference_dir: str | Path | None = None) -> pd.DataFrame:
    """Write ``leaderboard.{csv,md}``, ``gains.csv`` and ``plots/`` to ``out_dir``; the papers' numbers
    (``reported.csv``) and the sanity verdicts (``sanity.csv``) are read from ``reference_dir`` (default:
    ``out_dir``)."""
    out_dir = Path(out_dir)
    reference_dir = Path(reference_dir) if reference_dir else out_dir
    rows = load_rows(results, dataset, method, encoder)
    board = aggregate(rows)
    gain_metrics = tuple(dict.fromkeys(("nmi",) + tuple(metrics)))  # NMI always: the headroom share is in NMI
    gain_table = gains(rows, gain_metrics)
    board = attach_headroom(attach_reported(board, reference_dir / "reported.csv"), gain_table)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "leaderboard.csv", board.to_csv(index=False))
    write_text_atomic(out_dir / "gains.csv", gain_table.to_csv(index=False))
    shown = gain_table[gain_table["metric"].isin(metrics)]
    write_text_atomic(out_dir / "leaderboard.md", "\n".join(
        [to_markdown(board, metrics), headroom_markdown(gain_table), gains_markdown(shown),
         sanity_markdown(reference_dir, link_from=out_dir)]))
    if plots and not board.empty:
        plot_bars(board, out_dir / "plots", metrics[0])
        plot_levels(board, out_dir / "plots", metrics[0])
    return board
