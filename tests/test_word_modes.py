import pytest

from mcbench.data.base import build_dataset
from mcbench.words import ReferenceWords, apply_mode


@pytest.fixture(scope="module")
def cards(cache_dir):
    return build_dataset("synth_cards", n=20, seed=0, cache_dir=str(cache_dir))


def test_superset_is_the_declared_list_and_contains_every_class(cards):
    aspect = cards.aspects["number"]
    words = apply_mode(ReferenceWords(aspect.reference_words, "declared"), aspect, "superset", 0)
    assert set(aspect.classes) < set(words.words)


def test_exact_is_the_class_names(cards):
    aspect = cards.aspects["suits"]
    words = apply_mode(ReferenceWords(aspect.reference_words, "declared"), aspect, "exact", 0)
    assert words.words == aspect.classes


def test_noisy_leaves_classes_out_adds_near_misses_and_is_seeded(cards):
    aspect = cards.aspects["number"]
    source = ReferenceWords(aspect.reference_words, "declared")
    noisy = apply_mode(source, aspect, "noisy", 0)
    missing = set(aspect.classes) - set(noisy.words)
    assert len(missing) == 4 and set(noisy.provenance["dropped"]) == missing
    assert noisy.provenance["added"] and set(noisy.provenance["added"]) <= set(noisy.words)
    assert apply_mode(source, aspect, "noisy", 0) == noisy
    assert len(noisy.words) >= aspect.k


def test_unknown_mode_is_rejected(cards):
    aspect = cards.aspects["suits"]
    with pytest.raises(ValueError, match="words='all' is not valid"):
        apply_mode(ReferenceWords(aspect.reference_words, "declared"), aspect, "all", 0)
