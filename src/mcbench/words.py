"""Reference words: where each aspect's candidate words come from, with provenance.

``cached`` (default) uses the words the dataset declares (the synthetic sets) or the JSON file shipped
under ``datasets/<dataset>/words/<aspect>.json``. Other sources register here too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mcbench.data.base import Aspect, MultiViewDataset
from mcbench.paths import datasets_dir
from mcbench.registry import Registry



@dataclass(frozen=True)
class ReferenceWords:
    """The candidate words for one aspect and where they came from."""

    words: tuple[str, ...]
    source: str
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.words).encode()).hexdigest()[:12]


def words_file(dataset: str, aspect: str) -> Path:
    return datasets_dir() / dataset / "words" / f"{aspect}.json"


def read_words_file(path: Path) -> ReferenceWords:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        words = tuple(str(w).strip() for w in data["words"] if str(w).strip())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"reference-word file {path} is unreadable ({exc}); it must hold {{\"words\": [...]}}") from exc
    if not words:
        raise ValueError(f"reference-word file {path} lists no words")
    # a list written with the class names in view says so in its source, so no table shows it unlabelled
    mark = " (oracle-like)" if data.get("oracle_like") else ""
    return ReferenceWords(words, f"file:{path.name}{mark}", {k: v for k, v in data.items() if k != "words"})


WordSource = Callable[[MultiViewDataset, Aspect], ReferenceWords]
#: name -> factory(**params) -> WordSource; ``cached`` is defined here, ``openai`` in :mod:`mcbench.llm`
WORD_SOURCES: Registry[Callable[..., WordSource]] = Registry("word source (llm)", modules=("mcbench.llm",))


@WORD_SOURCES.register("cached")
def cached_source(**_: Any) -> WordSource:
    """Declared words first, then the shipped JSON file; never the network."""

    def words(dataset: MultiViewDataset, aspect: Aspect) -> ReferenceWords:
        if aspect.reference_words:
            return ReferenceWords(tuple(aspect.reference_words), "declared", {"dataset": dataset.name})
        path = words_file(dataset.name, aspect.name)
        hint = dataset.info.get("missing_words_message")  # e.g. dataset=folder: "write them into mcbench.yaml"
        if hint and not path.is_file():
            raise FileNotFoundError(hint.format(dataset=dataset.name, aspect=aspect.name))
        if not path.is_file():
            raise FileNotFoundError(
                f"No reference words for {dataset.name}/{aspect.name}: {path} does not exist. Write that file "
                f"({{\"words\": [...]}}) or use llm=openai to ask a language model."
            )
        return read_words_file(path)

    return words



WORD_MODES = ("superset", "exact", "noisy")

#: near-misses an LLM might answer instead of a class name (used by ``words=noisy``)
NEAR_MISSES = {
    "red": "crimson", "yellow": "gold", "green": "olive", "blue": "navy", "purple": "violet",
    "circle": "ring", "square": "box", "triangle": "wedge", "star": "asterisk", "small": "little", "large": "big",
    "ace": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
    "nine": "9", "ten": "10", "jack": "knave", "queen": "lady", "king": "lord",
    "hearts": "love", "diamonds": "gems", "clubs": "clovers", "spades": "shovels",
    "apples": "apple", "bananas": "plantains", "grapes": "raisins", "pears": "quinces",
}


def apply_mode(words: ReferenceWords, aspect: Aspect, mode: str, seed: int) -> ReferenceWords:
    """``superset``: the source's list as is (the papers' GPT-4 style); ``exact``: the true class names only;
    ``noisy``: the superset with ⌈k/4⌉ true class names left out and near-misses added (as an LLM may)."""
    if mode not in WORD_MODES:
        raise ValueError(f"words={mode!r} is not valid; choose one of: {', '.join(WORD_MODES)}")
    if mode == "superset":
        return words
    if mode == "exact":
        return ReferenceWords(tuple(aspect.classes), "exact:class_names", {"from": words.source})
    rng = np.random.default_rng([seed, int(hashlib.sha256(aspect.name.encode()).hexdigest()[:8], 16)])
    classes = list(aspect.classes)
    dropped = set(rng.choice(classes, size=max(1, -(-len(classes) // 4)), replace=False).tolist())
    kept = [c for c in classes if c not in dropped]
    extra = [NEAR_MISSES[c] for c in sorted(dropped) if c in NEAR_MISSES]
    if kept and kept[0] in NEAR_MISSES:
        extra.append(NEAR_MISSES[kept[0]])
    noisy = [w for w in words.words if w not in dropped] + [w for w in extra if w not in words.words]
    return ReferenceWords(tuple(noisy), f"noisy:{words.source}", {"dropped": sorted(dropped), "added": extra})
