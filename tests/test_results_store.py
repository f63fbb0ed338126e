import csv
import multiprocessing as mp
import sys

import pytest

from mcbench.results.store import CRC_COLUMN, ResultStore, latest_per_run


def _row(i, **extra):
    return {"run_id": f"r{i}", "status": "ok", "method": "m", "nmi": 0.5 + i / 1000, **extra}


def test_append_and_read_back(tmp_path):
    store = ResultStore(tmp_path / "runs.csv")
    store.append(_row(1))
    store.append(_row(2))
    df = store.read()
    assert list(df["run_id"]) == ["r1", "r2"]
    assert df["nmi"].tolist() == [0.501, 0.502]
    assert store.completed_run_ids() == {"r1", "r2"}


def test_half_written_row_is_ignored_and_next_row_survives(tmp_path):
    path = tmp_path / "runs.csv"
    store = ResultStore(path)
    store.append(_row(1))
    with open(path, "a") as fh:  # a killed writer: half a row, no newline
        fh.write("r2,ok,m,0.5")
    store.append(_row(3))
    df = store.read()
    assert list(df["run_id"]) == ["r1", "r3"]
    assert store.last_read.rejected == 1


def test_new_columns_extend_old_files_and_keep_old_rows(tmp_path):
    path = tmp_path / "runs.csv"
    store = ResultStore(path)
    store.append(_row(1))
    store.append(_row(2, ari=0.3))
    df = store.read()
    assert list(df.columns) == ["run_id", "status", "method", "nmi", "ari"]
    assert df["ari"].isna().tolist() == [True, False]


def test_foreign_csv_is_refused_untouched(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not an mcbench results file"):
        ResultStore(path).append(_row(1))
    assert path.read_text() == "a,b\n1,2\n"


def _writer(path, worker, count):
    store = ResultStore(path)
    for i in range(count):
        store.append(_row(worker * 1000 + i, note="x" * 200, worker=worker))


def test_parallel_writers_never_interleave(tmp_path):
    path = tmp_path / "runs.csv"
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    store = ResultStore(path)
    df = store.read()
    assert len(df) == 100 and store.last_read.rejected == 0
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][-1] == CRC_COLUMN and all(len(r) == len(rows[0]) for r in rows)


def test_latest_per_run_keeps_the_newest_copy_of_each_run_in_file_order(tmp_path):
    store = ResultStore(tmp_path / "runs.csv")
    store.append(_row(1))
    store.append(_row(2))
    store.append({**_row(1), "nmi": 0.9})  # force=true: a newer copy of r1, the old one kept as history
    store.append({**_row(3), "run_id": ""})  # no run_id: nothing says it is a copy, kept
    df = store.read()
    assert len(df) == 4  # the file is history: every copy is read
    latest = latest_per_run(df)
    assert list(latest.columns) == list(df.columns)
    assert latest["run_id"].fillna("").tolist() == ["r2", "r1", ""]
    assert latest.loc[latest["run_id"] == "r1", "nmi"].tolist() == [0.9]
    assert latest_per_run(df.drop(columns="run_id")).shape == (4, 3)


def _finisher(path, run_id, barrier):
    """A job of a sweep: it checked "already done" when it started, then finishes its task with the others."""
    store = ResultStore(path)
    done_at_start = store.completed_run_ids()
    barrier.wait()  # every job has started (and checked) before any finishes: the race of the issue
    wrote = store.append(_row(0, run_id=run_id, done_at_start=run_id in done_at_start), skip_if_done=True)
    sys.exit(0 if wrote else 9)


def test_four_jobs_with_seeds_0_1_2_2_write_seed_2_once(tmp_path):
    """The "already done" check at start cannot see a twin job; the check under the lock at append can."""
    path = tmp_path / "runs.csv"
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_finisher, args=(path, f"seed{s}", barrier)) for s in (0, 1, 2, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert sorted(p.exitcode for p in procs) == [0, 0, 0, 9]  # one twin found the other's row and wrote nothing
    df = ResultStore(path).read()
    assert sorted(df["run_id"]) == ["seed0", "seed1", "seed2"]
    assert (df["done_at_start"].astype(str) == "False").all()  # at start none of them was done


def test_append_returns_false_for_a_run_already_written_unless_forced(tmp_path):
    store = ResultStore(tmp_path / "runs.csv")
    assert store.append(_row(1), skip_if_done=True)
    assert not store.append(_row(1), skip_if_done=True)
    assert store.append(_row(1))  # force=true: a newer copy, kept as history
    assert len(store.read()) == 2 and store.completed_run_ids() == {"r1"}


def test_identifiers_made_of_digits_stay_strings(tmp_path):
    """A run_id or a hash that happens to be all digits ("0123...") or read as a float ("12e4") is read back as
    the same string, so the resume check and latest_per_run match it."""
    store = ResultStore(tmp_path / "runs.csv")
    store.append({"run_id": "0123456789012345", "status": "ok", "git_commit": "1234567", "config_hash": "12e4",
                  "nmi": 0.5})
    df = store.read()
    assert df.loc[0, "run_id"] == "0123456789012345" and df.loc[0, "git_commit"] == "1234567"
    assert df.loc[0, "config_hash"] == "12e4" and df.loc[0, "nmi"] == 0.5
    assert store.completed_run_ids() == {"0123456789012345"}
