"""The result row's declared schema: the one list of metrics, and the columns that are identifiers.

Every consumer reads the metric list from here at call time: the evaluator (:func:`mcbench.metrics.score`), the
runner's row, the CSV store, the leaderboard (aggregation and ``--metric`` choices), the sweep table, the HTML
report and W&B's run summary. Adding a metric is one :class:`Metric` line below (a test adds one and follows it
into every table: tests/test_architecture.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One clustering metric: its column name, its display title and ``score(y_true, y_pred) -> float`` as a lazy
    ``"module:attr"`` reference (imported by the evaluator only). ``spread``: the row also carries
    ``<name>_std``, the spread over the protocol's k-means restarts."""

    name: str
    title: str
    function: str
    spread: bool = False


#: the metrics of every result row, in column order (research notes §1.5: the papers report NMI and RI)
METRICS: tuple[Metric, ...] = (
    Metric("nmi", "NMI", "mcbench.metrics:nmi", spread=True),
    Metric("ri", "RI", "sklearn.metrics:rand_score", spread=True),
    Metric("ari", "ARI", "sklearn.metrics:adjusted_rand_score", spread=True),
    Metric("ami", "AMI", "sklearn.metrics:adjusted_mutual_info_score"),
    Metric("acc", "ACC", "mcbench.metrics:clustering_accuracy"),
)

#: what the leaderboard's Markdown shows unless ``--metric`` says otherwise (the papers' two)
DEFAULT_BOARD_METRICS = ("nmi", "ri")

#: columns read back as text, never as numbers (hashes and ids that may look numeric)
TEXT_COLUMNS = frozenset({"run_id", "git_commit", "config_hash", "words_hash", "dataset_revision", "encoder_identity"})

#: cost columns a run reports beside its metrics (W&B run summary)
COST_COLUMNS = ("runtime_s", "fit_s", "epochs_run")


def metric_names() -> tuple[str, ...]:
    """The metric columns, in order."""
    return tuple(m.name for m in METRICS)


def spread_columns() -> tuple[str, ...]:
    """The ``<metric>_std`` columns a row carries."""
    return tuple(f"{m.name}_std" for m in METRICS if m.spread)


def summary_columns() -> tuple[str, ...]:
    """What a run's W&B summary holds: the metrics, their spreads and the costs."""
    return (*metric_names(), *spread_columns(), *COST_COLUMNS)
