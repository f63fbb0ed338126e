"""Difficulty levels: "easy" images never change; "hard" lands in its zero-shot band; caches follow the nuisance."""

from __future__ import annotations

import hashlib

import pytest

from mcbench.data import calibrate, synthetic

# sha256 (first 16 hex digits) of generate(family, 12, seed=0) pixels, computed before the levels were
# calibrated: the tiny CLIP was trained on "easy" images and its tests rely on them.
EASY_PIXELS = {"shapes": "a4fe4cff59c063a7", "cards": "ae446736830e6968", "fruit": "ce59cc1de7523ce3"}


def _digest(pixels) -> str:
    return hashlib.sha256(pixels.tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("family", synthetic.FAMILIES)
def test_easy_images_are_unchanged(family):
    pixels, _, _ = synthetic.generate(family, 12, seed=0)
    assert _digest(pixels) == EASY_PIXELS[family]


def test_nuisance_version_keys_only_the_harder_levels(monkeypatch, tmp_path):
    before = {d: synthetic.cache_path("cards", 60, 0, 64, d, tmp_path) for d in synthetic.DIFFICULTIES}
    monkeypatch.setattr(synthetic, "NUISANCE_VERSION", synthetic.NUISANCE_VERSION + 1)
    after = {d: synthetic.cache_path("cards", 60, 0, 64, d, tmp_path) for d in synthetic.DIFFICULTIES}
    assert before["easy"] == after["easy"]
    assert before["medium"] != after["medium"] and before["hard"] != after["hard"]
    hard = dict(synthetic._NUISANCE["hard"], cards=synthetic._Nuisance(blur=2.0))
    monkeypatch.setitem(synthetic._NUISANCE, "hard", hard)
    assert synthetic.cache_path("cards", 60, 0, 64, "hard", tmp_path) != after["hard"], "settings are in the key"


def test_hard_cards_zero_shot_lands_in_band(cache_dir, tiny_clip):  # tiny_clip: skipped without the weights
    """zeroshot_label through the pipeline, 200 images: the hard band (30-60 %) widened for the small n."""
    rows = calibrate.measure("cards", "hard", seed=0, n=200, overrides=(f"paths.cache_dir={cache_dir}",))
    accuracy = {r["aspect"]: r["accuracy"] for r in rows}
    assert set(accuracy) == {"number", "suits"}
    for aspect, acc in accuracy.items():
        assert 0.25 <= acc <= 0.65, f"hard synth_cards/{aspect}: zero-shot accuracy {acc:.3f} is out of band"
