"""The ``mcbench`` command end to end (real Hydra app, real files), on the random-weight tiny CLIP.

The app runs in this process (``cli_inprocess.run_cli``: same argv, folder, environment and exit status as a
subprocess, without paying torch's import per call); the start-up tests run a real subprocess, since the process
is what they test."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_inprocess import run_cli
from wandb_offline import read_run

FAST = ["encoder=tiny_clip_random", "logger=none", "dataset.n=40", "protocol.n_restarts=2", "progress=false"]


def mcbench(tmp_path, *args, check=True, cache=None):
    env = {"MCBENCH_CACHE": str(cache or tmp_path / "cache"), "WANDB_MODE": "offline"}
    proc = run_cli(tmp_path, f"results_file={tmp_path}/runs.csv", *args, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


def test_run_prints_a_table_writes_rows_and_a_rerun_skips(tmp_path, cache_dir):
    out = mcbench(tmp_path, "method=kmeans_image", "dataset=synth_fruit", *FAST, cache=cache_dir).stdout
    assert "kmeans_image  synth_fruit" in out and "NMI" in out
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert set(rows["aspect"]) == {"color", "species"} and (rows["status"] == "ok").all()
    for column in ("run_id", "config_hash", "git_commit", "hparams", "protocol", "encoder_identity", "finished_at"):
        assert rows[column].notna().all()
    again = mcbench(tmp_path, "method=kmeans_image", "dataset=synth_fruit", *FAST, cache=cache_dir).stdout
    assert again.count("skip") == 2 and len(pd.read_csv(tmp_path / "runs.csv")) == 2
    mcbench(tmp_path, "method=kmeans_image", "dataset=synth_fruit", "aspect=color", "force=true", *FAST, cache=cache_dir)
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 3


def test_unknown_method_lists_the_valid_ones_and_the_plugin_entry_point(tmp_path):
    proc = mcbench(tmp_path, "method=multi-map", *FAST, check=False)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert "Unknown method 'multi-map'" in line and "multi_map" in line and "kmeans_image" in line
    assert "'mcbench.methods' entry-point group" in line


def test_unknown_aspect_names_the_valid_aspects(tmp_path, cache_dir):
    proc = mcbench(tmp_path, "method=kmeans_image", "dataset=synth_cards", "aspect=colour", *FAST, check=False,
                   cache=cache_dir)
    assert proc.returncode == 2
    assert "aspect='colour'" in proc.stderr and "number, suits" in proc.stderr


def test_negative_seed_is_rejected(tmp_path):
    proc = mcbench(tmp_path, "method=kmeans_image", "seed=-1", *FAST, check=False)
    assert proc.returncode == 2 and "seed=-1" in proc.stderr


def test_cuda_where_there_is_none_is_one_clear_line(tmp_path):
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


def test_a_method_setting_without_its_group_suggests_method_dot_key(tmp_path):
    proc = mcbench(tmp_path, "method=multi_map", "alpha=0.3", *FAST, check=False)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line == ("mcbench: error: 'alpha' is not a top-level setting; it is a setting of method: "
                    "write method.alpha=0.3")
    proc = mcbench(tmp_path, "sed=1", *FAST, check=False)
    assert proc.returncode == 2 and "Did you mean: seed?" in proc.stderr
    assert not (tmp_path / "runs.csv").exists()


def test_wrong_type_of_a_method_setting_is_one_line(tmp_path):
    proc = mcbench(tmp_path, "method=multi_map", "method.epochs=ten", *FAST, check=False)
    assert proc.returncode == 2
    assert "method.epochs='ten' has the wrong type" in proc.stderr.strip().splitlines()[-1]
    # caught before Hydra composes (the same words as a run's own check): in --cfg, and in each choice of a sweep
    proc = mcbench(tmp_path, "method=multi_map", "method.lr=fast", "--cfg", "job", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "mcbench: error: method.lr='fast' has the wrong type for method 'multi_map': expected float (default 0.005)")
    proc = mcbench(tmp_path, "method=multi_map", "method.truncate=true,1", "hydra.mode=MULTIRUN", *FAST, check=False)
    assert proc.returncode == 2 and "method.truncate=1 has the wrong type" in proc.stderr
    assert not (tmp_path / "runs.csv").exists()


def test_typo_in_a_dataset_setting(tmp_path):
    proc = mcbench(tmp_path, "dataset=synth_fruit", "dataset.nn=3", *FAST, check=False)
    assert proc.returncode == 2 and "Valid settings: difficulty, image_size, n, seed" in proc.stderr


def test_progress_shows_a_bar_per_training_and_a_line_per_task(tmp_path, cache_dir):
    fast = [a for a in FAST if a != "progress=false"]
    proc = mcbench(tmp_path, "method=multi_dproxy", "method.epochs=3", "dataset=synth_cards", "aspect=suits",
                   "progress=true", *fast, cache=cache_dir)
    assert "multi_dproxy synth_cards/suits seed=0" in proc.stderr and "3/3" in proc.stderr  # the training bar
    assert "[mcbench] multi_dproxy synth_cards/suits seed=0: NMI" in proc.stdout  # the finished task's line
    quiet = mcbench(tmp_path, "method=multi_dproxy", "method.epochs=3", "dataset=synth_cards", "aspect=suits",
                    "force=true", *FAST, cache=cache_dir)
    assert "3/3" not in quiet.stderr


def test_help_lists_the_groups_a_user_picks(tmp_path):
    proc = mcbench(tmp_path, "--help", check=False)
    assert proc.returncode == 0
    assert "powered by Hydra" not in proc.stdout
    groups = {line.split(":", 1)[0].strip(): line.split(":", 1)[1] for line in proc.stdout.splitlines()
              if line.startswith("  ") and ":" in line and line.split(":", 1)[0].strip() in
              ("method", "dataset", "encoder", "llm", "logger", "experiment", "hydra/launcher")}
    assert set(groups) == {"method", "dataset", "encoder", "llm", "logger", "experiment", "hydra/launcher"}
    conf = Path(__file__).resolve().parent.parent / "conf"
    for group in ("method", "dataset", "encoder", "llm", "logger"):
        assert {p.stem for p in (conf / group).glob("*.yaml")} <= {c.strip() for c in groups[group].split(",")}
    assert "method_dataset" not in proc.stdout.split("== Settings")[0]
    assert "seed: 0" in proc.stdout  # the composed config follows


def test_wandb_run_has_the_nested_config_live_losses_metrics_group_and_tags(tmp_path, cache_dir):
    """A single run, logger=wandb offline; the run files read back as `wandb sync` would upload them."""
    args = [a for a in FAST if a != "logger=none"]
    mcbench(tmp_path, "method=multi_dproxy", "method.epochs=3", "method.lr=0.002", "dataset=synth_cards",
            "logger=wandb", *args, cache=cache_dir)
    df = pd.read_csv(tmp_path / "runs.csv")
    runs = sorted((tmp_path / "outputs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 == len(df)
    read = [read_run(r) for r in runs]
    assert {r.run_id for r in read} == set(df["wandb_run_id"])
    assert len({r.group for r in read}) == 1 and read[0].group.startswith("outputs/")  # the run folder
    for run in read:
        row = df[df["wandb_run_id"] == run.run_id].iloc[0]
        assert run.job_type == "run"
        assert run.config["method"]["lr"] == 0.002 and run.config["method"]["name"] == "multi_dproxy"
        assert run.config["method"]["epochs"] == 3 and "tau_alpha" in run.config["method"]
        assert run.config["dataset"]["name"] == "synth_cards" and run.config["dataset"]["n"] == 40
        assert run.config["encoder"]["name"] == "tiny_clip_random" and run.config["seed"] == 0
        assert run.config["aspect"] == row["aspect"] and run.config["task"]["run_id"] == row["run_id"]
        assert "nmi" not in run.config  # metrics are in the summary, not the config
        assert run.summary["nmi"] == pytest.approx(row["nmi"]) and run.summary["ri"] == pytest.approx(row["ri"])
        other = "number" if row["aspect"] == "suits" else "suits"
        assert run.summary[f"nmi_other/{other}"] == pytest.approx(json.loads(row["nmi_other_aspects"])[other])
        epochs = [h for h in run.history if "loss" in h]
        assert [h["epoch"] for h in epochs] == [0, 1, 2]  # one point per epoch, every loss term of the history
        assert all({"loss", "pool", "alpha", "beta"} <= set(h) for h in epochs)
        assert set(run.tags) >= {"multi_dproxy", "synth_cards", f"aspect:{row['aspect']}", "seed:0", "level:easy"}
        assert run.exit_code == 0


def test_importing_the_cli_imports_neither_torch_nor_open_clip():
    code = "import sys, mcbench.commands.cli; print(sorted(m for m in ('torch', 'open_clip', 'mcbench.contracts') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_help_in_a_subprocess_loads_no_torch(tmp_path):
    """`mcbench --help` end to end: the real process, and what it imported (start-up time: benchmarks/)."""
    from cli_inprocess import cli_process_loads

    proc, loaded = cli_process_loads(tmp_path, ["--help"], ("torch", "open_clip"))
    assert proc.returncode == 0, proc.stderr
    assert "== Groups (group=choice) ==" in proc.stdout and loaded == {"torch": False, "open_clip": False}


@pytest.mark.slow
def test_bare_mcbench_runs_multi_dproxy_on_synth_cards_with_the_tiny_clip(tmp_path, cache_dir):
    """README command 1 as a real process: the default job, nothing overridden but where the results go (W&B
    offline)."""
    env = dict(os.environ, MCBENCH_CACHE=str(cache_dir), WANDB_MODE="offline")
    proc = subprocess.run([sys.executable, "-m", "mcbench.commands.cli", f"results_file={tmp_path}/runs.csv", "progress=false"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert set(rows["method"]) == {"multi_dproxy"} and set(rows["dataset"]) == {"synth_cards"}
    assert set(rows["aspect"]) == {"number", "suits"} and set(rows["encoder"]) == {"tiny_clip"}
    assert (rows["nmi"] >= 0.9).all(), rows[["aspect", "nmi"]]  # the method's bar (issue 5), seed 0
    assert "multi_dproxy  synth_cards" in proc.stdout
    assert list((tmp_path / "wandb").glob("offline-run-*")) or list(tmp_path.rglob("offline-run-*"))
