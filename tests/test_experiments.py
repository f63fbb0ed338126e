"""Reproduction configs: one per paper table row we can name (plus ``_noisy`` variants where the shipped word list
is oracle-like); they compose, stay inside the papers' settings, label their words, and fail fast offline."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

import mcbench.paths  # noqa: F401
from mcbench.words import read_words_file, words_file

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("reproduce_*.yaml"))
BASE = [e for e in EXPERIMENTS if not e.endswith("_noisy")]


def test_every_reported_row_with_a_known_aspect_has_a_config():
    with open(REPO / "results" / "reported.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["aspect"] != "shape"]  # Fruit "shape" is not in the authors' zip
    assert {f"reproduce_{r['method']}_{r['dataset']}_{r['aspect']}" for r in rows} == set(BASE)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_with_the_papers_backbone(name):
    with initialize_config_module("mcbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={name}"])
    assert cfg.encoder.name == "vit_b32_openai"
    suffix = "_noisy" if cfg.words == "noisy" else ""
    assert name == f"reproduce_{cfg.method.name}_{cfg.dataset.name}_{cfg.aspect}{suffix}"
    if cfg.method.name == "multi_sub":  # learning rates and weight decay inside the paper's grids
        for key in ("lr_proxy", "lr_projection", "lr_projection_cluster"):
            assert 5e-4 <= cfg.method[key] <= 1e-1, key
        assert 0 <= cfg.method.weight_decay <= 5e-4
    if cfg.method.name in ("multi_sub", "multi_dproxy"):  # the row says which values are mcbench's own
        assert cfg.method.settings_from.startswith("paper:") and "mcbench" in cfg.method.settings_from


def test_reproduction_sweep_fails_fast_offline_naming_what_is_missing(tmp_path):
    from cli_inprocess import run_cli  # the real app, in this process

    env = {"MCBENCH_DATA": str(tmp_path / "no-data"), "MCBENCH_CACHE": str(tmp_path / "cache")}
    proc = run_cli(tmp_path, "-m", "experiment=glob(reproduce_*)", "logger=none", f"results_file={tmp_path}/runs.csv",
                   env=env)
    assert proc.returncode == 1
    assert f"sweep finished with {len(EXPERIMENTS)} failed job(s)" in proc.stdout
    assert str(tmp_path / "no-data") in proc.stdout  # the expected data path is named
    assert not (tmp_path / "runs.csv").exists()


def test_dry_run_prints_the_job_config(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mcbench.commands.cli", "experiment=reproduce_multi_map_cards_suits",
                           "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "weight_decay: 1.0e-05" in proc.stdout and "name: vit_b32_openai" in proc.stdout


def _oracle_like(dataset: str, aspect: str) -> bool:
    return bool(read_words_file(words_file(dataset, aspect)).provenance.get("oracle_like"))


def test_oracle_like_word_lists_are_labelled_and_have_a_noisy_variant():
    oracle = {(d, a) for d, a in [("cards", "suits"), ("cards", "number"), ("cifar10_mc", "type"),
                                  ("cifar10_mc", "environment"), ("cmuface", "identity")]}
    for dataset, aspect in oracle:
        words = read_words_file(words_file(dataset, aspect))
        assert words.provenance["oracle_like"] and words.source.endswith("(oracle-like)")
    assert not _oracle_like("fruit", "color")  # verbatim from the papers' code
    for name in BASE:
        with initialize_config_module("mcbench.conf", version_base="1.3"):
            cfg = compose("config", overrides=[f"experiment={name}"])
        if cfg.method.name == "zeroshot_label" or not _oracle_like(cfg.dataset.name, cfg.aspect):
            continue
        # identity's list holds no class name (only their number): words=noisy cannot perturb it (docs/reproduction.md)
        if (cfg.dataset.name, cfg.aspect) != ("cmuface", "identity"):
            assert f"{name}_noisy" in EXPERIMENTS, name


def test_rows_say_whether_their_words_know_the_answer(tmp_path, cache_dir, tiny_clip):
    from mcbench.runner import run

    common = ["method=zeroshot_gpt", "dataset=synth_fruit", "dataset.n=40", "aspect=color", "logger=none",
              "progress=false", f"paths.cache_dir={cache_dir}", f"results_file={tmp_path}/runs.csv"]
    for words, oracle in (("superset", False), ("exact", True), ("noisy", False)):
        with initialize_config_module("mcbench.conf", version_base="1.3"):
            cfg = compose("config", overrides=[*common, f"words={words}"])
        (row,) = run(cfg)
        assert row["words_oracle_like"] is oracle, words
        assert row["effective_hparams"] == "{}"  # only methods that derive values record them


def test_crl_projection_follows_crls_20_kmeans_runs(make_task):
    from mcbench.contracts import METHODS

    task, _ = make_task("synth_cards", "suits", n=40)
    crl = METHODS.get("crl_projection")
    assert len(crl.from_params({}).fit(task).partitions) == 20  # CRL: mean over 20 k-means runs
    assert len(crl.from_params({"kmeans_restarts": 0}).fit(task).partitions) == task.protocol.n_restarts
    assert crl.from_params({}).hparams()["kmeans_restarts"] == 20  # recorded in the row
