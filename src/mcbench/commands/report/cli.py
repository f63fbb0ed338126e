"""``mcbench-report [PATH | --last]``: the command line of the report (``mcbench.commands.report``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mcbench.commands.report.html import MAX_POINTS, PER_CLUSTER, THUMB, Options, render
from mcbench.commands.report.loading import find_last


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mcbench-report",
                                     description="mcbench-report: see and name the clusters of a run (or a sweep) "
                                                 "on one static HTML page.")
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
