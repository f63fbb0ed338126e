import json

import numpy as np
import pandas as pd
import pytest

from mcbench.commands.leaderboard import main
from mcbench.results.leaderboard import build
from mcbench.results.store import ResultStore


def _row(method, aspect, seed, nmi, dataset="synth_cards", dataset_seed=10, level="easy", **extra):
    hp = extra.pop("hp", {})
    row = {"run_id": f"{method}{aspect}{seed}{dataset}{dataset_seed}{level}{json.dumps(hp)}", "status": "ok",
           "method": method, "dataset": dataset, "aspect": aspect, "seed": seed, "encoder": "tiny_clip",
           "words_source": "declared", "nmi": nmi, "ri": nmi, "ari": nmi, "acc": nmi,
           "hparams": json.dumps(hp, sort_keys=True),
           "dataset_params": json.dumps({"n": 600, "difficulty": level, "seed": dataset_seed}),
           "dataset_seed": dataset_seed, "difficulty": level, "tuned_on": "untuned", "selection": "named",
           "ceiling_nmi": "", "ceiling_acc": ""}
    return row | extra


def _build(tmp_path, rows, **kw):
    store = ResultStore(tmp_path / "runs.csv")
    for row in rows:
        store.append(row)
    board = build(tmp_path / "runs.csv", tmp_path / "out", plots=kw.pop("plots", False), **kw)
    gains = pd.read_csv(tmp_path / "out" / "gains.csv")
    return board, gains, (tmp_path / "out" / "leaderboard.md").read_text()


def _table_line(md, aspect, metric="NMI"):
    return next(line for line in md.splitlines() if line.startswith(f"| {aspect} | {metric} |"))


@pytest.fixture
def results(tmp_path):
    store = ResultStore(tmp_path / "runs.csv")
    for seed, (a, b) in enumerate([(0.9, 0.5), (0.7, 0.5)]):
        store.append(_row("multi_map", "suits", seed, a, hp={"alpha": 0.2}))
        store.append(_row("multi_map", "suits", seed, b, hp={"alpha": 0.3}))
        store.append(_row("kmeans_image", "suits", seed, 0.6))
    store.append(_row("multi_map", "color", 0, 0.95, dataset="fruit", dataset_seed="", level="",
                      hp={"alpha": 0.2}))
    return tmp_path


def test_mean_std_runs_and_variants(results):
    board = build(results / "runs.csv", results / "out", plots=False)
    mm = board[(board["method"] == "multi_map") & (board["dataset"] == "synth_cards")].set_index("variant")
    assert mm.loc["alpha=0.2", "nmi_mean"] == pytest.approx(0.8)
    assert mm.loc["alpha=0.2", "nmi_std"] == pytest.approx(0.1414, abs=1e-4)
    assert mm.loc["alpha=0.2", "n_runs"] == 2 and mm.loc["alpha=0.2", "seeds"] == "0,1"
    assert mm.loc["alpha=0.2", "n_image_sets"] == 1 and mm.loc["alpha=0.2", "image_sets"] == "synth_cards/easy/seed=10"


def test_markdown_bolds_the_best_and_reported_numbers_stay_apart(results):
    (results / "out").mkdir()
    (results / "out" / "reported.csv").write_text("method,dataset,aspect,nmi,ri,source\n"
                                                  "multi_map,fruit,color,0.8619,,Table 2\n")
    board = build(results / "runs.csv", results / "out", plots=False)
    md = (results / "out" / "leaderboard.md").read_text()
    assert "**0.8000 ± 0.1414**" in md and "| suits | NMI |" in md
    fruit = board[board["dataset"] == "fruit"].iloc[0]
    assert fruit["nmi_mean"] == 0.95 and fruit["reported_nmi"] == 0.8619 and fruit["reported_source"] == "Table 2"
    assert pd.read_csv(results / "out" / "leaderboard.csv")["reported_nmi"].notna().sum() == 1


def test_a_single_run_has_a_blank_std_and_the_runs_column_reads_as_image_sets_times_seeds(results):
    build(results / "runs.csv", results / "out", plots=False)
    board = pd.read_csv(results / "out" / "leaderboard.csv")
    fruit = board[board["dataset"] == "fruit"].iloc[0]
    assert np.isnan(fruit["nmi_std"])  # blank in the CSV, not 0.0
    md = (results / "out" / "leaderboard.md").read_text()
    assert "| color | NMI | **0.9500** | 1 × 1 |" in md
    assert "runs (image sets × seeds)" in md
    assert _table_line(md, "suits").endswith("| 1 × 2 |")


def test_metric_option_chooses_the_markdown_metrics(results, capsys):
    out = results / "out"
    main(["--results", str(results / "runs.csv"), "--out", str(out), "--no-plots"])
    md = (out / "leaderboard.md").read_text()
    assert md.startswith("# mcbench leaderboard (NMI, RI)") and "| suits | RI |" in md  # default: NMI and RI
    main(["--results", str(results / "runs.csv"), "--out", str(out), "--no-plots", "--metric", "acc"])
    md = (out / "leaderboard.md").read_text()
    assert "| suits | ACC |" in md and "| suits | NMI |" not in md and "| suits | RI |" not in md
    with pytest.raises(SystemExit):
        main(["--results", str(results / "runs.csv"), "--out", str(out), "--metric", "f1"])
    assert "unknown metric(s) f1" in capsys.readouterr().err


def test_filters_and_plots(results):
    main(["--results", str(results / "runs.csv"), "--out", str(results / "out"), "--method", "kmeans_image"])
    board = pd.read_csv(results / "out" / "leaderboard.csv")
    assert set(board["method"]) == {"kmeans_image"}
    assert list((results / "out" / "plots").glob("*.png"))


def test_missing_results_file_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--results", str(tmp_path / "none.csv")])
    assert "run `mcbench` first" in capsys.readouterr().err


def _over_image_sets(gains_by_set, methods=("multi_map",), seeds=(0,), zs=0.5, ceiling=""):
    rows = []
    for dataset_seed, gain in gains_by_set.items():
        for seed in seeds:
            rows.append(_row("zeroshot_gpt", "suits", seed, zs, dataset_seed=dataset_seed, ceiling_nmi=ceiling))
            for method in methods:
                rows.append(_row(method, "suits", seed, zs + gain, dataset_seed=dataset_seed, ceiling_nmi=ceiling))
    return rows


def test_gains_are_paired_by_image_set_and_replicated_over_image_sets(tmp_path):
    by_set = {10: 0.20, 11: 0.18, 12: 0.22, 13: 0.19, 14: 0.21}
    rows = _over_image_sets(by_set, seeds=(0, 1))
    # a second method: gains that change sign between image sets, and one level of another baseline
    for dataset_seed, gain in zip(by_set, (0.1, -0.1, 0.05, -0.05, 0.0)):
        for seed in (0, 1):
            rows.append(_row("multi_sub", "suits", seed, 0.5 + gain, dataset_seed=dataset_seed))
    _, g, md = _build(tmp_path, rows)
    g = g[(g["metric"] == "nmi") & (g["baseline"] == "zeroshot_gpt")].set_index("method")
    assert g.loc["multi_map", "n_image_sets"] == 5 and g.loc["multi_map", "n_pairs"] == 10
    assert g.loc["multi_map", "gain"] == pytest.approx(0.2)
    # the interval is a t-interval over the 5 image sets (4 degrees of freedom), not over the 10 pairs
    half = 2.776445 * np.std(list(by_set.values()), ddof=1) / np.sqrt(5)
    assert g.loc["multi_map", "ci95_low"] == pytest.approx(0.2 - half, abs=1e-4)
    assert g.loc["multi_map", "verdict"] == "gain"
    assert g.loc["multi_sub", "verdict"] == "no gain (within image-set spread)"
    assert "95 % interval over image sets" in md and "another sample of images" in md


def test_pairing_never_crosses_image_sets(tmp_path):
    # the baseline ran on image sets 10 and 11, the method on 11 and 12: only image set 11 pairs
    rows = [_row("zeroshot_gpt", "suits", 0, 0.5, dataset_seed=10), _row("zeroshot_gpt", "suits", 0, 0.3, dataset_seed=11),
            _row("multi_map", "suits", 0, 0.4, dataset_seed=11), _row("multi_map", "suits", 0, 0.9, dataset_seed=12)]
    _, g, _ = _build(tmp_path, rows)
    line = g[(g["metric"] == "nmi") & (g["method"] == "multi_map")].iloc[0]
    assert line["n_image_sets"] == 1 and line["gain"] == pytest.approx(0.1)
    assert line["verdict"] == "no verdict (1 image set < 5)" and np.isnan(line["ci95_low"])


def test_float_noise_is_no_change_not_a_gain(tmp_path):
    _, g, _ = _build(tmp_path, _over_image_sets({s: 1e-9 for s in range(10, 15)}))
    assert g.set_index("method").loc["multi_map", "verdict"].iloc[0] == "no change (same as the baseline)"


def test_the_ceiling_is_a_reference_column_never_bold_and_the_headroom_share_is_computed(tmp_path):
    # zero-shot 0.5, ceiling 0.9: headroom 0.4; multi_map gains 0.2 on every image set -> 50 %
    rows = _over_image_sets({s: 0.2 for s in range(10, 15)}, ceiling=0.9)
    rows.append(_row("zeroshot_label", "suits", 0, 0.6, words_source="class_names", ceiling_nmi=0.9))
    board, g, md = _build(tmp_path, rows)
    line = _table_line(md, "suits")
    header = next(h for h in md.splitlines() if h.startswith("| aspect | metric |"))
    assert header.startswith("| aspect | metric | ceiling (probe) | zeroshot_label (oracle) | multi_map |")
    assert line.startswith("| suits | NMI | 0.9000 | 0.6000 | **0.7000 ± 0.0000** | 0.5000 ± 0.0000 |")  # ceiling above all, not bold
    assert _table_line(md, "suits", "RI").startswith("| suits | RI | – |")  # the probe has no RI
    share = g[(g["baseline"] == "zeroshot_gpt") & (g["metric"] == "nmi")].set_index("method")
    assert share.loc["multi_map", "headroom"] == pytest.approx(0.4)
    assert share.loc["multi_map", "headroom_share"] == pytest.approx(0.5)
    assert board.set_index("method").loc["multi_map", "headroom_share_nmi"] == pytest.approx(0.5)
    assert "## Share of headroom captured (NMI)" in md and "+50 %" in md


def test_no_headroom_gives_no_share(tmp_path):
    _, g, md = _build(tmp_path, _over_image_sets({s: 0.0 for s in range(10, 15)}, zs=0.9, ceiling=0.905))
    assert np.isnan(g.set_index("method").loc["multi_map", "headroom_share"].iloc[0])
    assert "| n/a |" in md


def test_rows_on_image_sets_used_for_tuning_are_marked_and_not_ranked(tmp_path):
    tuned = json.dumps({"datasets": ["synth_cards"], "levels": ["easy"], "dataset_seeds": [0, 1],
                        "command": "mcbench-tune"})
    rows = [_row("multi_map", "suits", 0, 0.9, dataset_seed=0, tuned_on=tuned),   # a development set: marked
            _row("multi_map", "suits", 0, 0.6, dataset_seed=10, tuned_on=tuned),  # a test set: not marked
            _row("multi_sub", "suits", 0, 0.5, dataset_seed=0)]                  # untuned: not marked
    board, _, md = _build(tmp_path, rows)
    marked = board[board["tuned"].astype(bool)]
    assert list(marked["method"]) == ["multi_map"] and list(marked["image_sets"]) == ["synth_cards/easy/seed=0"]
    assert "multi_map †" in md and "multi_sub †" not in md and "chosen on these image sets" in md
    line = _table_line(md, "suits")
    assert "**0.6000**" in line and "**0.9000**" not in line  # the tuned-on result is not ranked


def test_best_match_rows_are_marked_and_never_ranked_beside_personalised_methods(tmp_path):
    rows = [_row("nrkmeans", "suits", 0, 0.95, selection="best_match"), _row("multi_map", "suits", 0, 0.6)]
    _, _, md = _build(tmp_path, rows)
    assert "nrkmeans (best-match: oracle selection)" in md
    line = _table_line(md, "suits")
    assert "**0.6000**" in line and "**0.9500**" not in line


def test_a_task_written_twice_counts_once_the_newest(tmp_path):
    first = _row("multi_map", "suits", 0, 0.5)
    rows = [first, _row("multi_map", "suits", 1, 0.7), first | {"nmi": 0.6}]  # force=true rerun of seed 0
    board, _, md = _build(tmp_path, rows)
    mm = board.set_index("method").loc["multi_map"]
    assert mm["n_runs"] == 2 and mm["nmi_mean"] == pytest.approx(0.65)
    assert _table_line(md, "suits").endswith("| 1 × 2 |")


def test_the_oracle_sits_beside_the_methods_and_is_never_bold(tmp_path):
    rows = [_row("multi_map", "suits", 0, 0.6), _row("zeroshot_gpt", "suits", 0, 0.5),
            _row("zeroshot_label", "suits", 0, 0.9, words_source="class_names")]
    _, _, md = _build(tmp_path, rows)
    assert md.count("## synth_cards") == 1  # one table, not one per word source
    assert "| suits | NMI | 0.9000 | **0.6000** | 0.5000 |" in md and "zeroshot_label (oracle)" in md


def test_a_plot_per_dataset_shows_each_level(tmp_path):
    rows = [_row("multi_map", "suits", 0, nmi, level=level) for level, nmi in (("easy", 0.9), ("medium", 0.7),
                                                                             ("hard", 0.4))]
    _build(tmp_path, rows, plots=True)
    assert (tmp_path / "out" / "plots" / "synth_cards-tiny_clip-levels.png").is_file()
    assert len(list((tmp_path / "out" / "plots").glob("*.png"))) == 4  # a bar chart per level + the level plot


def test_rows_from_before_the_new_columns_still_read(tmp_path):
    old = {k: v for k, v in _row("multi_map", "suits", 0, 0.6, dataset_seed=3).items()
           if k not in ("dataset_seed", "difficulty", "tuned_on", "selection", "ceiling_nmi", "ceiling_acc")}
    board, _, _ = _build(tmp_path, [old])
    row = board.iloc[0]
    assert row["image_sets"] == "synth_cards/easy/seed=3" and row["selection"] == "named" and not row["tuned"]


def test_papers_numbers_and_sanity_verdicts_come_from_the_reference_folder(results):
    shared = results / "shared"
    shared.mkdir()
    (shared / "reported.csv").write_text("method,dataset,aspect,nmi,ri,source\nmulti_map,fruit,color,0.8619,,Table 2\n")
    (shared / "sanity.csv").write_text("method,variant,dataset,check,aspect,passed,applies,evidence\n"
                                       "multi_map,defaults,synth_cards,random_encoder,suits,True,True,{}\n")
    main(["--results", str(results / "runs.csv"), "--out", str(results / "synthetic"), "--no-plots",
          "--reference-dir", str(shared)])
    board = pd.read_csv(results / "synthetic" / "leaderboard.csv")
    assert board["reported_nmi"].notna().sum() == 1
    md = (results / "synthetic" / "leaderboard.md").read_text()
    assert "[sanity.md](../shared/sanity.md)" in md and "| multi_map | defaults | pass |" in md


def test_a_fresh_clone_starts_with_an_empty_results_file_and_the_suite_board_apart():
    """Issue 21.8: the README's first command must run, not skip tasks found in committed rows."""
    import subprocess
    from pathlib import Path

    from hydra import compose, initialize_config_module

    root = Path(__file__).resolve().parents[1]
    with initialize_config_module("mcbench.conf", version_base=None):
        assert compose("config").results_file == "results/runs.csv"
    listed = subprocess.run(["git", "ls-files", "results"], cwd=root, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    committed = set(listed.stdout.split())
    assert "results/runs.csv" not in committed and "results/synthetic/runs.csv" in committed
    assert "results/synthetic/leaderboard.md" in committed
    ignored = subprocess.run(["git", "check-ignore", "-q", "results/runs.csv"], cwd=root)
    assert ignored.returncode == 0  # a user's own rows are never committed by accident


def test_the_control_crl_projection_gets_its_gain_and_headroom_share_over_zero_shot(tmp_path):
    """crl_projection is a baseline for the proxy methods and a method itself: its gain over zeroshot_gpt (and
    the share of headroom it captures) is in the gains; zeroshot_gpt is never scored against crl_projection."""
    rows = _over_image_sets({s: 0.2 for s in range(10, 15)}, ceiling=0.9)
    rows += [_row("crl_projection", "suits", 0, 0.6, dataset_seed=s, ceiling_nmi=0.9) for s in range(10, 15)]
    _, g, _ = _build(tmp_path, rows)
    nmi = g[g["metric"] == "nmi"]
    crl = nmi[(nmi["method"] == "crl_projection") & (nmi["baseline"] == "zeroshot_gpt")].iloc[0]
    assert crl["gain"] == pytest.approx(0.1) and crl["headroom_share"] == pytest.approx(0.25)
    assert nmi[(nmi["method"] == "zeroshot_gpt")].empty
    assert not nmi[(nmi["method"] == "multi_map") & (nmi["baseline"] == "crl_projection")].empty
