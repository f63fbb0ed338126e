"""Run the real ``mcbench`` Hydra app in this process (``mcbench.commands.cli.main(argv)``), as a subprocess would run it:
in a given folder, with its own environment, its stdout/stderr captured and its exit status returned.

A subprocess pays Python's, torch's and open_clip's imports on every call (seconds each); the app, its config,
its checks and its files are the same either way. Tests that are about the process itself (start-up, signals,
parallel launchers) keep using a real subprocess.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Completed:
    """What ``subprocess.run(..., capture_output=True, text=True)`` would have returned."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_cli(cwd: str | Path, *args: str, env: dict[str, str] | None = None) -> Completed:
    """``mcbench *args`` run in ``cwd`` with ``env`` added to the environment; returns its exit status and output."""
    from mcbench.commands import cli

    out, err = io.StringIO(), io.StringIO()
    saved_env = dict(os.environ)
    saved_cwd, saved_argv = os.getcwd(), list(sys.argv)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    code = 0
    try:
        os.environ.update(env or {})
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            # warnings print to stderr as in a fresh process (not into pytest's record), each time
            warnings.resetwarnings()
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            try:
                cli.main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, (int, type(None))):
                    print(exc.code, file=sys.stderr)
            except Exception:  # what the interpreter would print before exiting with status 1
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()  # Hydra's per-run log file
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    return Completed(list(args), code, out.getvalue(), err.getvalue())


def cli_process_loads(cwd: str | Path, argv: list[str], modules: tuple[str, ...]) -> tuple[Completed, dict[str, bool]]:
    """``mcbench *argv`` as a real process in ``cwd`` (start-up is what is tested): its result, and which of
    ``modules`` it had imported when it finished."""
    import subprocess

    code = ("import sys, runpy\nsys.argv = ['mcbench', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('mcbench.commands.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            f"print('LOADED', *[m in sys.modules for m in {list(modules)!r}])")
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, MCBENCH_CACHE=str(Path(cwd) / "cache")))
    flags = next((line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("LOADED ")), [])
    loaded = {m: flag == "True" for m, flag in zip(modules, flags)}
    return Completed(list(argv), proc.returncode, proc.stdout, proc.stderr), loaded
