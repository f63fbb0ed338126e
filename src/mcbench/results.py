"""The results store: one CSV row per task (CLIP_benchmark-style), safe under concurrent writers.

* Appends take a file lock and write each row as one ``write`` on an append-mode file, so rows from
  parallel jobs never interleave.
* Each row ends with ``row_crc``, a CRC32 of the row's other fields: a half-written row from a killed job
  fails the check and is ignored on read (and counted), never silently merged.
* A row with columns the file does not have yet rewrites the file atomically with the union of the
  columns (old rows kept, new cells empty), so files from older versions stay readable.

**One row per run, the newest.** The file is append-only history: ``force=true`` appends a new copy of a
task's row and older copies stay as history. Every reader (leaderboard, report, the "already done" check)
counts ONE row per ``run_id``: the newest, i.e. the last in file order (rows are appended under the lock
when their task finishes, so file order is finish order). :func:`latest_per_run` is that rule; use it.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from filelock import FileLock

from mcbench.atomic import atomic_path

log = logging.getLogger(__name__)
CRC_COLUMN = "row_crc"


def _line(values: Iterable[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def _crc(fields: list[str]) -> str:
    return f"{zlib.crc32(_line(fields).encode()):08x}"


def _row_line(header: list[str], row: dict[str, Any]) -> str:
    fields = [_cell(row.get(c)) for c in header if c != CRC_COLUMN]
    return _line(fields + [_crc(fields)])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def latest_per_run(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ``run_id``: the newest (last in file order), older copies dropped; the original
    column order and the file order of the kept rows are kept. Rows without a ``run_id`` are kept as they
    are (nothing identifies them as copies); a frame without the column is returned unchanged."""
    if df.empty or "run_id" not in df.columns:
        return df
    ids = df["run_id"]
    has_id = ids.notna() & (ids.astype(str) != "")
    newest = ~ids.astype(str).duplicated(keep="last") | ~has_id
    return df[newest.to_numpy()]


@dataclass
class ReadReport:
    rows: int
    rejected: int


class ResultStore:
    """Append-only CSV of result rows at ``path`` (a lock file sits beside it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = FileLock(str(self.path) + ".lock")
        self.last_read = ReadReport(0, 0)

    def append(self, row: dict[str, Any]) -> None:
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            header = self._header()
            if header is None:
                header = list(row) + [CRC_COLUMN]
                self._rewrite(header, [])
            elif any(c not in header for c in row):
                records = self._records(header)
                header = header[:-1] + [c for c in row if c not in header] + [CRC_COLUMN]
                self._rewrite(header, records)
            line = _row_line(header, row).encode()
            if not self._ends_with_newline():  # a killed writer left half a row: keep ours on its own line
                line = b"\n" + line
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def _header(self) -> list[str] | None:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return None
        with open(self.path, newline="", encoding="utf-8") as fh:
            first = fh.readline()
        header = next(csv.reader([first]))
        if not header or header[-1] != CRC_COLUMN:
            raise ValueError(
                f"{self.path} is not an mcbench results file (its header does not end with '{CRC_COLUMN}'). "
                f"Point results_file at another path; the file was left untouched."
            )
        return header

    def _records(self, header: list[str]) -> list[dict[str, str]]:
        """Rows that pass their checksum; the rest are counted in ``last_read``."""
        good, rejected = [], 0
        with open(self.path, newline="", encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        for raw in lines[1:]:
            if not raw:
                continue
            try:
                fields = next(csv.reader([raw]))
            except (csv.Error, StopIteration):
                rejected += 1
                continue
            if len(fields) != len(header) or _crc(fields[:-1]) != fields[-1]:
                rejected += 1
                continue
            good.append(dict(zip(header[:-1], fields[:-1])))
        if rejected:
            log.warning("%s: ignored %d incomplete or corrupted row(s)", self.path, rejected)
        self.last_read = ReadReport(len(good), rejected)
        return good

    def _rewrite(self, header: list[str], records: list[dict[str, Any]]) -> None:
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                fh.write(_line(header))
                for rec in records:
                    fh.write(_row_line(header, rec))

    def read(self) -> pd.DataFrame:
        """All intact rows as strings-typed-then-inferred DataFrame (empty if there is no file)."""
        header = self._header()
        if header is None:
            return pd.DataFrame()
        records = self._records(header)
        df = pd.DataFrame(records, columns=header[:-1])
        for col in df.columns:
            converted = pd.to_numeric(df[col], errors="coerce")
            if converted.notna().sum() == (df[col] != "").sum():
                df[col] = converted
        return df

    def completed_run_ids(self) -> set[str]:
        df = self.read()
        if df.empty or "run_id" not in df:
            return set()
        ok = df[df["status"] == "ok"] if "status" in df else df
        return set(ok["run_id"].astype(str))
