"""Transductive zero-shot LDA: mcbench's own training-free contender (docs/transductive_lda.md).

It reads the same inputs as ``zeroshot_gpt`` — the image embeddings x_i, the prompt filled with each reference
word and encoded (t_w), k and the encoder's logit scale τ — and corrects the zero-shot assignment with the
structure of the whole unlabeled image set, as transductive zero-shot CLIP does (TransCLIP, Zanella, Gérin,
Ben Ayed, NeurIPS 2024, arXiv:2406.01837, §3; ZLaP, Kalantidis, Tolias, Avrithis, CVPR 2024, for the graph term).
Written from the equations below; no code is copied (TransCLIP's repository is AGPL-3.0).

Steps (each line names the equation it implements; the numbers are those of docs/transductive_lda.md):

* (1) zero-shot probabilities over all m words: P = softmax_w(τ · x_iᵀ t_w)                      → ``zero_shot``
* (2) the k words with the largest total zero-shot mass Σ_i P_iw are kept (``word_selection=mass``);
      P₀ = softmax over the kept words only                                                    → ``keep_words``
* (3) optional Sinkhorn balancing of P₀ toward equal class sizes n/k (``balance``; assumes balanced classes;
      Cuturi, NeurIPS 2013, as in self-labelling)                                               → ``sinkhorn``
* (4) features f_i: the image embedding (``space=image``) or its coordinates in an orthonormal basis of the
      span of the word embeddings (``space=word_span``; the kept words or all m, ``span_words``) → ``features``
* (5) M-step of a shared-covariance Gaussian mixture (LDA): μ_c = Σ_i z_ic f_i / Σ_i z_ic,
      Σ = (1/n) Σ_i Σ_c z_ic (f_i − μ_c)(f_i − μ_c)ᵀ, shrunk Σ ← (1−s)·Σ + s·(tr Σ / p)·I (Ledoit–Wolf-style
      shrinkage toward a scaled identity)                                                      → ``m_step``
* (6) E-step with the zero-shot prior: z_i = softmax_c(log P₀_ic + γ·ℓ_ic + η·Σ_j (w_ij + w_ji) z_jc),
      ℓ_ic = −½ (f_i − μ_c)ᵀ Σ⁻¹ (f_i − μ_c). With η = 0 this is the posterior of an LDA whose class prior
      per image is the zero-shot P₀ (TransCLIP's z-step with its KL weight λ = 1 and the GMM term, shared
      covariance); η > 0 adds TransCLIP's Laplacian term over a kNN graph of the image embeddings,
      w_ij = max(0, x_iᵀ x_j) for j among the ``n_neighbors`` nearest neighbours of i, solved by a few
      fixed-point rounds (``laplacian_rounds``) as in TransCLIP's z-update                    → ``e_step``
* (7) ``iterations`` rounds of (5)–(6) starting from z = P₀; each image takes argmax_c z_ic; the cluster c is
      the kept word c (named by it).
* (8) ``restarts`` more EM runs, each from a seeded k-means++ partition of the features (canonical row order,
      each cluster matched one-to-one to the kept word of highest total log P₀ over its images); the run with
      the highest objective F = Σ_ic z_ic (log P₀_ic + γ ℓ_ic − log z_ic) − (γn/2) log det Σ (+ the graph term)
      is the result — EM's own objective, no labels (several EM starts, best likelihood: standard practice for
      mixtures, e.g. scikit-learn's ``GaussianMixture(n_init=...)``)                           → ``free_energy``

Every step is row-wise or a sum over rows, and the k-means++ starts see the rows in a canonical order, so
permuting the input images permutes the output partition; the starts are seeded from the task seed. The result is a direct assignment, like ``zeroshot_gpt``:
the declared representation is the posterior matrix z (n × k).

Where TransCLIP's released code differs from the paper it is noted in docs/transductive_lda.md; here the
covariance is full and shrunk (LDA) rather than diagonal, and the Gaussian term has its own weight γ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mcbench.contracts import ClusteringTask, FitResult, ProxyMethod, register_method
from mcbench.prompts import word_text_embeddings

SPACES = ("word_span", "image")
SPAN_WORDS = ("kept", "all")
RESTART_SPACES = ("features", "similarities")
WORD_SELECTIONS = ("mass", "all")


@dataclass
class TransductiveLDAConfig:
    template: str = "prompt"        # prompt: "<prompt with word>" (as zeroshot_gpt) | bare: the word alone
    logit_scale: float = 0.0        # τ of Eq. (1); 0: the encoder's own learned logit scale (exp of its parameter)
    word_selection: str = "mass"    # mass: the k words of largest total zero-shot mass (Eq. 2) | all: every word
    balance: bool = False           # Sinkhorn-balance P₀ toward equal class sizes (Eq. 3; assumes balanced classes)
    sinkhorn_rounds: int = 3        # rounds of Eq. (3) when balance is on
    space: str = "word_span"        # word_span: coordinates in the span of the word embeddings | image: x_i itself
    span_words: str = "all"         # which words span the space (space=word_span): all m reference words | kept
    gamma: float = 10.0             # γ: weight of the Gaussian log-likelihood against log P₀ (Eq. 6)
    shrinkage: float = 0.2          # s of Eq. (5): Σ ← (1−s)Σ + s·(tr Σ/p)·I
    iterations: int = 10            # EM rounds of Eqs. (5)-(6)
    laplacian_weight: float = 0.0   # η of Eq. (6): TransCLIP's kNN-Laplacian term; 0 turns it off
    n_neighbors: int = 3            # kNN graph of the Laplacian term (TransCLIP: 3)
    laplacian_rounds: int = 5       # fixed-point rounds of the z-update when η > 0 (TransCLIP: 5)
    restarts: int = 10              # extra EM starts from seeded k-means++ partitions (Eq. 8); 0: the zero-shot start only
    restart_space: str = "features"  # where the k-means++ starts run: features (f of Eq. 4) | similarities (x_i Tᵀ, all words)


def zero_shot(x: torch.Tensor, text: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. (1): P_iw = softmax_w(τ · x_iᵀ t_w)."""
    return torch.softmax(tau * x @ text.T, dim=1)


def keep_words(p: torch.Tensor, k: int, selection: str) -> torch.Tensor:
    """Eq. (2): indices (ascending) of the k words with the largest total zero-shot mass Σ_i P_iw."""
    m = p.shape[1]
    if selection == "all" or m <= k:
        return torch.arange(m)
    mass = p.sum(0)
    # stable ranking: equal masses keep the word list's order (deterministic, independent of image order)
    order = sorted(range(m), key=lambda w: (-float(mass[w]), w))
    return torch.tensor(sorted(order[:k]))


def sinkhorn(p: torch.Tensor, rounds: int) -> torch.Tensor:
    """Eq. (3): alternate column scaling to mass n/k per class and row normalisation (Sinkhorn–Knopp)."""
    n, k = p.shape
    for _ in range(rounds):
        p = p * ((n / k) / p.sum(0, keepdim=True).clamp_min(1e-12))
        p = p / p.sum(1, keepdim=True)
    return p


def features(x: torch.Tensor, span: torch.Tensor | None) -> torch.Tensor:
    """Eq. (4): x_i itself, or its coordinates Qᵀx_i in an orthonormal basis Q of the span of ``span``'s rows.

    Eqs. (5)-(6) are invariant to the choice of orthonormal basis (the shrinkage target is isotropic).
    """
    if span is None:
        return x
    q, _ = torch.linalg.qr(span.T)  # d × r, orthonormal columns spanning the word embeddings
    return x @ q


def m_step(f: torch.Tensor, z: torch.Tensor, shrinkage: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (5): class means and the shared, shrunk covariance, weighted by the soft assignments z."""
    n, p = f.shape
    weight = z.sum(0).clamp_min(1e-12)
    mu = (z.T @ f) / weight[:, None]                                  # k × p
    scatter = f.T @ f - (mu.T * weight) @ mu                          # Σ_i Σ_c z_ic (f_i−μ_c)(f_i−μ_c)ᵀ
    cov = scatter / n
    cov = (1 - shrinkage) * cov + shrinkage * (torch.trace(cov) / p) * torch.eye(p, dtype=f.dtype)
    return mu, cov


def gaussian_log_likelihood(f: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """ℓ_ic = −½ (f_i − μ_c)ᵀ Σ⁻¹ (f_i − μ_c) (the class-dependent part of the shared-covariance log density)."""
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0:
        raise ValueError(f"transductive_lda: the shared covariance is singular ({f.shape[0]} images in {f.shape[1]} "
                         f"dimensions); set method.shrinkage > 0 (e.g. 0.2) or use method.space=word_span")
    white_f = torch.linalg.solve_triangular(chol, f.T, upper=False).T      # n × p, Σ^{-1/2} f
    white_mu = torch.linalg.solve_triangular(chol, mu.T, upper=False).T    # k × p
    return -0.5 * torch.cdist(white_f, white_mu).square()


def knn_affinity(x: torch.Tensor, n_neighbors: int) -> torch.Tensor:
    """TransCLIP's graph: w_ij = max(0, x_iᵀ x_j) if j is among the n_neighbors nearest neighbours of i, else 0;
    returned symmetrised as W + Wᵀ (the gradient of the Laplacian term Σ_ij w_ij z_iᵀ z_j)."""
    n = x.shape[0]
    sims = x @ x.T
    sims.fill_diagonal_(-float("inf"))
    nearest = sims.topk(min(n_neighbors, n - 1), dim=1).indices
    w = torch.zeros_like(sims)
    w.scatter_(1, nearest, sims.gather(1, nearest).clamp_min(0))
    return w + w.T


def e_step(log_prior: torch.Tensor, loglik: torch.Tensor, gamma: float, z: torch.Tensor,
           affinity: torch.Tensor | None, eta: float, rounds: int) -> torch.Tensor:
    """Eq. (6): z_i = softmax_c(log P₀_ic + γ ℓ_ic + η Σ_j (w_ij + w_ji) z_jc), fixed-point rounds if η > 0."""
    base = log_prior + gamma * loglik
    if affinity is None or eta == 0:
        return torch.softmax(base, dim=1)
    for _ in range(rounds):
        z = torch.softmax(base + eta * (affinity @ z), dim=1)
    return z


def free_energy(log_prior: torch.Tensor, loglik: torch.Tensor, cov: torch.Tensor, z: torch.Tensor, gamma: float,
                affinity: torch.Tensor | None, eta: float) -> float:
    """Eq. (8): the objective EM ascends, F = Σ_ic z_ic (log P₀_ic + γ ℓ_ic − log z_ic) − (γ n / 2) log det Σ
    + (η / 2) Σ_c z_cᵀ (W + Wᵀ) z_c; at the E-step's z (η = 0) it is Σ_i log Σ_c P₀_ic exp(γ ℓ_ic) − (γ n/2) log det Σ,
    the (tempered) log-likelihood of the model whose class prior for image i is P₀_i. Used only to choose among
    starts (label-free)."""
    n = z.shape[0]
    value = (z * (log_prior + gamma * loglik)).sum() - torch.special.xlogy(z, z).sum()
    value = value - 0.5 * gamma * n * torch.logdet(cov)
    if affinity is not None and eta > 0:
        value = value + 0.5 * eta * (z * (affinity @ z)).sum()
    return float(value)


def kmeans_start(f: torch.Tensor, log_prior: torch.Tensor, seed: int) -> torch.Tensor:
    """A one-hot start for Eq. (8): seeded k-means++ on ``f`` (the features, or the similarities x_i Tᵀ to every
    word: CRL's projection) in a canonical row order (sorted by their
    values, so the start depends on the images, never on their task order), each cluster given the kept word of
    highest total log prior over its images (a one-to-one matching, Hungarian)."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans

    values = f.numpy()
    canonical = np.lexsort(np.round(values, 9).T)
    k = log_prior.shape[1]
    labels = np.empty(len(values), dtype=np.int64)
    labels[canonical] = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(values[canonical])
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), k).to(log_prior.dtype)
    clusters, words = linear_sum_assignment(-(onehot.T @ log_prior).numpy())   # cluster a → word words[a]
    word_of = np.empty(k, dtype=np.int64)
    word_of[clusters] = words
    return torch.nn.functional.one_hot(torch.as_tensor(word_of[labels]), k).to(log_prior.dtype)


@register_method("transductive_lda")
class TransductiveLDA(ProxyMethod):
    """Zero-shot prior over the k most used reference words, refined by EM of a shared-covariance Gaussian."""

    Config = TransductiveLDAConfig
    implementation = "mcbench"

    def _check(self) -> None:
        c = self.config
        for key, value, valid in (("space", c.space, SPACES), ("span_words", c.span_words, SPAN_WORDS),
                                  ("word_selection", c.word_selection, WORD_SELECTIONS),
                                  ("restart_space", c.restart_space, RESTART_SPACES)):
            if value not in valid:
                raise ValueError(f"method.{key}={value!r} is not valid for transductive_lda; choose one of: "
                                 f"{', '.join(valid)}")
        if not 0 <= c.shrinkage <= 1:
            raise ValueError(f"method.shrinkage={c.shrinkage} must lie in [0, 1] (0: the sample covariance, "
                             f"1: a scaled identity)")
        for key in ("iterations", "sinkhorn_rounds", "n_neighbors", "laplacian_rounds", "restarts"):
            if getattr(c, key) < 0:
                raise ValueError(f"method.{key}={getattr(c, key)} must be ≥ 0")
        if c.gamma < 0 or c.laplacian_weight < 0 or c.logit_scale < 0:
            raise ValueError("method.gamma, method.laplacian_weight and method.logit_scale must be ≥ 0")

    def fit(self, task: ClusteringTask) -> FitResult:
        self._check()
        c = self.config
        text = word_text_embeddings(task.encoder, task.prompt, task.reference_words, c.template)
        x = task.features.embeddings.detach().double().cpu()
        x = x / x.norm(dim=1, keepdim=True)
        text = text.detach().double().cpu()
        tau = c.logit_scale or float(task.encoder.model.logit_scale.exp())

        kept = keep_words(zero_shot(x, text, tau), task.k, c.word_selection)         # Eq. (2)
        p0 = zero_shot(x, text[kept], tau)                                            # Eq. (1) over the kept words
        if c.balance:
            p0 = sinkhorn(p0, c.sinkhorn_rounds)                                      # Eq. (3)
        log_prior = p0.clamp_min(1e-300).log()
        span = None if c.space == "image" else (text[kept] if c.span_words == "kept" else text)
        f = features(x, span)                                                         # Eq. (4)
        affinity = knn_affinity(x, c.n_neighbors) if c.laplacian_weight > 0 else None

        def em(z: torch.Tensor) -> tuple[torch.Tensor, float]:
            cov = loglik = None
            for _ in range(c.iterations):
                mu, cov = m_step(f, z, c.shrinkage)                                   # Eq. (5)
                loglik = gaussian_log_likelihood(f, mu, cov)
                z = e_step(log_prior, loglik, c.gamma, z, affinity, c.laplacian_weight,  # Eq. (6)
                           c.laplacian_rounds)
            if cov is None:  # no iteration: no objective to compare starts by
                return z, float("nan")
            return z, free_energy(log_prior, loglik, cov, z, c.gamma, affinity, c.laplacian_weight)  # of the last step

        starts = [em(p0)]                                                             # Eq. (7): the zero-shot start
        if c.iterations > 0:                                                          # Eq. (8): more starts, best F
            where = f if c.restart_space == "features" else x @ text.T
            starts += [em(kmeans_start(where, log_prior, task.seed * 1000 + r)) for r in range(c.restarts)]
        best = max(range(len(starts)), key=lambda s: (starts[s][1], -s))
        z = starts[best][0]

        labels = z.argmax(dim=1).numpy()
        kept_np = kept.numpy()
        zero_shot_labels = p0.argmax(dim=1).numpy()
        info = {"kept_words": [task.reference_words[i] for i in kept_np], "logit_scale": tau,
                "changed_from_zero_shot": int((labels != zero_shot_labels).sum()),
                "chosen_start": best, "objective": [round(v, 4) for _, v in starts]}
        return FitResult(partitions=[labels], representation=z.float().numpy(),
                         representation_name="transductive posteriors z", proxies=text[kept][labels].float().numpy(),
                         info=info)
