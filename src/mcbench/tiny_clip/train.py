"""Train mcbench's tiny CLIP on captioned synthetic images of all families.

    python -m mcbench.tiny_clip.train --out src/mcbench/pretrained/mcbench-tiny-clip.safetensors

Training images come from generation seeds >= 1,000,000 (evaluation uses small seeds); each batch mixes the
families, pairs every image with a random true caption, adds distractor captions as extra negatives, and
minimises the multi-positive contrastive loss. The state dict is saved in fp16 safetensors.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads that lose their
# core make every parallel op wait (measured 2.5 s -> 0.5 s per vision step). Must precede torch's import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from mcbench.atomic import atomic_path  # noqa: E402
from mcbench.data.synthetic import FAMILIES, family_aspects, generate, synthetic_dataset  # noqa: E402
from mcbench.tiny_clip import MODEL_NAME, load, register  # noqa: E402
from mcbench.tiny_clip.captions import Caption, describe, distractor, positives  # noqa: E402
from mcbench.tiny_clip.evaluate import EVAL_N, accuracy_table, format_table, zero_shot_accuracy  # noqa: E402
from mcbench.tiny_clip.loss import multi_positive_loss  # noqa: E402

TRAIN_SEED_BASE = 1_000_000
MONITOR_SEED = 2  # held-out images for the progress check (the final table uses evaluate.EVAL_SEED)
_CHUNK = 1000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mcbench.tiny_clip.train", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="where to write the fp16 .safetensors state dict")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--images-per-family", type=int, default=10000)
    p.add_argument("--distractors", type=int, default=32, help="distractor captions per batch (negatives only)")
    p.add_argument("--p-prompt", type=float, default=0.5, help="share of captions that are an aspect's prompt")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads and image-generation processes")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=250, help="zero-shot check on held-out images (0: never)")
    p.add_argument("--eval-n", type=int, default=EVAL_N, help="held-out images per family for the final table")
    p.add_argument("--cache-dir", default=None, help="cache of the held-out images (default: $MCBENCH_CACHE)")
    p.add_argument("--pool-cache", default=None, help="also cache the training images there, for reruns")
    return p.parse_args(argv)


def _chunk(job: tuple[str, int, int, str | None]):
    family, n, seed, cache = job
    if cache is None:
        pixels, labels, _ = generate(family, n, seed)
    else:
        ds = synthetic_dataset(family, n, seed, cache_dir=cache)
        pixels, labels = ds.pixels, ds.labels
    return family, pixels, labels


def make_pool(n_per_family: int, seed: int, workers: int, cache: str | None = None) -> dict:
    """family -> (pixels, labels, aspects) of the training images, generated in chunks by ``workers``."""
    jobs, k = [], 0
    for family in FAMILIES:
        for start in range(0, n_per_family, _CHUNK):
            jobs.append((family, min(_CHUNK, n_per_family - start), TRAIN_SEED_BASE + 1000 * seed + k, cache))
            k += 1
    parts: dict[str, list] = {f: [] for f in FAMILIES}
    with ProcessPoolExecutor(max_workers=workers) as ex:
        for family, pixels, labels in ex.map(_chunk, jobs):
            parts[family].append((pixels, labels))
    pool = {}
    for family, chunks in parts.items():
        aspects = family_aspects(family)
        pixels = np.concatenate([c[0] for c in chunks])
        labels = {a: np.concatenate([c[1][a] for c in chunks]) for a in aspects}
        pool[family] = (pixels, labels, aspects)
    return pool


def sample_batch(pool: dict, rng: np.random.Generator, args: argparse.Namespace):
    """(normalised images, unique captions, positive mask images × captions) of one training batch."""
    families = np.asarray(FAMILIES)[rng.integers(len(FAMILIES), size=args.batch_size)]
    pixels = np.empty((args.batch_size, *pool[FAMILIES[0]][0].shape[1:]), dtype=np.uint8)
    labels = {f: {a: np.full(args.batch_size, -1) for a in pool[f][2]} for f in FAMILIES}
    captions: dict[Caption, None] = {}
    for i, family in enumerate(families):
        images, fam_labels, aspects = pool[family]
        j = rng.integers(len(images))
        pixels[i] = images[j]
        lab = {a: int(y[j]) for a, y in fam_labels.items()}
        for a, v in lab.items():
            labels[family][a][i] = v
        captions[describe(family, aspects, lab, rng, args.p_prompt)] = None
    for _ in range(args.distractors):
        family = FAMILIES[rng.integers(len(FAMILIES))]
        captions[distractor(family, pool[family][2], rng)] = None
    caps = list(captions)
    return to_tensor(pixels), caps, torch.from_numpy(positives(caps, families, labels))


_MEAN = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×3 -> normalised N×3×H×W, exactly what open_clip's preprocess gives for 64-px images."""
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255)
    return ((x - _MEAN) / _STD).contiguous(memory_format=torch.channels_last)


def encode_text(model, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text`` on tokens cut to the longest caption: equal under the causal mask, but cheaper."""
    length = int((tokens != 0).sum(1).max())
    tokens = tokens[:, :length]
    x = model.token_embedding(tokens) + model.positional_embedding[:length]
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(len(tokens)), tokens.argmax(dim=-1)]  # the end-of-text token has the largest id
    return F.normalize(x @ model.text_projection, dim=-1)


def _optimizer(model: torch.nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "bn" in name or "ln" in name or "logit_scale" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.98), eps=1e-6, fused=True)


def _lr(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return 0.5 * args.lr * (1 + math.cos(math.pi * progress))


def save_fp16(model: torch.nn.Module, path: str) -> None:
    """The state dict in fp16 safetensors (open_clip casts it back when loading)."""
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"model": MODEL_NAME})
        tmp.chmod(0o644)  # a shipped file, not a private temporary


def _progress(model, preprocess, tokenizer, monitor: list) -> str:
    """Zero-shot accuracy with class names on the monitoring images, as one log line."""
    model.eval()
    parts = [
        f"{ds.name.removeprefix('synth_')}.{a} {acc:.3f}"
        for ds in monitor
        for a, acc in zero_shot_accuracy(model, preprocess, tokenizer, ds).items()
    ]
    model.train()
    return "zero-shot " + " ".join(parts)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t0 = time.time()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    pool = make_pool(args.images_per_family, args.seed, args.threads, args.pool_cache)
    torch.set_num_threads(args.threads)
    gen_s = time.time() - t0
    print(f"{args.images_per_family} training images per family ready after {gen_s:.0f}s", flush=True)

    register()
    model = open_clip.create_model(MODEL_NAME).train()
    model.visual.to(memory_format=torch.channels_last)
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    opt = _optimizer(model, args)
    preprocess = open_clip.image_transform(model.visual.image_size, is_train=False)
    monitor = [synthetic_dataset(f, 100, MONITOR_SEED, cache_dir=args.cache_dir) for f in FAMILIES if args.eval_every]
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, args)
        images, captions, mask = sample_batch(pool, rng, args)
        image_features = F.normalize(model.encode_image(images), dim=-1)
        text_features = encode_text(model, tokenizer([c.text for c in captions]))
        loss = multi_positive_loss(image_features, text_features, mask, model.logit_scale.exp().clamp(max=100))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            print(
                f"step {step + 1}/{args.steps} loss {loss.item():.4f} lr {_lr(step, args):.2e} "
                f"scale {model.logit_scale.exp().item():.1f} captions {len(captions)} elapsed {time.time() - t0:.0f}s",
                flush=True,
            )
        if args.eval_every and (step + 1) % args.eval_every == 0:
            print(_progress(model, preprocess, tokenizer, monitor), flush=True)
    train_s = time.time() - t0
    save_fp16(model, args.out)
    rows = accuracy_table(*load(args.out), n=args.eval_n, cache_dir=args.cache_dir)  # the file, via open_clip
    print(format_table(rows))
    print(
        f"wall time: generation {gen_s:.0f}s, training {train_s - gen_s:.0f}s, total {time.time() - t0:.0f}s; "
        f"weights -> {args.out}",
        flush=True,
    )


if __name__ == "__main__":
    main()
