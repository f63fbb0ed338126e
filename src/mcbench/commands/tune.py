"""``mcbench-tune``: choose every method's hyperparameters on DEVELOPMENT image sets only, same budget each.

The search (``conf/tuning.yaml``) gives each method a grid; ``budget`` configurations are drawn from it (the
current default always among them, the rest a seeded sample), each is run on every development task
(synthetic family x level x development generator seed x aspect) through the ordinary runner, and scored by
its mean NMI there. The winner's values are written into ``conf/method/<name>.yaml`` (comments kept) and what
they were chosen on into ``conf/tuned_on.yaml``, which every result row records as ``tuned_on``. The search
table goes to ``results/tuning/search.{csv,md}``; its runs to ``results/tuning/runs.csv`` (resumable: a rerun
skips the tasks already there). The leaderboard's test generator seeds are never touched here.

    mcbench-tune                                # every method of the search
    mcbench-tune --methods multi_map --budget 4 # one method, a smaller budget (recorded)
    mcbench-tune --dry-run                      # list the configurations, run nothing
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
import zlib
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

TUNING_FILE = "tuning.yaml"
TUNED_ON_FILE = "tuned_on.yaml"


def conf_dir() -> Path:
    """The folder of the installed configs (the repository's conf/ in an editable install)."""
    return Path(str(resources.files("mcbench.conf")))


def load_search(path: str | Path | None = None) -> dict[str, Any]:
    """The search file; refuses one whose development seeds include a test seed."""
    path = path or conf_dir() / TUNING_FILE
    with open(path) as f:
        search = yaml.safe_load(f)
    both = sorted(set(search["dev"]["dataset_seeds"]) & set(search["test_dataset_seeds"]))
    if both:
        raise ValueError(f"{path}: generator seed(s) {both} are both development and test seeds; "
                         f"tuning may only see development image sets: remove them from dev.dataset_seeds")
    return search


def config_defaults(method: str) -> dict[str, Any]:
    """The method's ``Config`` dataclass defaults (the schema that conf/method/<name>.yaml extends)."""
    import dataclasses

    from mcbench.commands.overrides import method_config

    return {f.name: f.default for f in dataclasses.fields(method_config(method))}


def method_defaults(method: str) -> dict[str, Any]:
    """The method's current settings: its ``Config`` defaults under its YAML (what ``mcbench method=<name>``
    runs with)."""
    with open(conf_dir() / "method" / f"{method}.yaml") as f:
        own = yaml.safe_load(f) or {}
    own.pop("defaults", None)
    return {**config_defaults(method), **own}


def candidates(method: str, grid: dict[str, list], budget: int) -> list[dict[str, Any]]:
    """``budget`` configurations: the current default first, then a seeded sample of the rest of the grid
    (seeded by the method's name, so a rerun draws the same ones)."""
    if budget < 1:
        raise ValueError(f"budget={budget}: try at least one configuration per method (budget >= 1)")
    defaults = method_defaults(method)
    unknown = [k for k in grid if k not in defaults]
    if unknown:
        raise ValueError(f"conf/{TUNING_FILE}: {method} has no setting {', '.join(unknown)} "
                         f"(its settings: {', '.join(sorted(defaults))})")
    default = {k: defaults[k] for k in grid}
    keys = list(grid)
    others = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    others = [c for c in others if c != default]
    rng = np.random.default_rng(zlib.crc32(method.encode()))
    picks = rng.choice(len(others), size=min(budget - 1, len(others)), replace=False) if others else []
    return [default] + [others[i] for i in sorted(int(p) for p in picks)]


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def dev_runs(method: str, config: dict[str, Any], search: dict[str, Any], results_file: Path) -> list[dict]:
    """Run one configuration on every development task (in-process, through Hydra's compose API)."""
    from hydra import compose, initialize_config_module

    import mcbench.paths  # noqa: F401  (the ${mcbench_datasets_dir:} resolver)
    from mcbench.runner import run

    dev = search["dev"]
    rows = []
    with initialize_config_module("mcbench.conf", version_base="1.3"):
        for dataset, level, dseed in itertools.product(dev["datasets"], dev["levels"], dev["dataset_seeds"]):
            overrides = [f"method={method}", f"dataset={dataset}", f"dataset.difficulty={level}",
                         f"dataset.seed={dseed}", f"dataset.n={dev['n']}", f"seed={search.get('seed', 0)}",
                         "logger=none", "progress=false", f"results_file={results_file}"]
            overrides += [f"++method.{k}={_yaml_value(v)}" for k, v in config.items()]
            rows += run(compose("config", overrides))  # each row carries its difficulty and dataset_seed
    return rows


def tune_method(method: str, search: dict[str, Any], budget: int, out: Path) -> pd.DataFrame:
    """Every candidate of one method, scored on the development tasks: one row per candidate."""
    objective = search.get("objective", "nmi")
    table = []
    for trial, config in enumerate(candidates(method, search["search"][method], budget)):
        start = time.perf_counter()
        rows = pd.DataFrame(dev_runs(method, config, search, out / "runs.csv"))
        scores = rows[objective].astype(float)
        entry = {"method": method, "trial": trial, "budget": budget, "default": trial == 0, "config": json.dumps(config),
                 f"mean_{objective}": round(float(scores.mean()), 4), "n_tasks": len(rows)}
        for level, part in rows.groupby("difficulty"):
            entry[f"{objective}_{level}"] = round(float(part[objective].astype(float).mean()), 4)
        entry["wall_s"] = round(time.perf_counter() - start, 1)
        print(f"[mcbench-tune] {method} trial {trial} {config}: mean {objective} {entry[f'mean_{objective}']:.4f} "
              f"over {len(rows)} development tasks ({entry['wall_s']:.0f}s)", flush=True)
        table.append(entry)
    frame = pd.DataFrame(table)
    best = int(frame[f"mean_{objective}"].to_numpy().argmax())  # first of ties: the default wins a tie
    frame["chosen"] = frame.index == best
    return frame


def write_choice(method: str, config: dict[str, Any], path: Path | None = None) -> None:
    """Put the chosen values into conf/method/<method>.yaml (or ``path``), keeping every comment. The YAML holds
    only what differs from the ``Config`` dataclass: a chosen value equal to the dataclass default removes its
    key (the schema gives it), any other value replaces the key's value or adds the key."""
    path = path or conf_dir() / "method" / f"{method}.yaml"
    defaults = config_defaults(method)
    text = path.read_text()
    for key, value in config.items():
        pattern = re.compile(rf"^({re.escape(key)}:\s*)(\S+)", re.MULTILINE)
        if key in defaults and type(defaults[key]) is type(value) and defaults[key] == value:
            text = re.sub(rf"^{re.escape(key)}:.*\n?", "", text, count=1, flags=re.MULTILINE)
        elif pattern.search(text):
            text = pattern.sub(lambda m: m.group(1) + _yaml_value(value), text, count=1)
        else:  # the YAML kept the Config default: add the key
            text = text.rstrip("\n") + f"\n{key}: {_yaml_value(value)}  # chosen by mcbench-tune (conf/tuned_on.yaml)\n"
    path.write_text(text)


def write_tuned_on(methods: list[str], search: dict[str, Any], budget: int, command: str) -> None:
    from filelock import FileLock

    path = conf_dir() / TUNED_ON_FILE
    with FileLock(str(path) + ".lock"):  # methods may be tuned by parallel processes
        _update_tuned_on(path, methods, search, budget, command)


def _update_tuned_on(path: Path, methods: list[str], search: dict[str, Any], budget: int, command: str) -> None:
    record = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    dev = search["dev"]
    for method in methods:
        record[method] = {"datasets": list(dev["datasets"]), "levels": list(dev["levels"]),
                          "dataset_seeds": list(dev["dataset_seeds"]), "n": dev["n"], "budget": budget,
                          "keys": sorted(search["search"][method]), "command": command,
                          "date": datetime.now(timezone.utc).date().isoformat()}
    header = ("# What each method's hyperparameters were chosen on: written by `mcbench-tune` (docs/tuning.md).\n"
              "# Every result row records it as `tuned_on`; the leaderboard marks rows scored on these image sets.\n")
    path.write_text(header + yaml.safe_dump(record, sort_keys=True, default_flow_style=None))


def _markdown(table: pd.DataFrame, search: dict[str, Any], budget: int) -> str:
    dev = search["dev"]
    lines = ["# Hyperparameter search on development image sets", "",
             f"`mcbench-tune`: {budget} configurations per method (the previous default is trial 0; `budget` per row), each run on "
             f"{', '.join(dev['datasets'])} at {', '.join(dev['levels'])}, development generator seeds "
             f"{', '.join(map(str, dev['dataset_seeds']))} ({dev['n']} images), scored by mean "
             f"{search.get('objective', 'nmi').upper()} over those tasks. The leaderboard's test seeds "
             f"({', '.join(map(str, search['test_dataset_seeds']))}) are never used. ✓ = chosen.", ""]
    cols = [c for c in table.columns if c not in ("chosen", "default")]
    lines += ["| " + " | ".join(cols + ["chosen"]) + " |", "|" + "---|" * (len(cols) + 1)]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + f" | {'✓' if r['chosen'] else ''} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcbench-tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", help="comma-separated; default: every method of conf/tuning.yaml")
    parser.add_argument("--budget", type=int, help="configurations per method (default: the file's budget)")
    parser.add_argument("--out", default="results/tuning", help="search table and runs (default results/tuning)")
    parser.add_argument("--search", help=f"another search file (default: conf/{TUNING_FILE})")
    parser.add_argument("--dry-run", action="store_true", help="list the configurations and run nothing")
    parser.add_argument("--no-write", action="store_true", help="do not write the choice into conf/")
    args = parser.parse_args(argv)
    search = load_search(args.search)
    budget = args.budget or int(search["budget"])
    methods = args.methods.split(",") if args.methods else list(search["search"])
    unknown = [m for m in methods if m not in search["search"]]
    if unknown:
        parser.error(f"no search space for {', '.join(unknown)} in conf/{TUNING_FILE} "
                     f"(methods with one: {', '.join(search['search'])})")
    if args.dry_run:
        for m in methods:
            for i, c in enumerate(candidates(m, search["search"][m], budget)):
                print(f"{m} trial {i}: {c}")
        return 0
    out = Path(args.out)
    (out / "trials").mkdir(parents=True, exist_ok=True)
    for method in methods:
        table = tune_method(method, search, budget, out)
        chosen = json.loads(table.loc[table["chosen"], "config"].iloc[0])
        print(f"[mcbench-tune] {method}: chose {chosen}")
        if not args.no_write:
            write_choice(method, chosen)
            write_tuned_on([method], search, budget, "mcbench-tune " + " ".join(argv or sys.argv[1:]))
        table.to_csv(out / "trials" / f"{method}.csv", index=False)
    # one table of every method's trials (separate files per method, so methods can be tuned in parallel)
    table = pd.concat([pd.read_csv(f) for f in sorted((out / "trials").glob("*.csv"))], ignore_index=True)
    table.to_csv(out / "search.csv", index=False)
    (out / "search.md").write_text(_markdown(table, search, budget))
    print(f"[mcbench-tune] wrote {out / 'search.csv'} and {out / 'search.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
