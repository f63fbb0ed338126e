"""Frozen CLIP encoders through open_clip's one door (``create_model_and_transforms``).

Our tiny CLIP is one more open_clip model config (``model_configs/mcbench-tiny-clip.json``) plus one
weight file shipped in the package (``pretrained=mcbench``); the papers' ViT-B/32 is
``ViT-B-32-quickgelu`` + ``openai``. ``pretrained`` may also be a local checkpoint path, or ``random``
(seeded re-initialisation, for the sanity suite).
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import open_clip
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from mcbench.hashing import file_sha256
from mcbench.registry import Registry

PACKAGE_DIR = Path(__file__).parent
MODEL_CONFIG_DIR = PACKAGE_DIR / "model_configs"
PRETRAINED_DIR = PACKAGE_DIR / "pretrained"
open_clip.add_model_config(MODEL_CONFIG_DIR)


class EncoderUnavailableError(RuntimeError):
    """The encoder's weights cannot be loaded here; the message says what to download and where to point."""


@dataclass(frozen=True)
class EncoderSpec:
    """A named (open_clip model, pretrained weights) pair, as ``conf/encoder/<name>.yaml`` selects it."""

    model: str
    pretrained: str
    description: str = ""


ENCODERS: Registry[EncoderSpec] = Registry("encoder")
ENCODERS.register("tiny_clip")(EncoderSpec("mcbench-tiny-clip", "mcbench", "mcbench's own tiny CLIP (shipped)"))
ENCODERS.register("tiny_clip_random")(
    EncoderSpec("mcbench-tiny-clip", "random", "the tiny CLIP architecture with random weights (sanity suite)")
)
ENCODERS.register("vit_b32_openai")(
    EncoderSpec("ViT-B-32-quickgelu", "openai", "OpenAI CLIP ViT-B/32, the papers' backbone")
)


def _resolve_weights(model: str, pretrained: str) -> tuple[str | None, str]:
    """Return (what to hand open_clip, an identity string for caches and result rows)."""
    if pretrained == "random":
        return None, "random"
    if pretrained == "mcbench":
        path = PRETRAINED_DIR / f"{model}.safetensors"
        if not path.is_file():
            raise EncoderUnavailableError(
                f"No packaged weights for '{model}' at {path}. Train them with "
                f"`python -m mcbench.tiny_clip.train --out {path}` (see docs/tiny_clip.md)."
            )
        return str(path), f"sha256:{file_sha256(path)[:16]}"
    path = Path(os.path.expanduser(pretrained))
    if path.suffix in {".safetensors", ".pt", ".pth", ".bin"} or path.exists():
        if not path.is_file():
            raise EncoderUnavailableError(
                f"encoder.pretrained points at '{path}', which is not a file. Give the path of a local "
                f"open_clip checkpoint (.safetensors/.bin/.pt) or a pretrained tag."
            )
        return str(path), f"sha256:{file_sha256(path)[:16]}"
    return pretrained, pretrained


def create_encoder(
    model: str, pretrained: str, device: str | torch.device = "cpu", download: bool = False, init_seed: int = 0
) -> "ClipEncoder":
    """Build a frozen encoder. Pretrained tags load from the local hub cache unless ``download`` is set."""
    if model not in open_clip.list_models():
        close = [m for m in open_clip.list_models() if model.lower() in m.lower()][:5]
        raise EncoderUnavailableError(
            f"Unknown open_clip model '{model}'." + (f" Close: {', '.join(close)}." if close else "")
        )
    weights, identity = _resolve_weights(model, pretrained)
    with _hub_offline(not download), _seeded(init_seed):
        try:
            clip, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=weights, device="cpu")
        except Exception as exc:  # open_clip/huggingface_hub raise many types for a missing download
            raise EncoderUnavailableError(_download_help(model, pretrained, exc)) from exc
    if weights is None:
        identity = f"random-seed{init_seed}"
    return ClipEncoder(clip, preprocess, _tokenizer(model), model, pretrained, identity, device)


@functools.lru_cache(maxsize=None)
def _tokenizer(model: str) -> Any:
    """open_clip's tokenizer of ``model``, built once per process (building the BPE tables takes ~0.1 s; the
    tokenizer holds no state that a run could change: a sanity or tuning sweep builds many encoders)."""
    return open_clip.get_tokenizer(model)


def _download_help(model: str, pretrained: str, exc: Exception) -> str:
    return (
        f"Cannot load pretrained weights '{pretrained}' for open_clip model '{model}' "
        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}). "
        f"This machine has no copy and mcbench does not download unless told to. Either run once with "
        f"`encoder.download=true` on a machine with internet (open_clip stores the file in the Hugging Face cache, "
        f"~/.cache/huggingface/hub), or download the checkpoint yourself (for ViT-B-32 + openai: the hub repo "
        f"timm/vit_base_patch32_clip_224.openai, file open_clip_pytorch_model.bin) and point "
        f"`encoder.pretrained=/path/to/open_clip_pytorch_model.bin` at it."
    )


@contextlib.contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    old = {k: os.environ.get(k) for k in keys}
    if offline:
        for k in keys:
            os.environ[k] = "1"
    # huggingface_hub reads HF_HUB_OFFLINE once, at import (open_clip imports it): set its constant too, or a
    # missing checkpoint is looked up online with retries (~50 s) instead of failing at once
    try:
        from huggingface_hub import constants as hub_constants
    except ImportError:  # no hub library: nothing to switch
        hub_constants = None
    old_constant = getattr(hub_constants, "HF_HUB_OFFLINE", None)
    if offline and hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if hub_constants is not None:
            hub_constants.HF_HUB_OFFLINE = old_constant
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


class ClipEncoder:
    """A frozen open_clip model with the pieces the proxy methods need.

    Image side: embeddings and the input of the last projection (cached once per dataset).
    Text side: plain ``encode_text``, token embeddings of words, and ``encode_token_sequence`` that runs
    the text tower on already-embedded tokens (the door for learnable proxy words).
    """

    def __init__(self, model: nn.Module, preprocess: Any, tokenizer: Any, name: str, pretrained: str,
                 identity: str, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.pretrained = pretrained
        self.identity = f"{name}/{identity}"
        if getattr(self.model, "text_pool_type", "argmax") != "argmax":
            raise NotImplementedError(f"{name}: only EOT (argmax) text pooling is supported by the proxy prompts")
        self.embed_dim = int(self.model.text_projection.shape[-1])
        self.text_width = int(self.model.token_embedding.weight.shape[1])
        self._proj_weight, self._proj_bias = self._projection_parameters()
        self.image_width = int(self._proj_weight.shape[1])

    # ---------------------------------------------------------------- image side
    def _projection_parameters(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        visual = self.model.visual
        if getattr(visual, "proj", None) is not None and isinstance(visual.proj, torch.Tensor):
            return visual.proj.detach().T.clone(), None  # ViT: pooled @ proj
        if hasattr(visual, "attnpool"):
            c_proj = visual.attnpool.c_proj  # ModifiedResNet: out-projection of the attention pool
            return c_proj.weight.detach().clone(), c_proj.bias.detach().clone()
        raise NotImplementedError(f"cannot locate the last image projection of {type(visual).__name__}")

    def projection_parameters(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weight D×W, bias or None) of the image tower's last projection: emb = pre @ weight.T + bias."""
        bias = None if self._proj_bias is None else self._proj_bias.clone()
        return self._proj_weight.clone(), bias

    @contextlib.contextmanager
    def pre_projection_mode(self) -> Iterator[None]:
        """Inside it, ``model.encode_image`` returns the pre-projection features h (N×W) instead of the embedding:
        the tower's last projection is set aside (ViT: ``visual.proj``; ResNet: ``attnpool.c_proj`` made the
        identity), then restored. ``project_images`` applies it afterwards."""
        visual = self.model.visual
        if self._proj_bias is None:
            proj = visual.proj
            visual.proj = None
            try:
                yield
            finally:
                visual.proj = proj
        else:
            c_proj = visual.attnpool.c_proj
            identity = nn.Linear(c_proj.in_features, c_proj.in_features).to(c_proj.weight.device)
            with torch.no_grad():
                identity.weight.copy_(torch.eye(c_proj.in_features))
                identity.bias.zero_()
            visual.attnpool.c_proj = identity
            try:
                yield
            finally:
                visual.attnpool.c_proj = c_proj

    @torch.no_grad()
    def encode_images(self, images: Any, batch_size: int = 64, progress: bool = True,
                      num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings N×D unnormalised, pre-projection N×W) for a sequence of PIL images.

        On CUDA: autocast (fp16) and pinned memory; a batch that runs out of GPU memory is halved and
        retried (the final size is kept in ``self.last_batch_size``). Preprocessing runs in ``num_workers``
        DataLoader workers when asked (images read from disk).
        """
        cuda = self.device.type == "cuda"
        loader = torch.utils.data.DataLoader(
            _Preprocessed(images, self.preprocess), batch_size=batch_size, num_workers=num_workers,
            pin_memory=cuda, shuffle=False,
        )
        embs, pres = [], []
        bar = tqdm(total=len(images), desc=f"encoding images ({self.name})", disable=not progress, leave=False)
        size = batch_size
        for batch in loader:
            start = 0
            while start < len(batch):
                chunk = batch[start:start + size].to(self.device, non_blocking=cuda)
                try:
                    with torch.autocast("cuda", dtype=torch.float16, enabled=cuda), self.pre_projection_mode():
                        pre = self.model.encode_image(chunk).float()
                except torch.cuda.OutOfMemoryError:
                    if size == 1:
                        raise
                    size = max(1, size // 2)
                    torch.cuda.empty_cache()
                    continue
                pres.append(pre.cpu())
                embs.append(self.project_images(pre).cpu())
                start += len(chunk)
                bar.update(len(chunk))
        bar.close()
        self.last_batch_size = size
        return torch.cat(embs), torch.cat(pres)

    def project_images(self, pre: torch.Tensor, weight: torch.Tensor | None = None,
                       bias: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the (frozen, or a given trainable copy of the) last image projection."""
        w = self._proj_weight.to(pre.device) if weight is None else weight
        b = (None if self._proj_bias is None else self._proj_bias.to(pre.device)) if weight is None else bias
        return F.linear(pre, w, b)

    # ---------------------------------------------------------------- text side
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(texts).to(self.device)

    @torch.no_grad()
    def encode_text(self, texts: list[str], normalize: bool = True, batch_size: int = 256) -> torch.Tensor:
        out = [self.model.encode_text(self.tokenize(texts[i:i + batch_size])).float()
               for i in range(0, len(texts), batch_size)]
        x = torch.cat(out) if out else torch.zeros(0, self.embed_dim, device=self.device)
        return F.normalize(x, dim=-1) if normalize else x

    @property
    def slot_token_id(self) -> int:
        """The BPE id of the proxy placeholder ``*``."""
        return int(self.tokenize(["*"])[0, 1])

    def token_embeddings(self, words: list[str]) -> torch.Tensor:
        """Mean input-token embedding of each word's BPE pieces (Multi-MaP's ``reference_word_embedding``)."""
        tokens = self.tokenize(words)
        emb = self.model.token_embedding(tokens).float()
        eot = tokens.argmax(dim=-1)
        return torch.stack([emb[i, 1:eot[i]].mean(0) for i in range(len(words))]).detach()

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.token_embedding(tokens).float()

    def encode_token_sequence(self, x: torch.Tensor, tokens: torch.Tensor, official: bool = False) -> torch.Tensor:
        """Run the text tower on embedded tokens ``x`` (B×L×W, L ≤ context) pooled at EOT; differentiable.

        ``official=True`` reproduces the released Multi-MaP/Multi-Sub ``encode_text_with_learnt_tokens``,
        which leaves out the positional embedding and the final LayerNorm (research notes §1.2).
        """
        m = self.model
        length = x.shape[1]
        cast = m.transformer.get_cast_dtype()
        x = x.to(cast)
        if not official:
            x = x + m.positional_embedding[:length].to(cast)
        mask = m.attn_mask[:length, :length] if m.attn_mask is not None else None
        x = m.transformer(x, attn_mask=mask)
        if not official:
            x = m.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        proj = m.text_projection
        x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
        return x.float()


class _Preprocessed(torch.utils.data.Dataset):
    """Applies the encoder's preprocessing to each image (in DataLoader workers when asked)."""

    def __init__(self, images: Any, preprocess: Any) -> None:
        self.images = images
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(self.images[i])
