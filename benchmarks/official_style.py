"""Official-style training loops: the same methods, executed the way the released code (or, with no code, a
straightforward implementation of the paper) executes them. Baselines for timing, not methods.

Each loop computes the same mathematics as the method's own ``fit`` (the method's loss functions, helpers,
hyperparameters, seeded generators and readout, reached only through their public names, each documented with
the paper step it implements) and changes only how the work is done:

* no feature cache: the images are preprocessed and run through the frozen image tower in the loop
  (Multi-MaP: twice per run, for the features and inside the zero-shot ``model(img, text)`` call, as the
  released ``main.py`` does; Multi-Sub: on every step, through the trainable
  projection; Multi-DProxy: on every mini-batch of every epoch, as a DataLoader-driven loop does);
* full-context text passes: the prompt is tokenized to the whole context (77 tokens for ViT-B/32, 32 for the
  tiny CLIP) and the proxy is put at ``*`` by a Python loop over the batch's images
  (``encode_text_with_learnt_tokens`` of the released code, research notes §1.2); no prefix cache;
* CLIP's parameters keep ``requires_grad=True`` (the released code never freezes them), so autograd also
  computes the gradients of every encoder weight on the path (never applied: the optimiser holds only the proxies
  and, for Multi-Sub, the projection copy);
* the official batch size: Multi-MaP 20 (``parse.py``), Multi-Sub 50 (``parse.py``); Multi-DProxy has no code
  and keeps the method's own 150.

See benchmarks/README.md for what each loop models and what it leaves out.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from mcbench.contracts import ClusteringTask, FitResult, ImageFeatures
from mcbench.encoders import ClipEncoder
from mcbench.methods import multi_dproxy as dp
from mcbench.methods.multi_map import MultiMaP, alignment_loss
from mcbench.methods.multi_sub import MultiSub, clustering_loss
from mcbench.prompts import ProxyPrompt

OFFICIAL_BATCH = {"multi_map": 20, "multi_sub": 50, "multi_dproxy": None}  # None: no official code, method's own
IMAGE_PASS = {"multi_map": "twice per run (features, zero-shot call)",
              "multi_sub": "every step (through the trainable projection)",
              "multi_dproxy": "every mini-batch of every epoch"}
IMAGE_BATCH = 50  # the released code's hard-coded image batch


# ------------------------------------------------------------------------------------------ shared pieces


@contextlib.contextmanager
def trainable_encoder(encoder: ClipEncoder) -> Iterator[None]:
    """The released code's CLIP: every parameter requires grad (gradients computed, never applied)."""
    params = list(encoder.model.parameters())
    try:
        encoder.model.requires_grad_(True)
        yield
    finally:
        encoder.model.requires_grad_(False)
        for p in params:
            p.grad = None


def image_tower(encoder: ClipEncoder, images: torch.Tensor, grad: bool = False) -> torch.Tensor:
    """Pre-projection features of preprocessed ``images`` through the image tower (no cache)."""
    with torch.set_grad_enabled(grad), encoder.pre_projection_mode():
        return encoder.model.encode_image(images).float()


def encode_images(encoder: ClipEncoder, images: torch.Tensor, batch: int = IMAGE_BATCH) -> ImageFeatures:
    """The task's features recomputed from the images, in batches of 50 (released code, step 4)."""
    pre = torch.cat([image_tower(encoder, images[i:i + batch]) for i in range(0, len(images), batch)])
    return ImageFeatures(F.normalize(encoder.project_images(pre), dim=-1), pre)


def official_prompt_encode(encoder: ClipEncoder, tokens: torch.Tensor, slot_id: int, codes: torch.Tensor,
                           official: bool) -> torch.Tensor:
    """``encode_text_with_learnt_tokens``: full-context tokens, the proxy put at ``*`` row by row."""
    rows, cols = torch.where(tokens == slot_id)
    x = encoder.model.token_embedding(tokens).float()
    filled = [torch.cat([x[r, :c], codes[i][None].to(x.dtype), x[r, c + 1:]]) for i, (r, c) in
              enumerate(zip(rows.tolist(), cols.tolist()))]  # the released per-image Python loop
    return encoder.encode_token_sequence(torch.stack(filled), tokens, official=official)


def with_features(task: ClusteringTask, features: ImageFeatures) -> ClusteringTask:
    return dataclasses.replace(task, features=features)


# ------------------------------------------------------------------------------------------ Multi-MaP


def multi_map(method: MultiMaP, task: ClusteringTask, images: torch.Tensor, batch_size: int | None = None
              ) -> FitResult:
    """Multi-MaP as the released ``main.py`` runs it: the image tower over all images for the features and again
    inside the zero-shot ``model(img, text)`` call, batches of 20, full-context prompts filled per image, CLIP
    gradients computed, and every 10 epochs the prompt embeddings of all images (computed there, never used).
    Same loss terms and Adagrad as ``MultiMaP.fit`` (every term is per image and Adagrad normalises each row, so
    the batch size does not change the proxies when weight decay is 0: tests/test_multi_map.py)."""
    c = dataclasses.replace(method.config, batch_size=batch_size or OFFICIAL_BATCH["multi_map"])
    m = MultiMaP(c)
    enc = task.encoder
    task = with_features(task, encode_images(enc, images))
    m.validate(task)
    x = task.features.embeddings
    tokens = enc.tokenize([task.prompt] * task.n)  # full context, once per run
    slot = enc.slot_token_id
    z = m.reference_words(with_features(task, encode_images(enc, images)))  # zero-shot: a second image pass
    word_vecs = m.word_vectors(task, list(task.reference_words))
    concept = m.word_vectors(task, [task.concept])[0]
    anchors = word_vecs[z]
    proxies = nn.Parameter(anchors.clone())
    table_decay = c.weight_decay if c.decay_scope == "table" else 0.0
    full = ProxyPrompt(enc, task.prompt, official=c.official_text_encoder, truncate=False)
    effective = m.effective_hparams(task, full, z, word_vecs)  # full-context prompt passes (no prefix cache)
    alpha, beta = effective["alpha"], effective["beta"]
    optimizer = torch.optim.Adagrad([proxies], lr=effective["lr"], weight_decay=table_decay)  # dense, every row
    gen = task.generator()
    history = []
    bar = task.progress(c.epochs, "official-style multi_map")
    with trainable_encoder(enc):
        for epoch in range(c.epochs):
            sums = {"loss": 0.0, "align": 0.0, "concept": 0.0, "reference": 0.0}
            batches = m.batches(task, gen)
            for idx in batches:
                w = proxies[idx]
                t = official_prompt_encode(enc, tokens[idx], slot, w, c.official_text_encoder)
                loss, terms = method.batch_objective(x[idx], F.normalize(t, dim=-1), w, concept, anchors[idx],
                                                     alpha, beta)
                optimizer.zero_grad(set_to_none=False)
                loss.backward()
                optimizer.step()
                for key, value in terms.items():
                    sums[key] += float(value.detach()) / len(batches)
            history.append(sums)
            if (epoch + 1) % UNUSED_PASS_EVERY == 0:
                unused_prompt_pass(enc, tokens, slot, proxies, c.batch_size, c.official_text_encoder)
            bar.update()
    return m.fit_result(task, full, proxies.detach(), z, history, effective)


UNUSED_PASS_EVERY = 10


@torch.no_grad()
def unused_prompt_pass(enc: ClipEncoder, tokens: torch.Tensor, slot: int, proxies: torch.Tensor, batch: int,
                       official: bool) -> None:
    """The released loop's ``clip_embeddings`` of all images every 10 epochs (computed, never used)."""
    for idx in torch.arange(len(tokens)).split(batch):
        official_prompt_encode(enc, tokens[idx], slot, proxies[idx], official)


# ------------------------------------------------------------------------------------------ Multi-Sub


def multi_sub(method: MultiSub, task: ClusteringTask, images: torch.Tensor, batch_size: int | None = None
              ) -> FitResult:
    """Multi-Sub as the released ``main.py`` would run it: every step re-encodes its images through the image
    tower and the trainable projection (gradients through the whole tower), full-context prompts filled per
    image, batches of 50. Same phases, losses, optimisers and readout as ``MultiSub.fit``."""
    cfg = dataclasses.replace(method.config, batch_size=batch_size or OFFICIAL_BATCH["multi_sub"])
    m = MultiSub(cfg)
    enc, dev = task.encoder, task.device
    task = with_features(task, encode_images(enc, images))  # init noise and readout from uncached features
    m.validate(task)
    gen = task.generator()
    z = m.subspace_basis(task).to(dev)
    tokens = enc.tokenize([task.prompt] * task.n)
    slot = enc.slot_token_id
    weight0, bias0 = enc.projection_parameters()
    weight = weight0.to(dev).clone().requires_grad_(True)
    bias = None if bias0 is None else bias0.to(dev).clone().requires_grad_(True)
    proj = [weight] + ([] if bias is None else [bias])
    p = m.init_latent(task, z, gen).requires_grad_(True)

    def embed(idx: torch.Tensor, grad: bool) -> torch.Tensor:
        return enc.project_images(image_tower(enc, images[idx], grad=grad), weight, bias)

    history: list[dict[str, float]] = []
    labels = None
    opt1 = opt2 = None
    bar = task.progress(cfg.rounds * (cfg.phase1_epochs + cfg.phase2_epochs), "official-style multi_sub")
    with trainable_encoder(enc):
        for r in range(cfg.rounds):
            if opt1 is None or cfg.reset_optimizers:
                opt1 = m.make_optimizer([{"params": [p], "lr": cfg.lr_proxy},
                                         {"params": proj, "lr": cfg.lr_projection}])
            for _ in range(cfg.phase1_epochs):
                total = 0.0
                for idx in m.batches(task.n, gen, dev):
                    x = embed(idx, grad=True)
                    t = official_prompt_encode(enc, tokens[idx], slot, m.proxies(p[idx], z), cfg.official_text_encoder)
                    loss = alignment_loss(x, F.normalize(t, dim=-1))
                    opt1.zero_grad(set_to_none=True)
                    loss.backward()
                    opt1.step()
                    total += float(loss.detach()) * len(idx)
                history.append({"round": float(r), "phase": 1.0, "align": total / task.n})
                bar.update()
            with torch.no_grad():
                w = m.proxies(p, z)
                x_all = torch.cat([embed(i, False) for i in torch.arange(task.n).split(IMAGE_BATCH)])
                new = m.assign_pseudo_labels(task, p, z, w, x_all, gen)
                changed = 1.0 if labels is None else float((new != labels).float().mean())
                labels = new
            if opt2 is None or cfg.reset_optimizers:
                opt2 = m.make_optimizer([{"params": proj, "lr": cfg.lr_projection_cluster}])
            for _ in range(cfg.phase2_epochs):
                sums = torch.zeros(3, dtype=torch.float64)
                for idx in m.batches(task.n, gen, dev):
                    x = enc.project_images(image_tower(enc, images[idx], grad=False), weight, bias)
                    v = m.concat(w[idx], x)
                    loss, intra, inter = clustering_loss(v, labels[idx], cfg.lam, cfg.margin, cfg.intra_distance)
                    opt2.zero_grad(set_to_none=True)
                    loss.backward()
                    opt2.step()
                    sums += torch.tensor([float(loss.detach()), float(intra.detach()), float(inter.detach())],
                                         dtype=torch.float64) * len(idx)
                sums /= task.n
                history.append({"round": float(r), "phase": 2.0, "cluster": float(sums[0]), "intra": float(sums[1]),
                                "inter": float(sums[2]), "pseudo_classes": float(len(torch.unique(labels))),
                                "pseudo_changed": changed})
                bar.update()
    with torch.no_grad():
        w = m.proxies(p, z)
        x = torch.cat([embed(i, False) for i in torch.arange(task.n).split(IMAGE_BATCH)])
        full = ProxyPrompt(enc, task.prompt, official=cfg.official_text_encoder, truncate=False)
        t = F.normalize(torch.cat([full.encode(chunk) for chunk in w.split(256)]), dim=-1)
        rep = {"concat": lambda: m.concat(w, x), "prompt": lambda: t,
               "image": lambda: F.normalize(x, dim=-1), "word": lambda: w}[cfg.readout]()
    return FitResult.from_representation(task, rep, "official-style " + cfg.readout, history=history,
                                         proxies=t.cpu().numpy())


# ------------------------------------------------------------------------------------------ Multi-DProxy


def multi_dproxy(method: dp.MultiDProxy, task: ClusteringTask, images: torch.Tensor,
                 batch_size: int | None = None) -> FitResult:
    """Multi-DProxy (no released code) as a plain PyTorch loop over a DataLoader would run it: the frozen image
    tower on every mini-batch of every epoch and on every full pass; the method's own batch size (150).
    The rest is ``MultiDProxy.fit`` step for step (same generators, pool, fusion, losses, k-means)."""
    cfg = dp.resolve_ablation(method.config)
    if batch_size:
        cfg = dataclasses.replace(cfg, batch_size=batch_size)
    enc, dev, n, k = task.encoder, task.device, task.n, task.k
    task = with_features(task, encode_images(enc, images))
    order = dp.image_order(task.features.embeddings)
    back = torch.argsort(order).to(dev)
    images = images[order]

    def visual(idx: torch.Tensor | None = None) -> torch.Tensor:
        """V of the images ``idx`` (training order), through the image tower now."""
        idx = torch.arange(n) if idx is None else idx
        pre = torch.cat([image_tower(enc, images[i]) for i in idx.cpu().split(IMAGE_BATCH)])
        return F.normalize(enc.project_images(pre).to(dev), dim=-1)

    text = dp.TextSide(task, cfg)
    pool = text.pool
    width = enc.embed_dim
    latent = nn.Parameter((torch.randn(n, pool.emb.shape[1], generator=task.generator(0)) * cfg.init_std).to(dev))
    fusion = None
    if cfg.fusion == "gated" and cfg.modality == "fused":
        fusion = dp.GatedFusion(width, cfg.fusion_heads, cfg.fusion_layers, cfg.fusion_tokens, cfg.tau_mix,
                                cfg.gate_bias, task.generator(1)).to(dev)
    groups: list[dict[str, Any]] = [{"params": [latent], "lr": cfg.lr}]
    if fusion is not None:
        groups.append({"params": list(fusion.parameters()), "lr": cfg.lr_fusion})
    optimizer = torch.optim.Adam(groups, betas=(0.9, 0.999), weight_decay=cfg.weight_decay,
                                 fused=dev.type in ("cpu", "cuda"))
    batch_gen, kmeans_gen = task.generator(2), task.generator(3)

    def fuse(t0: torch.Tensor, vis: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if cfg.modality == "text":
            return t0, {}
        if cfg.modality == "visual":
            return vis, {}
        if fusion is None:
            return torch.cat([t0, vis], dim=-1), {}
        return fusion(vis, t0)

    concat = fusion is None and cfg.modality == "fused"

    readout_gen = task.generator(4)

    @torch.no_grad()
    def full_pass() -> tuple[torch.Tensor, torch.Tensor]:
        """(T⁰, F) of all images, the image tower run again; F over the method's readout sequences."""
        t0 = text.encode_all(pool.proxies(latent))
        if cfg.readout_sequence == "all" or n <= cfg.batch_size:
            return t0, fuse(t0, visual())[0]
        fused = None
        for seq in torch.randperm(n, generator=readout_gen).to(dev).split(cfg.batch_size):
            part = fuse(t0[seq], visual(seq))[0]
            if fused is None:
                fused = part.new_empty(n, part.shape[1])
            fused[seq] = part
        return t0, fused

    sizes = dp.pool_schedule(len(pool), k, cfg.prune_to_k) if cfg.dynamic else []
    when = dict(zip(dp.prune_epochs(len(sizes), cfg.epochs, cfg.prune_every), sizes))
    need_pseudo = cfg.use_lc and cfg.lc_mode == "infonce_hard"
    pseudo = dp.kmeans(full_pass()[1], k, kmeans_gen, cfg.kmeans_iters, cfg.kmeans_restarts)[0] if need_pseudo else None
    hard = cfg.hard_negatives or max(1, cfg.batch_size // 4)
    history: list[dict[str, float]] = []
    bar = task.progress(cfg.epochs, "official-style multi_dproxy")
    for epoch in range(cfg.epochs):
        alpha = dp.alpha_schedule(epoch, cfg.epochs) if cfg.use_lu else 0.0
        beta = dp.beta_schedule(epoch, cfg.epochs) if cfg.use_lc else 0.0
        sums: dict[str, float] = {"pool": float(len(pool))}
        perm = torch.randperm(n, generator=batch_gen).to(dev)
        epoch_f: torch.Tensor | None = None
        for batch in perm.split(cfg.batch_size):
            w = pool.proxies(latent[batch])
            t0 = text.encode(w)
            vb = visual(batch)
            fused, stats = fuse(t0, vb)
            loss, terms = dp.batch_objective(cfg, w, t0, vb, fused, concat, pool.centroid,
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
            pool.prune(proxies, k, when[done], cfg.score, kmeans_gen, cfg.kmeans_iters, cfg.kmeans_restarts)
        if need_pseudo and done % cfg.pseudo_every == 0 and done < cfg.epochs:
            pseudo = dp.kmeans(epoch_f, k, kmeans_gen, cfg.kmeans_iters, cfg.kmeans_restarts)[0]
        history.append({**sums, "alpha": alpha, "beta": beta})
        bar.update()
    t0, fused = full_pass()
    t0, fused = t0[back], fused[back]
    return FitResult.from_representation(task, fused, "official-style F", history=history, proxies=t0.cpu().numpy())


LOOPS = {"multi_map": multi_map, "multi_sub": multi_sub, "multi_dproxy": multi_dproxy}
