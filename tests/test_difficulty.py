"""Difficulty levels: "easy" images never change, the noisy levels keep the images they had as medium/hard,
the echo levels leave headroom (probe well above zero-shot), caches follow the settings."""

from __future__ import annotations

import hashlib

import pytest

from mcbench.commands import calibrate
from mcbench.data import synth_levels, synthetic

# sha256 (first 16 hex digits) of generate(family, 12, seed=0) pixels, computed before the levels were
# calibrated: the tiny CLIP was trained on "easy" images and its tests rely on them.
EASY_PIXELS = {"shapes": "a4fe4cff59c063a7", "cards": "ae446736830e6968", "fruit": "ce59cc1de7523ce3"}
# the same for the noise-based levels, computed when they were still called "medium" and "hard" (NUISANCE_VERSION 1)
HEADROOM_MARGIN = 0.4  # probe - zero-shot, hard synth_fruit, n=200, seed 0: measured 0.54 (color), 0.66 (species)
NOISY_PIXELS = {
    ("shapes", "noisy_medium"): "5aaab52ff491bc10", ("shapes", "noisy_hard"): "82a79a9a5ea772c0",
    ("cards", "noisy_medium"): "3f9db3c5638169d9", ("cards", "noisy_hard"): "756808addc81dc2f",
    ("fruit", "noisy_medium"): "123b96a407d62ddf", ("fruit", "noisy_hard"): "5e28e7e557f57f2f",
}


def _digest(pixels) -> str:
    return hashlib.sha256(pixels.tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("family", synthetic.FAMILIES)
def test_easy_images_are_unchanged(family):
    pixels, _, _ = synthetic.generate(family, 12, seed=0)
    assert _digest(pixels) == EASY_PIXELS[family]


@pytest.mark.parametrize(("family", "level"), sorted(NOISY_PIXELS))
def test_noisy_levels_are_the_former_medium_and_hard(family, level):
    pixels, _, _ = synthetic.generate(family, 12, seed=0, difficulty=level)
    assert _digest(pixels) == NOISY_PIXELS[(family, level)]


def test_nuisance_version_keys_only_the_harder_levels(monkeypatch, tmp_path):
    before = {d: synthetic.cache_path("cards", 60, 0, 64, d, tmp_path) for d in synthetic.DIFFICULTIES}
    assert len(set(before.values())) == len(synthetic.DIFFICULTIES), "every level has its own cache file"
    monkeypatch.setattr(synthetic, "NUISANCE_VERSION", synthetic.NUISANCE_VERSION + 1)
    after = {d: synthetic.cache_path("cards", 60, 0, 64, d, tmp_path) for d in synthetic.DIFFICULTIES}
    assert before["easy"] == after["easy"]
    assert all(before[d] != after[d] for d in synthetic.DIFFICULTIES if d != "easy")
    noisy = dict(synthetic.NUISANCE["noisy_hard"], cards=synth_levels.Nuisance(blur=2.0))
    monkeypatch.setitem(synthetic.NUISANCE, "noisy_hard", noisy)
    assert synthetic.cache_path("cards", 60, 0, 64, "noisy_hard", tmp_path) != after["noisy_hard"], "in the key"
    echo = dict(synthetic.ECHO["hard"], cards=synth_levels.Echo((("number", 2.0, 2.5),)))
    monkeypatch.setitem(synthetic.ECHO, "hard", echo)
    assert synthetic.cache_path("cards", 60, 0, 64, "hard", tmp_path) != after["hard"], "echo scales are in the key"


def test_hard_cards_zero_shot_lands_in_band(cache_dir, tiny_clip):  # tiny_clip: skipped without the weights
    """zeroshot_label through the pipeline, 200 images: the hard band (30-60 %) widened for the small n."""
    rows = calibrate.measure("cards", "hard", seed=0, n=200, overrides=(f"paths.cache_dir={cache_dir}",),
                             kmeans=False)
    accuracy = {r["aspect"]: r["accuracy"] for r in rows}
    assert set(accuracy) == {"number", "suits"}
    for aspect, acc in accuracy.items():
        assert 0.25 <= acc <= 0.65, f"hard synth_cards/{aspect}: zero-shot accuracy {acc:.3f} is out of band"


def test_hard_fruit_leaves_headroom(cache_dir, tiny_clip):
    """The echo level keeps the aspect in the images: on 200 images the probe (the rows' ceiling) beats
    zero-shot by a wide margin on every aspect (measured at n=200, seed 0: probe 0.98 and 0.985)."""
    rows = calibrate.measure("fruit", "hard", seed=0, n=200, overrides=(f"paths.cache_dir={cache_dir}",),
                             kmeans=False)
    for r in rows:
        assert r["probe_acc"] >= 0.9, f"hard synth_fruit/{r['aspect']}: probe accuracy {r['probe_acc']:.3f}"
        assert r["headroom"] >= HEADROOM_MARGIN, f"hard synth_fruit/{r['aspect']}: headroom {r['headroom']:.3f}"
