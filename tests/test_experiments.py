"""Reproduction configs: one per paper table row we can name; they compose, and fail fast offline."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

import mcbench.paths  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("reproduce_*.yaml"))


def test_every_reported_row_with_a_known_aspect_has_a_config():
    with open(REPO / "results" / "reported.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["aspect"] != "shape"]  # Fruit "shape" is not in the authors' zip
    assert {f"reproduce_{r['method']}_{r['dataset']}_{r['aspect']}" for r in rows} == set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_with_the_papers_backbone(name):
    with initialize_config_module("mcbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={name}"])
    assert cfg.encoder.name == "vit_b32_openai"
    assert name == f"reproduce_{cfg.method.name}_{cfg.dataset.name}_{cfg.aspect}"


def test_reproduction_sweep_fails_fast_offline_naming_what_is_missing(tmp_path):
    env = dict(os.environ, MCBENCH_DATA=str(tmp_path / "no-data"), MCBENCH_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "mcbench.cli", "-m", "experiment=glob(reproduce_*)", "logger=none",
                           f"results_file={tmp_path}/runs.csv"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 1
    assert f"sweep finished with {len(EXPERIMENTS)} failed job(s)" in proc.stdout
    assert str(tmp_path / "no-data") in proc.stdout  # the expected data path is named
    assert not (tmp_path / "runs.csv").exists()


def test_dry_run_prints_the_job_config(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mcbench.cli", "experiment=reproduce_multi_map_cards_suits",
                           "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "weight_decay: 1.0e-05" in proc.stdout and "name: vit_b32_openai" in proc.stdout
