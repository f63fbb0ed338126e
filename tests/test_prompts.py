"""The shared proxy-prompt encoders: the prefix-cached pass is the full pass, computed in less work."""

import pytest
import torch

from mcbench.encoders import create_encoder
from mcbench.prompts import PrefixCachedPrompt, ProxyPrompt, proxy_prompt


@pytest.fixture(scope="module")
def random_clip():
    return create_encoder("mcbench-tiny-clip", "random", init_seed=5)


@pytest.mark.parametrize("official", [False, True])
@pytest.mark.parametrize("template", ["Card with suits of *", "Fruit with a * of color", "*"])
def test_prefix_cached_prompt_equals_the_full_context_pass_values_and_gradients(random_clip, official, template):
    """Slot at the end, in the middle, or alone: the same t*_i and the same gradient as all positions run."""
    w = (torch.randn(6, random_clip.text_width, generator=torch.Generator().manual_seed(0)) * 0.02).requires_grad_(True)
    cached = PrefixCachedPrompt(random_clip, template, official=official)
    assert cached.cached
    full = ProxyPrompt(random_clip, template, official=official, truncate=False).encode(w)
    got = cached.encode(w)
    torch.testing.assert_close(got, full, rtol=0, atol=1e-5 * float(full.detach().abs().max()))
    (g_full,) = torch.autograd.grad(full.sum(), w)
    (g_got,) = torch.autograd.grad(got.sum(), w)
    torch.testing.assert_close(g_got, g_full, rtol=0, atol=1e-5 * float(g_full.abs().max()))


def test_proxy_prompt_picks_the_encoder_the_switches_ask_for(random_clip):
    assert isinstance(proxy_prompt(random_clip, "Card with suits of *"), PrefixCachedPrompt)
    plain = proxy_prompt(random_clip, "Card with suits of *", truncate=False, prefix_cache=False)
    assert type(plain) is ProxyPrompt and len(plain.tokens) == random_clip.model.context_length
    with pytest.raises(ValueError, match="prefix_cache=true .* truncate=false"):
        proxy_prompt(random_clip, "Card with suits of *", truncate=False)
