"""A prompt with one learnable word slot, encoded by the frozen text tower (shared by the proxy methods).

"Fruit with a color of *": the proxy word embedding w_i replaces the ``*`` token and the text tower turns
the prompt into t*_i (Multi-MaP Fig. 2; Multi-Sub Eq. for h(φ(t*) ‖ φ(w_i))). CLIP's causal mask makes the
EOT output independent of the padding after it, so by default the sequence is cut right after EOT instead
of running all 77 (or 32) positions; ``truncate=False`` runs the full context. The same mask makes the
tokens before ``*`` independent of the proxy: ``PrefixCachedPrompt`` computes their keys and values once
and runs each image only from the slot to EOT (the same t*_i up to float rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mcbench.encoders import ClipEncoder


class ProxyPrompt:
    """Encodes ``prompt`` with a batch of proxy token embeddings at its ``*`` slot."""

    def __init__(self, encoder: ClipEncoder, prompt: str, official: bool = False, truncate: bool = True) -> None:
        if prompt.count("*") != 1:
            raise ValueError(f"the prompt template must contain exactly one '*' (the proxy slot), got {prompt!r}")
        self.encoder = encoder
        self.prompt = prompt
        self.official = official
        tokens = encoder.tokenize([prompt])[0]
        slots = (tokens == encoder.slot_token_id).nonzero().flatten()
        if len(slots) != 1:
            raise ValueError(f"the '*' of {prompt!r} did not tokenize to one slot token")
        self.slot = int(slots[0])
        length = int(tokens.argmax()) + 1 if truncate else len(tokens)
        self.tokens = tokens[:length]
        with torch.no_grad():
            self.embedded = encoder.embed_tokens(self.tokens[None])[0]

    def encode(self, proxies: torch.Tensor) -> torch.Tensor:
        """t*_i for each row of ``proxies`` (B×W token-space vectors); unnormalised, differentiable."""
        b = proxies.shape[0]
        prefix = self.embedded[: self.slot].expand(b, -1, -1)
        suffix = self.embedded[self.slot + 1:].expand(b, -1, -1)
        x = torch.cat([prefix, proxies[:, None, :].to(prefix.dtype), suffix], dim=1)
        return self.encoder.encode_token_sequence(x, self.tokens.expand(b, -1), official=self.official)

    def fill(self, word: str) -> str:
        return self.prompt.replace("*", word)


def _plain_block(block: torch.nn.Module) -> bool:
    """An open_clip ``ResidualAttentionBlock`` with plain batch-first self-attention (what the cache reimplements)."""
    attn = getattr(block, "attn", None)
    return (type(block).__name__ == "ResidualAttentionBlock" and not hasattr(block, "ln_1_kv")
            and isinstance(attn, torch.nn.MultiheadAttention) and attn.batch_first and attn._qkv_same_embed_dim
            and attn.bias_k is None and not attn.add_zero_attn)


class PrefixCachedPrompt(ProxyPrompt):
    """``ProxyPrompt`` that runs the text tower only from the ``*`` slot to EOT (same t*_i up to rounding).

    Under CLIP's causal mask the tokens before the slot ("SOT Card with number of") never see the proxy, so
    their keys and values in every layer are the same for every image: computed once here (a key/value
    cache), they are shared by all images, and each image's pass covers only the slot and the tokens after
    it (2 of 7 for the synthetic prompts). The last layer computes only the EOT row, the one that is pooled.
    Blocks other than open_clip's standard ``ResidualAttentionBlock``, or a model without the causal mask,
    fall back to the full pass (``cached`` is False).
    """

    def __init__(self, encoder: ClipEncoder, prompt: str, official: bool = False) -> None:
        super().__init__(encoder, prompt, official=official, truncate=True)
        m = encoder.model
        self.blocks = list(m.transformer.resblocks)
        self.cached = (m.attn_mask is not None and getattr(m.transformer, "batch_first", False)
                       and all(_plain_block(b) for b in self.blocks))
        if not self.cached:  # without the causal mask the prefix would see the proxy
            return
        length, s = len(self.tokens), self.slot
        self.cast = m.transformer.get_cast_dtype()
        self.positions = None if official else m.positional_embedding[s:length].to(self.cast)
        full_mask = m.attn_mask[:length, :length].to(self.cast)
        self.mask = full_mask[s:]  # rows: the slot and the tokens after it; columns: every key
        self.eot = length - 1 - s  # EOT is the last token of the truncated prompt
        self.prefix_kv: list[tuple[torch.Tensor, torch.Tensor]] = []  # per layer, 1×H×s×d
        with torch.no_grad():
            x = self.embedded[None].to(self.cast)
            if not official:
                x = x + m.positional_embedding[:length].to(self.cast)
            for block in self.blocks:
                _, k, v = self._qkv(block, block.ln_1(x[:, :s]))
                self.prefix_kv.append((k, v))
                x = block(x, attn_mask=full_mask)

    @staticmethod
    def _qkv(block: torch.nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The block's query, key and value projections of ``h`` (B×L×W), split into heads (B×H×L×d)."""
        attn = block.attn
        b, length, width = h.shape
        qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)
        qkv = qkv.view(b, length, 3, attn.num_heads, width // attn.num_heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def encode(self, proxies: torch.Tensor) -> torch.Tensor:
        if not self.cached:
            return super().encode(proxies)
        m, b = self.encoder.model, proxies.shape[0]
        suffix = self.embedded[self.slot + 1:].to(self.cast).expand(b, -1, -1)
        x = torch.cat([proxies[:, None, :].to(self.cast), suffix], dim=1)
        if self.positions is not None:
            x = x + self.positions
        mask = self.mask
        last = len(self.blocks) - 1
        for i, (block, (k_prefix, v_prefix)) in enumerate(zip(self.blocks, self.prefix_kv)):
            q, k, v = self._qkv(block, block.ln_1(x))
            if i == last:  # only the EOT row is pooled: its query, its residual stream
                q, x, mask = q[:, :, self.eot:self.eot + 1], x[:, self.eot:self.eot + 1], mask[self.eot:self.eot + 1]
            k = torch.cat([k_prefix.expand(b, -1, -1, -1), k], dim=2)
            v = torch.cat([v_prefix.expand(b, -1, -1, -1), v], dim=2)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            out = out.transpose(1, 2).reshape(b, x.shape[1], x.shape[2])
            x = x + block.ls_1(block.attn.out_proj(out))
            x = x + block.ls_2(block.mlp(block.ln_2(x)))
        x = x[:, 0]
        if not self.official:
            x = m.ln_final(x)
        proj = m.text_projection
        return (proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj).float()


def proxy_prompt(encoder: ClipEncoder, prompt: str, official: bool = False, truncate: bool = True,
                 prefix_cache: bool = True) -> ProxyPrompt:
    """The prompt encoder a method's switches ask for: ``prefix_cache`` (slot to EOT, prefix keys/values
    computed once) needs ``truncate``; ``truncate=False`` runs the full context (the official code's passes)."""
    if prefix_cache and not truncate:
        raise ValueError("prefix_cache=true runs the prompt only up to its end-of-text token; "
                         "with truncate=false set prefix_cache=false too")
    if prefix_cache:
        return PrefixCachedPrompt(encoder, prompt, official=official)
    return ProxyPrompt(encoder, prompt, official=official, truncate=truncate)


TEMPLATES = ("prompt", "bare")


def word_text_embeddings(encoder: ClipEncoder, prompt: str, words: tuple[str, ...] | list[str],
                         template: str = "prompt") -> torch.Tensor:
    """L2-normalised text embeddings of the reference words: ``prompt`` fills each word into the aspect's
    prompt ("Fruit with a color of red", the papers' description); ``bare`` encodes the word alone (the
    official Multi-MaP code's zero-shot step)."""
    if template not in TEMPLATES:
        raise ValueError(f"template={template!r} is not valid; choose one of: {', '.join(TEMPLATES)}")
    texts = [prompt.replace("*", w) if template == "prompt" else w for w in words]
    return encoder.encode_text(texts, normalize=True)
