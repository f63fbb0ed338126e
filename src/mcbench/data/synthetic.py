"""Synthetic multi-view image datasets drawn with numpy/PIL: ``synth_shapes``, ``synth_cards``, ``synth_fruit``.

Every image shows one object whose factors (the aspects) are sampled independently and balanced; nuisance
variation (position, rotation, scale, background texture, pixel noise) keeps clustering from being trivial.
The ``difficulty`` levels (docs/difficulty.md), calibrated per family against the shipped tiny CLIP:

* ``easy`` — the images the tiny CLIP was trained on (never change);
* ``medium``, ``hard`` — alignment-hard: beside the true object stand "echoes" of the NEXT class of each aspect
  (fixed ring order) at a level-specific relative scale, so the classes stay apart in image space while the
  class names point elsewhere (a linear probe on the image embeddings stays >= 0.95, zero-shot drops);
* ``noisy_medium``, ``noisy_hard`` — the earlier noise-based levels (distractors, hue shifts toward a
  neighbouring class, fading, occlusion, blur, low contrast, clutter), which erase the aspect from the images
  as much as they confuse CLIP: the low-ceiling regime.

Generation is deterministic from ``seed``; datasets are cached on disk.

The parts: :mod:`mcbench.data.synth_families` (the drawings), :mod:`mcbench.data.synth_levels` (the difficulty
levels), :mod:`mcbench.data.synth_render` (rendering, :func:`generate`); this module caches the generated arrays
and registers the datasets.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mcbench.atomic import atomic_path
from mcbench.data.base import DATASETS, Aspect, MultiViewDataset
from mcbench.hashing import stable_hash
from mcbench.data.synth_families import FAMILIES  # noqa: F401  (re-exported)
from mcbench.data.synth_levels import DIFFICULTIES, ECHO, NUISANCE, NUISANCE_VERSION  # noqa: F401  (DIFFICULTIES: re-exported)
from mcbench.data.synth_render import _check, family_aspects, generate  # noqa: F401  (generate: re-exported)

#: Bump when the drawings change: it is part of the cache key.
GENERATOR_VERSION = 2

# ----------------------------------------------------------------------------------------------- datasets


def default_cache_dir() -> Path:
    """``$MCBENCH_CACHE`` or ``~/.cache/mcbench``."""
    return Path(os.environ.get("MCBENCH_CACHE") or Path.home() / ".cache" / "mcbench")


def cache_path(
    family: str, n: int, seed: int, image_size: int, difficulty: str, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Where the cached arrays of one generated dataset live."""
    fields = {"family": family, "n": n, "seed": seed, "image_size": image_size, "difficulty": difficulty,
              "version": GENERATOR_VERSION}  # fmt: skip
    if difficulty != "easy":
        fields["nuisance"] = [NUISANCE_VERSION, asdict(NUISANCE[difficulty][family])]
        if difficulty in ECHO:
            fields["echo"] = asdict(ECHO[difficulty][family])
    return Path(cache_dir or default_cache_dir()) / "synthetic" / f"{family}-{stable_hash(fields)}.npz"


def _load_cached(path: Path, n: int, image_size: int, aspects: dict[str, Aspect]):
    """The cached (pixels, labels), or None when the file is missing, unreadable or inconsistent."""
    try:
        with np.load(path, allow_pickle=False) as z:
            pixels = z["pixels"]
            labels = {a: z[f"labels_{a}"] for a in aspects}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if pixels.shape != (n, image_size, image_size, 3) or pixels.dtype != np.uint8:
        return None
    if any(y.shape != (n,) or y.min() < 0 or y.max() >= aspects[a].k for a, y in labels.items()):
        return None
    return pixels, labels


def _save_atomic(path: Path, pixels: np.ndarray, labels: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, pixels=pixels, **{f"labels_{a}": y for a, y in labels.items()})


def synthetic_dataset(
    family: str,
    n: int = 600,
    seed: int = 0,
    image_size: int = 64,
    difficulty: str = "easy",
    cache_dir: str | os.PathLike | None = None,
) -> MultiViewDataset:
    """The ``synth_<family>`` dataset, read from the disk cache or generated and cached."""
    _check(family, n, image_size, difficulty)
    aspects = family_aspects(family)
    path = cache_path(family, n, seed, image_size, difficulty, cache_dir)
    cached = _load_cached(path, n, image_size, aspects)
    if cached is None:
        pixels, labels, _ = generate(family, n, seed, image_size, difficulty)
        _save_atomic(path, pixels, labels)
    else:
        pixels, labels = cached
    name = f"synth_{family}"
    return MultiViewDataset(
        name=name,
        aspects=aspects,
        labels={a: np.asarray(y, dtype=np.int64) for a, y in labels.items()},
        image_ids=[f"{name}_s{seed}_{i:06d}" for i in range(n)],
        pixels=pixels,
        info={
            "generator": f"mcbench.data.synthetic:{family}@v{GENERATOR_VERSION}",
            "difficulty": difficulty,
            "n": n,
            "seed": seed,
            "image_size": image_size,
            "cache_file": str(path),
        },
    )


@DATASETS.register("synth_shapes")
def synth_shapes(n: int = 600, seed: int = 0, image_size: int = 64, difficulty: str = "easy", cache_dir=None):
    """Shapes: aspects ``color`` (4), ``shape`` (4), ``size`` (2)."""
    return synthetic_dataset("shapes", n, seed, image_size, difficulty, cache_dir)


@DATASETS.register("synth_cards")
def synth_cards(n: int = 600, seed: int = 0, image_size: int = 64, difficulty: str = "easy", cache_dir=None):
    """Playing cards: aspects ``number`` (13 ranks) and ``suits`` (4)."""
    return synthetic_dataset("cards", n, seed, image_size, difficulty, cache_dir)


@DATASETS.register("synth_fruit")
def synth_fruit(n: int = 600, seed: int = 0, image_size: int = 64, difficulty: str = "easy", cache_dir=None):
    """Fruit: aspects ``color`` (4) and ``species`` (4)."""
    return synthetic_dataset("fruit", n, seed, image_size, difficulty, cache_dir)
