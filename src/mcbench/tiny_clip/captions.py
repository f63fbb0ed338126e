"""Training captions for the synthetic images, each with the factors it asserts.

A caption names one, two or all factors of an image ("a red star", "the queen of hearts", "Fruit with a color
of red"); the aspects' own zero-shot prompts are among the templates. A *distractor* caption names a reference
word that no image has ("Fruit with a color of orange"): it is a negative for every image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from mcbench.data.base import Aspect

#: Free-form templates per family. A slot is an aspect name or a derived slot (see ``_DERIVED``).
TEMPLATES: dict[str, tuple[str, ...]] = {
    "shapes": (
        "a {color} {shape}",
        "a {size} {color} {shape}",
        "a {size} {shape}",
        "a {shape}",
        "a photo of a {shape}",
        "a {color} object",
        "something {color}",
        "a {size} object",
        "a {color} shape",
        "a {shape} colored {color}",
        "a {size} {color} object",
        "a picture of a {size} {color} {shape}",
    ),
    "cards": (
        "the {number} of {suits}",
        "a {number} of {suits}",
        "a playing card showing a {number}",
        "a card of {suits}",
        "a {number} card",
        "a {ink} card",
        "a {ink} {number}",
        "a photo of the {number} of {suits}",
        "a playing card",
        "a card with {suits}",
        "a {number} playing card",
    ),
    "fruit": (
        "{color} {species}",
        "a photo of {species}",
        "{species}",
        "a {color} fruit",
        "some {color} fruit",
        "a {color} {fruit}",
        "a photo of a {fruit}",
        "a fruit that is {color}",
        "a photo of {color} {species}",
        "a piece of fruit",
    ),
}

#: Derived slots: (family, slot) -> (the aspect it constrains, {word: allowed class indices}).
_DERIVED: dict[tuple[str, str], tuple[str, dict[str, frozenset[int]]]] = {
    ("cards", "ink"): ("suits", {"red": frozenset({0, 1}), "black": frozenset({2, 3})}),
    ("fruit", "fruit"): (
        "species",
        {"apple": frozenset({0}), "banana": frozenset({1}), "grape": frozenset({2}), "pear": frozenset({3})},
    ),
}
_SLOT = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Caption:
    """A text and what it asserts: the family and, per aspect, the allowed class indices."""

    text: str
    family: str
    constraints: tuple[tuple[str, frozenset[int]], ...] = ()
    distractor: bool = False


def describe(
    family: str, aspects: dict[str, Aspect], labels: dict[str, int], rng: np.random.Generator, p_prompt: float
) -> Caption:
    """A random true caption of an image: with probability ``p_prompt`` one aspect's own prompt."""
    if rng.random() < p_prompt:
        name = list(aspects)[rng.integers(len(aspects))]
        text = aspects[name].prompt.replace("*", aspects[name].classes[labels[name]])
        return Caption(text, family, ((name, frozenset({labels[name]})),))
    template = TEMPLATES[family][rng.integers(len(TEMPLATES[family]))]
    values, constraints = {}, []
    for slot in _SLOT.findall(template):
        if slot in aspects:
            values[slot] = aspects[slot].classes[labels[slot]]
            constraints.append((slot, frozenset({labels[slot]})))
        else:
            aspect, words = _DERIVED[(family, slot)]
            word, allowed = next((w, a) for w, a in words.items() if labels[aspect] in a)
            values[slot] = word
            constraints.append((aspect, allowed))
    return Caption(template.format(**values), family, tuple(constraints))


def distractor(family: str, aspects: dict[str, Aspect], rng: np.random.Generator) -> Caption:
    """An aspect prompt filled with a reference word that is not a class: true of no image."""
    candidates = [(a.prompt, w) for a in aspects.values() for w in a.reference_words if w not in a.classes]
    prompt, word = candidates[rng.integers(len(candidates))]
    return Caption(prompt.replace("*", word), family, distractor=True)


def positives(captions: list[Caption], families: np.ndarray, labels: dict[str, dict[str, np.ndarray]]) -> np.ndarray:
    """Boolean (images × captions): image i satisfies every factor that caption j asserts.

    ``families[i]`` is image i's family; ``labels[family][aspect]`` holds the labels of all images (any value
    where the image belongs to another family).
    """
    mask = np.zeros((len(families), len(captions)), dtype=bool)
    for j, cap in enumerate(captions):
        if cap.distractor:
            continue
        ok = families == cap.family
        for aspect, allowed in cap.constraints:
            ok &= np.isin(labels[cap.family][aspect], list(allowed))
        mask[:, j] = ok
    return mask
