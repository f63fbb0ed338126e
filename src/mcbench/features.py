"""Frozen image features, computed once per (encoder weights, preprocessing, dataset content) and cached.

The cache file is safetensors, written atomically, and carries its key and a checksum of its tensors in
its metadata: a file made by another encoder or preprocessing, or a truncated/corrupted file, is detected
and recomputed, never loaded. So is a file whose features hold NaN/Inf; features that come out of the encoder
non-finite stop the job before any fitting, with the images and the likely cause named, and are not cached.
A file that fails to decode during extraction is named by its path (not a DataLoader worker traceback).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mcbench.contracts import ImageFeatures
from mcbench.atomic import atomic_path
from mcbench.hashing import stable_hash
from mcbench.data.base import MultiViewDataset
from mcbench.encoders import ClipEncoder

log = logging.getLogger(__name__)
FEATURE_FORMAT = 1


def feature_key(encoder: ClipEncoder, dataset: MultiViewDataset) -> str:
    """What the features depend on: weights, preprocessing, dataset content, file format."""
    ident = {
        "encoder": encoder.identity,
        "preprocess": repr(encoder.preprocess),
        "dataset": dataset.name,
        "revision": dataset.revision,
        "format": FEATURE_FORMAT,
    }
    return stable_hash(ident, 20)


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_path(cache_dir: str | Path, encoder: ClipEncoder, dataset: MultiViewDataset) -> Path:
    return Path(cache_dir) / "features" / dataset.name / f"{feature_key(encoder, dataset)}.safetensors"


def _try_load(path: Path, key: str) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
    if not path.is_file():
        return None
    try:
        tensors = load_file(str(path))
        with open(path, "rb") as fh:  # metadata lives in the safetensors header
            header_len = int.from_bytes(fh.read(8), "little")
            meta = json.loads(fh.read(header_len)).get("__metadata__", {})
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        log.warning("feature cache %s is unreadable (%s); recomputing", path, exc)
        return None
    if meta.get("key") != key or meta.get("sha256") != _checksum(tensors):
        log.warning("feature cache %s does not match its key or checksum; recomputing", path)
        return None
    if _nonfinite_rows(tensors).numel():
        log.warning("feature cache %s holds NaN/Inf features; recomputing", path)
        return None
    return tensors, meta


def _nonfinite_rows(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """Indices of the images whose embedding or pre-projection feature has a NaN or Inf."""
    bad = torch.zeros(len(tensors["embeddings"]), dtype=torch.bool)
    for t in tensors.values():
        bad |= ~torch.isfinite(t.reshape(len(t), -1)).all(dim=1)
    return torch.nonzero(bad).flatten()


def _nonfinite_message(encoder: ClipEncoder, dataset: MultiViewDataset, rows: torch.Tensor) -> str:
    which = [dataset.paths[i] if dataset.paths is not None else dataset.image_ids[i] for i in rows[:3].tolist()]
    return (
        f"the encoder {encoder.name} ({encoder.identity}) gave NaN/Inf features for {len(rows)} of {len(dataset)} "
        f"images of dataset '{dataset.name}' (e.g. {', '.join(map(str, which))}); nothing was cached and no method "
        f"was run. Likely causes: broken encoder weights (encoder.pretrained), or fp16 overflow on the GPU "
        f"(try device=cpu)."
    )


def _encode(encoder: ClipEncoder, dataset: MultiViewDataset, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """``encoder.encode_images`` over the dataset; an image that fails in a DataLoader worker is reported with the
    error the dataset raised (its path), not torch's multi-line worker traceback."""
    try:
        return encoder.encode_images(_LazyImages(dataset), **kwargs)
    except Exception as exc:
        text = str(exc)
        if "DataLoader worker" not in text:
            raise
        last = text.strip().splitlines()[-1]  # "ValueError: cannot read image /path ...": the original error
        original = last.split(": ", 1)[1] if ": " in last else last
        try:
            error = type(exc)(original)
        except Exception:
            raise exc from None
        raise error from exc


def image_features(
    encoder: ClipEncoder, dataset: MultiViewDataset, cache_dir: str | Path | None, progress: bool = True,
    batch_size: int = 64,
) -> tuple[ImageFeatures, bool]:
    """Features of every image in dataset order, and whether they came from the cache."""
    key = feature_key(encoder, dataset)
    path = cache_path(cache_dir, encoder, dataset) if cache_dir else None
    loaded = _try_load(path, key) if path else None
    hit = loaded is not None
    if loaded is not None:
        tensors, meta = loaded
        used_batch = int(meta.get("batch_size", 0))
    else:
        workers = min(4, os.cpu_count() or 1) if dataset.paths is not None else 0
        emb, pre = _encode(encoder, dataset, batch_size=batch_size, progress=progress, num_workers=workers)
        used_batch = int(getattr(encoder, "last_batch_size", batch_size))
        tensors = {"embeddings": emb.float().contiguous(), "pre_projection": pre.float().contiguous()}
        bad = _nonfinite_rows(tensors)
        if bad.numel():
            raise FloatingPointError(_nonfinite_message(encoder, dataset, bad))
        if path:
            meta = {"key": key, "sha256": _checksum(tensors), "encoder": encoder.identity,
                    "dataset": dataset.name, "revision": dataset.revision, "batch_size": str(used_batch)}
            with atomic_path(path) as tmp:
                save_file(tensors, str(tmp), metadata=meta)
    feats = ImageFeatures(
        embeddings=F.normalize(tensors["embeddings"], dim=-1), pre_projection=tensors["pre_projection"],
        extract_batch_size=used_batch,
    )
    return feats, hit


class _LazyImages:
    """Reads images from disk one at a time while they are encoded."""

    def __init__(self, dataset: MultiViewDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return self.dataset.image(i)
