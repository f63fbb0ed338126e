"""``mcbench-sanity``: proves each method clusters by the image, not by the data's order or by luck.

For every registered method, with its defaults and (where it has them) its official switches — ``official``
(exactly the released code's behaviour) and ``official_leak_amplified`` (the same on per-class subsets that
line the batches up with the classes) — on each synthetic dataset:

1. *random encoder* — the same architecture with re-initialised weights (``encoder=tiny_clip_random``):
   the method's NMI must stay within the band of the best label-free image clusterer on that encoder's own
   image features — k-means (the shared protocol), Gaussian mixtures with full and with shared (tied)
   covariance, spectral clustering (``BAND_CLUSTERERS``): the highest mean + 2·std over their seeded restarts,
   plus ``--tolerance``. Above it, the method is flagged as leaking: it clusters by something the pixels alone
   do not give (the order, the batching). It does not apply to a classic multiple-clustering control scored by
   best match (``selection = "best_match"``): choosing among its clusterings with the labels is a declared
   oracle, so beating the label-free band is expected there; its NMI and the band stay in the evidence.
2. *order invariance* — class-sorted vs. shuffled input give the same partition up to relabelling
   (ARI ≥ 0.99 between the two partitions), or the method returns the same representation for every image
   (mapped back to the dataset's order): then only the shared k-means protocol, whose k-means++ starts
   from rows of the task order, can tell the two runs apart, and that is the framework's, not the method's.
3. *interest swap* — naming each aspect in turn moves the result to that aspect: NMI on the named aspect
   exceeds NMI on every other aspect by at least ``--swap-margin``. It is measured for every method but does
   not apply to a control that declares itself blind to the named aspect (``aspect_blind = True``:
   ``kmeans_image``); its verdict there is "n/a".

Each check writes ordinary result rows (``sanity_check`` set) to ``--results`` (default
``results/sanity_runs.csv``, apart from the leaderboard's ``results/runs.csv``; the leaderboard drops rows
with ``sanity_check`` set anyway); the verdicts go to ``<out>/sanity.csv`` and ``<out>/sanity.md`` (the
evidence), which the leaderboard links.

``--fast`` is the CI setting (``tests/test_sanity.py``): 80 images per dataset and short training
(``FAST_OVERRIDES``). An override ``<method>:<override>`` applies to that method's runs only.
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_module
from sklearn.cluster import SpectralClustering
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

import mcbench.paths  # noqa: F401  (config resolver)
from mcbench.contracts import METHODS
from mcbench.atomic import write_text_atomic
from mcbench.metrics import nmi
from mcbench.results.identity import git_commit
from mcbench.results.sanity_table import CHECKS, summarize
from mcbench.runner import ConfigError, prepare, run_with_results

#: ``official``: a method's ``official_overrides``; ``official_leak_amplified``: its
#: ``official_leak_amplified_overrides`` (Multi-MaP: the official run on per-class subsets of the batch size)
VARIANTS = ("defaults", "official", "official_leak_amplified")
#: label-free clusterers of the random-encoder band (besides the shared k-means protocol, read from its rows)
BAND_CLUSTERERS = ("gmm_full", "gmm_tied", "spectral")
BAND_RESTARTS = 5  # seeded restarts per band clusterer (--fast: 3)
#: ``--fast`` (CI): fewer images and epochs; ``<method>:`` overrides apply to that method only
#: images per synthetic dataset: 13 classes (synth_cards/number) x 20, so the official variants' per-class
#: subset (``data.per_class=20``) exists on every aspect
DEFAULT_N = 260
FAST_N = 80
FAST_OVERRIDES = (
    "multi_map:method.epochs=5",
    "multi_sub:method.rounds=1", "multi_sub:method.phase1_epochs=5", "multi_sub:method.phase2_epochs=3",
    "enrc:method.pretrain_epochs=5", "enrc:method.clustering_epochs=5",
)
ORDER_MIN_ARI = 0.99


@dataclass(frozen=True)
class Variant:
    method: str
    name: str  # "defaults" or "official"
    overrides: tuple[str, ...]


def variants(methods: list[str], which: tuple[str, ...] = VARIANTS) -> list[Variant]:
    out = []
    for m in methods:
        cls = METHODS.get(m)
        if "defaults" in which:
            out.append(Variant(m, "defaults", ()))
        if "official" in which and cls.official_overrides:
            out.append(Variant(m, "official", tuple(cls.official_overrides)))
        amplified = tuple(getattr(cls, "official_leak_amplified_overrides", ()))
        if "official_leak_amplified" in which and amplified:
            out.append(Variant(m, "official_leak_amplified", amplified))
    return out


def cluster_label_free(name: str, x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """One seeded partition of image features ``x`` by a label-free clusterer of the band.

    The Gaussian mixtures fit on a PCA of ``x`` (fitted on ``x`` alone): ``gmm_tied`` (one covariance shared by
    the components) keeps up to n/2 dimensions, ``gmm_full`` (one covariance per component) up to n/(2k), so
    that every covariance is estimated from more images than it has dimensions. ``spectral``: a 10-nearest-
    neighbour graph, k-means on its spectral embedding."""
    n, d = x.shape
    if name == "spectral":
        model = SpectralClustering(n_clusters=k, affinity="nearest_neighbors", n_neighbors=min(10, n - 1),
                                   random_state=seed, assign_labels="kmeans")
        with warnings.catch_warnings():  # a disconnected k-NN graph is a finding of the features, not an error
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            return model.fit_predict(x)
    if name not in ("gmm_full", "gmm_tied"):
        raise ValueError(f"unknown band clusterer {name!r}; choose from {', '.join(BAND_CLUSTERERS)}")
    covariance = name.split("_")[1]
    dims = max(1, min(d, n - 1, n // 2 if covariance == "tied" else n // (2 * k)))
    z = PCA(n_components=dims, random_state=0).fit_transform(x)
    gmm = GaussianMixture(n_components=k, covariance_type=covariance, reg_covar=1e-4 * float(z.var()),
                          random_state=seed, max_iter=100)
    return gmm.fit_predict(z)


def band_of(kmeans_row: dict, fit: Any, truth: np.ndarray, k: int, restarts: int) -> dict:
    """The random-encoder band of one aspect: per clusterer mean ± std NMI over seeded restarts on the random
    features (``kmeans`` from its protocol row), and the highest mean + 2·std (``upper``, before tolerance)."""
    order = np.asarray(fit.info["task_order"])
    y = truth[order]
    keep = y >= 0
    x = np.asarray(fit.representation, dtype=np.float64)[keep]
    stats = {"kmeans": (float(kmeans_row["nmi"]), float(kmeans_row["nmi_std"]))}
    for name in BAND_CLUSTERERS:
        nmis = [nmi(y[keep], cluster_label_free(name, x, k, seed))
                for seed in range(restarts)]
        stats[name] = (float(np.mean(nmis)), float(np.std(nmis)))
    best = max(stats, key=lambda c: stats[c][0] + 2 * stats[c][1])
    return {"upper": stats[best][0] + 2 * stats[best][1], "best": best,
            "clusterers": {c: round(m, 4) for c, (m, _) in stats.items()}, "kmeans_nmi": stats["kmeans"][0]}


def for_method(method: str, overrides: list[str]) -> list[str]:
    """The overrides that apply to ``method``'s runs: plain ones, and ``<method>:<override>`` ones unprefixed."""
    out = []
    for o in overrides:
        name, sep, rest = o.partition(":")
        if not sep or "=" in name:  # no "<method>:" prefix (a value may hold a colon)
            out.append(o)
        elif name == method:
            out.append(rest)
    return out


def same_representation(r1: Any, r2: Any) -> tuple[bool, float]:
    """Do two fits return the same representation for every image (rows mapped back to the dataset order)?"""
    if r1.representation is None or r2.representation is None:
        return False, float("nan")
    o1, o2 = (np.asarray(r.info["task_order"]) for r in (r1, r2))  # dataset index of each task row
    if r1.representation.shape != r2.representation.shape or not np.array_equal(np.sort(o1), np.sort(o2)):
        return False, float("nan")
    a, b = r1.representation[np.argsort(o1)], r2.representation[np.argsort(o2)]  # rows by dataset index
    diff = float(np.abs(a - b).max()) if a.size else 0.0
    scale = float(max(np.abs(a).max(), np.abs(b).max(), 1e-12)) if a.size else 1.0
    return diff <= 1e-5 * scale, diff


def _compose(overrides: list[str]) -> Any:
    with initialize_config_module("mcbench.conf", version_base="1.3"):
        return compose("config", overrides=overrides)


def _run(overrides: list[str]) -> list[tuple[dict[str, Any], Any]]:
    return run_with_results(_compose(overrides))


def _band(overrides: list[str], restarts: int) -> dict[str, dict]:
    """Per aspect, the random-encoder band (``band_of``) of k-means rows run with ``overrides``."""
    cfg = _compose(overrides)
    job = prepare(cfg)
    return {row["aspect"]: band_of(row, fit, job.dataset.labels[row["aspect"]], int(row["k"]), restarts)
            for row, fit in run_with_results(cfg)}


def _verdict(variant: Variant, dataset: str, check: str, aspect: str, passed: bool, evidence: dict,
             applies: bool = True) -> dict:
    return {"method": variant.method, "variant": variant.name, "dataset": dataset, "check": check,
            "aspect": aspect, "passed": bool(passed), "applies": bool(applies),
            "evidence": json.dumps(evidence, sort_keys=True)}


def check_dataset(variant: Variant, dataset: str, overrides: list[str], tolerance: float,
                  swap_margin: float, checks: tuple[str, ...] = CHECKS, bands: dict | None = None,
                  band_restarts: int = BAND_RESTARTS) -> list[dict]:
    """The checks of one method variant on one dataset; ``method.*`` overrides apply to it only.

    ``bands`` memoises the random-encoder band (per aspect) across variants."""
    base = [o for o in for_method("kmeans_image", overrides) if not o.startswith("method.")]
    common = [f"method={variant.method}", f"dataset={dataset}", *for_method(variant.method, overrides),
              *variant.overrides]
    bands = {} if bands is None else bands
    verdicts = []
    # 1. random encoder vs. k-means on the same random features (same data subset and order settings)
    if "random_encoder" in checks:
        band_overrides = [o for o in variant.overrides if o.startswith("data.")]
        key = (dataset, *base, *band_overrides)
        if key not in bands:
            bands[key] = _band(["method=kmeans_image", f"dataset={dataset}", *base, *band_overrides,
                                "encoder=tiny_clip_random", "sanity_check=random_encoder_band"], band_restarts)
        band = bands[key]
        oracle = getattr(METHODS.get(variant.method), "selection", "named") == "best_match"
        for row, _ in _run([*common, "encoder=tiny_clip_random", "sanity_check=random_encoder"]):
            b = band[row["aspect"]]
            upper = b["upper"] + tolerance
            verdicts.append(_verdict(variant, dataset, "random_encoder", row["aspect"], row["nmi"] <= upper,
                                     {"nmi": round(row["nmi"], 4), "kmeans_nmi": round(b["kmeans_nmi"], 4),
                                      "band_clusterer": b["best"], "band_nmi": b["clusterers"],
                                      "band_upper": round(upper, 4)}, applies=not oracle))
    # 2. order invariance: the variant's own order vs. the other one
    own_sorted = "data.order=sorted" in variant.overrides
    plain = [o for o in common if not o.startswith("data.order=")]
    shuffled = sorted_ = None
    if "order_invariance" in checks or ("interest_swap" in checks and not own_sorted):
        shuffled = _run([*plain, "data.order=shuffled", "sanity_check=order_shuffled"])
    if "order_invariance" in checks or ("interest_swap" in checks and own_sorted):
        sorted_ = _run([*plain, "data.order=sorted", "sanity_check=order_sorted"])
    if "order_invariance" in checks:
        for (r1, f1), (r2, f2) in zip(shuffled, sorted_):
            p1, p2 = f1.info["partition_dataset_order"], f2.info["partition_dataset_order"]
            keep = (p1 >= 0) & (p2 >= 0)
            ari = adjusted_rand_score(p1[keep], p2[keep])
            same, diff = same_representation(f1, f2)
            verdicts.append(_verdict(variant, dataset, "order_invariance", r1["aspect"],
                                     ari >= ORDER_MIN_ARI or same,
                                     {"ari_sorted_vs_shuffled": round(ari, 4), "nmi_shuffled": round(r1["nmi"], 4),
                                      "nmi_sorted": round(r2["nmi"], 4), "same_representation": same,
                                      "representation_max_abs_diff": float(f"{diff:.3g}")}))
    # 3. interest swap, on the variant's own order
    if "interest_swap" in checks:
        blind = bool(getattr(METHODS.get(variant.method), "aspect_blind", False))
        for row, _ in (sorted_ if own_sorted else shuffled):
            others = json.loads(row["nmi_other_aspects"])
            worst = max(others.values()) if others else 0.0
            verdicts.append(_verdict(variant, dataset, "interest_swap", row["aspect"],
                                     row["nmi"] - worst >= swap_margin,
                                     {"nmi_named": round(row["nmi"], 4), "nmi_other": others}, applies=not blind))
    return verdicts


def to_markdown(verdicts: pd.DataFrame, command: str, note: str = "") -> str:
    lines = ["# mcbench sanity suite", "", f"Made by `{command}`.", *([note] if note else []), "",
             "Checks (docs/leakage.md): `random_encoder` = NMI on the random-weight tiny CLIP within the band of "
             "the best label-free clusterer (k-means, full/tied-covariance Gaussian mixture, spectral) on that "
             "encoder's features (above it: the method is leaking); `order_invariance` = class-sorted and "
             "shuffled input give the same partition (ARI ≥ 0.99) or the same representation; `interest_swap` = "
             "NMI on the named aspect beats every other aspect by the margin. (n) = cases (dataset × aspect); "
             "n/a = does not apply (an aspect-blind control).", "",
             "| method | variant | " + " | ".join(CHECKS) + " |", "|---|---|" + "---|" * len(CHECKS)]
    summary = summarize(verdicts)
    blind = set()
    if "applies" in verdicts:
        blind = {(r["method"], r["variant"], r["check"]) for _, r in verdicts[~verdicts["applies"].astype(bool)].iterrows()}
    pairs = list(dict.fromkeys(zip(verdicts["method"], verdicts["variant"])))
    for method, variant in sorted(pairs):
        part = summary[(summary["method"] == method) & (summary["variant"] == variant)]
        marks = {r["check"]: ("pass" if r["passed"] else "**FAIL**") + f" ({r['cases']})" for _, r in part.iterrows()}
        marks.update({c: "n/a" for m, v, c in blind if (m, v) == (method, variant)})
        lines.append(f"| {method} | {variant} | " + " | ".join(marks.get(c, "–") for c in CHECKS) + " |")
    official = sorted({m for m, v in pairs if v == "official"})
    amplified = sorted({m for m, v in pairs if v == "official_leak_amplified"})
    lines += ["", "`defaults`: the method's own settings (`conf/method/<method>.yaml`, with `conf/method_dataset/` "
              "where present)." + (" `official`: the method's `official_overrides` on top (the released code's "
                                   "behaviour):" if official else "")]
    if official:
        lines += ["", *(f"* {m}: `{' '.join(METHODS.get(m).official_overrides)}`" for m in official)]
    if amplified:
        lines += ["", "`official_leak_amplified`: the official run on per-class subsets that line the batches up "
                  "with the classes (not what the released code does; it amplifies a label-order leak):", "",
                  *(f"* {m}: `{' '.join(METHODS.get(m).official_leak_amplified_overrides)}`" for m in amplified)]
    lines += ["", "## Evidence", "", "| method | variant | dataset | check | aspect | passed | evidence |",
              "|---|---|---|---|---|---|---|"]
    for _, r in verdicts.iterrows():
        verdict = "yes" if r["passed"] else "**no**"
        if "applies" in r and not bool(r["applies"]):
            verdict = f"n/a ({'yes' if r['passed'] else 'no'})"
        lines.append(f"| {r['method']} | {r['variant']} | {r['dataset']} | {r['check']} | {r['aspect']} | "
                     f"{verdict} | `{r['evidence']}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mcbench-sanity", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="all", help="comma-separated method names (default: all registered)")
    parser.add_argument("--datasets", default="synth_shapes,synth_cards,synth_fruit")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated: defaults (the method's own settings), official (its official "
                             "switches), official_leak_amplified (those on per-class subsets)")
    parser.add_argument("--checks", default=",".join(CHECKS), help="comma-separated subset of: " + ", ".join(CHECKS))
    parser.add_argument("--n", type=int, default=None, help=f"images per synthetic dataset (default {DEFAULT_N}; --fast {FAST_N})")
    parser.add_argument("--fast", action="store_true",
                        help=f"the CI setting: --n {FAST_N} and short training ({' '.join(FAST_OVERRIDES)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default="results/sanity_runs.csv", help="where the checks' rows go")
    parser.add_argument("--out", default="results", help="folder for sanity.csv and sanity.md")
    parser.add_argument("--tolerance", type=float, default=0.1)
    parser.add_argument("--band-restarts", type=int, default=None,
                        help=f"seeded restarts per band clusterer (default {BAND_RESTARTS}; --fast 3)")
    parser.add_argument("--swap-margin", type=float, default=0.2)
    parser.add_argument("overrides", nargs="*",
                        help="extra Hydra overrides for every run (e.g. dataset.difficulty=medium); "
                             "<method>:<override> for one method's runs only (e.g. multi_map:method.epochs=5)")
    args = parser.parse_args(argv)
    methods = METHODS.names() if args.methods == "all" else args.methods.split(",")
    which = tuple(args.variants.split(","))
    checks = tuple(args.checks.split(","))
    for name, given, valid in (("--variants", which, VARIANTS), ("--checks", checks, CHECKS)):
        if not set(given) <= set(valid):
            parser.error(f"{name}: unknown {', '.join(sorted(set(given) - set(valid)))}; choose from {', '.join(valid)}")
    n = args.n if args.n is not None else (FAST_N if args.fast else DEFAULT_N)
    band_restarts = args.band_restarts or (3 if args.fast else BAND_RESTARTS)
    base = [f"dataset.n={n}", f"seed={args.seed}", "logger=none", "progress=false", "force=true",
            f"results_file={args.results}", *(FAST_OVERRIDES if args.fast else ()), *args.overrides]
    verdicts: list[dict] = []
    bands: dict = {}
    for variant in variants(methods, which):
        for dataset in args.datasets.split(","):
            try:
                verdicts += check_dataset(variant, dataset, base, args.tolerance, args.swap_margin, checks, bands,
                                          band_restarts)
            except ConfigError as error:  # e.g. too few images per class for an official per-class subset
                parser.exit(2, f"mcbench-sanity: {variant.method} ({variant.name}) on {dataset}: {error}\n")
    df = pd.DataFrame(verdicts)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "sanity.csv", df.to_csv(index=False))
    command = "mcbench-sanity " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    note = (f"Every run: `{' '.join(base)}` (rows in `{args.results}`, marked by `sanity_check`). "
            f"Code: git commit `{git_commit()}`.")
    write_text_atomic(out / "sanity.md", to_markdown(df, command.strip(), note))
    print(summarize(df).to_string(index=False))


if __name__ == "__main__":
    main()
