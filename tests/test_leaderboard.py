import json

import pandas as pd
import pytest

from mcbench.leaderboard import build, main
from mcbench.results import ResultStore


def _row(method, aspect, seed, nmi, dataset="synth_cards", **hp):
    return {"run_id": f"{method}{aspect}{seed}{json.dumps(hp)}", "status": "ok", "method": method, "dataset": dataset,
            "aspect": aspect, "seed": seed, "encoder": "tiny_clip", "words_source": "declared",
            "nmi": nmi, "ri": nmi, "ari": nmi, "acc": nmi, "hparams": json.dumps(hp, sort_keys=True),
            "dataset_params": json.dumps({"n": 600, "difficulty": "easy"})}


@pytest.fixture
def results(tmp_path):
    store = ResultStore(tmp_path / "runs.csv")
    for seed, (a, b) in enumerate([(0.9, 0.5), (0.7, 0.5)]):
        store.append(_row("multi_map", "suits", seed, a, alpha=0.2))
        store.append(_row("multi_map", "suits", seed, b, alpha=0.3))
        store.append(_row("kmeans_image", "suits", seed, 0.6))
    store.append(_row("multi_map", "color", 0, 0.95, dataset="fruit", alpha=0.2))
    return tmp_path


def test_mean_std_runs_and_variants(results):
    board = build(results / "runs.csv", results / "out", plots=False)
    mm = board[(board["method"] == "multi_map") & (board["dataset"] == "synth_cards")].set_index("variant")
    assert mm.loc["alpha=0.2", "nmi_mean"] == pytest.approx(0.8)
    assert mm.loc["alpha=0.2", "nmi_std"] == pytest.approx(0.1414, abs=1e-4)
    assert mm.loc["alpha=0.2", "n_runs"] == 2 and mm.loc["alpha=0.2", "seeds"] == "0,1"


def test_markdown_bolds_the_best_and_reported_numbers_stay_apart(results):
    (results / "out").mkdir()
    (results / "out" / "reported.csv").write_text("method,dataset,aspect,nmi,ri,source\n"
                                                  "multi_map,fruit,color,0.8619,,Table 2\n")
    board = build(results / "runs.csv", results / "out", plots=False)
    md = (results / "out" / "leaderboard.md").read_text()
    assert "**0.8000 ± 0.1414**" in md and "| suits |" in md
    fruit = board[board["dataset"] == "fruit"].iloc[0]
    assert fruit["nmi_mean"] == 0.95 and fruit["reported_nmi"] == 0.8619 and fruit["reported_source"] == "Table 2"
    assert pd.read_csv(results / "out" / "leaderboard.csv")["reported_nmi"].notna().sum() == 1


def test_filters_and_plots(results):
    main(["--results", str(results / "runs.csv"), "--out", str(results / "out"), "--method", "kmeans_image"])
    board = pd.read_csv(results / "out" / "leaderboard.csv")
    assert set(board["method"]) == {"kmeans_image"}
    assert list((results / "out" / "plots").glob("*.png"))


def test_missing_results_file_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--results", str(tmp_path / "none.csv")])
    assert "run `mcbench` first" in capsys.readouterr().err


def test_gain_over_the_starting_point_is_paired_by_seed_with_an_interval(tmp_path):
    store = ResultStore(tmp_path / "runs.csv")
    for seed, (zs, mm, flat) in enumerate([(0.50, 0.70, 0.50), (0.52, 0.71, 0.53), (0.48, 0.69, 0.47)]):
        store.append(_row("zeroshot_gpt", "suits", seed, zs))
        store.append(_row("multi_map", "suits", seed, mm))
        store.append(_row("multi_sub", "suits", seed, flat))
    build(tmp_path / "runs.csv", tmp_path / "out", plots=False)
    g = pd.read_csv(tmp_path / "out" / "gains.csv").set_index("method")
    assert g.loc["multi_map", "nmi_gain"] == pytest.approx(0.2) and g.loc["multi_map", "verdict"] == "gain"
    assert g.loc["multi_sub", "verdict"] == "no gain (within seed noise)"
    assert "Gain over the starting point" in (tmp_path / "out" / "leaderboard.md").read_text()


def test_the_oracle_sits_beside_the_methods_and_is_never_bold(tmp_path):
    store = ResultStore(tmp_path / "runs.csv")
    store.append(_row("multi_map", "suits", 0, 0.6))
    store.append(_row("zeroshot_gpt", "suits", 0, 0.5))
    store.append(_row("zeroshot_label", "suits", 0, 0.9) | {"words_source": "class_names"})
    build(tmp_path / "runs.csv", tmp_path / "out", plots=False)
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert md.count("## synth_cards") == 1  # one table, not one per word source
    assert "| suits | 0.9000 | **0.6000** | 0.5000 |" in md and "zeroshot_label (oracle)" in md


def test_a_plot_per_dataset_shows_each_level(tmp_path):
    store = ResultStore(tmp_path / "runs.csv")
    for level, nmi in (("easy", 0.9), ("medium", 0.7), ("hard", 0.4)):
        row = _row("multi_map", "suits", 0, nmi) | {"dataset_params": json.dumps({"n": 600, "difficulty": level})}
        store.append(row | {"run_id": f"mm-{level}"})
    build(tmp_path / "runs.csv", tmp_path / "out")
    assert (tmp_path / "out" / "plots" / "synth_cards-tiny_clip-levels.png").is_file()
    assert len(list((tmp_path / "out" / "plots").glob("*.png"))) == 4  # a bar chart per level + the level plot


def test_float_noise_is_no_change_not_a_gain(tmp_path):
    store = ResultStore(tmp_path / "runs.csv")
    for seed in range(3):
        store.append(_row("zeroshot_gpt", "suits", seed, 0.5))
        store.append(_row("multi_map", "suits", seed, 0.5 + 1e-9))
    build(tmp_path / "runs.csv", tmp_path / "out", plots=False)
    g = pd.read_csv(tmp_path / "out" / "gains.csv").set_index("method")
    assert g.loc["multi_map", "verdict"] == "no change (same as the baseline)"
