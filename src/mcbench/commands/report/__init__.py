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

The parts: ``loading`` (run and sweep folders, task artifacts, the dataset rebuilt), ``analysis`` (the numbers:
contingencies, samples, maps, the sweep's leaderboard), ``figures`` (matplotlib and Pillow → PNG/JPEG bytes),
``html`` (the pages, from the Jinja2 templates in ``templates/``) and ``cli`` (``main``).
"""

from mcbench.commands.report.analysis import (
    collision_findings, contingency, diagonal_order, loss_series, matched_colors, page_subject, pca_2d,
    sample_members, shorten, subsample, sweep_board, swept_values, tsne_2d, zoom_outliers,
)
from mcbench.commands.report.cli import main
from mcbench.commands.report.figures import (
    contingency_png, data_uri, loss_png, map_png, montage_png, thumbnail,
)
from mcbench.commands.report.html import (
    MAX_POINTS, PER_CLUSTER, THUMB, Options, escape, fmt, render, render_run, render_sweep, render_task,
    side_by_side,
)
from mcbench.commands.report.loading import (
    DatasetCache, TaskArtifacts, dataset_spec, find_last, is_run_dir, is_sweep_dir, job_dirs, load_tasks,
)

__all__ = [
    "DatasetCache", "MAX_POINTS", "Options", "PER_CLUSTER", "THUMB", "TaskArtifacts", "collision_findings",
    "contingency", "contingency_png", "data_uri", "dataset_spec", "diagonal_order", "escape", "find_last", "fmt",
    "is_run_dir", "is_sweep_dir", "job_dirs", "load_tasks", "loss_png", "loss_series", "main", "map_png",
    "matched_colors", "montage_png", "page_subject", "pca_2d", "render", "render_run", "render_sweep", "render_task",
    "sample_members", "shorten", "side_by_side", "subsample", "sweep_board", "swept_values", "thumbnail", "tsne_2d",
    "zoom_outliers",
]
