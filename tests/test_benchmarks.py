"""The benchmark command runs end to end (``--quick``) and writes the JSON and Markdown it promises.
Structure and equalities only: no wall-clock assertions (the machine may be shared)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mcbench.encoders import PRETRAINED_DIR

REPO = Path(__file__).resolve().parent.parent

SECTIONS = ("extraction", "methods", "side_by_side", "architecture", "sweep", "scaling")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    if not (PRETRAINED_DIR / "mcbench-tiny-clip.safetensors").is_file():
        pytest.skip("the tiny CLIP weights are not built yet")
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--device", "cpu", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "benchmarks.json").read_text()), (out / "benchmarks.md").read_text(), out


@pytest.mark.slow
def test_quick_run_records_machine_versions_date_and_load(quick):
    data, _, _ = quick
    assert data["quick"] is True and data["schema"] == 1 and data["date"]
    assert data["machine"]["cores"] >= 1 and data["machine"]["versions"]["torch"]
    assert len(data["load_average"]["start"]) == 3
    assert set(SECTIONS) <= set(data) and set(SECTIONS) == set(data["sections_s"])


@pytest.mark.slow
def test_quick_run_has_every_section_with_its_numbers(quick):
    data, md, _ = quick
    assert {r["encoder"] for r in data["extraction"]} == {"tiny_clip", "vit_b32"}
    assert all(r["images_per_s"] > 0 for r in data["extraction"])
    rows = data["methods"]["rows"]
    assert {r["method"] for r in rows} == {"multi_map", "multi_sub", "multi_dproxy"}
    assert all(r["fit_s"] > 0 and r["epochs"] > 0 and r["peak_rss_mib"] >= 0 for r in rows)
    assert {r["method"] for r in data["side_by_side"]["rows"]} == {"multi_map", "multi_sub", "multi_dproxy"}
    assert {r["encoder"] for r in data["side_by_side"]["text_pass"]} == {"tiny_clip", "vit_b32"}
    runs = data["sweep"]["runs"]
    assert set(runs) == {"serial", "parallel"}
    # 3 methods x the 3 aspects of synth_shapes
    assert all(r["returncode"] == 0 and r["tasks_ok"] == 9 for r in runs.values())
    assert {r["method"] for r in data["scaling"]["n_images"]} == {"multi_map", "multi_sub", "multi_dproxy"}
    assert len(data["scaling"]["n_words"]) == 3 * len(data["settings"]["scaling_words"])
    for heading in ("Feature extraction", "Side by side", "A whole sweep", "Growth with N"):
        assert heading in md


@pytest.mark.slow
def test_official_style_loops_compute_the_methods_results(quick):
    """Same mathematics, other execution: the NMIs agree (Multi-MaP and Multi-DProxy exactly the same run)."""
    data, _, _ = quick
    for row in data["side_by_side"]["rows"]:
        assert row["equal_nmi"] and row.get("equal_nmi_same_batch", True), row
        assert row["speedup"] > 0


@pytest.mark.slow
def test_architecture_side_by_side_extrapolates_and_projects(quick):
    """The architecture section: both short runs agree (same batch, same computation), the official-style time
    is extrapolated from its own epochs, and every method has a projection for the three paper sizes."""
    data, md, _ = quick
    arch = data["architecture"]
    rows = {r["method"]: r for r in arch["rows"]}
    assert set(rows) == {"multi_map", "multi_sub", "multi_dproxy"}
    for r in rows.values():
        assert r["nmi_equal_short"], r["method"]
        short, extrapolated = r["official_short"], r["official_extrapolated"]
        assert len(short["epochs_s"]) >= 2 and short["setup_s"] >= 0 and short["readout_s"] >= 0
        assert extrapolated["fit_s"] > 0 and r["speedup"] > 0 and r["ours_full"]["epochs_s"]
    sub = rows["multi_sub"]["official_extrapolated"]["per_epoch"]
    assert set(sub) == {"phase1_s", "phase2_first_s", "phase2_s"}
    tasks = arch["projection"]["tasks"]
    assert {(t["method"], t["n_images"]) for t in tasks} == {(m, n) for m in rows for n in (105, 8029, 60000)}
    assert all(t["ours_s"] > 0 and t["ours_gpu_s_estimate"] > 0 and t["official_style_s"] > 0 for t in tasks)
    growth = {(g["method"], g["n_images"]) for g in arch["growth"]}
    assert len(growth) == 3 * (1 + len(data["settings"]["arch_n_growth"]))
    assert "papers' architecture" in md and "Projection to the papers' dataset sizes" in md


@pytest.mark.slow
def test_update_reruns_only_the_named_sections(quick):
    data, _, out = quick
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--device", "cpu", "--out", str(out),
                           "--sections", "scaling", "--update"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads((out / "benchmarks.json").read_text())
    assert all(again[name] == data[name] for name in SECTIONS if name != "scaling")
    assert set(again["sections_date"]) == set(SECTIONS)
    assert again["updated_from"]["date"] == data["date"]


def test_extrapolation_adds_setup_epochs_and_readout():
    """The official-style time at the configured epochs from a short run: Multi-Sub per phase, Multi-MaP with its
    unused prompt pass every 10 epochs."""
    from types import SimpleNamespace

    from benchmarks.architecture import extrapolate

    split = {"setup_s": 2.0, "epochs_s": [10.0, 4.0, 3.0], "readout_s": 1.0}
    sub = extrapolate("multi_sub", split, SimpleNamespace(rounds=2, phase1_epochs=5, phase2_epochs=3))
    assert sub["fit_s"] == 2.0 + 2 * (5 * 10.0 + 4.0 + 2 * 3.0) + 1.0
    mp = extrapolate("multi_map", {"setup_s": 1.0, "epochs_s": [2.0, 4.0], "readout_s": 0.5},
                     SimpleNamespace(epochs=25), unused_pass_s=0.25)
    assert mp["fit_s"] == 1.0 + 25 * 3.0 + 2 * 0.25 + 0.5


@pytest.mark.slow
def test_render_rebuilds_the_markdown_from_the_json(quick):
    """--render measures nothing: the projection and the Markdown again from the JSON, the same each time
    (in-process)."""
    from benchmarks import run

    _, _, out = quick
    before = json.loads((out / "benchmarks.json").read_text())
    run.main(["--render", "--out", str(out)])
    first = (out / "benchmarks.md").read_text()
    run.main(["--render", "--out", str(out)])
    assert (out / "benchmarks.md").read_text() == first and "Projection to the papers' dataset sizes" in first
    after = json.loads((out / "benchmarks.json").read_text())
    assert after["architecture"]["rows"] == before["architecture"]["rows"]  # measurements untouched
