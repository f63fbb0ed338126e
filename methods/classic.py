"""Classic (non-personalised) multiple-clustering controls, run by ClustPy (BSD-3) on the frozen image features.

Each finds SEVERAL clusterings (one per subspace / view) without reading the named aspect; the runner scores
the named aspect by the view of highest NMI (``selection = "best_match"``, as ClustPy's
``MultipleLabelingsConfusionMatrix(...).aggregate("max")`` and the personalised-clustering papers' baseline
tables do). That choice uses the labels: an oracle selection the personalised methods do not get, so their rows
say ``selection=best_match`` and the leaderboard marks them.

* ``nrkmeans``             — Nr-Kmeans (Mautz et al., KDD 2018): an orthogonal rotation V splits the space into
  subspaces P_j, one k-means per subspace (plus an optional noise space), cost Σ_j Σ_i ‖P_jᵀVᵀ(x_i − μ)‖².
* ``enrc``                 — ENRC (Miklautz et al., AAAI 2020): a feed-forward autoencoder whose embedding is
  clustered by an Nr-Kmeans-style layer (rotation V, soft subspace weights β), trained jointly with the
  reconstruction loss; deep, so the defaults here are ClustPy's network with few epochs (below).
* ``orthogonal_clustering`` — Cui, Fern & Dy (ICDM 2007), "orthogonal clustering": k-means, then project the
  data onto the space orthogonal to the found cluster centres, k-means again, …
* ``orthogonal_subspaces`` — the same paper's "clustering in orthogonal subspaces" (projection orthogonal to the
  space spanned by the centres' principal directions).

How many clusters per view (``k_views``; every row records it): the papers and ClustPy's examples give these
methods the k of every ground-truth clustering (``k_views=dataset``: the k of each aspect of the dataset, in
the dataset's aspect order: structure from the labels, as published). ``k_views=task`` gives ``n_views`` views
of the named task's k only (no other aspect's count). AutoNR (ClustPy, which finds the k's itself) is not wired
in: 53 s on the 105 × 6 Fruit features alone (docs/classic_baselines.md).

``order=canonical`` (default) fits the rows sorted by their features (label-free) and maps the views back, so the
result does not depend on the order the framework chose (ClustPy draws initial centres by row index).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from mcbench.contracts import ClusteringTask, FitResult, ProxyMethod, register_method

K_VIEWS = ("dataset", "task")
ORDERS = ("canonical", "task")


class ClassicMultipleClustering(ProxyMethod):
    """Shared plumbing: k per view, the features as a float64 array, the views returned for best-match scoring."""

    implementation = "clustpy"
    selection = "best_match"
    runs_on_features = True
    aspect_blind = True  # never reads the named aspect (the sanity suite's interest swap does not apply)

    def n_clusters(self, task: ClusteringTask) -> list[int]:
        c = self.config
        if c.k_views not in K_VIEWS:
            raise ValueError(f"method.k_views={c.k_views!r} is not valid; choose one of: {', '.join(K_VIEWS)}")
        if c.k_views == "dataset":
            ks = list(task.aspect_ks) or [task.k]
        else:
            if c.n_views < 1:
                raise ValueError(f"method.n_views={c.n_views} is not valid: use 1 or more views")
            ks = [task.k] * c.n_views
        return ks + ([1] if c.noise_space else [])  # ClustPy's convention: a cluster count of 1 is the noise space

    def fit(self, task: ClusteringTask) -> FitResult:
        x = task.features.embeddings.detach().float().cpu().numpy().astype(np.float64)
        ks = self.n_clusters(task)
        if self.config.order not in ORDERS:
            raise ValueError(f"method.order={self.config.order!r} is not valid; choose one of: {', '.join(ORDERS)}")
        # ClustPy draws its initial centres by row index: in a canonical order (the rows sorted by their features,
        # label-free) the views depend on the images and the seed only, not on the order the framework chose
        order = np.lexsort(x.T[::-1]) if self.config.order == "canonical" else np.arange(len(x))
        out = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            warnings.simplefilter("ignore")
            fitted, extra = self.views(x[order], ks, task)
        labels = np.empty((len(x), np.asarray(fitted).reshape(len(x), -1).shape[1]), dtype=np.int64)
        labels[order] = np.asarray(fitted).reshape(len(x), -1)
        # a view with one cluster (the noise space) is no clustering: it is left out of the best match
        views = [labels[:, j].astype(np.int64) for j in range(labels.shape[1]) if len(np.unique(labels[:, j])) > 1]
        if not views:
            raise ValueError(f"{self.name}: every view has a single cluster (n_clusters={ks})")
        info = {"n_clusters": ks, "clustpy_log": out.getvalue()[-2000:], **extra}
        return FitResult(partitions=[views[0]], representation=None, representation_name=f"{self.name} views",
                         views=views, info=info)

    def views(self, x: np.ndarray, ks: list[int], task: ClusteringTask) -> tuple[np.ndarray, dict[str, Any]]:
        raise NotImplementedError


@dataclass
class NrKmeansConfig:
    k_views: str = "dataset"  # dataset: the k of every aspect (the papers) | task: n_views × the named task's k
    n_views: int = 2  # used with k_views=task
    noise_space: bool = False  # Nr-Kmeans' optional noise space (k = 1); ClustPy's default has none
    order: str = "canonical"  # canonical: rows sorted by their features before fitting (order-invariant) | task
    max_iter: int = 300  # ClustPy default
    n_init: int = 1  # ClustPy default (restarts, the lowest cost kept: no labels involved)


@register_method("nrkmeans")
class NrKmeansControl(ClassicMultipleClustering):
    """Nr-Kmeans (Mautz et al., KDD 2018, Eq. 1: Σ_j Σ_{C∈clusters_j} Σ_{x∈C} ‖P_jᵀVᵀx − P_jᵀVᵀμ_C‖²)."""

    Config = NrKmeansConfig

    def views(self, x, ks, task):
        from clustpy.alternative import NrKmeans

        c = self.config
        model = NrKmeans(n_clusters=ks, max_iter=c.max_iter, n_init=c.n_init, random_state=task.seed).fit(x)
        return model.labels_, {"subspace_dims": [int(m) for m in model.m_]}


@dataclass
class ENRCConfig:
    k_views: str = "dataset"
    n_views: int = 2
    noise_space: bool = False
    order: str = "canonical"  # canonical: rows sorted by their features before fitting (order-invariant) | task
    pretrain_epochs: int = 20  # ClustPy default 100: the smallest setting that still trains the autoencoder here
    clustering_epochs: int = 20  # ClustPy default 150
    embedding_size: int = 20  # ClustPy default; at most the input's dimension, at least max(k) + 1 (its init needs it)
    batch_size: int = 128  # ClustPy default
    pretrain_lr: float = 1e-3  # ClustPy default (Adam)
    clustering_lr: float = 1e-4  # ClustPy default (Adam)
    init: str = "nrkmeans"  # ClustPy default: Nr-Kmeans on the pretrained embedding
    final_reclustering: bool = True  # ClustPy default: re-run the Nr-Kmeans init on the final embedding
    retries: int = 3  # refits with seed + 1000·attempt where ClustPy loses a subspace (a crash; no labels involved)


@register_method("enrc")
class ENRCControl(ClassicMultipleClustering):
    """ENRC (Miklautz et al., AAAI 2020, Eq. 7: L = L_rec + Σ_j Σ_i ‖P_jᵀVᵀ(β-weighted) (z_i − μ_{j,c(i)})‖²),
    ClustPy's implementation: its feed-forward autoencoder (layers [d, 500, 500, 2000, embedding_size])."""

    Config = ENRCConfig

    def views(self, x, ks, task):
        from clustpy.deep import ENRC

        c = self.config
        if c.embedding_size < 1:
            raise ValueError(f"method.embedding_size={c.embedding_size} is not valid: use a positive size (default 20)")
        # an undercomplete autoencoder (no wider than the input: Fruit has 6 features), with more dimensions than
        # clusters (ClustPy's Nr-Kmeans init needs them)
        size = max(min(c.embedding_size, x.shape[1]), max(ks) + 1)
        model, attempt = _fit_enrc(ENRC, dict(
            n_clusters=ks, pretrain_epochs=c.pretrain_epochs, clustering_epochs=c.clustering_epochs,
            embedding_size=size, batch_size=c.batch_size, init=c.init,
            pretrain_optimizer_params={"lr": c.pretrain_lr}, clustering_optimizer_params={"lr": c.clustering_lr},
            final_reclustering=c.final_reclustering, device=str(task.device), random_state=task.seed,
        ), x.astype(np.float32), c.retries)
        return model.labels_, {"effective_hparams": {"embedding_size": size, "seed_attempt": attempt}}


def _fit_enrc(ENRC, params: dict[str, Any], x: np.ndarray, retries: int):
    """Fit; where ClustPy's ENRC loses a subspace (its Nr-Kmeans (re)initialisation ends with fewer subspaces than
    clusterings: a crash, seed-dependent), refit with the next seed (seed + 1000·attempt), at most ``retries`` times.
    No labels are involved; the attempt used is recorded."""
    for attempt in range(retries + 1):
        try:
            return ENRC(**{**params, "random_state": params["random_state"] + 1000 * attempt}).fit(x), attempt
        except ValueError as exc:
            if "Number of clusterings" not in str(exc):
                raise
            if attempt == retries:
                raise ValueError(
                    f"enrc: ClustPy's ENRC lost a subspace on each of {retries + 1} seeds (embedding "
                    f"{params['embedding_size']}-d, n_clusters={params['n_clusters']}: {exc}); no result row was "
                    f"written. Try more method.retries, another method.embedding_size or more method.pretrain_epochs"
                ) from exc


@dataclass
class OrthogonalConfig:
    k_views: str = "dataset"
    n_views: int = 2
    noise_space: bool = False  # not part of Cui et al.; kept for a uniform switch set (views of k = 1 are dropped)
    order: str = "canonical"  # canonical: rows sorted by their features before fitting (order-invariant) | task
    explained_variance: float = 0.9  # ClustPy default: PCA variance kept before each clustering (Cui et al. §3)


@register_method("orthogonal_clustering")
class OrthogonalClusteringControl(ClassicMultipleClustering):
    """Orthogonal clustering (Cui, Fern & Dy, ICDM 2007, §3.1: X^{(t+1)} = X^{(t)} (I − M_t (M_tᵀM_t)⁻¹ M_tᵀ)
    with M_t the cluster centres of view t)."""

    Config = OrthogonalConfig

    def views(self, x, ks, task):
        from clustpy.alternative import OrthogonalClustering

        model = OrthogonalClustering(n_clusters=ks, explained_variance_for_clustering=self.config.explained_variance,
                                     random_state=task.seed).fit(x)
        return model.labels_, {}


@register_method("orthogonal_subspaces")
class OrthogonalSubspacesControl(OrthogonalClusteringControl):
    """Clustering in orthogonal subspaces (Cui, Fern & Dy, ICDM 2007, §3.2: project onto the complement of the
    principal subspace of the view's centres)."""

    def views(self, x, ks, task):
        from clustpy.alternative import ClusteringInOrthogonalSpaces

        model = ClusteringInOrthogonalSpaces(
            n_clusters=ks, explained_variance_for_clustering=self.config.explained_variance, random_state=task.seed
        ).fit(x)
        return model.labels_, {}
