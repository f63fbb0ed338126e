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
    return ReferenceWords(words, f"file:{path.name}", {k: v for k, v in data.items() if k != "words"})


WordSource = Callable[[MultiViewDataset, Aspect], ReferenceWords]
WORD_SOURCES: Registry[Callable[..., WordSource]] = Registry("word source (llm)")


@WORD_SOURCES.register("cached")
def cached_source(**_: Any) -> WordSource:
    """Declared words first, then the shipped JSON file; never the network."""

    def words(dataset: MultiViewDataset, aspect: Aspect) -> ReferenceWords:
        if aspect.reference_words:
            return ReferenceWords(tuple(aspect.reference_words), "declared", {"dataset": dataset.name})
        path = words_file(dataset.name, aspect.name)
        if not path.is_file():
            raise FileNotFoundError(
                f"No reference words for {dataset.name}/{aspect.name}: {path} does not exist. Write that file "
                f"({{\"words\": [...]}}) or use llm=openai to ask a language model."
            )
        return read_words_file(path)

    return words
