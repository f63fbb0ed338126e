"""The layering rules of docs/architecture.md, checked on the source (static imports, every import statement,
including those inside functions): no import cycle in ``src/mcbench``, the library never imports a command,
method files import only the contracts, the prompts, the protocol and other methods, no framework module over
450 lines; and the row schema is the one place a metric is declared."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mcbench"
METHODS_DIR = ROOT / "methods"
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["mcbench", *parts])


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The mcbench modules ``path`` imports (``from a import b`` counts as ``a.b`` when that is a module)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    resolved = set()
    for imported in found:
        while imported and imported not in known:  # mcbench.data.base.Aspect -> mcbench.data.base
            imported = imported.rpartition(".")[0]
        if imported and imported != name:
            resolved.add(imported)
    return resolved


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    known = set(files) | {"mcbench.methods"}
    return {name: _imports(path, name, known) for name, path in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), ignoring package ``__init__`` edges."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_the_framework():
    # a package's __init__ importing its own modules is no cycle of concepts: leave those edges out
    graph = {m: {d for d in deps if not (m.startswith(d + ".") and d in graph_packages())} for m, deps in _graph().items()}
    assert _cycles(graph) == []


def graph_packages() -> set[str]:
    return {_module_name(p) for p in SRC.rglob("__init__.py")}


def test_the_library_never_imports_a_command():
    offenders = {m: sorted(d for d in deps if d.startswith("mcbench.commands"))
                 for m, deps in _graph().items() if not m.startswith("mcbench.commands")}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_method_files_import_only_contracts_prompts_protocol_and_other_methods():
    allowed = ("mcbench.contracts", "mcbench.prompts", "mcbench.protocol", "mcbench.methods")
    bad = {}
    for path in METHODS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue  # annotations only (the encoder type), never executed
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                if name.startswith("mcbench") and not name.startswith(allowed):
                    bad.setdefault(path.name, []).append(name)
    assert bad == {}


def test_no_framework_module_is_longer_than_450_lines():
    long = {str(p.relative_to(ROOT)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_a_metric_declared_once_in_the_row_schema_reaches_the_scores_the_row_tables_and_wandb(monkeypatch):
    """Adding a metric is one line in ``mcbench.results.schema``: the evaluator scores it, the sweep table, the
    leaderboard's aggregation and W&B's summary columns carry it."""
    import pandas as pd

    from mcbench.metrics import score_partitions
    from mcbench.results import schema
    from mcbench.results.leaderboard import aggregate
    from mcbench.results.sweep_table import format_rows

    extra = schema.Metric("fmi", "FMI", "sklearn.metrics:fowlkes_mallows_score")
    monkeypatch.setattr(schema, "METRICS", (*schema.METRICS, extra))
    truth, found = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 1, 1, 1, 2])
    scores = score_partitions(truth, [found])
    assert 0 < scores["fmi"] < 1
    assert "fmi" in schema.summary_columns()
    row = {"method": "m", "dataset": "d", "aspect": "a", "seed": 0, "k": 3, "runtime_s": 1.0,
           **{m: scores[m] for m in schema.metric_names()}}
    assert "FMI" in format_rows([row]).splitlines()[0]
    board = aggregate(pd.DataFrame([{**row, "run_id": "r1", "encoder": "e", "words_source": "w", "variant": "",
                                     "setting": "", "selection": "named", "tuned": False}]))
    assert board["fmi_mean"].iloc[0] == pytest.approx(scores["fmi"], abs=1e-4)


def test_the_documented_new_method_is_two_files_and_runs(tmp_path):
    """docs/architecture.md's worked example, verbatim: its method file in methods/ and its YAML in conf/method/
    are all it takes for ``mcbench method=my_method`` to run, with its settings checked (removed afterwards)."""
    import re
    import subprocess
    import sys

    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    example = doc[doc.index("### A new method: 2 files"):doc.index("### A new paper dataset")]
    code = re.search(r"```python\n(.*?)```", example, re.S).group(1)
    yaml = re.search(r"```yaml\n(.*?)```", example, re.S).group(1)
    name = re.search(r'register_method\("(\w+)"\)', code).group(1)
    method_file, yaml_file = METHODS_DIR / f"{name}.py", ROOT / "conf" / "method" / f"{name}.yaml"
    if method_file.exists() or yaml_file.exists():
        pytest.skip(f"{method_file} or {yaml_file} exists already")
    mcbench = [sys.executable, "-c", "from mcbench.commands.cli import main; main()"]
    try:
        method_file.write_text(code, encoding="utf-8")
        yaml_file.write_text(yaml, encoding="utf-8")
        ok = subprocess.run([*mcbench, f"method={name}", "dataset=synth_fruit", "dataset.n=40", "method.scale=2",
                             "encoder=tiny_clip_random", "logger=none", f"results_file={tmp_path}/runs.csv",
                             f"hydra.run.dir={tmp_path}/out"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        typo = subprocess.run([*mcbench, f"method={name}", "method.scal=2"], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)
    finally:
        method_file.unlink(missing_ok=True)
        yaml_file.unlink(missing_ok=True)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert ok.stdout.count(name) >= 2 and (tmp_path / "runs.csv").is_file()
    assert typo.returncode != 0 and f"method.scal is not a setting of method '{name}'" in typo.stderr
