"""A sweep's worker stops with the process that started it.

``hydra/launcher=parallel`` runs jobs in joblib's loky worker processes. When the sweep process is killed
(SIGKILL, an OOM kill, a closed terminal), the workers are re-parented and would finish their task and append
its row to the shared results file, unseen. :func:`stop_with_parent` is called at the start of every job: in a
process started by ``multiprocessing`` (loky's workers are), a daemon thread compares ``os.getppid()`` with the
parent's pid every ``poll_s`` seconds and, once the parent is gone, ends this process (SIGTERM, then SIGKILL),
so no row is appended after the sweep died. Appends are single ``write`` calls under a file lock, so a worker
ended mid-task leaves at most a half row, which readers ignore (it fails its checksum).

Polling rather than Linux's ``prctl(PR_SET_PDEATHSIG)``: that signal fires when the *thread* that forked the
worker exits (loky forks from a manager thread), and it exists on Linux only. A plain run (not started by
``multiprocessing``) is never watched: ``nohup mcbench ... &`` must survive its shell.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

_watching: int | None = None  # the parent pid being watched in this process


def stop_with_parent(poll_s: float = 0.5, grace_s: float = 5.0) -> bool:
    """Start the watch once per process if it is a ``multiprocessing`` child; return whether it watches.
    A worker whose parent is already gone (it died while the worker was still importing) ends now."""
    global _watching
    parent_process = multiprocessing.parent_process()
    if parent_process is None or parent_process.pid is None:
        return False
    parent = parent_process.pid  # the pid that started us, even if we were re-parented since
    if _watching == parent:
        return True
    _watching = parent
    threading.Thread(target=_watch, args=(parent, poll_s, grace_s), name="mcbench-parent-watch",
                     daemon=True).start()
    return True


def _watch(parent: int, poll_s: float, grace_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(poll_s)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace_s)  # a handler that ignored SIGTERM
    os.kill(os.getpid(), signal.SIGKILL)
