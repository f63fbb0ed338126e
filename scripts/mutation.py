"""Mutation testing of the proxy methods' loss code with cosmic-ray (issue 18; docs/mutation.md).

    .venv/bin/python scripts/mutation.py                    # all three methods, then the issue's named mutants
    .venv/bin/python scripts/mutation.py --methods multi_sub --workers 2

What it does:

1. Copies the package (src/mcbench with methods/, conf/, datasets/ where an installed mcbench has them) and tests/
   into a scratch tree (``--workdir``), so that mutating a file never touches the working tree other processes
   import from. Tests run there with that copy first on ``PYTHONPATH``.
2. Per method: ``cosmic-ray init`` over the method file, then every mutation outside the loss code (``TARGETS``:
   the functions that compute, weight or step on a loss term) or by an operator outside ``KEPT_OPERATORS`` is
   marked skipped, and ``cosmic-ray exec`` runs
   ``TEST_COMMAND`` (the fast tests that pin the objectives) against each remaining mutant.
3. The mutations issue 18 names (sign of α, dropped α or β, flipped β·L_c, dropped L_u, flipped or removed
   Phase II) are applied by text replacement and must each fail the same tests.

Writes ``results/mutation.json`` and ``results/mutation.md`` (``--out``): the score per method, every surviving
mutant with its diff, and the named mutants' verdicts. Exit status 1 if a named mutant survives.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

#: the fast tests that pin the objectives (run against every mutant)
TEST_FILES = ("tests/test_objectives.py",)

#: per method file, the functions (``name`` or ``Class.name``) holding its loss code
TARGETS = {
    "multi_map": ("alignment_loss", "constraint_loss", "mean_pairwise_mse", "MultiMaP.batch_objective",
                  "MultiMaP.constraint_scales", "MultiMaP.effective_hparams"),
    "multi_sub": ("clustering_loss", "MultiSub._phase1_epoch", "MultiSub._phase2_epoch"),
    "multi_dproxy": ("alpha_schedule", "beta_schedule", "loss_weights", "loss_align", "loss_user", "loss_contrast",
                     "batch_objective"),
}

#: the operators kept: those that flip or drop a term (+ ↔ −, × ↔ ÷, a sign removed, a constant changed, a
#: comparison or condition negated, a loop never entered). Left out, to fit the run in the time a 2-core machine
#: gives: swaps to bitwise, shift, modulo, floor-division and power operators (type errors on float tensors, or
#: ``float | str`` annotations) and the cross swaps + ↔ ×, − ↔ ×, ÷ → −, ** → × (reweightings).
KEPT_OPERATORS = (
    "NumberReplacer", "ReplaceBinaryOperator_Add_Sub", "ReplaceBinaryOperator_Sub_Add",
    "ReplaceBinaryOperator_Mul_Div", "ReplaceBinaryOperator_Div_Mul", "ReplaceUnaryOperator_USub_UAdd",
    "ReplaceUnaryOperator_Delete_USub", "ReplaceUnaryOperator_Delete_Not", "ReplaceComparisonOperator_Eq_NotEq",
    "ReplaceComparisonOperator_NotEq_Eq", "ReplaceComparisonOperator_Lt_GtE", "ReplaceComparisonOperator_Gt_LtE",
    "ReplaceComparisonOperator_LtE_Gt", "ReplaceComparisonOperator_GtE_Lt", "ReplaceComparisonOperator_Is_IsNot",
    "ReplaceComparisonOperator_IsNot_Is", "AddNot", "ReplaceTrueWithFalse", "ReplaceFalseWithTrue",
    "ReplaceAndWithOr", "ReplaceOrWithAnd", "ZeroIterationForLoop",
)

#: issue 18's named mutations: (method, what, old text, new text); each must make a test fail
NAMED = (
    ("multi_map", "flip the sign of α", 'loss = terms["align"] + alpha * terms["concept"]',
     'loss = terms["align"] - alpha * terms["concept"]'),
    ("multi_map", "drop α·L_concept", 'loss = terms["align"] + alpha * terms["concept"] + beta * terms["reference"]',
     'loss = terms["align"] + beta * terms["reference"]'),
    ("multi_map", "drop β·L_reference", 'loss = terms["align"] + alpha * terms["concept"] + beta * terms["reference"]',
     'loss = terms["align"] + alpha * terms["concept"]'),
    ("multi_map", "configured α, β instead of the effective ones", "alpha, beta = effective[\"alpha\"], effective[\"beta\"]",
     "alpha, beta = c.alpha, c.beta"),
    ("multi_dproxy", "flip β·L_c", 'return terms["l_a"] + alpha * terms["l_u"] + beta * terms["l_c"], terms',
     'return terms["l_a"] + alpha * terms["l_u"] - beta * terms["l_c"], terms'),
    ("multi_dproxy", "drop L_u", 'return terms["l_a"] + alpha * terms["l_u"] + beta * terms["l_c"], terms',
     'return terms["l_a"] + beta * terms["l_c"], terms'),
    ("multi_dproxy", "drop L_u from the fit (α = 0)", "alpha, beta = loss_weights(cfg, epoch)",
     "alpha, beta = 0.0, loss_weights(cfg, epoch)[1]"),
    ("multi_sub", "flip the Phase II step (ascend)",
     "loss, intra, inter = clustering_loss(v, labels[idx], cfg.lam, cfg.margin, cfg.intra_distance)\n"
     "            opt.zero_grad(set_to_none=True)\n            loss.backward()",
     "loss, intra, inter = clustering_loss(v, labels[idx], cfg.lam, cfg.margin, cfg.intra_distance)\n"
     "            opt.zero_grad(set_to_none=True)\n            (-loss).backward()"),
    ("multi_sub", "remove the Phase II step",
     "                sums = self._phase2_epoch(task, opt2, w, labels, h, weight, bias, gen)\n",
     "                sums = np.zeros(3)\n"),
)

CONFIG = """[cosmic-ray]
module-path = "{module}"
timeout = {timeout}
excluded-modules = []
test-command = "{test_command}"

[cosmic-ray.distributor]
name = "local"
"""


def build_tree(workdir: Path) -> Path:
    """A scratch copy: <workdir>/pkg/mcbench (package, methods, conf, dataset files), <workdir>/tests."""
    if workdir.exists():
        shutil.rmtree(workdir)
    pkg = workdir / "pkg" / "mcbench"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "pretrained")
    shutil.copytree(REPO / "src" / "mcbench", pkg, ignore=skip)
    (pkg / "pretrained").symlink_to(REPO / "src" / "mcbench" / "pretrained")  # the tiny CLIP weights, read-only
    shutil.copytree(REPO / "methods", pkg / "methods", ignore=skip)
    shutil.copytree(REPO / "conf", pkg / "conf", ignore=skip)
    shutil.copytree(REPO / "datasets", pkg / "dataset_files", ignore=shutil.ignore_patterns("__pycache__", "*.npz",
                                                                                             "*.npy", "*.zip"))
    shutil.copytree(REPO / "tests", workdir / "tests", ignore=skip)
    shutil.copy(REPO / "pyproject.toml", workdir / "pyproject.toml")  # pytest markers
    return pkg


def environment(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(workdir / "pkg") + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant's bytecode must never be reused for another
    env.setdefault("MCBENCH_CACHE", str(workdir / "cache"))
    return env


PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", *TEST_FILES)
SOCKET = "pytest.sock"


def test_command(method: str) -> str:
    """What cosmic-ray runs per mutant: a client of the warm test server (``serve``), which forks a pytest run of
    the tests named after ``method`` (``-k``)."""
    return f"{PYTHON} {Path(__file__).resolve()} --client {method}"


def serve(workdir: Path) -> None:
    """A warm test server: torch, open_clip, sklearn, pandas, hydra and the framework's own modules (from the scratch
    copy) imported once, never a method file; then one forked ``pytest.main`` per request, so each mutant's run
    imports only the (mutated) method files fresh.
    Nothing runs a torch op before forking, so no thread pool is copied into the children."""
    import signal
    import socket

    import hydra  # noqa: F401
    import open_clip  # noqa: F401
    import pandas  # noqa: F401
    import pytest
    import sklearn.cluster  # noqa: F401
    import torch  # noqa: F401

    os.chdir(workdir)
    sys.path.insert(0, str(workdir / "pkg"))
    # the framework (from the scratch copy), never the method files: each child imports those fresh, mutated
    for module in ("mcbench.contracts", "mcbench.prompts", "mcbench.encoders", "mcbench.features", "mcbench.runner",
                   "mcbench.data.base", "mcbench.metrics", "mcbench.words"):
        __import__(module)
    loaded = sorted(m for m in sys.modules if m.startswith("mcbench.methods."))
    if loaded or not sys.modules["mcbench"].__file__.startswith(str(workdir)):
        raise SystemExit(f"scripts/mutation.py: the test server pre-imported {loaded or 'mcbench from elsewhere'}")
    path = workdir / SOCKET
    if path.exists():
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        conn, _ = server.accept()
        with conn:
            method = conn.recv(64).decode().strip()
            pid = os.fork()
            if pid == 0:  # the child: a fresh pytest session on the current (mutated) files
                server.close()
                sys.path.insert(0, str(workdir / "pkg"))
                code = pytest.main([*PYTEST_ARGS, *(["-k", method] if method else [])])
                os._exit(int(code))
            _, status = os.waitpid(pid, 0)
            conn.sendall(str(os.waitstatus_to_exitcode(status)).encode())


def client(workdir: Path, method: str) -> int:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(workdir / SOCKET))
        conn.sendall(method.encode() or b" ")
        reply = conn.recv(16).decode()
    return int(reply) if reply.lstrip("-").isdigit() else 1


def start_server(workdir: Path, env: dict[str, str]) -> subprocess.Popen:
    if (workdir / SOCKET).exists():  # a previous run's socket: wait for this server's own
        (workdir / SOCKET).unlink()
    log = (workdir / "server.log").open("w")  # every forked pytest run's output
    proc = subprocess.Popen([PYTHON, str(Path(__file__).resolve()), "--serve", "--workdir", str(workdir)],
                            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        if (workdir / SOCKET).exists():
            return proc
        if proc.poll() is not None:
            raise SystemExit("scripts/mutation.py: the test server did not start")
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("scripts/mutation.py: the test server did not start within 5 minutes")


def run_tests(workdir: Path, env: dict[str, str], method: str = "") -> int:
    return subprocess.run([*test_command(method).split(), "--workdir", str(workdir)], cwd=workdir, env=env).returncode


def target_lines(path: Path, names: tuple[str, ...]) -> list[tuple[int, int]]:
    """1-based inclusive line ranges of the named functions (``Class.method`` for methods)."""
    tree = ast.parse(path.read_text())
    found: dict[str, tuple[int, int]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = (node.lineno, node.end_lineno)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{item.name}"] = (item.lineno, item.end_lineno)
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"scripts/mutation.py: {path.name} has no function {', '.join(missing)}; update TARGETS")
    return [found[n] for n in names]


def skip_outside(session: Path, ranges: list[tuple[int, int]]) -> tuple[int, int]:
    """Mark every mutation outside ``ranges``, or by an operator not in ``KEPT_OPERATORS``, as skipped; returns
    (kept, skipped)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    kept = skipped = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in db.work_items:
            line = item.mutations[0].start_pos[0]
            operator = item.mutations[0].operator_name.split("/")[-1]
            if any(lo <= line <= hi for lo, hi in ranges) and operator.startswith(KEPT_OPERATORS):
                kept += 1
                continue
            db.set_result(item.job_id, WorkResult(output=None, test_outcome=None, diff=None,
                                                  worker_outcome=WorkerOutcome.SKIPPED))
            skipped += 1
    return kept, skipped


def outcomes(session: Path) -> list[dict]:
    """Each executed mutant: operator, line, test outcome (killed/survived/incompetent), diff."""
    from cosmic_ray.work_db import WorkDB, use_db

    rows = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome.value == "skipped":
                continue
            m = item.mutations[0]
            rows.append({"operator": m.operator_name, "occurrence": m.occurrence, "line": m.start_pos[0],
                         "worker": result.worker_outcome.value,
                         "test": result.test_outcome.value if result.test_outcome else None,
                         "diff": result.diff or ""})
    return rows


def summarize(method: str, session: Path, seconds: float | None = None) -> dict:
    """The score of one method's session (also of a run still under way: only executed mutants count)."""
    rows = outcomes(session)
    killed = sum(r["test"] == "killed" for r in rows)
    survived = [r for r in rows if r["test"] == "survived"]
    incompetent = sum(r["test"] == "incompetent" for r in rows)
    timed_out = sum(r["worker"] == "timeout" for r in rows)
    scored = killed + len(survived) + timed_out
    from cosmic_ray.work_db import WorkDB, use_db

    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = sum(1 for _ in db.pending_work_items)
    return {"method": method, "targets": list(TARGETS[method]), "mutants": len(rows), "pending": pending,
            "killed": killed, "timeout": timed_out, "incompetent": incompetent, "survived": len(survived),
            "score": round((killed + timed_out) / scored, 4) if scored else None, "seconds": seconds,
            "survivors": survived}


def run_cosmic_ray(method: str, workdir: Path, pkg: Path, timeout: float, env: dict[str, str]) -> dict:
    module = pkg / "methods" / f"{method}.py"
    cfg = workdir / f"{method}.toml"
    cfg.write_text(CONFIG.format(module=module, timeout=timeout, test_command=f"{test_command(method)} --workdir {workdir}"))
    session = workdir / f"{method}.sqlite"
    subprocess.run([PYTHON, "-m", "cosmic_ray.cli", "init", str(cfg), str(session)], cwd=workdir, env=env, check=True)
    kept, skipped = skip_outside(session, target_lines(module, TARGETS[method]))
    print(f"[mutation] {method}: {kept} mutants in the loss code ({skipped} elsewhere or by other operators)", flush=True)
    start = time.perf_counter()
    subprocess.run([PYTHON, "-m", "cosmic_ray.cli", "exec", str(cfg), str(session)], cwd=workdir, env=env, check=True)
    return summarize(method, session, round(time.perf_counter() - start, 1))


def run_named(method: str, what: str, old: str, new: str, pkg: Path, workdir: Path, env: dict[str, str]) -> dict:
    module = pkg / "methods" / f"{method}.py"
    original = module.read_text()
    if original.count(old) < 1:
        raise SystemExit(f"scripts/mutation.py: the named mutant '{what}' no longer matches {method}.py; update NAMED")
    module.write_text(original.replace(old, new, 1))
    try:
        code = run_tests(workdir, env, method)
    finally:
        module.write_text(original)
    return {"method": method, "mutation": what, "killed": code != 0}


def markdown(report: dict) -> str:
    lines = ["# Mutation testing of the loss code", "", f"Made by `{report.get('command', '')}` on "
             f"{report.get('date', '')} (cosmic-ray {report.get('cosmic_ray', '')}; tests: {', '.join(TEST_FILES)}).", "",
             "| method | functions mutated | mutants run | not yet run | killed | timed out | survived | incompetent "
             "| score | time (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["cosmic_ray_runs"]:
        lines.append(f"| {r['method']} | {', '.join(f'`{t}`' for t in r['targets'])} | {r['mutants']} | "
                     f"{r.get('pending', 0)} | {r['killed']} | {r['timeout']} | {r['survived']} | {r['incompetent']} | "
                     f"{r['score']} | {r['seconds'] if r['seconds'] is not None else '–'} |")
    lines += ["", "Score = (killed + timed out) / (killed + timed out + survived); incompetent mutants (the module "
              "no longer imports) are not counted.", "", "## Named mutants (issue 18)", "",
              "| method | mutation | killed |", "|---|---|---|"]
    for r in report["named"]:
        lines.append(f"| {r['method']} | {r['mutation']} | {'yes' if r['killed'] else '**no**'} |")
    survivors = [(r["method"], s) for r in report["cosmic_ray_runs"] for s in r["survivors"]]
    lines += ["", "## Surviving mutants", ""]
    if not survivors:
        lines.append("None.")
    for method, s in survivors:
        lines += [f"* {method} line {s['line']} ({s['operator']}):", "", "```diff", s["diff"].strip(), "```", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(TARGETS))
    parser.add_argument("--workdir", default="/tmp/mcbench-mutation")
    parser.add_argument("--out", default=str(REPO / "results"))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant's test run")
    parser.add_argument("--skip-cosmic-ray", action="store_true", help="only the named mutants")
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from the sessions already in --workdir (also of a run under way)")
    parser.add_argument("--retest-survivors", action="store_true",
                        help="after a run: copy the current tests into --workdir and rerun only the surviving mutants")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # internal: the warm test server
    parser.add_argument("--client", nargs="?", const="", default=None, help=argparse.SUPPRESS)  # internal: one run
    args = parser.parse_args()
    workdir = Path(args.workdir)
    if args.serve:
        return serve(workdir)
    if args.client is not None:
        sys.exit(client(workdir, args.client))
    if args.report_only:
        return write_report(args, {"cosmic_ray_runs": [summarize(m, workdir / f"{m}.sqlite")
                                                       for m in args.methods.split(",")
                                                       if (workdir / f"{m}.sqlite").exists()], "named": []})
    if args.retest_survivors:
        shutil.rmtree(workdir / "tests")
        shutil.copytree(REPO / "tests", workdir / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        pkg = workdir / "pkg" / "mcbench"
    else:
        pkg = build_tree(workdir)
    env = environment(workdir)
    server = start_server(workdir, env)
    try:
        (retest_survivors if args.retest_survivors else run_all)(args, workdir, pkg, env)
    finally:
        server.terminate()
        server.wait()


def retest_survivors(args: argparse.Namespace, workdir: Path, pkg: Path, env: dict[str, str]) -> None:
    """Rerun the surviving mutants of the sessions in ``workdir`` against the current tests; the named mutants'
    verdicts are kept from the previous report in ``--out``."""
    if run_tests(workdir, env) != 0:  # a mutant only counts as killed if the unmutated copy passes
        raise SystemExit("scripts/mutation.py: the tests fail on the unmutated copy")
    previous = Path(args.out) / "mutation.json"
    report = {"cosmic_ray_runs": [], "named": json.loads(previous.read_text())["named"] if previous.exists() else []}
    for method in args.methods.split(","):
        session = workdir / f"{method}.sqlite"
        if not session.exists():
            continue
        con = sqlite3.connect(session)
        with con:
            con.execute("delete from work_results where test_outcome = 'SURVIVED'")
        con.close()
        start = time.perf_counter()
        cfg = workdir / f"{method}.toml"
        subprocess.run([PYTHON, "-m", "cosmic_ray.cli", "exec", str(cfg), str(session)], cwd=workdir, env=env,
                       check=True)
        report["cosmic_ray_runs"].append(summarize(method, session, round(time.perf_counter() - start, 1)))
        write_report(args, report)
    print(markdown(report))


def run_all(args: argparse.Namespace, workdir: Path, pkg: Path, env: dict[str, str]) -> None:
    methods = args.methods.split(",")
    report: dict = {"cosmic_ray_runs": [], "named": []}
    if run_tests(workdir, env) != 0:
        raise SystemExit("scripts/mutation.py: the tests fail on the unmutated copy")
    for method in methods:
        for m, what, old, new in NAMED:
            if m == method:
                report["named"].append(run_named(m, what, old, new, pkg, workdir, env))
                print(f"[mutation] {m}: {what}: {'killed' if report['named'][-1]['killed'] else 'SURVIVED'}", flush=True)
        if not args.skip_cosmic_ray:
            report["cosmic_ray_runs"].append(run_cosmic_ray(method, workdir, pkg, args.timeout, env))
        write_report(args, report)  # after each method, so a stopped run leaves what it measured
    print(markdown(report))
    if not all(r["killed"] for r in report["named"]):
        raise SystemExit(1)


def write_report(args: argparse.Namespace, report: dict) -> None:
    from importlib.metadata import version

    report = {"command": "python scripts/mutation.py " + " ".join(sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cosmic_ray": version("cosmic-ray"),
              **report}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mutation.json").write_text(json.dumps(report, indent=1))
    (out / "mutation.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
