"""Cluster names: each found cluster is named by the reference word closest to it in CLIP's text space.

The cluster's point is the mean of its members' proxies in the joint space (t*_i or mixtures of word
embeddings), or, for methods without proxies, the mean of its image embeddings (already in the joint space).
Each name comes with its cosine margin over the next best word. Two clusters with the same name are a
finding (the method split one word's images), reported, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ClusterName:
    cluster: int
    size: int
    word: str
    score: float
    runner_up: str
    margin: float

    @classmethod
    def from_dict(cls, d: dict) -> "ClusterName":
        """One entry of a task's ``cluster_names.json`` (``asdict`` of a ClusterName); missing fields read as
        empty, so a hand-edited or older file still loads."""
        return cls(int(d["cluster"]), int(d.get("size", 0) or 0), str(d.get("word")), float(d.get("score", 0.0) or 0.0),
                   str(d.get("runner_up", "")), float(d.get("margin", 0.0) or 0.0))


def name_clusters(labels: np.ndarray, points: np.ndarray, words: tuple[str, ...],
                  word_embeddings: torch.Tensor) -> list[ClusterName]:
    """Name every cluster of ``labels`` (task order) from ``points`` (N×D, joint space)."""
    import torch  # here, not at the top: the report reads names and collisions without loading torch
    import torch.nn.functional as F

    pts = F.normalize(torch.as_tensor(points, dtype=torch.float32), dim=-1)
    text = F.normalize(word_embeddings.float().cpu(), dim=-1)
    names = []
    for c in sorted(np.unique(labels)):
        centre = F.normalize(pts[torch.as_tensor(labels == c)].mean(0), dim=0)
        sims = text @ centre
        order = torch.argsort(sims, descending=True)
        best = int(order[0])
        second = int(order[1]) if len(order) > 1 else best
        names.append(ClusterName(int(c), int((labels == c).sum()), words[best], round(float(sims[best]), 4),
                                 words[second], round(float(sims[best] - sims[second]), 4)))
    return names


def collisions(names: list[ClusterName]) -> dict[str, list[int]]:
    """Words that name more than one cluster."""
    by_word: dict[str, list[int]] = {}
    for n in names:
        by_word.setdefault(n.word, []).append(n.cluster)
    return {w: cs for w, cs in by_word.items() if len(cs) > 1}


def summary(names: list[ClusterName]) -> str:
    """The short string for the result row: ``word(size, +margin)`` per cluster, largest first."""
    return "; ".join(f"{n.word}({n.size},+{n.margin:.2f})" for n in sorted(names, key=lambda n: -n.size))
