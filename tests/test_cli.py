"""The ``mcbench`` command end to end (real Hydra app, real files), on the random-weight tiny CLIP."""

import os
import subprocess
import sys

import pandas as pd
import pytest

FAST = ["encoder=tiny_clip_random", "logger=none", "dataset.n=40", "protocol.n_restarts=2", "progress=false"]


def mcbench(tmp_path, *args, check=True):
    env = dict(os.environ, MCBENCH_CACHE=str(tmp_path / "cache"), WANDB_MODE="offline")
    proc = subprocess.run(
        [sys.executable, "-m", "mcbench.cli", f"results_file={tmp_path}/runs.csv", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


def test_run_prints_a_table_writes_rows_and_a_rerun_skips(tmp_path):
    out = mcbench(tmp_path, "method=kmeans_image", "dataset=synth_fruit", *FAST).stdout
    assert "kmeans_image  synth_fruit" in out and "NMI" in out
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert set(rows["aspect"]) == {"color", "species"} and (rows["status"] == "ok").all()
    for column in ("run_id", "config_hash", "git_commit", "hparams", "protocol", "encoder_identity", "finished_at"):
        assert rows[column].notna().all()
    again = mcbench(tmp_path, "method=kmeans_image", "dataset=synth_fruit", *FAST).stdout
    assert again.count("skip") == 2 and len(pd.read_csv(tmp_path / "runs.csv")) == 2
    mcbench(tmp_path, "method=kmeans_image", "dataset=synth_fruit", "aspect=color", "force=true", *FAST)
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 3


def test_unknown_method_lists_the_valid_ones(tmp_path):
    proc = mcbench(tmp_path, "method=multi-map", *FAST, check=False)
    assert proc.returncode != 0
    assert "multi_map" in proc.stderr and "kmeans_image" in proc.stderr


def test_unknown_aspect_names_the_valid_aspects(tmp_path):
    proc = mcbench(tmp_path, "method=kmeans_image", "dataset=synth_cards", "aspect=colour", *FAST, check=False)
    assert proc.returncode == 2
    assert "aspect='colour'" in proc.stderr and "number, suits" in proc.stderr


def test_negative_seed_is_rejected(tmp_path):
    proc = mcbench(tmp_path, "method=kmeans_image", "seed=-1", *FAST, check=False)
    assert proc.returncode == 2 and "seed=-1" in proc.stderr


def test_cuda_where_there_is_none_is_one_clear_line(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = mcbench(tmp_path, "method=kmeans_image", "device=cuda", *FAST, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("mcbench: error: device=cuda")


def test_typo_in_a_method_setting_names_the_key_and_the_valid_ones(tmp_path):
    proc = mcbench(tmp_path, "method=multi_map", "method.alpah=0.3", *FAST, check=False)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("mcbench: error: method.alpah is not a setting of method 'multi_map'")
    assert "alpha" in line and "beta" in line


def test_wrong_type_of_a_method_setting_is_one_line(tmp_path):
    proc = mcbench(tmp_path, "method=multi_map", "method.epochs=ten", *FAST, check=False)
    assert proc.returncode == 2
    assert "method.epochs='ten' has the wrong type" in proc.stderr.strip().splitlines()[-1]


def test_typo_in_a_dataset_setting(tmp_path):
    proc = mcbench(tmp_path, "dataset=synth_fruit", "dataset.nn=3", *FAST, check=False)
    assert proc.returncode == 2 and "Valid settings: difficulty, image_size, n, seed" in proc.stderr


def test_progress_shows_a_bar_per_training_and_a_line_per_task(tmp_path):
    fast = [a for a in FAST if a != "progress=false"]
    proc = mcbench(tmp_path, "method=multi_dproxy", "method.epochs=3", "dataset=synth_cards", "aspect=suits",
                   "progress=true", *fast)
    assert "multi_dproxy synth_cards/suits seed=0" in proc.stderr and "3/3" in proc.stderr  # the training bar
    assert "[mcbench] multi_dproxy synth_cards/suits seed=0: NMI" in proc.stdout  # the finished task's line
    quiet = mcbench(tmp_path, "method=multi_dproxy", "method.epochs=3", "dataset=synth_cards", "aspect=suits",
                    "force=true", *FAST)
    assert "3/3" not in quiet.stderr


@pytest.mark.slow
def test_bare_mcbench_runs_multi_dproxy_on_synth_cards_with_the_tiny_clip(tmp_path):
    """README command 1: the default job, nothing overridden but where the results go (W&B offline)."""
    proc = mcbench(tmp_path, "progress=false")
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert set(rows["method"]) == {"multi_dproxy"} and set(rows["dataset"]) == {"synth_cards"}
    assert set(rows["aspect"]) == {"number", "suits"} and set(rows["encoder"]) == {"tiny_clip"}
    assert (rows["nmi"] >= 0.9).all(), rows[["aspect", "nmi"]]  # the method's bar (issue 5), seed 0
    assert "multi_dproxy  synth_cards" in proc.stdout
    assert list((tmp_path / "wandb").glob("offline-run-*")) or list(tmp_path.rglob("offline-run-*"))
