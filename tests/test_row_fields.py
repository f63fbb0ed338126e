"""The row fields that say what a result is on and what it is worth: image set, tuning, selection, ceiling."""

import json

import pytest
from hydra import compose, initialize_config_module

from mcbench.results.identity import image_set, tuned_on, used_for_tuning
from mcbench.runner import run


def _cfg(tmp_path, cache_dir, *overrides):
    with initialize_config_module("mcbench.conf", version_base="1.3"):
        return compose("config", overrides=[f"results_file={tmp_path}/runs.csv", f"paths.cache_dir={cache_dir}",
                                            "logger=none", "progress=false", "method=kmeans_image",
                                            "dataset=synth_cards", "dataset.n=120", "aspect=suits", *overrides])


def test_rows_carry_the_image_set_the_tuning_the_selection_and_the_ceiling(tmp_path, cache_dir):
    row = run(_cfg(tmp_path, cache_dir, "dataset.seed=11", "dataset.difficulty=hard"))[0]
    assert row["dataset_seed"] == 11 and row["difficulty"] == "hard"
    assert row["tuned_on"] == tuned_on("kmeans_image") and row["selection"] == "named"
    # the probe trained with the labels: a reference in [0, 1], scored like the methods
    assert 0.0 <= row["ceiling_nmi"] <= 1.0 and 0.0 <= row["ceiling_acc"] <= 1.0
    cached = list((cache_dir / "ceiling").glob("*.json"))
    assert cached and all(json.loads(p.read_text())["folds"] == 5 for p in cached)


def test_the_ceiling_is_computed_once_per_image_set_aspect_and_encoder_and_can_be_turned_off(tmp_path, cache_dir):
    first = run(_cfg(tmp_path, cache_dir, "dataset.seed=12"))[0]
    entry = next(p for p in (cache_dir / "ceiling").glob("*.json")
                 if json.loads(p.read_text())["revision"] == first["dataset_revision"])
    # a second task on the same images (another method seed) reads the cache: its value comes back as written
    entry.write_text(json.dumps(json.loads(entry.read_text()) | {"nmi": 0.123456}))
    second = run(_cfg(tmp_path, cache_dir, "dataset.seed=12", "seed=1"))[0]
    assert second["ceiling_nmi"] == pytest.approx(0.123456) and second["ceiling_acc"] == first["ceiling_acc"]
    off = run(_cfg(tmp_path, cache_dir, "dataset.seed=12", "seed=2", "protocol.ceiling=false"))[0]
    assert off["ceiling_nmi"] == "" and off["ceiling_acc"] == ""


def test_tuned_on_reads_conf_tuned_on_yaml(tmp_path):
    path = tmp_path / "tuned_on.yaml"
    path.write_text("multi_map: {datasets: [synth_cards], levels: [hard], dataset_seeds: [0, 1], command: mcbench-tune}\n")
    text = tuned_on("multi_map", path)
    assert json.loads(text)["dataset_seeds"] == [0, 1] and tuned_on("multi_sub", path) == "untuned"
    assert used_for_tuning(text, "synth_cards", "hard", 1.0)  # a generator seed read back from a CSV as a float
    assert not used_for_tuning(text, "synth_cards", "hard", 10) and not used_for_tuning(text, "synth_cards", "easy", 0)
    assert not used_for_tuning("untuned", "synth_cards", "hard", 0)
    path.write_text("multi_map: [oops\n")
    with pytest.raises(ValueError, match="tuned_on.yaml is not valid YAML"):
        tuned_on("multi_map", path)


def test_an_image_set_is_dataset_level_and_generator_seed():
    assert image_set("synth_cards", "hard", 10.0) == "synth_cards/hard/seed=10"
    assert image_set("fruit", "", float("nan")) == "fruit"
