"""mcbench-tune: same budget per method, development image sets only, the choice written with comments kept."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from mcbench.commands import tune

SEARCH = {
    "budget": 2, "objective": "nmi", "seed": 0,
    "dev": {"datasets": ["synth_shapes"], "levels": ["easy"], "dataset_seeds": [0], "n": 40},
    "test_dataset_seeds": [10],
    "search": {"crl_projection": {"normalize": [False, True]}},
}


def _write(tmp_path: Path, search: dict) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(search))
    return path


def test_tune_runs_every_candidate_on_the_development_sets_only(tmp_path):
    out = tmp_path / "out"
    assert tune.main(["--search", str(_write(tmp_path, SEARCH)), "--no-write", "--out", str(out)]) == 0
    table = pd.read_csv(out / "search.csv")
    assert list(table["trial"]) == [0, 1] and table["default"].tolist() == [True, False]
    assert table["chosen"].sum() == 1 and (table["n_tasks"] == 3).all()
    assert table.loc[table["chosen"], "mean_nmi"].iloc[0] == table["mean_nmi"].max()
    runs = pd.read_csv(out / "runs.csv")
    seeds = {yaml.safe_load(p)["seed"] for p in runs["dataset_params"]}
    assert seeds == {0}  # never a test generator seed
    assert "✓" in (out / "search.md").read_text()


def test_candidates_same_budget_default_first_and_seeded():
    grid = {"lr": [0.001, 0.005, 0.02, 0.05], "alpha": [0.1, 0.2, 0.5], "beta": [0.1, 0.2, 0.5]}
    first = tune.candidates("multi_map", grid, 6)
    assert len(first) == 6 and len({tuple(sorted(c.items())) for c in first}) == 6
    defaults = tune.method_defaults("multi_map")
    assert first[0] == {k: defaults[k] for k in grid}
    assert tune.candidates("multi_map", grid, 6) == first
    with pytest.raises(ValueError, match="budget"):
        tune.candidates("multi_map", grid, 0)
    with pytest.raises(ValueError, match="no setting"):
        tune.candidates("multi_map", {"not_a_key": [1]}, 2)


def test_overlapping_development_and_test_seeds_are_refused(tmp_path):
    bad = dict(SEARCH, test_dataset_seeds=[0, 10])
    with pytest.raises(ValueError, match="both development and test"):
        tune.load_search(_write(tmp_path, bad))


def test_write_choice_keeps_comments_and_adds_missing_keys(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: multi_map\nlr: 0.005   # the learning rate\nalpha: 0.2\n")
    tune.write_choice("multi_map", {"lr": 0.02, "beta": 0.5}, path)
    text = path.read_text()
    assert "lr: 0.02   # the learning rate" in text
    assert yaml.safe_load(text) == {"name": "multi_map", "lr": 0.02, "alpha": 0.2, "beta": 0.5}


def test_write_choice_keeps_the_yaml_minimal(tmp_path):
    """conf/method/<m>.yaml holds only what differs from the Config dataclass: a chosen value equal to the dataclass
    default removes its key, another one is written; the defaults list and comments stay."""
    path = tmp_path / "m.yaml"
    shipped = (tune.conf_dir() / "method" / "multi_map.yaml").read_text()
    path.write_text(shipped)
    tune.write_choice("multi_map", {"lr": 0.005, "alpha": 0.2, "beta": 0.3, "epochs": 20}, path)  # lr, alpha: defaults
    text = path.read_text()
    conf = yaml.safe_load(text)
    assert conf == {"defaults": ["/method_schema/multi_map@_here_", "_self_"], "name": "multi_map", "beta": 0.3,
                    "epochs": 20}
    assert text.startswith(shipped.split("defaults:")[0]) and "beta: 0.3  " in text
    assert tune.method_defaults("multi_map")["lr"] == 0.02 and "defaults" not in tune.method_defaults("multi_map")
