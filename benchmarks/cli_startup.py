"""Start-up time of the ``mcbench`` command: ``--help``, ``--cfg job``, ``--info``, a tab completion, an override
error, and what importing ``mcbench.commands.cli`` costs against importing torch and open_clip (what it cost before the
lazy imports). Writes ``results/cli_startup.json`` and ``results/cli_startup.md``.

    .venv/bin/python -m benchmarks.cli_startup              # 5 repeats each
    .venv/bin/python -m benchmarks.cli_startup --repeats 10 --out /tmp/startup

Each command runs as a fresh process (what a user types), in an empty folder; medians and minima of the wall
time, with the load average before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _mcbench() -> list[str]:
    exe = Path(sys.executable).parent / "mcbench"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mcbench.commands.cli"]


COMMANDS = {
    "mcbench --help": (["--help"], {}),
    "mcbench --cfg job": (["--cfg", "job"], {}),
    "mcbench --cfg job method=multi_map dataset=synth_fruit": (["--cfg", "job", "method=multi_map",
                                                                "dataset=synth_fruit"], {}),
    "mcbench --info": (["--info"], {}),
    "tab completion (mcbench method=multi<TAB>)": (["-sc", "query=bash"], {"COMP_LINE": "mcbench method=multi"}),
    "mcbench alpha=0.3 (error: suggests method.alpha)": (["method=multi_map", "alpha=0.3"], {}),
}
IMPORTS = {
    "python -c 'import mcbench.commands.cli'": "import mcbench.commands.cli",
    "python -c 'import torch, open_clip' (the old start-up)": "import torch, open_clip",
}


def time_process(cmd: list[str], env: dict[str, str], cwd: str, repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 2):
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "repeats": repeats}


def loaded_modules(env: dict[str, str], cwd: str) -> dict[str, bool]:
    code = ("import sys, runpy; sys.argv = ['mcbench', '--help']\ntry:\n    runpy.run_module('mcbench.commands.cli', "
            "run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('MODULES', *[m in sys.modules for m in ('torch', 'open_clip', 'mcbench.contracts')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    flags = out.stdout.split("MODULES", 1)[1].split()
    return dict(zip(("torch", "open_clip", "mcbench.contracts"), (f == "True" for f in flags)))


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "results"), help="folder for cli_startup.{json,md}")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="mcbench-startup-")
    env = dict(os.environ, MCBENCH_CACHE=str(Path(work) / "cache"), WANDB_MODE="offline")
    load_before = list(os.getloadavg())
    results = {}
    try:
        for label, (cmd_args, extra) in COMMANDS.items():
            results[label] = time_process(_mcbench() + cmd_args, dict(env, **extra), work, args.repeats)
            print(f"{label}: {results[label]['median_s']:.2f} s (median of {args.repeats})", flush=True)
        for label, code in IMPORTS.items():
            results[label] = time_process([sys.executable, "-c", code], env, work, args.repeats)
            print(f"{label}: {results[label]['median_s']:.2f} s", flush=True)
        modules = loaded_modules(env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_commit": git_commit(),
        "python": platform.python_version(), "cores": len(os.sched_getaffinity(0)),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "modules_loaded_by_help": modules, "timings": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cli_startup.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        "# mcbench start-up time",
        "",
        f"`python -m benchmarks.cli_startup` on {record['date']} (commit {record['git_commit']}, Python "
        f"{record['python']}, {record['cores']} cores, load average {record['load_average_before']} before, "
        f"{record['load_average_after']} after). Each command is a fresh process in an empty folder; wall time "
        f"over {args.repeats} runs.",
        "",
        "| command | median s | min s | max s |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{label}` | {t['median_s']:.2f} | {t['min_s']:.2f} | {t['max_s']:.2f} |"
              for label, t in results.items()]
    lines += ["", "Modules `mcbench --help` loaded: " + ", ".join(f"{m}: {'yes' if v else 'no'}"
                                                              for m, v in modules.items()), ""]
    (out / "cli_startup.md").write_text("\n".join(lines))
    print(f"wrote {out / 'cli_startup.json'} and {out / 'cli_startup.md'}")


if __name__ == "__main__":
    main()
