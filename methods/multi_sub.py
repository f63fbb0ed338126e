"""Multi-Sub (Yao, Qian, Hu, "Customized Multiple Clustering via Multi-Modal Subspace Proxy Learning",
NeurIPS 2024): a reimplementation from the paper (research notes ``methods_map_sub.md`` §3).

The official ``main.py`` cannot run (undefined ``alternations``, shape and type errors, no autograd path in
Phase II, no evaluation; notes §3.2), so this follows the paper's equations and makes every open choice a
switch. Equation → code:

* Subspace basis Z (K×W): the reference words' mean BPE token embeddings, ``encoder.token_embeddings``
  (``subspace=token``, the paper's best; ``prompt``/``text`` are its ablations). → ``subspace_basis``
* Latent factors p_i (N×W), initialised by ``init`` plus seeded noise. → ``init_latent``
* Proxy weights a_ik = exp(p_i·z_k / τ) / Σ_j exp(p_i·z_j / τ) (τ = 1 in the paper) and proxy word
  w_i = Σ_k a_ik z_k: w lies in the span (the convex hull) of the z_k. → ``_weights``, ``proxies``
* Prompt t*_i = h(φ(t*) ‖ φ(w_i)): w_i at the prompt's ``*`` slot, through the frozen text tower.
  → ``mcbench.prompts.PrefixCachedPrompt.encode`` (= ``ProxyPrompt.encode``: the prefix's keys/values computed once)
* Phase I, alignment L(w_i) = −⟨f(x_i), t*_i⟩, as the code's CosineEmbeddingLoss: mean(1 − cos(f(h_i), t*_i)).
  f is a trainable copy of the image tower's last projection applied to the cached pre-projection
  features h_i (no image forward pass); p and f are learned together. → ``alignment_loss`` (Multi-MaP's)
* Phase II, clustering loss on v_i = [w_i; x_i] (→ ``concat``) with pseudo-labels formed from the proxies
  (→ ``assign_pseudo_labels``):
  L_intra = mean over same-label pairs (i≠j) of ‖v_i − v_j‖² (squared, as the paper writes it),
  L_inter = mean over different-label pairs of max(0, m − ‖v_i − v_j‖),
  L = λ·L_intra + (1 − λ)·L_inter; only f is updated. → ``clustering_loss``
* Each epoch of either phase: seeded batches (→ ``batches``), Adam (paper) or Adagrad (code) (→ ``make_optimizer``).
* The phases alternate for ``rounds`` rounds; the final v_i is clustered by the shared k-means protocol.
* Switch values and encoder widths are checked before a fit. → ``validate``

Spaces made explicit: p_i, z_k and w_i live in the text tower's token-embedding space (width W); f(h_i),
t*_i and the proxies handed back for naming clusters (normalised t*_i) live in CLIP's joint space (D).
The official init p_i = encode_text("*") is a joint-space vector used as a token-space one (it only
type-checks because D = W for ViT-B/32); here it is ``init=official`` and needs D = W.

Switches (all in ``MultiSubConfig``, recorded in every result row):
``subspace``, ``temperature``, ``init``, ``init_noise``, ``official_text_encoder``, ``prefix_cache``,
``rounds``, ``phase1_epochs``, ``phase2_epochs``, ``batch_size``, ``optimizer``, ``lr_proxy``,
``lr_projection``, ``lr_projection_cluster``, ``reset_optimizers``, ``weight_decay``, ``pseudo_labels``,
``concat_norm``, ``intra_distance``, ``lam``, ``margin``, ``readout``, ``settings_from`` (provenance of the values,
recorded so that a row on mcbench-chosen settings says so). ``docs/multi_sub.md`` gives each default
and why; ``MultiSub.official_overrides`` sets the released code's choices where it can run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans

from mcbench.contracts import ClusteringTask, FitResult, ProxyMethod, register_method
from mcbench.methods.multi_map import alignment_loss  # Phase I: mean(1 − cos(x_i, t*_i)), shared with Multi-MaP
from mcbench.prompts import ProxyPrompt, proxy_prompt, word_text_embeddings

SUBSPACES = ("token", "prompt", "text")
INITS = ("uniform", "mean", "zeroshot", "official")
OPTIMIZERS = ("adam", "adagrad")
PSEUDO_LABELS = ("argmax_a", "kmeans_w", "kmeans_v")
INTRA_DISTANCES = ("squared", "euclidean")
READOUTS = ("concat", "prompt", "image", "word")
READOUT_NAMES = {"concat": "concat(w, x)", "prompt": "prompt t*_i", "image": "image x_i", "word": "proxy word w_i"}


@dataclass
class MultiSubConfig:
    subspace: str = "token"  # token: mean BPE token embeddings (paper's best) | prompt | text (ablations; need D = W)
    temperature: float = 1.0  # τ of the softmax over p_i·z_k (paper: none, i.e. 1)
    init: str = "uniform"  # p_i start: uniform (0: a_i uniform) | mean (mean of Z) | zeroshot | official
    init_noise: float = 0.01  # std of the seeded Gaussian noise added to every p_i (breaks the identical init)
    official_text_encoder: bool = False  # true: the released encoder without positions and ln_final
    prefix_cache: bool = True  # run the text tower from the * slot on, reusing the prompt prefix (same t*, faster)
    rounds: int = 2  # Phase I + Phase II alternations (paper: until convergence, 1000 epochs in all)
    phase1_epochs: int = 10  # proxy learning and alignment epochs per round (paper: 100)
    phase2_epochs: int = 5  # clustering epochs per round (paper: 10)
    batch_size: int = 0  # 0: one whole-batch step per epoch; else seeded random batches of this size
    optimizer: str = "adam"  # adam (paper) | adagrad (released code)
    lr_proxy: float = 0.5  # learning rate of the latent factors p
    lr_projection: float = 1e-4  # learning rate of the projection copy f in Phase I
    lr_projection_cluster: float = 1e-3  # learning rate of f in Phase II
    reset_optimizers: bool = False  # true: fresh optimizers every phase of every round (released code); false: kept
    weight_decay: float = 0.0  # on every trained tensor (paper grid 5e-4 … 0; code 0)
    pseudo_labels: str = "argmax_a"  # argmax_a (nearest reference word) | kmeans_w | kmeans_v (k-means, k = task k)
    concat_norm: bool = True  # v_i = [norm(w_i); norm(x_i)]; false: the raw [w_i; x_i]
    intra_distance: str = "squared"  # squared (paper) | euclidean (released code)
    lam: float = 0.5  # λ between L_intra and L_inter (paper 0.5)
    margin: float = 1.0  # m of the inter-cluster hinge (code 1.0)
    readout: str = "concat"  # what k-means clusters at the end: concat (v) | prompt (t*) | image (x) | word (w)
    settings_from: str = "mcbench"  # where these values come from: mcbench (chosen on its synthetic sets) | paper: ...


def clustering_loss(v: torch.Tensor, labels: torch.Tensor, lam: float = 0.5, margin: float = 1.0,
                    intra_distance: str = "squared") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L, L_intra, L_inter) of Multi-Sub's Phase II on the rows of ``v`` with pseudo-labels ``labels``.

    Pairs are ordered pairs i ≠ j; a term with no pairs (one pseudo-class, or all singletons) is 0.
    """
    sq = (v * v).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * v @ v.T).clamp_min(0.0)
    d = d2.clamp_min(1e-12).sqrt()  # finite gradient where two rows coincide
    same = labels[:, None] == labels[None, :]
    off_diag = ~torch.eye(len(v), dtype=torch.bool, device=v.device)
    intra_pairs = same & off_diag
    inter_pairs = ~same
    intra_d = d2 if intra_distance == "squared" else d
    intra = (intra_d * intra_pairs).sum() / intra_pairs.sum().clamp_min(1)
    inter = (F.relu(margin - d) * inter_pairs).sum() / inter_pairs.sum().clamp_min(1)
    return lam * intra + (1.0 - lam) * inter, intra, inter


@register_method("multi_sub")
class MultiSub(ProxyMethod):
    """Multi-Sub: proxies in the reference words' subspace, aligned to a trainable image projection,
    then the projection refined by a pseudo-label clustering loss; k-means on [w; x]."""

    Config = MultiSubConfig
    version = 1
    implementation = "reimplementation (paper)"
    # the released main.py's choices, as far as it can run: Adagrad re-created every alternation, its lrs,
    # batch 50, init encode_text("*") without noise, the encoder without positions/ln_final, plain Euclidean
    # intra distances on the raw [w; x]; one alternation of 100 + 10 epochs (``alternations`` is undefined there)
    official_overrides = (
        "method.init=official", "method.init_noise=0.0", "method.official_text_encoder=true",
        "method.optimizer=adagrad", "method.reset_optimizers=true", "method.lr_proxy=0.005",
        "method.lr_projection=1e-5", "method.lr_projection_cluster=1e-4", "method.batch_size=50",
        "method.intra_distance=euclidean", "method.concat_norm=false", "method.rounds=1",
        "method.phase1_epochs=100", "method.phase2_epochs=10",
    )

    def fit(self, task: ClusteringTask) -> FitResult:
        cfg = self.config
        self.validate(task)
        enc, dev = task.encoder, task.device
        gen = task.generator()
        z = self.subspace_basis(task).to(dev)  # K×W
        prompt = proxy_prompt(enc, task.prompt, official=cfg.official_text_encoder, prefix_cache=cfg.prefix_cache)
        h = task.features.pre_projection.to(dev).float()
        weight0, bias0 = enc.projection_parameters()
        weight = weight0.to(dev).clone().requires_grad_(True)
        bias = None if bias0 is None else bias0.to(dev).clone().requires_grad_(True)
        proj = [weight] + ([] if bias is None else [bias])
        p = self.init_latent(task, z, gen).requires_grad_(True)

        history: list[dict[str, float]] = []
        labels = None
        opt1 = opt2 = None
        bar = task.progress(cfg.rounds * (cfg.phase1_epochs + cfg.phase2_epochs), self.name)
        for r in range(cfg.rounds):
            # Phase I: proxy learning and alignment (p and f)
            if opt1 is None or cfg.reset_optimizers:
                opt1 = self.make_optimizer([{"params": [p], "lr": cfg.lr_proxy},
                                            {"params": proj, "lr": cfg.lr_projection}])
            for _ in range(cfg.phase1_epochs):
                align = self._phase1_epoch(task, opt1, p, z, h, weight, bias, prompt, gen)
                history.append({"round": float(r), "phase": 1.0, "align": align})
                task.log_epoch(history[-1])  # live curves (W&B)
                bar.update()
            # Phase II: clustering (f only), pseudo-labels from the proxies, fixed for the phase
            with torch.no_grad():
                w = self.proxies(p, z)
                new = self.assign_pseudo_labels(task, p, z, w, enc.project_images(h, weight, bias), gen)
                changed = 1.0 if labels is None else float((new != labels).float().mean())
                labels = new
            if opt2 is None or cfg.reset_optimizers:
                opt2 = self.make_optimizer([{"params": proj, "lr": cfg.lr_projection_cluster}])
            for _ in range(cfg.phase2_epochs):
                sums = self._phase2_epoch(task, opt2, w, labels, h, weight, bias, gen)
                history.append({"round": float(r), "phase": 2.0, "cluster": sums[0], "intra": sums[1],
                                "inter": sums[2], "pseudo_classes": float(len(torch.unique(labels))),
                                "pseudo_changed": changed})
                task.log_epoch(history[-1])  # live curves (W&B)
                bar.update()
        bar.close()

        with torch.no_grad():
            w = self.proxies(p, z)
            x = enc.project_images(h, weight, bias)
            t = F.normalize(prompt.encode(w), dim=-1)
            rep = {"concat": lambda: self.concat(w, x), "prompt": lambda: t,
                   "image": lambda: F.normalize(x, dim=-1), "word": lambda: w}[cfg.readout]()
            a = self._weights(p, z)
        info = {
            "projection_change": float((weight.detach() - weight0.to(dev)).norm()),
            "weights": a.cpu().numpy(),
            "projection_weight": weight.detach().cpu().numpy(),
        }
        return FitResult.from_representation(task, rep, READOUT_NAMES[cfg.readout], history=history,
                                             proxies=t.cpu().numpy(), info=info)

    # ------------------------------------------------------------------ the two phases' steps
    def _phase1_epoch(self, task: ClusteringTask, opt: torch.optim.Optimizer, p: torch.Tensor, z: torch.Tensor,
                      h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, prompt: ProxyPrompt,
                      gen: torch.Generator) -> float:
        """One Phase I epoch: minimise the alignment loss over p and f; returns its mean before the steps."""
        total = 0.0
        for idx in self.batches(task.n, gen, task.device):
            x = task.encoder.project_images(h[idx], weight, bias)
            t = prompt.encode(self.proxies(p[idx], z))
            loss = alignment_loss(x, t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        return total / task.n

    def _phase2_epoch(self, task: ClusteringTask, opt: torch.optim.Optimizer, w: torch.Tensor, labels: torch.Tensor,
                      h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      gen: torch.Generator) -> np.ndarray:
        """One Phase II epoch: minimise L = λ L_intra + (1 − λ) L_inter over f only (w fixed); returns the mean
        (L, L_intra, L_inter) before the steps."""
        cfg = self.config
        sums = np.zeros(3)
        for idx in self.batches(task.n, gen, task.device):
            v = self.concat(w[idx], task.encoder.project_images(h[idx], weight, bias))
            loss, intra, inter = clustering_loss(v, labels[idx], cfg.lam, cfg.margin, cfg.intra_distance)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += np.array([float(loss.detach()), float(intra.detach()), float(inter.detach())]) * len(idx)
        return sums / task.n

    # ------------------------------------------------------------------ pieces
    def validate(self, task: ClusteringTask) -> None:
        """Refuse switch values outside their choices, τ ≤ 0, negative epochs or batch sizes, and joint-space vectors
        (``subspace=prompt|text``, ``init=official``) in the token slot of an encoder whose widths differ."""
        cfg = self.config
        for key, value, choices in (("subspace", cfg.subspace, SUBSPACES), ("init", cfg.init, INITS),
                                    ("optimizer", cfg.optimizer, OPTIMIZERS),
                                    ("pseudo_labels", cfg.pseudo_labels, PSEUDO_LABELS),
                                    ("intra_distance", cfg.intra_distance, INTRA_DISTANCES),
                                    ("readout", cfg.readout, READOUTS)):
            if value not in choices:
                raise ValueError(
                    f"method.{key}={value!r} is not valid for multi_sub; choose one of: {', '.join(choices)}")
        if cfg.temperature <= 0:
            raise ValueError(f"method.temperature={cfg.temperature} must be > 0")
        if min(cfg.rounds, cfg.phase1_epochs, cfg.phase2_epochs, cfg.batch_size) < 0:
            raise ValueError("method.rounds, phase1_epochs, phase2_epochs and batch_size must be >= 0")
        needs_joint = cfg.subspace != "token" or cfg.init == "official"
        if needs_joint and task.encoder.embed_dim != task.encoder.text_width:
            raise ValueError(
                f"subspace={cfg.subspace}/init={cfg.init} puts joint-space vectors (dim {task.encoder.embed_dim}) "
                f"into the token slot (width {task.encoder.text_width}); they differ for this encoder: use "
                f"subspace=token and init=uniform|mean|zeroshot"
            )

    def subspace_basis(self, task: ClusteringTask) -> torch.Tensor:
        """Z (K×W), the subspace basis: the token embeddings of the reference words (``subspace=token``, the
        paper's best) or the ablations' text embeddings (``prompt``, ``text``)."""
        words = list(task.reference_words)
        if self.config.subspace == "token":
            return task.encoder.token_embeddings(words).float()
        template = "prompt" if self.config.subspace == "prompt" else "bare"
        return word_text_embeddings(task.encoder, task.prompt, words, template).float()

    def init_latent(self, task: ClusteringTask, z: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """p_0 (N×W) in the space of Z (``init``), plus seeded noise of std ``init_noise``.

        The noise is a seeded random projection of each image's features, so it follows the image, not its
        position in the task order: whole-batch training is then equivariant to reordering the images.
        """
        n, width = task.n, z.shape[1]
        init = self.config.init
        if init == "uniform":
            base = torch.zeros(n, width)
        elif init == "mean":
            base = z.mean(0).cpu().expand(n, -1)
        elif init == "official":  # encode_text("*"), identical for all images (released code)
            base = task.encoder.encode_text(["*"], normalize=False).float().cpu().expand(n, -1)
        else:  # zeroshot: the token embedding of each image's zero-shot reference word
            text = word_text_embeddings(task.encoder, task.prompt, task.reference_words, "prompt")
            best = (task.features.embeddings.to(text.device) @ text.T).argmax(1)
            base = z[best].cpu()
        h = task.features.pre_projection.float().cpu()
        noise = h @ torch.randn(h.shape[1], width, generator=gen)
        noise = (noise - noise.mean(0)) / noise.std().clamp_min(1e-12) * self.config.init_noise
        return (base + noise).to(task.device).contiguous()

    def _weights(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """a_ik = softmax_k(p_i·z_k / τ)."""
        return torch.softmax(p @ z.T / self.config.temperature, dim=1)

    def proxies(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The proxy words w_i = Σ_k a_ik z_k, a_ik = softmax_k(p_i·z_k / τ): in the convex hull of the z_k."""
        return self._weights(p, z) @ z

    def concat(self, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Phase II's v_i = [w_i; x_i], each part L2-normalised first when ``concat_norm`` (the raw concatenation
        otherwise, as the released code)."""
        if self.config.concat_norm:
            w, x = F.normalize(w, dim=-1), F.normalize(x, dim=-1)
        return torch.cat([w, x], dim=1)

    def assign_pseudo_labels(self, task: ClusteringTask, p: torch.Tensor, z: torch.Tensor, w: torch.Tensor,
                             x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Phase II's pseudo-labels, fixed for the phase: argmax_k a_ik, the nearest reference word (``argmax_a``), or
        k-means with k = the task's k, seeded from ``gen``, on w (``kmeans_w``) or on v = [w; x] (``kmeans_v``)."""
        mode = self.config.pseudo_labels
        if mode == "argmax_a":
            return self._weights(p, z).argmax(1)
        data = w if mode == "kmeans_w" else self.concat(w, x)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        km = KMeans(n_clusters=task.k, random_state=seed, n_init=1).fit(data.cpu().double().numpy())
        return torch.as_tensor(km.labels_, dtype=torch.long, device=task.device)

    def batches(self, n: int, gen: torch.Generator, device: torch.device) -> list[torch.Tensor]:
        """A fresh seeded permutation cut into batches (one whole batch when ``batch_size`` is 0)."""
        perm = torch.randperm(n, generator=gen).to(device)
        size = self.config.batch_size or n
        return list(perm.split(size))

    def make_optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        """The optimiser of a phase over ``groups``: Adam (paper) or Adagrad (released code), ``weight_decay`` on every
        trained tensor."""
        cls = torch.optim.Adam if self.config.optimizer == "adam" else torch.optim.Adagrad
        return cls(groups, weight_decay=self.config.weight_decay)
