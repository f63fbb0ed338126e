"""``mcbench-sanity``: every method's defaults pass the three checks in the fast (CI) setting on the synthetic
suite, and Multi-MaP's official loops (exactly the released one, and the one on per-class subsets) are flagged as
leaking on the random-weight encoder, whose band is the best of several label-free clusterers (docs/leakage.md)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mcbench.commands import sanity
from mcbench.contracts import METHODS
from mcbench.results.sanity_table import sanity_markdown

SYNTHETIC = "synth_shapes,synth_cards,synth_fruit"


def _suite(tmp_path, cache_dir, *args: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``mcbench-sanity --fast`` into ``tmp_path``: (verdicts, the checks' result rows)."""
    results = tmp_path / "sanity_runs.csv"
    sanity.main(["--fast", "--results", str(results), "--out", str(tmp_path), *args,
                 f"paths.cache_dir={cache_dir}"])
    return pd.read_csv(tmp_path / "sanity.csv"), pd.read_csv(results)


@pytest.mark.slow
def test_every_method_default_passes_all_three_checks_on_the_synthetic_suite(tmp_path, cache_dir, tiny_clip):
    verdicts, rows = _suite(tmp_path, cache_dir, "--variants", "defaults", "--datasets", SYNTHETIC)
    assert set(verdicts["method"]) == set(METHODS.names())
    assert set(verdicts["dataset"]) == set(SYNTHETIC.split(","))
    applies = verdicts[verdicts["applies"]]
    failed = applies[~applies["passed"]]
    assert failed.empty, "\n" + failed.to_string()
    blind = {m for m in METHODS.names() if getattr(METHODS.get(m), "aspect_blind", False)}
    oracle = {m for m in METHODS.names() if METHODS.get(m).selection == "best_match"}  # classic: best-match scored
    for method, part in applies.groupby("method"):  # every applicable check ran on every dataset and aspect
        expected = set(sanity.CHECKS) - ({"interest_swap"} if method in blind else set()) \
            - ({"random_encoder"} if method in oracle else set())
        assert set(part["check"]) == expected, method
        assert part.groupby("check").size().eq(7).all(), method  # 3 + 2 + 2 aspects
    # only declared aspect-blind methods are excused from the interest swap, and only best-match (oracle) ones from
    # the random-encoder band
    excused = verdicts[~verdicts["applies"]]
    assert "kmeans_image" in blind and set(excused["method"]) == blind | oracle
    assert set(excused.loc[~excused["method"].isin(oracle), "check"]) == {"interest_swap"}
    assert set(excused.loc[excused["method"].isin(oracle), "check"]) == {"interest_swap", "random_encoder"}
    # the checks' rows are ordinary result rows, marked as sanity rows (the leaderboard leaves them out)
    assert rows["sanity_check"].notna().all() and (rows["status"] == "ok").all()
    assert set(rows["sanity_check"]) == {"random_encoder_band", "random_encoder", "order_shuffled", "order_sorted"}
    md = (tmp_path / "sanity.md").read_text()
    assert "**FAIL**" not in md and "| kmeans_image | defaults | pass (7) | pass (7) | n/a |" in md


@pytest.mark.slow
def test_multi_map_official_loops_are_flagged_as_leaking_on_the_random_encoder(tmp_path, cache_dir, tiny_clip):
    verdicts, rows = _suite(tmp_path, cache_dir, "--methods", "multi_map",
                            "--variants", "official,official_leak_amplified",
                            "--checks", "random_encoder,order_invariance", "--datasets", "synth_fruit")
    assert verdicts.groupby(["variant", "check"]).size().to_dict() == {
        (v, c): 2 for v in ("official", "official_leak_amplified") for c in ("random_encoder", "order_invariance")}
    leak = verdicts[verdicts["check"] == "random_encoder"]
    assert not leak["passed"].any(), leak.to_string()  # above the best label-free clusterer's band
    for evidence in leak["evidence"].map(json.loads):
        assert evidence["nmi"] > evidence["band_upper"] + 0.3
        # the band is the best of k-means, two Gaussian mixtures and spectral clustering on the random features
        assert set(evidence["band_nmi"]) == {"kmeans", *sanity.BAND_CLUSTERERS}
        best = max(evidence["band_nmi"].values())
        assert evidence["band_upper"] >= best + 0.1 - 1e-4  # + tolerance (and 2·std of the best)
    # the order check compares image by image, also on the per-class subset (data.per_class=20)
    for evidence in verdicts[verdicts["check"] == "order_invariance"]["evidence"].map(json.loads):
        assert "same_representation" in evidence
    # exactly the released behaviour has no per-class subset; the amplified variant has
    official_rows = rows[rows["sanity_check"] == "random_encoder"]
    assert set(official_rows["per_class"].fillna(0).astype(int)) == {0, 20}
    # the leaderboard shows the failure per method and settings, with a link to the evidence
    board = sanity_markdown(tmp_path)
    assert "[sanity.md](sanity.md)" in board and "| multi_map | official | **FAIL** |" in board


def test_band_clusterers_are_label_free_and_find_separable_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    y = np.repeat(np.arange(3), 20)
    x = centres[y] + rng.normal(size=(60, 16))
    for name in sanity.BAND_CLUSTERERS:
        labels = sanity.cluster_label_free(name, x, 3, seed=0)
        assert len(labels) == 60 and len(set(labels)) == 3
        assert sanity.nmi(y, labels) > 0.95, name
    with pytest.raises(ValueError, match="unknown band clusterer"):
        sanity.cluster_label_free("dbscan", x, 3, seed=0)


def test_multi_map_has_both_official_variants():
    names = [(v.method, v.name) for v in sanity.variants(["multi_map", "multi_sub"])]
    assert names == [("multi_map", "defaults"), ("multi_map", "official"), ("multi_map", "official_leak_amplified"),
                     ("multi_sub", "defaults"), ("multi_sub", "official")]
    official = METHODS.get("multi_map").official_overrides
    assert "data.per_class=20" not in official and "data.order=sorted" in official
    assert METHODS.get("multi_map").official_leak_amplified_overrides == (*official, "data.per_class=20")


def test_method_prefixed_overrides_reach_that_method_only():
    given = ["seed=1", "multi_map:method.epochs=5", "multi_sub:method.rounds=1", "dataset.root=/a:b"]
    assert sanity.for_method("multi_map", given) == ["seed=1", "method.epochs=5", "dataset.root=/a:b"]
    assert sanity.for_method("zeroshot_gpt", given) == ["seed=1", "dataset.root=/a:b"]


def test_representations_are_compared_image_by_image_also_on_a_subset():
    rng = np.random.default_rng(0)
    order = rng.permutation(200)[:40]  # a per-class subset: 40 of 200 dataset images, in task order
    rep = rng.normal(size=(200, 3))
    fit = lambda o: SimpleNamespace(representation=rep[o], info={"task_order": o})  # noqa: E731
    assert sanity.same_representation(fit(order), fit(np.sort(order))) == (True, 0.0)
    other = fit(np.sort(order))
    other.representation = other.representation + 1e-3
    assert not sanity.same_representation(fit(order), other)[0]
    assert not sanity.same_representation(fit(order), fit(np.sort(order)[:-1]))[0]


def test_a_check_that_does_not_apply_is_shown_but_not_counted():
    rows = [{"method": "kmeans_image", "variant": "defaults", "dataset": "d", "check": c, "aspect": "a",
             "passed": c != "interest_swap", "applies": c != "interest_swap", "evidence": "{}"} for c in sanity.CHECKS]
    df = pd.DataFrame(rows)
    summary = sanity.summarize(df)
    assert set(summary["check"]) == {"random_encoder", "order_invariance"} and summary["passed"].all()
    md = sanity.to_markdown(df, "mcbench-sanity")
    assert "| kmeans_image | defaults | pass (1) | pass (1) | n/a |" in md and "n/a (no)" in md
