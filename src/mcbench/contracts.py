"""The contracts between the framework and a method: ``ClusteringTask`` in, ``FitResult`` out.

A method sees one clustering task: the frozen image features (in a seeded random order the framework
chose), the encoder for text, the aspect the user named, k, the prompt and the reference words. It never
sees labels or the data's label order; the runner keeps both for the evaluator and maps the partition back.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch
from mcbench.progress import epoch_bar
from mcbench.protocol import KMeansProtocol
from mcbench.registry import Registry
from mcbench.validation import check_params

if TYPE_CHECKING:
    from mcbench.encoders import ClipEncoder


@dataclass(frozen=True)
class ImageFeatures:
    """Frozen image features of the task's images, in task order.

    ``embeddings`` are the L2-normalised CLIP image embeddings; ``pre_projection`` is the input of the
    image tower's last projection (``embeddings`` ∝ ``encoder.image_projection(pre_projection)``), so a
    method that trains that projection (Multi-Sub) needs no image forward pass.
    """

    embeddings: torch.Tensor
    pre_projection: torch.Tensor
    extract_batch_size: int = 0  # the image batch that fit in memory (halved on out-of-memory); 0: unknown

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


@dataclass(frozen=True)
class ClusteringTask:
    """One personalised clustering problem, label-free by construction."""

    dataset: str
    aspect: str
    concept: str
    k: int
    prompt: str
    reference_words: tuple[str, ...]
    features: ImageFeatures
    encoder: "ClipEncoder"
    seed: int
    device: torch.device = torch.device("cpu")
    protocol: KMeansProtocol = KMeansProtocol()
    show_progress: bool = False  # the run's ``progress`` setting: a bar per training
    #: the k of every aspect of the dataset (dataset order); read only by the classic multiple-clustering controls,
    #: whose papers give them every clustering's k (methods/classic.py, switch ``k_views``)
    aspect_ks: tuple[int, ...] = ()
    on_epoch: Callable[[dict[str, float]], None] | None = None  # the tracker's live curves (W&B)

    def log_epoch(self, terms: dict[str, float]) -> None:
        """Report one finished epoch's loss terms (the entry just appended to the history): live curves."""
        if self.on_epoch is not None:
            self.on_epoch(dict(terms))

    def progress(self, total: int, method: str) -> Any:
        """A progress bar over a training's ``total`` epochs (off unless the run asked for progress). Methods
        ``update()`` it once per epoch."""
        return epoch_bar(total, f"{method} {self.dataset}/{self.aspect} seed={self.seed}", self.show_progress)

    @property
    def n(self) -> int:
        return len(self.features)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A torch generator seeded from the task seed (on the CPU; draw there and move)."""
        return torch.Generator().manual_seed(int(self.seed) * 1000003 + offset)


@dataclass
class FitResult:
    """What a method returns: one declared representation and the partitions read from it.

    ``partitions`` are in task order: the protocol's k-means restarts on ``representation`` (the first is
    "the" partition), or a single partition for methods that assign directly (zero-shot). ``proxies`` are
    the per-image proxies mapped into CLIP's joint text space, when the method has proxies (used to name
    clusters). ``history`` holds one dict of loss terms per epoch. ``views`` are the several alternative
    partitions (task order) of a method with ``selection = "best_match"``: the runner scores the named aspect
    by the view of highest NMI and replaces ``partitions`` with it.
    """

    partitions: list[np.ndarray]
    representation: np.ndarray | None
    representation_name: str
    history: list[dict[str, float]] = field(default_factory=list)
    proxies: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    views: list[np.ndarray] | None = None

    @property
    def labels(self) -> np.ndarray:
        return self.partitions[0]

    @classmethod
    def from_representation(
        cls, task: ClusteringTask, representation: torch.Tensor | np.ndarray, name: str, **kwargs: Any
    ) -> "FitResult":
        """Apply the task's k-means protocol to ``representation``."""
        rep = representation.detach().float().cpu().numpy() if torch.is_tensor(representation) else representation
        if not np.all(np.isfinite(rep)):
            error = FloatingPointError(f"the representation '{name}' contains NaN or Inf")
            error.history = kwargs.get("history") or []  # type: ignore[attr-defined]  (the runner names the epoch)
            raise error
        return cls(partitions=task.protocol.partitions(rep, task.k), representation=rep, representation_name=name, **kwargs)


class ProxyMethod(ABC):
    """A clustering method (sklearn-style: hyperparameters in, ``fit`` does the work).

    Subclasses set ``name`` (registry key = YAML file name = CSV ``method``), ``Config`` (a dataclass of
    hyperparameters and switches; every field is recorded in the result row), ``version`` (bump on any
    behaviour change: it is part of the run identity) and ``implementation`` (how faithful it is).
    ``uses_class_names`` marks an oracle control that is given the true class names as its words.
    ``official_overrides`` lists the switches (as Hydra overrides) that reproduce the released code.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    version: ClassVar[int] = 1
    implementation: ClassVar[str] = "mcbench"
    uses_class_names: ClassVar[bool] = False
    #: how the row is scored: "named" (a personalised method's partition for the named aspect) or "best_match"
    #: (a classic method's several clusterings, the best-matching one per aspect: an oracle selection)
    selection: ClassVar[str] = "named"
    #: needs only the image features (no encoder, no words): can run on a feature dataset that has no images
    runs_on_features: ClassVar[bool] = False
    #: Hydra overrides that reproduce the released code's behaviour (sanity suite "official" variant)
    official_overrides: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.Config()

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "ProxyMethod":
        """Build from a config mapping; an unknown or mistyped key is one clear error."""
        check_params("method", cls.name, cls.Config, params)
        return cls(cls.Config(**params))

    def hparams(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @abstractmethod
    def fit(self, task: ClusteringTask) -> FitResult:
        """Cluster the task's images by the named aspect."""


#: every method: the modules of ``mcbench.methods`` (the top-level ``methods/`` folder), then other packages' through
#: the ``mcbench.methods`` entry-point group
METHODS: Registry[type[ProxyMethod]] = Registry("method", modules=("mcbench.methods.*",), entry_point_group="mcbench.methods")


def register_method(name: str):
    """Class decorator: ``@register_method("multi_map")`` sets ``cls.name`` and registers the class."""

    def decorate(cls: type[ProxyMethod]) -> type[ProxyMethod]:
        cls.name = name
        return METHODS.register(name)(cls)

    return decorate
