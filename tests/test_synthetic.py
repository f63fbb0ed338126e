"""The synthetic multi-view datasets: determinism, contract, disk cache, difficulty levels."""

from __future__ import annotations

import numpy as np
import pytest

from mcbench.data import synthetic
from mcbench.data.base import DATASETS, MultiViewDataset, build_dataset

NAMES = ("synth_shapes", "synth_cards", "synth_fruit")


@pytest.mark.parametrize("family", synthetic.FAMILIES)
def test_generate_is_deterministic(family):
    a_pixels, a_labels, _ = synthetic.generate(family, 30, seed=3)
    b_pixels, b_labels, _ = synthetic.generate(family, 30, seed=3)
    c_pixels, c_labels, _ = synthetic.generate(family, 30, seed=4)
    np.testing.assert_array_equal(a_pixels, b_pixels)
    assert all(np.array_equal(a_labels[k], b_labels[k]) for k in a_labels)
    assert not np.array_equal(a_pixels, c_pixels)
    assert any(not np.array_equal(a_labels[k], c_labels[k]) for k in a_labels)


@pytest.mark.parametrize("name", NAMES)
def test_dataset_contract(name, tmp_path):
    ds = build_dataset(name, n=60, seed=0, cache_dir=str(tmp_path))
    assert isinstance(ds, MultiViewDataset) and name in DATASETS
    assert ds.pixels.shape == (60, 64, 64, 3) and ds.pixels.dtype == np.uint8
    assert len(ds) == 60 and len(set(ds.image_ids)) == 60
    assert ds.image_ids[7] == f"{name}_s0_000007"
    assert ds.info["difficulty"] == "easy" and ds.info["n"] == 60 and ds.info["seed"] == 0
    assert ds.info["generator"].startswith("mcbench.data.synthetic:")
    for aspect_name, aspect in ds.aspects.items():
        y = ds.labels[aspect_name]
        assert aspect.name == aspect_name == aspect.concept_word
        assert y.dtype == np.int64 and y.shape == (60,)
        assert set(y.tolist()) == set(range(aspect.k)), "every class occurs"
        assert np.any(np.diff(y) < 0), "images are not sorted by label"
        assert set(aspect.classes) <= set(aspect.reference_words)
        assert len(aspect.reference_words) > aspect.k, "reference words include distractors"
        assert len(set(aspect.reference_words)) == len(aspect.reference_words)
        assert aspect.prompt.count("*") == 1


def test_aspects_and_prompts():
    shapes, cards, fruit = (synthetic.family_aspects(f) for f in ("shapes", "cards", "fruit"))
    assert set(shapes) == {"color", "shape", "size"}
    assert cards["number"].k == 13 and cards["suits"].classes == ("hearts", "diamonds", "clubs", "spades")
    assert cards["suits"].prompt == "Card with suits of *" and cards["number"].prompt == "Card with number of *"
    assert fruit["color"].prompt == "Fruit with a color of *" and fruit["species"].prompt == "Fruit with a species of *"


def test_size_and_image_size_are_configurable(tmp_path):
    ds = synthetic.synth_cards(n=20, seed=1, image_size=96, cache_dir=tmp_path)
    assert ds.pixels.shape == (20, 96, 96, 3)
    assert ds.image(0).size == (96, 96)


def test_disk_cache_is_reused(tmp_path, monkeypatch):
    first = synthetic.synth_fruit(n=24, seed=2, cache_dir=tmp_path)
    path = synthetic.cache_path("fruit", 24, 2, 64, "easy", tmp_path)
    assert path.is_file() and first.info["cache_file"] == str(path)
    assert list(path.parent.glob("*.tmp")) == []

    def fail(*args, **kwargs):
        raise AssertionError("regenerated instead of reading the cache")

    monkeypatch.setattr(synthetic, "generate", fail)
    second = synthetic.synth_fruit(n=24, seed=2, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.pixels, second.pixels)
    assert first.revision == second.revision


def test_corrupted_cache_is_regenerated(tmp_path):
    first = synthetic.synth_shapes(n=24, seed=2, cache_dir=tmp_path)
    path = synthetic.cache_path("shapes", 24, 2, 64, "easy", tmp_path)
    path.write_bytes(b"not an npz file")
    again = synthetic.synth_shapes(n=24, seed=2, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.pixels, again.pixels)
    with np.load(path) as z:
        assert z["pixels"].shape == (24, 64, 64, 3)


def test_cache_dir_defaults_to_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MCBENCH_CACHE", str(tmp_path))
    ds = synthetic.synth_cards(n=13, seed=0)
    assert ds.info["cache_file"].startswith(str(tmp_path / "synthetic"))


def test_the_levels():
    assert synthetic.DIFFICULTIES == ("easy", "medium", "hard", "noisy_medium", "noisy_hard")


@pytest.mark.parametrize("family", synthetic.FAMILIES)
@pytest.mark.parametrize("difficulty", ["medium", "hard", "noisy_medium", "noisy_hard"])
def test_harder_levels_are_deterministic_and_share_labels(family, difficulty):
    easy_pixels, easy_labels, _ = synthetic.generate(family, 13, seed=0)
    pixels, labels, _ = synthetic.generate(family, 13, seed=0, difficulty=difficulty)
    again, _, _ = synthetic.generate(family, 13, seed=0, difficulty=difficulty)
    np.testing.assert_array_equal(pixels, again)
    assert not np.array_equal(pixels, easy_pixels)
    assert all(np.array_equal(labels[k], easy_labels[k]) for k in labels)


def test_a_level_is_a_dataset_setting(tmp_path):
    ds = build_dataset("synth_fruit", n=8, seed=1, difficulty="noisy_hard", cache_dir=str(tmp_path))
    assert ds.info["difficulty"] == "noisy_hard" and ds.pixels.shape == (8, 64, 64, 3)


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="difficulty"):
        build_dataset("synth_shapes", n=10, difficulty="extreme", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="difficulty"):
        synthetic.generate("shapes", 10, 0, difficulty="Easy")
    with pytest.raises(ValueError, match="family"):
        synthetic.generate("animals", 10, 0)
