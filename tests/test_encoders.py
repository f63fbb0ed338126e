import time

import pytest
import torch

from mcbench.data.base import build_dataset
from mcbench.encoders import EncoderUnavailableError, create_encoder
from mcbench.features import cache_path, image_features
from mcbench.prompts import ProxyPrompt


@pytest.fixture(scope="module")
def random_clip():
    return create_encoder("mcbench-tiny-clip", "random", init_seed=3)


def test_vit_b32_openai_offline_fails_fast_with_what_to_download():
    start = time.perf_counter()
    with pytest.raises(EncoderUnavailableError) as err:
        create_encoder("ViT-B-32-quickgelu", "openai")
    assert time.perf_counter() - start < 60
    message = str(err.value)
    assert "encoder.pretrained=" in message and "encoder.download=true" in message
    assert "timm/vit_base_patch32_clip_224.openai" in message


def test_missing_local_checkpoint_is_named(tmp_path):
    with pytest.raises(EncoderUnavailableError, match="not a file"):
        create_encoder("mcbench-tiny-clip", str(tmp_path / "nope.safetensors"))


def test_unknown_open_clip_model():
    with pytest.raises(EncoderUnavailableError, match="Unknown open_clip model"):
        create_encoder("ViT-B-33", "openai")


def test_random_init_is_seeded():
    a = create_encoder("mcbench-tiny-clip", "random", init_seed=1)
    b = create_encoder("mcbench-tiny-clip", "random", init_seed=1)
    assert torch.equal(a.model.token_embedding.weight, b.model.token_embedding.weight)
    assert a.identity == b.identity != create_encoder("mcbench-tiny-clip", "random", init_seed=2).identity


def test_pre_projection_features_reproduce_the_embeddings(random_clip, tmp_path):
    ds = build_dataset("synth_shapes", n=8, seed=0, cache_dir=str(tmp_path))
    emb, pre = random_clip.encode_images([ds.image(i) for i in range(8)], progress=False)
    with torch.no_grad():
        direct = random_clip.model.encode_image(torch.stack([random_clip.preprocess(ds.image(i)) for i in range(8)]))
    torch.testing.assert_close(emb, direct.float(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(random_clip.project_images(pre), emb, rtol=1e-4, atol=1e-5)


def test_truncated_prompt_equals_full_context(random_clip):
    """The causal mask makes the EOT output independent of the padding after it."""
    torch.manual_seed(0)
    proxies = torch.randn(5, random_clip.text_width)
    for official in (False, True):
        short = ProxyPrompt(random_clip, "Card with suits of *", official=official, truncate=True)
        full = ProxyPrompt(random_clip, "Card with suits of *", official=official, truncate=False)
        assert len(short.tokens) < len(full.tokens)
        torch.testing.assert_close(short.encode(proxies), full.encode(proxies), rtol=1e-4, atol=1e-5)


def test_proxy_prompt_with_the_word_embedding_matches_encode_text(random_clip):
    """Filling the slot with a one-token word's embedding gives CLIP's own text embedding of the sentence."""
    prompt = ProxyPrompt(random_clip, "Fruit with a color of *")
    red = random_clip.token_embeddings(["red"])
    expected = random_clip.encode_text(["Fruit with a color of red"], normalize=False)
    torch.testing.assert_close(prompt.encode(red), expected, rtol=1e-4, atol=1e-5)


def test_prompt_needs_exactly_one_slot(random_clip):
    with pytest.raises(ValueError, match="exactly one"):
        ProxyPrompt(random_clip, "Fruit with a color of")


def test_feature_cache_is_reused_and_a_corrupt_file_recomputed(random_clip, tmp_path):
    ds = build_dataset("synth_cards", n=10, seed=0, cache_dir=str(tmp_path))
    first, hit = image_features(random_clip, ds, tmp_path, progress=False)
    assert not hit
    second, hit = image_features(random_clip, ds, tmp_path, progress=False)
    assert hit and torch.equal(first.embeddings, second.embeddings)
    path = cache_path(tmp_path, random_clip, ds)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    third, hit = image_features(random_clip, ds, tmp_path, progress=False)
    assert not hit and torch.equal(first.embeddings, third.embeddings)
    other = create_encoder("mcbench-tiny-clip", "random", init_seed=4)
    assert cache_path(tmp_path, other, ds) != path  # another encoder never reads this file
