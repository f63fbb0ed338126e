"""Zero-shot accuracy of a CLIP model on the synthetic datasets, with the aspects' own prompts.

For each aspect, every image gets the word whose prompt (``aspect.prompt`` with the word at ``*``) has the
most similar text embedding; one template, no ensemble. ``words="classes"`` ranks the true class names,
``words="reference"`` the aspect's full reference-word list (class names plus distractors).
"""

from __future__ import annotations

import numpy as np
import torch

from mcbench.data.base import MultiViewDataset
from mcbench.data.synthetic import FAMILIES, synthetic_dataset

#: The held-out evaluation set: training images use generation seeds >= 1,000,000.
EVAL_SEED = 1
EVAL_N = 300


@torch.no_grad()
def encode_images(model, preprocess, dataset: MultiViewDataset, batch_size: int = 500) -> torch.Tensor:
    """L2-normalised image embeddings, each image through the model's own preprocess."""
    out = []
    for start in range(0, len(dataset), batch_size):
        batch = torch.stack([preprocess(dataset.image(i)) for i in range(start, min(start + batch_size, len(dataset)))])
        out.append(model.encode_image(batch, normalize=True))
    return torch.cat(out)


@torch.no_grad()
def zero_shot_accuracy(
    model, preprocess, tokenizer, dataset: MultiViewDataset, words: str = "classes", image_features=None
) -> dict:
    """Accuracy per aspect: the predicted word must be the image's class name.

    ``image_features`` (from ``encode_images``) saves encoding the images again.
    """
    if words not in ("classes", "reference"):
        raise ValueError(f"words must be 'classes' or 'reference', not '{words}'")
    images = encode_images(model, preprocess, dataset) if image_features is None else image_features
    accuracy = {}
    for name, aspect in dataset.aspects.items():
        vocab = aspect.classes if words == "classes" else aspect.reference_words
        texts = model.encode_text(tokenizer([aspect.prompt.replace("*", w) for w in vocab]), normalize=True)
        predicted = np.asarray(vocab)[(images @ texts.T).argmax(1).numpy()]
        truth = np.asarray(aspect.classes)[dataset.labels[name]]
        accuracy[name] = float((predicted == truth).mean())
    return accuracy


def accuracy_table(
    model, preprocess, tokenizer, n: int = EVAL_N, seed: int = EVAL_SEED, difficulty: str = "easy", cache_dir=None
) -> list:
    """Rows (dataset, aspect, accuracy over class names, accuracy over reference words) on held-out images."""
    rows = []
    for family in FAMILIES:
        ds = synthetic_dataset(family, n=n, seed=seed, difficulty=difficulty, cache_dir=cache_dir)
        features = encode_images(model, preprocess, ds)
        true_names = zero_shot_accuracy(model, preprocess, tokenizer, ds, "classes", features)
        reference = zero_shot_accuracy(model, preprocess, tokenizer, ds, "reference", features)
        rows += [(ds.name, a, true_names[a], reference[a]) for a in ds.aspects]
    return rows


def format_table(rows: list) -> str:
    """A Markdown table of ``accuracy_table`` rows."""
    lines = ["| dataset | aspect | zero-shot, class names | zero-shot, reference words |", "|---|---|---|---|"]
    lines += [f"| {d} | {a} | {c:.3f} | {r:.3f} |" for d, a, c, r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """``python -m mcbench.tiny_clip.evaluate``: the zero-shot table of a tiny CLIP checkpoint."""
    import argparse

    from mcbench.tiny_clip import WEIGHTS, load

    p = argparse.ArgumentParser(prog="python -m mcbench.tiny_clip.evaluate", description=main.__doc__)
    p.add_argument("--weights", default=str(WEIGHTS))
    p.add_argument("--n", type=int, default=EVAL_N, help="images per family")
    p.add_argument("--seed", type=int, default=EVAL_SEED)
    p.add_argument("--difficulty", default="easy")
    p.add_argument("--cache-dir", default=None)
    args = p.parse_args(argv)
    rows = accuracy_table(*load(args.weights), n=args.n, seed=args.seed, difficulty=args.difficulty,
                          cache_dir=args.cache_dir)  # fmt: skip
    print(format_table(rows))


if __name__ == "__main__":
    main()
