"""mcbench's tiny CLIP: the shipped weights load through open_clip and pass the zero-shot gate."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from mcbench.data import synthetic
from mcbench.tiny_clip import MODEL_NAME, WEIGHTS, load, register
from mcbench.tiny_clip.captions import describe, distractor, positives
from mcbench.tiny_clip.evaluate import accuracy_table, format_table
from mcbench.tiny_clip.loss import multi_positive_loss
from mcbench.tiny_clip.train import encode_text, main, to_tensor

GATE = 0.95


@pytest.fixture(scope="module")
def shipped():
    assert WEIGHTS.is_file(), f"missing {WEIGHTS}: run `python -m mcbench.tiny_clip.train --out {WEIGHTS}`"
    return load()


def test_weights_file_is_small_fp16():
    assert WEIGHTS.stat().st_size <= 20 * 1024 * 1024
    with safe_open(str(WEIGHTS), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}


def test_loads_through_open_clip_create_model_and_transforms():
    register()
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL_NAME, pretrained=str(WEIGHTS))
    assert model.visual.image_size == 64 and model.context_length == 32 and model.vocab_size == 49408
    assert next(model.parameters()).dtype == torch.float32
    x = preprocess(synthetic.synth_cards(n=13, seed=0).image(0)).unsqueeze(0)
    assert model.encode_image(x).shape == (1, 128)


def test_zero_shot_gate(shipped, tmp_path):
    """>= 95 % zero-shot accuracy with the aspects' own prompts, on every aspect of every synthetic dataset."""
    rows = accuracy_table(*shipped, n=300, seed=1, cache_dir=tmp_path)
    print("\n" + format_table(rows))
    failing = [(d, a, acc) for d, a, acc, _ in rows if acc < GATE]
    assert not failing, f"below the {GATE:.0%} gate: {failing}"


def test_training_preprocessing_matches_open_clip(shipped):
    _, preprocess, _ = shipped
    pixels = synthetic.generate("fruit", 4, 0)[0]
    expected = torch.stack([preprocess(Image.fromarray(p)) for p in pixels])
    torch.testing.assert_close(to_tensor(pixels), expected, rtol=0, atol=1e-6)


def test_truncated_text_encoder_equals_open_clip(shipped):
    model, _, tokenizer = shipped
    tokens = tokenizer(["Card with suits of hearts", "a photo of the queen of spades", "apples"])
    with torch.no_grad():
        torch.testing.assert_close(encode_text(model, tokens), model.encode_text(tokens, normalize=True))


def test_captions_assert_their_factors():
    aspects = synthetic.family_aspects("cards")
    rng = np.random.default_rng(0)
    families = np.array(["cards", "cards", "fruit"])
    labels = {"cards": {"number": np.array([11, 11, -1]), "suits": np.array([0, 3, -1])},
              "fruit": {"color": np.array([-1, -1, 0]), "species": np.array([-1, -1, 0])}}  # fmt: skip
    caps = [describe("cards", aspects, {"number": 11, "suits": 0}, rng, p_prompt=0.0) for _ in range(40)]
    caps.append(distractor("cards", aspects, rng))
    mask = positives(caps, families, labels)
    assert mask[0, :-1].all(), "the queen of hearts satisfies each of its captions"
    assert not mask[2].any() and not mask[:, -1].any()
    red_only = [i for i, c in enumerate(caps) if c.text in ("a red card", "the queen of hearts")]
    assert red_only and not mask[1, red_only].any()
    assert caps[-1].text.split(" of ")[-1] not in aspects["suits"].classes + aspects["number"].classes


def test_multi_positive_loss_reduces_to_clip_loss():
    torch.manual_seed(0)
    img, txt = torch.nn.functional.normalize(torch.randn(2, 8, 16), dim=-1)
    scale = torch.tensor(10.0)
    logits = scale * img @ txt.T
    target = torch.arange(8)
    clip = (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
    torch.testing.assert_close(multi_positive_loss(img, txt, torch.eye(8, dtype=torch.bool), scale), clip)


def test_train_command_smoke(tmp_path):
    out, threads = tmp_path / "tiny.safetensors", torch.get_num_threads()
    main(["--out", str(out), "--steps", "2", "--batch-size", "12", "--images-per-family", "12", "--distractors", "4",
          "--threads", "1", "--eval-n", "13", "--cache-dir", str(tmp_path)])  # fmt: skip
    torch.set_num_threads(threads)
    model, _, _ = load(out)
    assert model.encode_text(open_clip.get_tokenizer(MODEL_NAME)(["a red star"])).shape == (1, 128)
