"""Hydra multirun sweeps: resume after SIGKILL, parallel writers, launchers, W&B offline runs, failures, the final
aggregated table.

Sweeps with the basic launcher run in this process (``cli_inprocess.run_cli``); the SIGKILL resume and the
launchers that start their own worker processes (joblib, submitit) run a real ``mcbench`` process."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from cli_inprocess import run_cli
from wandb_offline import read_run

from mcbench.results.store import ResultStore

FAST = ["encoder=tiny_clip_random", "dataset.n=40", "protocol.n_restarts=2", "progress=false"]


def _env(tmp_path, cache):
    return {"MCBENCH_CACHE": str(cache or tmp_path / "cache"), "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "1"}


def sweep(tmp_path, *args, check=True, cache=None):
    """``mcbench -m ...`` in this process."""
    proc = run_cli(tmp_path, "-m", f"results_file={tmp_path}/runs.csv", *args, env=_env(tmp_path, cache))
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc


def sweep_process(tmp_path, *args, check=True, cache=None, timeout=900):
    """``mcbench -m ...`` as a real process."""
    env = dict(os.environ, **_env(tmp_path, cache))
    proc = subprocess.run([sys.executable, "-m", "mcbench.commands.cli", "-m", f"results_file={tmp_path}/runs.csv", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc


def rows(tmp_path):
    return ResultStore(tmp_path / "runs.csv").read()


def test_sweep_logs_one_offline_wandb_run_per_task_grouped_by_sweep_and_one_table(tmp_path, cache_dir):
    sweep(tmp_path, "method=kmeans_image,zeroshot_gpt", "dataset=synth_fruit", "seed=0", "logger=wandb", *FAST,
          cache=cache_dir)
    df = rows(tmp_path)
    assert len(df) == 4 and df["run_id"].is_unique
    runs = sorted(glob.glob(str(tmp_path / "outputs" / "wandb" / "offline-run-*")))
    assert len(runs) == 5  # one per task, and the sweep's table
    read = {r.run_id: r for r in map(read_run, runs)}
    tasks = {i: r for i, r in read.items() if r.job_type == "sweep"}
    assert set(df["wandb_run_id"]) == set(tasks)
    assert df["sweep_id"].nunique() == 1 and df["sweep_id"].iloc[0].startswith("multirun/")
    assert {r.group for r in read.values()} == {df["sweep_id"].iloc[0]}
    for run_id, run in tasks.items():
        row = df[df["wandb_run_id"] == run_id].iloc[0]
        assert run.config["method"]["name"] == row["method"] and run.config["seed"] == row["seed"]
        assert f"aspect:{row['aspect']}" in run.tags and f"seed:{row['seed']}" in run.tags
        assert run.summary["nmi"] == pytest.approx(row["nmi"])
    (table_run,) = [r for r in read.values() if r.job_type == "sweep-table"]
    logged = {k: v for h in table_run.history for k, v in h.items() if k in ("rows", "summary")}
    assert logged["rows"]["_type"] == "table-file" and logged["rows"]["nrows"] == 4
    assert logged["summary"]["nrows"] == 4  # 2 methods x 2 aspects
    table_file = [p for p in glob.glob(os.path.join(runs[0].rsplit("/", 1)[0], "offline-run-*", "files", "media",
                                                    "table", "rows_*.table.json"))]
    assert len(table_file) == 1
    logged_rows = json.load(open(table_file[0]))
    run_ids = logged_rows["columns"].index("run_id")
    assert sorted(r[run_ids] for r in logged_rows["data"]) == sorted(df["run_id"])


def test_sweep_prints_and_writes_one_aggregated_table(tmp_path, cache_dir):
    out = sweep(tmp_path, "method=kmeans_image,zeroshot_gpt", "dataset=synth_fruit", "seed=0,1,2", "logger=none",
                *FAST, cache=cache_dir).stdout
    df = rows(tmp_path)
    assert len(df) == 12
    table = out.split("[mcbench] sweep results")[1]
    lines = [line for line in table.splitlines() if line.startswith(("kmeans_image", "zeroshot_gpt"))]
    assert len(lines) == 4  # method x aspect, seeds pooled
    for method in ("kmeans_image", "zeroshot_gpt"):
        for aspect in ("color", "species"):
            nmi = df[(df["method"] == method) & (df["aspect"] == aspect)]["nmi"]
            (line,) = [ln for ln in lines if ln.split()[0] == method and f" {aspect} " in ln]
            assert f"{nmi.mean():.4f} ± {nmi.std():.4f}" in line
            assert line.split()[1:6] == ["synth_fruit", "(easy)", aspect, "0,1,2", "0"]  # level, seeds, image set
    sweep_dir = next((tmp_path / "multirun").glob("*/*"))
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert len(summary) == 4 and {s["n"] for s in summary} == {"3"} and {s["failed"] for s in summary} == {"0"}
    assert "| kmeans_image | synth_fruit (easy) | color | 0,1,2 | 0 | 3 |" in (sweep_dir / "summary.md").read_text()


def test_failed_job_is_listed_at_the_end_and_writes_no_row(tmp_path, cache_dir):
    proc = sweep(tmp_path, "method=kmeans_image", "dataset=synth_fruit", "aspect=color,colour", "logger=none", *FAST,
                 check=False, cache=cache_dir)
    assert proc.returncode == 1
    assert "sweep finished with 1 failed job(s)" in proc.stdout
    assert "aspect=colour" in proc.stdout and "Valid aspects: color, species" in proc.stdout
    df = rows(tmp_path)
    assert list(df["aspect"]) == ["color"]
    failures = glob.glob(str(tmp_path / "multirun" / "*" / "*" / "failures.jsonl"))
    assert len(failures) == 1 and json.loads(open(failures[0]).readline())["overrides"]
    summary = json.loads(open(failures[0].replace("failures.jsonl", "summary.json")).read())
    assert [(s["aspect"], s["n"], s["failed"]) for s in summary] == [("color", "1", "1")]


@pytest.mark.slow
def test_killed_sweep_resumes_with_every_task_exactly_once(tmp_path, cache_dir):
    args = ["method=multi_map", "method.epochs=3", "dataset=synth_cards", "seed=0,1,2,3,4,5", "logger=none", *FAST]
    env = dict(os.environ, MCBENCH_CACHE=str(cache_dir))
    proc = subprocess.Popen([sys.executable, "-m", "mcbench.commands.cli", "-m", f"results_file={tmp_path}/runs.csv", *args],
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
    out = sweep(tmp_path, *args, cache=cache_dir).stdout
    assert out.count("skip") == partial
    df = rows(tmp_path)
    assert len(df) == 12 and df["run_id"].is_unique
    assert sorted(zip(df["seed"], df["aspect"])) == sorted((s, a) for s in range(6) for a in ("number", "suits"))


@pytest.mark.slow
def test_four_joblib_workers_leave_every_row_intact(tmp_path, cache_dir):
    sweep_process(tmp_path, "hydra/launcher=parallel", "hydra.launcher.n_jobs=4", "method=kmeans_image",
                  "dataset=synth_shapes", "seed=0,1,2,3,4,5,6,7", "logger=none", *FAST, cache=cache_dir)
    store = ResultStore(tmp_path / "runs.csv")
    df = store.read()
    assert len(df) == 24 and store.last_read.rejected == 0 and df["run_id"].is_unique


@pytest.mark.slow
def test_submitit_local_launcher_runs_jobs(tmp_path, cache_dir):
    out = sweep_process(tmp_path, "hydra/launcher=local_submitit", "method=kmeans_image", "dataset=synth_fruit",
                        "seed=0,1", "logger=none", *FAST, cache=cache_dir).stdout
    assert len(rows(tmp_path)) == 4
    assert "[mcbench] sweep results" in out  # jobs in other processes still feed the final table
    sweep_dir = next((tmp_path / "multirun").glob("*/*"))
    assert {s["n"] for s in json.loads((sweep_dir / "summary.json").read_text())} == {"2"}
