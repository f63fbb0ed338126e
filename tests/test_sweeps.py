"""Hydra multirun sweeps: resume after SIGKILL, parallel writers, launchers, W&B offline runs, failures."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from mcbench.results import ResultStore

FAST = ["encoder=tiny_clip_random", "dataset.n=40", "protocol.n_restarts=2", "progress=false"]


def sweep(tmp_path, *args, check=True, timeout=900):
    env = dict(os.environ, MCBENCH_CACHE=str(tmp_path / "cache"), WANDB_MODE="offline", HYDRA_FULL_ERROR="1")
    proc = subprocess.run([sys.executable, "-m", "mcbench.cli", "-m", f"results_file={tmp_path}/runs.csv", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc


def rows(tmp_path):
    return ResultStore(tmp_path / "runs.csv").read()


@pytest.mark.slow
def test_sweep_logs_one_offline_wandb_run_per_task_grouped_by_sweep(tmp_path):
    sweep(tmp_path, "method=kmeans_image,zeroshot_gpt", "dataset=synth_fruit", "seed=0,1", "logger=wandb", *FAST)
    df = rows(tmp_path)
    assert len(df) == 8 and df["run_id"].is_unique
    runs = sorted(glob.glob(str(tmp_path / "outputs" / "wandb" / "offline-run-*")))
    assert len(runs) == 8
    assert set(df["wandb_run_id"]) == {r.rsplit("-", 1)[-1] for r in runs}
    assert df["sweep_id"].nunique() == 1 and df["sweep_id"].iloc[0].startswith("multirun/")
    for run in runs:
        assert glob.glob(os.path.join(run, "run-*.wandb"))


@pytest.mark.slow
def test_killed_sweep_resumes_with_every_task_exactly_once(tmp_path):
    args = ["method=multi_map", "method.epochs=3", "dataset=synth_cards", "seed=0,1,2,3,4,5", "logger=none", *FAST]
    env = dict(os.environ, MCBENCH_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "mcbench.cli", "-m", f"results_file={tmp_path}/runs.csv", *args],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline:
        if (tmp_path / "runs.csv").exists() and len(rows(tmp_path)) >= 3:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(rows(tmp_path))
    assert 3 <= partial < 12, "the sweep should have been killed halfway"
    out = sweep(tmp_path, *args).stdout
    assert out.count("skip") == partial
    df = rows(tmp_path)
    assert len(df) == 12 and df["run_id"].is_unique
    assert sorted(zip(df["seed"], df["aspect"])) == sorted((s, a) for s in range(6) for a in ("number", "suits"))


@pytest.mark.slow
def test_four_joblib_workers_leave_every_row_intact(tmp_path):
    sweep(tmp_path, "hydra/launcher=parallel", "hydra.launcher.n_jobs=4", "method=kmeans_image",
          "dataset=synth_shapes", "seed=0,1,2,3,4,5,6,7", "logger=none", *FAST)
    store = ResultStore(tmp_path / "runs.csv")
    df = store.read()
    assert len(df) == 24 and store.last_read.rejected == 0 and df["run_id"].is_unique


@pytest.mark.slow
def test_submitit_local_launcher_runs_jobs(tmp_path):
    sweep(tmp_path, "hydra/launcher=local_submitit", "method=kmeans_image", "dataset=synth_fruit", "seed=0,1",
          "logger=none", *FAST)
    assert len(rows(tmp_path)) == 4


def test_failed_job_is_listed_at_the_end_and_writes_no_row(tmp_path):
    proc = sweep(tmp_path, "method=kmeans_image", "dataset=synth_fruit", "aspect=color,colour", "logger=none", *FAST,
                 check=False)
    assert proc.returncode == 1
    assert "sweep finished with 1 failed job(s)" in proc.stdout
    assert "aspect=colour" in proc.stdout and "Valid aspects: color, species" in proc.stdout
    df = rows(tmp_path)
    assert list(df["aspect"]) == ["color"]
    failures = glob.glob(str(tmp_path / "multirun" / "*" / "*" / "failures.jsonl"))
    assert len(failures) == 1 and json.loads(open(failures[0]).readline())["overrides"]
