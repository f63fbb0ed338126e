"""The multi-view dataset contract: one set of images, several ground-truth labelings ("aspects").

A dataset never hands labels to a method: the runner keeps them for the evaluator (``mcbench.runner.build_task``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PIL import Image

from mcbench.registry import Registry


@dataclass(frozen=True)
class Aspect:
    """One clustering of the images: the user's named interest and its ground truth classes.

    ``prompt`` holds exactly one ``*``: the slot of the proxy word ("Card with suits of *").
    ``reference_words`` is the dataset's declared word list (a superset of ``classes`` for the synthetic
    sets); empty means "ask the configured word source".
    """

    name: str
    classes: tuple[str, ...]
    prompt: str
    reference_words: tuple[str, ...] = ()
    concept: str | None = None

    @property
    def concept_word(self) -> str:
        return self.concept or self.name

    @property
    def k(self) -> int:
        return len(self.classes)


@dataclass
class MultiViewDataset:
    """Images plus one integer labeling per aspect (``-1`` where an image lacks that aspect).

    Images are either held in memory (``pixels``, N×H×W×3 uint8) or read from ``paths``. A *feature dataset*
    (e.g. ClustPy's Fruit features) has no images but ``features`` (N×D float): only methods that run on
    features (``runs_on_features``) can run on it, and the features stand in for the image embeddings.
    ``revision`` fingerprints the content so that feature caches are keyed by what was encoded.
    """

    name: str
    aspects: dict[str, Aspect]
    labels: dict[str, np.ndarray]
    image_ids: list[str]
    pixels: np.ndarray | None = None
    paths: list[str] | None = None
    revision: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    features: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.image_ids)
        if sum(x is not None for x in (self.pixels, self.paths, self.features)) != 1:
            raise ValueError("a dataset holds exactly one of pixels, paths or features")
        if self.features is not None and (self.features.ndim != 2 or len(self.features) != n):
            raise ValueError(f"features must be an N×D array with N={n} rows, got shape {self.features.shape}")
        for aspect, y in self.labels.items():
            if aspect not in self.aspects:
                raise ValueError(f"labels for undeclared aspect '{aspect}'")
            if len(y) != n:
                raise ValueError(f"aspect '{aspect}' has {len(y)} labels for {n} images")
        if not self.revision:
            self.revision = self._fingerprint()

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def has_images(self) -> bool:
        return self.features is None

    def image(self, i: int) -> Image.Image:
        """The i-th image as an RGB PIL image."""
        if self.features is not None:
            raise ValueError(f"dataset '{self.name}' holds features, not images: it has no image {i}")
        if self.pixels is not None:
            return Image.fromarray(self.pixels[i])
        from mcbench.data.images import load_rgb  # upright, 16-bit scaled, alpha on white, huge files reduced

        return load_rgb(self.paths[i])  # type: ignore[index]

    def aspect(self, name: str) -> Aspect:
        if name not in self.aspects:
            raise KeyError(
                f"Unknown aspect '{name}' for dataset '{self.name}'. Valid aspects: {', '.join(self.aspects)}"
            )
        return self.aspects[name]

    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(self.name.encode())
        h.update("\n".join(self.image_ids).encode())
        if self.pixels is not None:
            h.update(np.ascontiguousarray(self.pixels).tobytes())
        if self.features is not None:
            h.update(np.ascontiguousarray(self.features, dtype=np.float64).tobytes())
        for aspect in sorted(self.labels):
            h.update(aspect.encode())
            h.update(np.asarray(self.labels[aspect], dtype=np.int64).tobytes())
        return h.hexdigest()[:16]


#: name -> factory(**params, cache_dir=Path) -> MultiViewDataset
#: the synthetic generators, ClustPy's shipped data, ``dataset=folder`` and the papers' folders (one data file
#: each, ``datasets/<name>/dataset.json``)
DATASETS: Registry[Callable[..., MultiViewDataset]] = Registry(
    "dataset",
    modules=("mcbench.data.synthetic", "mcbench.data.clustpy_data", "mcbench.data.folder", "mcbench.data.papers"),
)


def build_dataset(name: str, **params: Any) -> MultiViewDataset:
    """Build a registered dataset from its config parameters."""
    return DATASETS.get(name)(**params)
