"""Multi-DProxy (Xu et al., "Multi-modal Dynamic Proxy Learning for Personalized Multiple Clustering",
AAAI 2026, arXiv 2511.07274): a reimplementation from the paper's equations (research notes
``methods_dproxy_baselines.md`` §1 and §8); no public code exists.

Each image i has a latent w'_i; its proxy is a softmax mixture of the current candidate words, a gated
bidirectional cross-attention fuses the proxies (text side T) with the frozen image embeddings (visual side
V) into F, the candidate pool is pruned by clustering feedback every R epochs, and the partition is the
shared k-means protocol on F.

Equation → code
---------------
* proxies (§1.3a, Multi-Sub with a temperature)  w_i = Σ_k softmax_k(w'_i·ĉ_k / τ_α) c_k
  → ``CandidatePool.proxies`` (ĉ_k: the L2-normalised c_k; in joint space c_k is already unit-norm).
* gated cross-attention (§1.2)  X_attn^l = MultiHead(Q=X^{l-1}, K=Y^{l-1}, V=Y^{l-1}) for (X, Y) = (V, T), (T, V)
  → ``CrossAttention``; residual gate  X^l = X^{l-1} + σ(W_g[X^{l-1}; X_attn^l]) ⊙ X_attn^l → ``gated_residual``.
* adaptive mixing  F = λ T^L + (1 − λ) V^L,  λ = σ(cos(T^L, V^L) / τ) per sample → ``mix_lambda``, ``GatedFusion``.
* L_a (§1.5)  mean_i (1 − cos(f_i, v_i)) [align_target=fused] or mean_i (1 − cos(t_i, v_i)) with t_i the
  proxy's prompt embedding [align_target=text] → ``loss_align``.
* L_u (§1.3a)  mean_i ‖w_i − c̄‖² → ``loss_user``.
* L_c (§1.3b)  note: mean_i log Σ_{j≠i} exp(s_ij);  infonce_hard: mean_i −log(e^{s_ii} / (e^{s_ii} + Σ_{j∈H_i} e^{s_ij}))
  with s_ij = cos(f_i, w_j)/σ and H_i the ``hard_negatives`` most similar j of another pseudo-cluster
  → ``loss_contrast``.
* total (§1.5)  L = L_a + α(t) L_u + β(t) L_c,  α(t) = min(0.5, 0.1 + 0.4 t/E),  β(t) = 0.1 (1 − cos(π t/E))
  → ``batch_objective`` (one mini-batch), ``alpha_schedule``, ``beta_schedule``; t = the 0-based epoch.
* dynamic candidate management (§1.4): every R epochs k-means (k = M) on the proxies, score each candidate by
  its mean (or max) cosine to the centres, keep the top half → ``CandidatePool.prune``, ``pool_schedule``.
* final partition: the task's k-means protocol on F (``FitResult.from_representation``). With
  ``fusion_tokens=batch`` the attention's sequence is a set of images; ``readout_sequence=batch`` (default) reads F
  out over seeded random sequences of ``batch_size`` images, the length training used (the paper trains on
  mini-batches and says nothing else), ``all`` over all N images as one sequence (v3 and earlier).

Switches (all ``MultiDProxyConfig`` fields; every one lands in the result row)
-------------------------------------------------------------------------------
``ablation`` none | no_dynamic | no_uconstraint | no_cconstraint | concat_fusion | text_only | visual_only
(the paper's ablations, mapped onto the switches below by ``resolve_ablation``);
``proxy_space`` joint | token; ``fusion_tokens`` batch | global | patch; ``fusion`` gated | concat;
``modality`` fused | text | visual; ``lc_mode`` infonce_hard | note; ``align_target`` text | fused;
``readout_sequence`` batch | all; ``settings_from`` (provenance of the values, recorded in the row);
``dynamic``; ``use_lu``; ``use_lc``; ``score`` mean | max; ``prune_to_k``; ``prune_every``; the sizes,
temperatures and optimiser settings. docs/multi_dproxy.md gives each default and why.

Candidate pools shorter than the paper's 2^(E/R)·M: the pruning never goes below M. With ``prune_to_k`` the
pool halves (rounding down) and is clamped at M, so every pool ends at exactly M (|C₀| = 10, M = 4:
10 → 5 → 4; |C₀| = 17, M = 13: one pruning 17 → 13); without it only whole halvings are made (⌊log₂(|C₀|/M)⌋ of them,
the pool may end above M). The schedule used is in ``FitResult.info["pool_schedule"]`` and per epoch in the
history (``pool``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mcbench.contracts import ClusteringTask, FitResult, ProxyMethod, register_method
from mcbench.prompts import ProxyPrompt, word_text_embeddings

ABLATIONS = ("none", "no_dynamic", "no_uconstraint", "no_cconstraint", "concat_fusion", "text_only", "visual_only")
CHOICES = {
    "ablation": ABLATIONS,
    "proxy_space": ("joint", "token"),
    "fusion_tokens": ("batch", "global", "patch"),
    "fusion": ("gated", "concat"),
    "modality": ("fused", "text", "visual"),
    "lc_mode": ("infonce_hard", "note"),
    "align_target": ("text", "fused"),
    "score": ("mean", "max"),
    "readout_sequence": ("batch", "all"),
}


@dataclass
class MultiDProxyConfig:
    ablation: str = "none"  # the paper's ablations; mapped onto the switches below (resolve_ablation)
    proxy_space: str = "joint"  # joint: mixtures of prompt text embeddings; token: mixtures of token embeddings at '*'
    fusion_tokens: str = "batch"  # batch: the mini-batch is the attention sequence; global: 1 token (linear map)
    fusion: str = "gated"  # gated: §1.2 gated cross-attention + λ mix; concat: F = [T; V] (w/o-GFusion)
    modality: str = "fused"  # fused: F; text: F = T⁰ (proxies only, -T); visual: F = V (frozen image, -V)
    fusion_layers: int = 2  # L
    fusion_heads: int = 4
    gate_bias: float = 0.0  # initial bias of W_g: gates start at σ(0) = 0.5
    tau_alpha: float = 0.05  # τ_α of the proxy softmax over candidates
    tau_mix: float = 0.1  # τ of λ = σ(cos(T, V)/τ)
    sigma: float = 0.1  # σ, temperature of L_c
    lc_mode: str = "infonce_hard"  # infonce_hard: positive + hard negatives of other pseudo-clusters; note: literal
    hard_negatives: int = 0  # |H_i|; 0 = batch_size // 4
    align_target: str = "text"  # text: cos(prompt embedding of the proxy, image); fused: cos(F, image) (literal)
    use_lu: bool = True  # L_u (user-interest constraint)
    use_lc: bool = True  # L_c (concept-discrimination constraint)
    dynamic: bool = True  # dynamic candidate management (pruning)
    score: str = "mean"  # candidate score: mean (paper) or max cosine to the proxy k-means centres
    prune_every: int = 0  # R in epochs; 0 = E // (number of prunings + 1)
    prune_to_k: bool = True  # halve (rounding down) clamped at M, so the pool ends at M; false: whole halvings only
    pseudo_every: int = 1  # epochs between the k-means on F that gives L_c's pseudo-clusters
    epochs: int = 30  # E (paper: 1000)
    batch_size: int = 150
    lr: float = 0.003  # Adam, proxy latents w'
    lr_fusion: float = 0.001  # Adam, fusion parameters
    weight_decay: float = 0.0
    init_std: float = 0.02  # w'_i ~ N(0, init_std²), seeded
    kmeans_iters: int = 50  # Lloyd iterations of the in-training k-means (pruning, pseudo-clusters)
    kmeans_restarts: int = 3  # k-means++ runs per in-training k-means; the lowest inertia is kept
    readout_sequence: str = "batch"  # batch: F read out over sequences of batch_size images, as trained | all: one of N
    settings_from: str = "mcbench"  # where these values come from: mcbench (chosen on its synthetic sets) | paper: ...


def resolve_ablation(cfg: MultiDProxyConfig) -> MultiDProxyConfig:
    """The configuration a paper ablation runs (``ablation=none`` returns ``cfg`` unchanged)."""
    return {
        "none": cfg,
        "no_dynamic": replace(cfg, dynamic=False),
        "no_uconstraint": replace(cfg, use_lu=False),
        "no_cconstraint": replace(cfg, use_lc=False),
        "concat_fusion": replace(cfg, fusion="concat"),
        "text_only": replace(cfg, modality="text"),
        "visual_only": replace(cfg, modality="visual"),
    }[cfg.ablation]


def validate(cfg: MultiDProxyConfig) -> None:
    for key, choices in CHOICES.items():
        value = getattr(cfg, key)
        if value not in choices:
            raise ValueError(f"method.{key}={value!r} is not valid for multi_dproxy; choose one of: {', '.join(choices)}")
    if cfg.fusion_tokens == "patch":
        raise NotImplementedError(
            "method.fusion_tokens=patch needs CLIP patch tokens (image side) and per-token text states, but the "
            "framework's feature cache (mcbench.features, ImageFeatures) stores only the pooled embedding and the "
            "pre-projection vector of each image. Use fusion_tokens=batch (default) or global."
        )
    for key in ("epochs", "batch_size", "fusion_layers", "fusion_heads", "pseudo_every", "kmeans_iters",
                "kmeans_restarts"):
        if getattr(cfg, key) < 1:
            raise ValueError(f"method.{key}={getattr(cfg, key)} must be at least 1")
    for key in ("tau_alpha", "tau_mix", "sigma"):
        if getattr(cfg, key) <= 0:
            raise ValueError(f"method.{key}={getattr(cfg, key)} must be positive")
    if cfg.prune_every < 0 or cfg.hard_negatives < 0:
        raise ValueError("method.prune_every and method.hard_negatives must be non-negative (0 = automatic)")


# ------------------------------------------------------------------------------------------ schedules


def alpha_schedule(t: float, epochs: int) -> float:
    """α(t) = min(0.5, 0.1 + 0.4 t/E): weight of L_u, a linear ramp 0.1 → 0.5 (§1.5)."""
    return min(0.5, 0.1 + 0.4 * t / epochs)


def beta_schedule(t: float, epochs: int) -> float:
    """β(t) = 0.1 (1 − cos(π t/E)): weight of L_c, a cosine ramp 0 → 0.2 (§1.5)."""
    return 0.1 * (1.0 - math.cos(math.pi * t / epochs))


def loss_weights(cfg: MultiDProxyConfig, epoch: int) -> tuple[float, float]:
    """(α(t), β(t)) of epoch t, 0 for a constraint switched off (``use_lu``, ``use_lc``)."""
    alpha = alpha_schedule(epoch, cfg.epochs) if cfg.use_lu else 0.0
    beta = beta_schedule(epoch, cfg.epochs) if cfg.use_lc else 0.0
    return alpha, beta


def pool_schedule(n_words: int, k: int, prune_to_k: bool = True) -> list[int]:
    """Pool sizes after each pruning, from |C₀| = ``n_words`` toward M = ``k``, never below k.

    The paper starts from 2^(E/R)·M words and halves E/R times. Shorter lists: with ``prune_to_k`` each
    step keeps max(M, ⌊|C|/2⌋), so the pool ends at exactly M; without, only the
    ⌊log₂(|C₀|/M)⌋ halvings that stay ≥ M are made and the pool may end above M.
    """
    sizes, size = [], n_words
    while size > k and (prune_to_k or size // 2 >= k):
        size = max(k, size // 2)
        sizes.append(size)
    return sizes


def prune_epochs(n_prunings: int, epochs: int, every: int) -> list[int]:
    """Epochs (1-based count of finished epochs) after which the pool is pruned: R, 2R, ... ≤ E."""
    if n_prunings == 0:
        return []
    r = every if every > 0 else max(1, epochs // (n_prunings + 1))
    return [r * s for s in range(1, n_prunings + 1) if r * s <= epochs]


# ------------------------------------------------------------------------------------------ fusion


def _xavier(shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    bound = math.sqrt(6.0 / (shape[0] + shape[1]))
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


class CrossAttention(nn.Module):
    """Multi-head attention MultiHead(Q=x, K=y, V=y) on (S, L, D) sequences, seeded initialisation."""

    def __init__(self, dim: int, heads: int, generator: torch.Generator) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"method.fusion_heads={heads} must divide the embedding width {dim}")
        self.heads = heads
        self.weight = nn.ParameterList([nn.Parameter(_xavier((dim, dim), generator)) for _ in range(4)])  # q k v o
        self.bias = nn.ParameterList([nn.Parameter(torch.zeros(dim)) for _ in range(4)])

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        (wq, wk, wv, wo), (bq, bk, bv, bo) = self.weight, self.bias
        s, lq, d = x.shape
        split = lambda z: z.reshape(s, z.shape[1], self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(F.linear(x, wq, bq)), split(F.linear(y, wk, bk)), split(F.linear(y, wv, bv))
        out = F.scaled_dot_product_attention(q, k, v)
        return F.linear(out.transpose(1, 2).reshape(s, lq, d), wo, bo)


def gated_residual(x: torch.Tensor, x_attn: torch.Tensor, gate: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """X + σ(W_g[X; X_attn]) ⊙ X_attn (§1.2); returns (new X, the gate values)."""
    g = torch.sigmoid(gate(torch.cat([x, x_attn], dim=-1)))
    return x + g * x_attn, g


def mix_lambda(t: torch.Tensor, v: torch.Tensor, tau: float) -> torch.Tensor:
    """λ = σ(cos(T, V)/τ), one scalar per sample (N×1)."""
    return torch.sigmoid(F.cosine_similarity(t, v, dim=-1) / tau)[:, None]


class GatedFusion(nn.Module):
    """L layers of bidirectional gated cross-attention, then F = λ T^L + (1 − λ) V^L (§1.2)."""

    def __init__(self, dim: int, heads: int, layers: int, tokens: str, tau: float, gate_bias: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.tokens, self.tau = tokens, tau
        self.attn_v = nn.ModuleList([CrossAttention(dim, heads, generator) for _ in range(layers)])
        self.attn_t = nn.ModuleList([CrossAttention(dim, heads, generator) for _ in range(layers)])
        self.gate_v = nn.ModuleList([self._gate(dim, gate_bias, generator) for _ in range(layers)])
        self.gate_t = nn.ModuleList([self._gate(dim, gate_bias, generator) for _ in range(layers)])

    @staticmethod
    def _gate(dim: int, bias: float, generator: torch.Generator) -> nn.Linear:
        gate = nn.Linear(2 * dim, dim)
        with torch.no_grad():
            gate.weight.copy_(_xavier((dim, 2 * dim), generator))
            gate.bias.fill_(bias)
        return gate

    def forward(self, v: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """v, t: N×D. ``batch`` tokens: the N samples form one sequence; ``global``: N sequences of one token."""
        shape = (1, -1, v.shape[-1]) if self.tokens == "batch" else (-1, 1, v.shape[-1])
        v, t = v.reshape(shape), t.reshape(shape)
        gates_v, gates_t = [], []
        for attn_v, attn_t, gate_v, gate_t in zip(self.attn_v, self.attn_t, self.gate_v, self.gate_t):
            v_attn, t_attn = attn_v(v, t), attn_t(t, v)  # both directions read layer l-1
            (v, gv), (t, gt) = gated_residual(v, v_attn, gate_v), gated_residual(t, t_attn, gate_t)
            gates_v.append(gv.mean())
            gates_t.append(gt.mean())
        v, t = v.reshape(-1, v.shape[-1]), t.reshape(-1, t.shape[-1])
        lam = mix_lambda(t, v, self.tau)
        fused = lam * t + (1 - lam) * v
        return fused, {"lambda": lam.mean(), "gate_v": torch.stack(gates_v).mean(), "gate_t": torch.stack(gates_t).mean()}


# ------------------------------------------------------------------------------------------ losses


def loss_align(target: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """L_a = mean_i (1 − cos(target_i, v_i)); target = F (fused) or the proxies' prompt embeddings (text)."""
    return (1 - F.cosine_similarity(target, v, dim=-1)).mean()


def loss_user(w: torch.Tensor, centroid: torch.Tensor) -> torch.Tensor:
    """L_u = mean_i ‖w_i − c̄‖²."""
    return ((w - centroid) ** 2).sum(dim=-1).mean()


def loss_contrast(f: torch.Tensor, w: torch.Tensor, sigma: float, mode: str, pseudo: torch.Tensor | None = None,
                  hard: int = 0) -> torch.Tensor:
    """L_c over a batch with s_ij = cos(f_i, w_j)/σ (cosines: the unnormalised dot lets the loss diverge).

    ``note``: mean_i log Σ_{j≠i} e^{s_ij} (the literal formula; no positive, all others negative).
    ``infonce_hard``: mean_i −log(e^{s_ii} / (e^{s_ii} + Σ_{j∈H_i} e^{s_ij})), H_i = the ``hard`` j of highest
    s_ij among those whose pseudo-cluster differs from i's (fewer if fewer exist; none → the term is 0).
    """
    b = f.shape[0]
    s = F.normalize(f, dim=-1) @ F.normalize(w, dim=-1).T / sigma
    eye = torch.eye(b, dtype=torch.bool, device=f.device)
    if mode == "note":
        if b < 2:
            return s.sum() * 0
        return torch.logsumexp(s.masked_fill(eye, float("-inf")), dim=1).mean()
    if pseudo is None:
        raise ValueError("lc_mode=infonce_hard needs pseudo-clusters")
    other = pseudo[:, None] != pseudo[None, :]
    negatives = s.masked_fill(~other, float("-inf"))
    hard = min(hard if hard > 0 else b - 1, b - 1)
    if hard == 0:
        return s.sum() * 0
    top = negatives.topk(hard, dim=1).values
    positive = s.diagonal()[:, None]
    return (torch.logsumexp(torch.cat([positive, top], dim=1), dim=1) - positive[:, 0]).mean()


# ------------------------------------------------------------------------------------------ k-means


def kmeans(x: torch.Tensor, k: int, generator: torch.Generator, iters: int = 50,
           restarts: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded k-means++ and Lloyd on ``x``'s device (draws on the CPU generator), the lowest-inertia of
    ``restarts`` runs; returns (labels, centres)."""
    best: tuple[float, torch.Tensor, torch.Tensor] | None = None
    for _ in range(restarts):
        labels, centres = _kmeans_once(x, k, generator, iters)
        inertia = float(((x - centres[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels, centres)
    assert best is not None
    return best[1], best[2]


def _kmeans_once(x: torch.Tensor, k: int, generator: torch.Generator, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    idx = [int(torch.randint(n, (1,), generator=generator))]
    d2 = ((x - x[idx[0]]) ** 2).sum(-1)
    for _ in range(1, k):
        p = d2.clamp_min(0).cpu().double()
        nxt = int(torch.multinomial(p / p.sum(), 1, generator=generator)) if p.sum() > 0 else int(
            torch.randint(n, (1,), generator=generator))
        idx.append(nxt)
        d2 = torch.minimum(d2, ((x - x[nxt]) ** 2).sum(-1))
    centres = x[idx].clone()
    labels = torch.cdist(x, centres).argmin(1)
    for _ in range(iters):
        one_hot = F.one_hot(labels, k).to(x.dtype)
        counts = one_hot.sum(0)
        centres = torch.where(counts[:, None] > 0, (one_hot.T @ x) / counts.clamp_min(1)[:, None], centres)
        new = torch.cdist(x, centres).argmin(1)
        if torch.equal(new, labels):
            break
        labels = new
    return labels, centres


# ------------------------------------------------------------------------------------------ proxies


class CandidatePool:
    """The current candidate words and their embeddings c_k (joint: prompt text embeddings; token: word
    token embeddings), with the proxy map w_i = Σ_k softmax(w'_i·ĉ_k/τ_α) c_k and the pruning step."""

    def __init__(self, words: tuple[str, ...], emb: torch.Tensor, tau_alpha: float) -> None:
        self.words, self.emb, self.tau = list(words), emb, tau_alpha
        self.unit = F.normalize(emb, dim=-1)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def centroid(self) -> torch.Tensor:
        """c̄ = mean_k c_k over the current pool, the target of L_u (§1.3a)."""
        return self.emb.mean(0)

    def weights(self, latent: torch.Tensor) -> torch.Tensor:
        return torch.softmax(latent @ self.unit.T / self.tau, dim=-1)

    def proxies(self, latent: torch.Tensor) -> torch.Tensor:
        """w_i = Σ_k softmax_k(w'_i·ĉ_k / τ_α) c_k (§1.3a) for the latents ``latent``, over the current pool."""
        return self.weights(latent) @ self.emb

    def scores(self, centres: torch.Tensor, score: str) -> torch.Tensor:
        cos = self.unit @ F.normalize(centres, dim=-1).T
        return cos.mean(1) if score == "mean" else cos.max(1).values

    def prune(self, proxies: torch.Tensor, k: int, size: int, score: str, generator: torch.Generator,
              iters: int, restarts: int = 1) -> list[str]:
        """k-means (k = M) on the proxies, keep the ``size`` candidates of highest score; returns the dropped."""
        _, centres = kmeans(proxies, k, generator, iters, restarts)
        keep = self.scores(centres, score).topk(size).indices.sort().values
        dropped = [w for i, w in enumerate(self.words) if i not in set(keep.tolist())]
        self.words = [self.words[i] for i in keep.tolist()]
        self.emb, self.unit = self.emb[keep], self.unit[keep]
        return dropped


class TextSide:
    """T⁰: the proxies in CLIP's joint space (joint: w_i itself; token: the prompt with w_i at '*', encoded)."""

    def __init__(self, task: ClusteringTask, cfg: MultiDProxyConfig) -> None:
        words = tuple(task.reference_words)
        self.space = cfg.proxy_space
        if self.space == "joint":
            emb = word_text_embeddings(task.encoder, task.prompt, words).to(task.device)
            self.prompt = None
        else:
            emb = task.encoder.token_embeddings(list(words)).to(task.device)
            self.prompt = ProxyPrompt(task.encoder, task.prompt)
        self.pool = CandidatePool(words, emb, cfg.tau_alpha)

    def encode(self, w: torch.Tensor) -> torch.Tensor:
        """Joint-space text feature of proxies ``w`` (pool space)."""
        if self.prompt is None:
            return w
        return F.normalize(self.prompt.encode(w), dim=-1)

    @torch.no_grad()
    def encode_all(self, w: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """T⁰ of all proxies ``w`` (``encode`` in chunks of ``chunk`` rows, no gradient): the readout's text side."""
        return torch.cat([self.encode(w[i:i + chunk]) for i in range(0, len(w), chunk)])


def image_order(embeddings: torch.Tensor) -> torch.Tensor:
    """A permutation of the task's images that depends on the images alone, not on their task order: the
    argsort of a fixed random projection of each image's embedding (float64, on the CPU).

    ``fit`` trains in this order and maps F back, so each image's seeded latent, the mini-batches and the
    in-training k-means++ draws follow the image, not its position: the result is the same for any order
    of the same images (the sanity suite's order check), which the batch-sequence attention needs."""
    x = embeddings.detach().double().cpu()
    direction = torch.randn(x.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return torch.argsort(x @ direction, stable=True)


def as_fused(x: torch.Tensor, slot: str, concat: bool) -> torch.Tensor:
    """A joint-space vector placed in F's space (concat: its own half, the other half zero)."""
    if not concat:
        return x
    zero = torch.zeros_like(x)
    return torch.cat([x, zero] if slot == "text" else [zero, x], dim=-1)


def batch_objective(cfg: MultiDProxyConfig, w: torch.Tensor, t0: torch.Tensor, v: torch.Tensor, fused: torch.Tensor,
                    concat: bool, centroid: torch.Tensor, pseudo: torch.Tensor | None, hard: int, alpha: float,
                    beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One mini-batch's L = L_a + α(t)L_u + β(t)L_c (notes §1.5) and its terms.

    The text target of L_a is cos(T⁰_i, v_i) in CLIP's joint space, whatever the fusion (in F's space a concat
    puts the two in different halves, where the cosine is always 0 and L_a gives no gradient)."""
    terms = {"l_a": loss_align(t0, v) if cfg.align_target == "text"
             else loss_align(fused, as_fused(v, "visual", concat))}
    terms["l_u"] = loss_user(w, centroid)
    if cfg.use_lc:
        terms["l_c"] = loss_contrast(fused, as_fused(t0, "text", concat), cfg.sigma, cfg.lc_mode, pseudo, hard)
    else:
        terms["l_c"] = fused.sum() * 0
    return terms["l_a"] + alpha * terms["l_u"] + beta * terms["l_c"], terms


# ------------------------------------------------------------------------------------------ the method


@register_method("multi_dproxy")
class MultiDProxy(ProxyMethod):
    """Multi-DProxy: dynamic candidate pool, softmax proxies, gated cross-modal fusion, k-means on F."""

    Config = MultiDProxyConfig
    version = 4  # 2: images' own order (order-equivariant); 3: concat keeps L_a alive; 4: readout_sequence
    implementation = "reimplementation (paper)"

    def __init__(self, config: MultiDProxyConfig | None = None) -> None:
        super().__init__(config)
        validate(resolve_ablation(self.config))  # a bad switch fails before any work

    def hparams(self) -> dict[str, Any]:
        """The switches the run used: an ``ablation`` is recorded with the switches it set."""
        return asdict(resolve_ablation(self.config))

    def fit(self, task: ClusteringTask) -> FitResult:
        cfg = resolve_ablation(self.config)
        dev, n, k = task.device, task.n, task.k
        order = image_order(task.features.embeddings)  # work in an order of the images' own (mapped back below)
        back = torch.argsort(order).to(dev)
        v = F.normalize(task.features.embeddings.float().to(dev)[order.to(dev)], dim=-1)
        text = TextSide(task, cfg)
        pool = text.pool

        latent = nn.Parameter((torch.randn(n, pool.emb.shape[1], generator=task.generator(0)) * cfg.init_std).to(dev))
        fusion = None
        if cfg.fusion == "gated" and cfg.modality == "fused":
            fusion = GatedFusion(v.shape[1], cfg.fusion_heads, cfg.fusion_layers, cfg.fusion_tokens, cfg.tau_mix,
                                 cfg.gate_bias, task.generator(1)).to(dev)
        groups = [{"params": [latent], "lr": cfg.lr}]
        if fusion is not None:
            groups.append({"params": list(fusion.parameters()), "lr": cfg.lr_fusion})
        # the fused kernel: one op for all parameters instead of ~10 per tensor (8× faster steps on a CPU)
        optimizer = torch.optim.Adam(groups, betas=(0.9, 0.999), weight_decay=cfg.weight_decay,
                                     fused=dev.type in ("cpu", "cuda"))
        batch_gen, kmeans_gen = task.generator(2), task.generator(3)

        def fuse(t0: torch.Tensor, vis: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            if cfg.modality == "text":
                return t0, {}
            if cfg.modality == "visual":
                return vis, {}
            if fusion is None:  # concat (w/o-GFusion)
                return torch.cat([t0, vis], dim=-1), {}
            return fusion(vis, t0)

        concat = fusion is None and cfg.modality == "fused"  # F = [T⁰; V]

        readout_gen = task.generator(4)

        @torch.no_grad()
        def full_pass() -> tuple[torch.Tensor, torch.Tensor]:
            """(T⁰, F) of all N images. With batch tokens and ``readout_sequence=batch`` F is read out over seeded
            random sequences of ``batch_size`` images (the training length); ``all``: the whole set is one
            sequence. Both are drawn in the images' own order, so F_i does not depend on the task order."""
            t0 = text.encode_all(pool.proxies(latent))
            if cfg.readout_sequence == "all" or n <= cfg.batch_size:
                return t0, fuse(t0, v)[0]
            fused = None
            for seq in torch.randperm(n, generator=readout_gen).to(dev).split(cfg.batch_size):
                part = fuse(t0[seq], v[seq])[0]
                if fused is None:
                    fused = part.new_empty(n, part.shape[1])
                fused[seq] = part
            return t0, fused

        sizes = pool_schedule(len(pool), k, cfg.prune_to_k) if cfg.dynamic else []
        when = dict(zip(prune_epochs(len(sizes), cfg.epochs, cfg.prune_every), sizes))
        schedule: list[dict[str, Any]] = [{"epoch": 0, "pool": len(pool), "words": list(pool.words)}]
        need_pseudo = cfg.use_lc and cfg.lc_mode == "infonce_hard"
        pseudo = kmeans(full_pass()[1], k, kmeans_gen, cfg.kmeans_iters, cfg.kmeans_restarts)[0] if need_pseudo else None
        hard = cfg.hard_negatives or max(1, cfg.batch_size // 4)

        history: list[dict[str, float]] = []
        bar = task.progress(cfg.epochs, self.name)
        for epoch in range(cfg.epochs):
            alpha, beta = loss_weights(cfg, epoch)
            sums: dict[str, float] = {"pool": float(len(pool))}  # the pool this epoch trained with
            perm = torch.randperm(n, generator=batch_gen).to(dev)
            epoch_f: torch.Tensor | None = None  # F of every image as this epoch's batches saw it
            for batch in perm.split(cfg.batch_size):
                w = pool.proxies(latent[batch])
                t0 = text.encode(w)
                vb = v[batch]
                fused, stats = fuse(t0, vb)
                loss, terms = batch_objective(cfg, w, t0, vb, fused, concat, pool.centroid,
                                              None if pseudo is None else pseudo[batch], hard, alpha, beta)
                if epoch_f is None:
                    epoch_f = fused.new_empty(n, fused.shape[1])
                epoch_f[batch] = fused.detach()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                for name, value in {"loss": loss, **terms, **stats}.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach()) * len(batch) / n
            done = epoch + 1
            if done in when:
                with torch.no_grad():
                    proxies = pool.proxies(latent)
                dropped = pool.prune(proxies, k, when[done], cfg.score, kmeans_gen, cfg.kmeans_iters,
                                     cfg.kmeans_restarts)
                schedule.append({"epoch": done, "pool": len(pool), "words": list(pool.words), "dropped": dropped})
            if need_pseudo and done % cfg.pseudo_every == 0 and done < cfg.epochs:
                # the epoch's own F (each image once): no extra forward pass over all N images
                pseudo = kmeans(epoch_f, k, kmeans_gen, cfg.kmeans_iters, cfg.kmeans_restarts)[0]
            history.append({**sums, "alpha": alpha, "beta": beta})
            task.log_epoch(history[-1])  # live curves (W&B)
            bar.update()
            bar.set_postfix(loss=f"{sums['loss']:.4f}")
        bar.close()

        t0, fused = full_pass()
        t0, fused = t0[back], fused[back]  # task order again
        info = {"pool_schedule": schedule, "final_words": list(pool.words)}
        return FitResult.from_representation(task, fused, _REPRESENTATION[(cfg.modality, cfg.fusion)],
                                             history=history, proxies=t0.cpu().numpy(), info=info)


_REPRESENTATION = {
    ("fused", "gated"): "fused F",
    ("fused", "concat"): "concat [T; V]",
    ("text", "gated"): "proxies T",
    ("text", "concat"): "proxies T",
    ("visual", "gated"): "image V",
    ("visual", "concat"): "image V",
}
