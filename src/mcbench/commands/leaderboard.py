"""``mcbench-leaderboard``: result rows → leaderboard CSV/markdown and plots (derived, never edited)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mcbench.results import schema
from mcbench.results.leaderboard import DEFAULT_METRICS, build


def _metrics(text: str) -> tuple[str, ...]:
    chosen = tuple(m.strip().lower() for m in text.split(",") if m.strip())
    unknown = [m for m in chosen if m not in schema.metric_names()]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; "
                                         f"choose from {', '.join(schema.metric_names())}, comma-separated (e.g. --metric nmi,ri)")
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mcbench-leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results/runs.csv",
                        help="result rows (default: results/runs.csv, your own runs; the committed synthetic "
                             "suite's are results/synthetic/runs.csv)")
    parser.add_argument("--out", default="results", help="folder for leaderboard.csv/.md, gains.csv and plots/")
    parser.add_argument("--dataset", help="comma-separated dataset names to keep")
    parser.add_argument("--method", help="comma-separated method names to keep")
    parser.add_argument("--encoder", help="comma-separated encoder names to keep")
    parser.add_argument("--metric", type=_metrics, default=DEFAULT_METRICS,
                        help=f"comma-separated metrics shown in the Markdown, first one plotted "
                             f"(default: {','.join(DEFAULT_METRICS)}; choices: {', '.join(schema.metric_names())})")
    parser.add_argument("--reference-dir", help="folder with reported.csv (the papers' numbers) and sanity.csv "
                                                "(sanity verdicts); default: the --out folder")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    if not Path(args.results).is_file():
        parser.error(f"no results file at {args.results}: run `mcbench` first or pass --results PATH")
    board = build(args.results, args.out, args.dataset, args.method, args.encoder, plots=not args.no_plots,
                  metrics=args.metric, reference_dir=args.reference_dir)
    print(f"{len(board)} leaderboard rows → {args.out}/leaderboard.csv, {args.out}/leaderboard.md"
          + ("" if args.no_plots else f", {args.out}/plots/"))


if __name__ == "__main__":
    main()
