"""A prompt with one learnable word slot, encoded by the frozen text tower (shared by the proxy methods).

"Fruit with a color of *": the proxy word embedding w_i replaces the ``*`` token and the text tower turns
the prompt into t*_i (Multi-MaP Fig. 2; Multi-Sub Eq. for h(φ(t*) ‖ φ(w_i))). CLIP's causal mask makes the
EOT output independent of the padding after it, so by default the sequence is cut right after EOT instead
of running all 77 (or 32) positions; ``truncate=False`` runs the full context.
"""

from __future__ import annotations

import torch

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
