"""The one benchmark command: ``python -m benchmarks.run [--quick] [--sections ...] [--out results]``.

Writes ``<out>/benchmarks.json`` (every number, the machine, versions, date and load average) and
``<out>/benchmarks.md`` (the same as tables). Full settings by default; ``--quick`` is a smoke version (tiny
sizes, one repeat) whose numbers are not for reading, only for checking that everything runs.
"""

from __future__ import annotations

import mcbench  # noqa: F401  (first: sets OMP_WAIT_POLICY=PASSIVE before torch starts its threads, as the CLI does)

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import report, sections
from benchmarks.common import REPO, load_average, machine, now

SECTIONS = ("extraction", "methods", "side_by_side", "architecture", "sweep", "scaling")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (the test's smoke run)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of: {', '.join(SECTIONS)}")
    parser.add_argument("--out", default=str(REPO / "results"), help="folder for benchmarks.json and benchmarks.md")
    parser.add_argument("--device", default="auto",
                        help="auto | cpu | cuda (the methods' device; extraction adds cuda whenever present)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per timing (median reported)")
    parser.add_argument("--arch-n", type=int, default=None,
                        help="N of the ViT-B/32 side by side (section architecture; 100 by default, paper N on a GPU)")
    parser.add_argument("--arch-growth", default=None,
                        help="comma list of the further N at which ours is measured for the projection (default 300)")
    parser.add_argument("--sweep-launchers", default=None,
                        help="comma list of the sweep section's launchers: serial, parallel (default both)")
    parser.add_argument("--merge", default=None, metavar="JSON",
                        help="measure nothing: copy the sections of another benchmarks.json into <out> (each keeps "
                             "its command, date and load), then re-render")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: re-derive the projection and the Markdown from <out>/benchmarks.json")
    parser.add_argument("--update", action="store_true",
                        help="keep the other sections of an existing <out>/benchmarks.json, rerun only --sections")
    args = parser.parse_args(argv)
    chosen = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.merge:
        merge(Path(args.merge), Path(args.out))
    if args.render or args.merge:
        return render(Path(args.out))
    settings = sections.Settings.quick_settings(args.device) if args.quick else sections.Settings(device=args.device)
    if args.repeats:
        settings.repeats = args.repeats
    if args.sweep_launchers:
        settings.sweep_launchers = tuple(x.strip() for x in args.sweep_launchers.split(",") if x.strip())
    if args.arch_n:
        settings.arch_n = args.arch_n
    if args.arch_growth:
        settings.arch_n_growth = tuple(int(x) for x in args.arch_growth.split(",") if x.strip())
    threads = sections.cpu_threads()
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    settings.arch_partial = str(folder / "architecture.partial.json")
    old = folder / "benchmarks.json"
    kept = json.loads(old.read_text()) if args.update and old.exists() else {}
    if kept and kept.get("quick") != settings.quick:
        parser.error("--update mixes a --quick run with a full one; rerun every section instead")
    out: dict[str, Any] = {
        "schema": 1,
        "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": settings.quick,
        "date": now(),
        "machine": machine(),
        "shared_machine_note": "other jobs may run on this machine; see load_average (1, 5, 15 min) per section",
        "load_average": {"start": load_average()},
        "torch_threads": threads,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(settings).items()},
        "sections_s": {},
        "sections_date": {},
    }
    if kept:
        out["updated_from"] = {"command": kept["command"], "date": kept["date"]}
    for name in SECTIONS:  # --update: sections not rerun stay as they were measured
        if name in kept and name not in chosen:
            out[name] = kept[name]
            out["sections_s"][name] = kept.get("sections_s", {}).get(name)
            out["sections_date"][name] = kept.get("sections_date", {}).get(name, kept["date"])
            if name in kept.get("load_average", {}):
                out["load_average"][name] = kept["load_average"][name]
    for name in chosen:
        print(f"[benchmarks] {name} ...", flush=True)
        before = load_average()
        start = time.perf_counter()
        out[name] = getattr(sections, name)(settings)
        torch.set_num_threads(threads)  # a section may have built encoders; keep the runner's thread count
        out["sections_s"][name] = round(time.perf_counter() - start, 1)
        out["sections_date"][name] = now()
        out["load_average"][name] = {"before": before, "after": load_average()}
        if name == "architecture":
            Path(settings.arch_partial).unlink(missing_ok=True)
        print(f"[benchmarks] {name}: {out['sections_s'][name]} s", flush=True)
    out["load_average"]["end"] = load_average()
    out = {**{k: v for k, v in out.items() if k not in SECTIONS}, **{k: out[k] for k in SECTIONS if k in out}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "benchmarks.json").write_text(json.dumps(out, indent=1) + "\n")
    (folder / "benchmarks.md").write_text(report.markdown(out))
    print(f"[benchmarks] wrote {folder / 'benchmarks.json'} and {folder / 'benchmarks.md'}")
    return out


def merge(source: Path, folder: Path) -> None:
    """Copy every section of ``source`` (another run's benchmarks.json) into ``<folder>/benchmarks.json``, each with
    its own command, date, wall time and load average (``section_commands`` records where it came from)."""
    src = json.loads(source.read_text())
    path = folder / "benchmarks.json"
    data = json.loads(path.read_text())
    if src.get("quick") != data.get("quick"):
        raise SystemExit("--merge mixes a --quick run with a full one")
    commands = data.setdefault("section_commands", {})
    for name in SECTIONS:
        if name not in src:
            continue
        data[name] = src[name]
        data.setdefault("sections_s", {})[name] = src.get("sections_s", {}).get(name)
        data.setdefault("sections_date", {})[name] = src.get("sections_date", {}).get(name, src["date"])
        if name in src.get("load_average", {}):
            data.setdefault("load_average", {})[name] = src["load_average"][name]
        commands[name] = src["command"]
        print(f"[benchmarks] merged section {name} from {source} ({src['command']})")
    order = [k for k in data if k not in SECTIONS] + [k for k in SECTIONS if k in data]
    path.write_text(json.dumps({k: data[k] for k in order}, indent=1) + "\n")


def render(folder: Path) -> dict[str, Any]:
    """The Markdown (and the architecture section's projection, a pure function of its measurements) again from
    an existing benchmarks.json: for a change of the report or the projection model, nothing re-measured."""
    from benchmarks import projection

    path = folder / "benchmarks.json"
    if not path.exists():
        raise SystemExit(f"--render needs {path}; run the benchmarks first (python -m benchmarks.run --out {folder})")
    data = json.loads(path.read_text())
    if "architecture" in data:
        data["architecture"]["projection"] = projection.project(data["architecture"])
    path.write_text(json.dumps(data, indent=1) + "\n")
    (folder / "benchmarks.md").write_text(report.markdown(data))
    print(f"[benchmarks] re-rendered {path} and {folder / 'benchmarks.md'}")
    return data


if __name__ == "__main__":
    main()
