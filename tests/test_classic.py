"""Classic multiple-clustering controls (methods/classic.py, ClustPy) and ClustPy's shipped datasets: best-match
scoring per aspect, the row's selection mark, feature datasets, and the multirun beside a personalised method."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_module

from mcbench.contracts import METHODS
from mcbench.data.base import build_dataset
from mcbench.runner import ConfigError, best_match, run

CLASSIC = ("nrkmeans", "enrc", "orthogonal_clustering", "orthogonal_subspaces")


def config(tmp_path, *overrides):
    with initialize_config_module(config_module="mcbench.conf", version_base=None):
        return compose("config", overrides=[
            "logger=none", "progress=false", f"results_file={tmp_path}/runs.csv", f"paths.cache_dir={tmp_path}/cache",
            *overrides])


def test_best_match_takes_the_view_of_highest_nmi_and_ignores_unlabelled_images():
    truth = np.array([0, 0, 1, 1, 2, 2, -1, -1])
    noise = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    exact = np.array([5, 5, 3, 3, 9, 9, 0, 1])  # the same partition, relabelled; disagrees only where truth is -1
    half = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    view, nmis = best_match([noise, half, exact], truth)
    assert view == 2 and nmis[2] == pytest.approx(1.0) and nmis[0] < nmis[1] < nmis[2]
    assert best_match([exact, exact], truth)[0] == 0  # the first on ties


def test_classic_methods_are_marked_best_match_and_run_on_features():
    for name in CLASSIC:
        cls = METHODS.get(name)
        assert cls.selection == "best_match" and cls.runs_on_features
    assert METHODS.get("multi_dproxy").selection == "named" and not METHODS.get("multi_dproxy").runs_on_features


def test_fruit_features_come_from_the_clustpy_wheel():
    data = build_dataset("clustpy_fruit")
    assert not data.has_images and data.features.shape == (105, 6)
    assert {a: x.k for a, x in data.aspects.items()} == {"color": 3, "species": 3}
    assert [np.bincount(data.labels[a]).tolist() for a in ("color", "species")] == [[45, 30, 30], [45, 30, 30]]
    z = build_dataset("clustpy_fruit", preprocess="zscore").features
    assert np.allclose(z.mean(0), 0, atol=1e-5) and z.shape == (105, 6)
    with pytest.raises(ValueError, match="holds features, not images"):
        data.image(0)
    letters = build_dataset("clustpy_nrletters", n=50)
    assert letters.pixels.shape == (50, 9, 7, 3) and {a: x.k for a, x in letters.aspects.items()} == {
        "letter": 6, "color": 3, "corner": 4}


def test_an_image_method_on_a_feature_dataset_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="holds features, not images.*nrkmeans"):
        run(config(tmp_path, "method=multi_map", "dataset=clustpy_fruit"))


def test_nrkmeans_on_fruit_features_rows_say_best_match_and_score_the_best_view(tmp_path):
    rows = run(config(tmp_path, "method=nrkmeans", "dataset=clustpy_fruit"))
    assert [r["aspect"] for r in rows] == ["color", "species"]
    for row in rows:
        nmis = json.loads(row["view_nmi"])
        assert row["selection"] == "best_match" and row["encoder_identity"] == "none (dataset features)"
        assert len(nmis) == 2 and row["matched_view"] == int(np.argmax(nmis))
        assert row["nmi"] == pytest.approx(max(nmis), abs=1e-6)
        assert json.loads(row["hparams"])["k_views"] == "dataset"
    again = run(config(tmp_path, "method=nrkmeans", "dataset=clustpy_fruit", "force=true"))
    assert [r["view_nmi"] for r in again] == [r["view_nmi"] for r in rows]  # deterministic from the task seed
    stored = pd.read_csv(tmp_path / "runs.csv")
    assert set(stored["selection"]) == {"best_match"}


def test_k_views_dataset_gives_every_aspects_k_task_gives_the_named_one(make_task):
    task, _ = make_task("synth_shapes", "size", n=40)  # aspects color 4, shape 4, size 2
    assert task.aspect_ks == (4, 4, 2)
    nrk = METHODS.get("nrkmeans")
    assert nrk.from_params({}).n_clusters(task) == [4, 4, 2]
    assert nrk.from_params({"k_views": "task", "n_views": 3}).n_clusters(task) == [2, 2, 2]
    assert nrk.from_params({"noise_space": True}).n_clusters(task) == [4, 4, 2, 1]
    result = nrk.from_params({"noise_space": True}).fit(task)
    assert len(result.views) == 3  # the noise space (one cluster) is no view
    with pytest.raises(ValueError, match="k_views"):
        nrk.from_params({"k_views": "named"}).fit(task)


def test_enrc_few_epochs_on_fruit_features(tmp_path):
    rows = run(config(tmp_path, "method=enrc", "dataset=clustpy_fruit", "aspect=color",
                      "method.pretrain_epochs=3", "method.clustering_epochs=3"))
    assert rows[0]["selection"] == "best_match" and 0 <= rows[0]["nmi"] <= 1 and rows[0]["matched_view"] in (0, 1)


@pytest.mark.slow
def test_multirun_classic_beside_multi_dproxy_on_synth_fruit(tmp_path, monkeypatch):
    """``mcbench -m method=nrkmeans,multi_dproxy dataset=synth_fruit``: rows for both, in this process."""
    from mcbench.commands import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MCBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "argv", [
        "mcbench", "-m", "method=nrkmeans,multi_dproxy", "dataset=synth_fruit", "dataset.n=40",
        "encoder=tiny_clip_random", "logger=none", "progress=false", "protocol.n_restarts=2",
        f"results_file={tmp_path}/runs.csv"])
    try:
        cli.main()
    except SystemExit as exc:
        assert not exc.code
    rows = pd.read_csv(tmp_path / "runs.csv")
    got = {(m, a): s for m, a, s in zip(rows["method"], rows["aspect"], rows["selection"])}
    assert got == {("nrkmeans", "color"): "best_match", ("nrkmeans", "species"): "best_match",
                   ("multi_dproxy", "color"): "named", ("multi_dproxy", "species"): "named"}


@pytest.mark.parametrize("name", ["nrkmeans", "orthogonal_clustering"])
def test_views_do_not_depend_on_the_image_order(name, make_task):
    """method.order=canonical: the same images in another order give the same views, mapped back to each order."""
    import dataclasses

    import torch

    from mcbench.contracts import ImageFeatures

    task, _ = make_task("synth_cards", "suits", n=80)
    perm = np.random.default_rng(0).permutation(task.n)
    emb = task.features.embeddings[torch.as_tensor(perm)]
    shuffled = dataclasses.replace(task, features=ImageFeatures(emb, emb))
    method = METHODS.get(name).from_params({})
    a, b = method.fit(task), method.fit(shuffled)
    assert len(a.views) == len(b.views)
    for va, vb in zip(a.views, b.views):
        assert np.array_equal(va[perm], vb)
