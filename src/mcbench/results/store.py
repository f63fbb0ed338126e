"""The results store: one CSV row per task (CLIP_benchmark-style), safe under concurrent writers.

* Appends take a file lock and write each row as one ``write`` on an append-mode file, so rows from
  parallel jobs never interleave.
* Each row ends with ``row_crc``, a CRC32 of the row's other fields: a half-written row from a killed job
  fails the check and is ignored on read (and counted), never silently merged.
* A row with columns the file does not have yet rewrites the file atomically with the union of the
  columns (old rows kept, new cells empty), so files from older versions stay readable.
* A row is written whole or not at all: what ``os.write`` wrote is checked, and a short write (disk full,
  quota, file-size limit) is truncated back and raised as one :class:`ResultsWriteError`.
* :meth:`ResultStore.check_writable` is called before any work: a results path that is a folder, read-only
  or not mcbench's is one :class:`ResultsPathError`, not a lost task after the fit.

**One row per run, the newest.** The file is append-only history: ``force=true`` appends a new copy of a
task's row and older copies stay as history. Every reader (leaderboard, report, the "already done" check)
counts ONE row per ``run_id``: the newest, i.e. the last in file order (rows are appended under the lock
when their task finishes, so file order is finish order). :func:`latest_per_run` is that rule; use it.
"""

from __future__ import annotations

import csv
import errno
import io
import logging
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from filelock import FileLock

from mcbench.atomic import atomic_path
from mcbench.results import schema

log = logging.getLogger(__name__)
CRC_COLUMN = "row_crc"
_WRITE_FIX = ("Free space on that disk (or raise the quota / file-size limit), or point results_file at another "
              "disk, and rerun: finished tasks in the file are skipped")


#: identifiers that stay text when read back (besides every ``*_id`` / ``*_hash`` column)


class ResultsPathError(ValueError):
    """``results_file`` cannot take rows (found before any work); the message names the path and the fix."""


class ResultsWriteError(RuntimeError):
    """A row could not be written (disk full, quota, file-size limit); nothing half-written is left."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)


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

    def check_writable(self) -> None:
        """Raise one :class:`ResultsPathError` if rows could not be appended at ``self.path`` (a folder that
        cannot be created or written, a path that is a folder, a read-only file, a CSV that is not mcbench's);
        called before any work, so that a finished task is never lost to a bad path. Creates nothing but the
        missing parent folders."""
        path = self.path
        fix = "Point results_file at a writable file (results_file=PATH)"
        if path.is_dir():
            raise ResultsPathError(f"results_file={path} is a folder, not a file. {fix}, e.g. {path / 'runs.csv'}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsPathError(f"cannot create the folder of results_file={path} ({_reason(exc)}). {fix}") from exc
        try:  # a real probe: root ignores permission bits, not a read-only filesystem
            fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise ResultsPathError(
                f"the folder {path.parent} of results_file={path} is not writable ({_reason(exc)}): rows, their lock "
                f"file and the atomic rewrites need it. {fix}, or make the folder writable"
            ) from exc
        if path.exists():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
            except OSError as exc:
                raise ResultsPathError(
                    f"results_file={path} is not writable ({_reason(exc)}). {fix}, or make the file writable"
                ) from exc
            self._header()  # a CSV that is not mcbench's: refused now, not after the fit

    def append(self, row: dict[str, Any], skip_if_done: bool = False) -> bool:
        """Append ``row``; return False (and write nothing) when ``skip_if_done`` and the file already holds an
        ``ok`` row of the same ``run_id``. That check runs under the file lock, so jobs that finish the same task
        at the same time write it once. A write that fails (disk full, quota, file-size limit) is undone and
        raises :class:`ResultsWriteError`: no half row is left and the rows already there are kept."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.lock:
                header = self._header()
                if skip_if_done and header is not None and "run_id" in header:
                    if str(row.get("run_id")) in self._done_ids(self._records(header)):
                        return False
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
                self._write_line(line)
        except ResultsWriteError:
            raise
        except OSError as exc:  # the lock, a rewrite with new columns, the first header
            raise ResultsWriteError(
                f"cannot write the result row to {self.path} ({_reason(exc)}); the rows already there are kept. "
                f"{_WRITE_FIX}"
            ) from exc
        return True

    def _write_line(self, line: bytes) -> None:
        """One row, written whole or not at all (a short write is undone, the file truncated back)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            before = os.fstat(fd).st_size
            written = 0
            try:
                while written < len(line):  # under the lock: a retried remainder cannot interleave
                    n = os.write(fd, line[written:])
                    if n <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    written += n
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, before)
                    undone = "the partial row was removed"
                except OSError:
                    undone = "the partial row could not be removed (it fails its checksum and is ignored on read)"
                raise ResultsWriteError(
                    f"cannot write the result row to {self.path}: {_reason(exc)} (wrote {written} of {len(line)} "
                    f"bytes; {undone}; the rows already there are kept). {_WRITE_FIX}"
                ) from exc
        finally:
            os.close(fd)

    @staticmethod
    def _done_ids(records: list[dict[str, str]]) -> set[str]:
        return {r.get("run_id", "") for r in records if r.get("status", "ok") == "ok"}

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
        """All intact rows as strings-typed-then-inferred DataFrame (empty if there is no file). Identifier
        columns (``run_id``, hashes, commits: ``*_id``, ``*_hash``, ...) stay strings: a hex id made of digits
        ("0123", "12e4") must not become a number."""
        header = self._header()
        if header is None:
            return pd.DataFrame()
        records = self._records(header)
        df = pd.DataFrame(records, columns=header[:-1])
        for col in df.columns:
            if col in schema.TEXT_COLUMNS or col.endswith(("_id", "_hash", "_identity", "_revision", "_commit")):
                continue
            converted = pd.to_numeric(df[col], errors="coerce")
            if converted.notna().sum() == (df[col] != "").sum():
                df[col] = converted
        return df

    def completed_run_ids(self) -> set[str]:
        header = self._header()
        if header is None or "run_id" not in header:
            return set()
        return self._done_ids(self._records(header))
