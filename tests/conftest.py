"""Shared fixtures: tiny synthetic data, the shipped tiny CLIP, label-free tasks built the runner's way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

from mcbench.data.base import build_dataset  # noqa: E402
from mcbench.encoders import PRETRAINED_DIR, create_encoder  # noqa: E402
from mcbench.features import image_features  # noqa: E402
from mcbench.runner import build_task  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HAS_TINY_CLIP = (PRETRAINED_DIR / "mcbench-tiny-clip.safetensors").is_file()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache for the whole session (synthetic images, features)."""
    return tmp_path_factory.mktemp("mcbench-cache")


@pytest.fixture(scope="session")
def tiny_clip():
    if not HAS_TINY_CLIP:
        pytest.skip("the tiny CLIP weights are not built yet")
    return create_encoder("mcbench-tiny-clip", "mcbench")


@pytest.fixture(scope="session")
def make_task(cache_dir, tiny_clip):
    """``make_task("synth_cards", "suits", n=200, seed=0)`` -> (task, labels in task order)."""
    memo: dict = {}

    def make(dataset: str, aspect: str, n: int = 200, seed: int = 0, encoder=None, words=None, order="shuffled"):
        enc = encoder or tiny_clip
        key = (dataset, n, enc.identity)
        if key not in memo:
            ds = build_dataset(dataset, n=n, seed=0, cache_dir=str(cache_dir))
            memo[key] = (ds, image_features(enc, ds, cache_dir, progress=False)[0])
        ds, feats = memo[key]
        asp = ds.aspects[aspect]
        task, perm = build_task(ds, aspect, feats, enc, tuple(words or asp.reference_words), seed, order)
        return task, ds.labels[aspect][perm]

    return make
