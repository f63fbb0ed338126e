"""Reading an image file as an upright 8-bit RGB picture, the same way when a dataset is checked and when its
features are extracted.

* **Orientation.** The EXIF orientation tag is applied (``ImageOps.exif_transpose``): the pixels are upright,
  as a photo viewer shows them.
* **Modes.** Grayscale, palette, CMYK, YCbCr and 1-bit images are converted to RGB by Pillow. 16-bit images
  (``I;16*``, and ``I`` as Pillow reads 16-bit PGM) are *scaled* to 8 bits (``round(v / 257)``), not clipped
  (Pillow's own ``convert`` clips every value above 255 to white). 32-bit float images (``F``) are read as
  0..1 when their maximum is at most 1, else as 0..255 (clipped). Images with transparency (``RGBA``, ``LA``,
  ``PA``, palette or grayscale with a transparent colour) are composited on a white background, as a viewer
  on a white page shows them (a plain ``convert("RGB")`` would expose whatever colour hides under transparent
  pixels).
* **Huge images** (more pixels than Pillow's decompression-bomb threshold, 89,478,485, where ``Image.open``
  warns and, at twice that, refuses) are decoded at reduced size instead of being refused: a JPEG with
  ``Image.draft`` (libjpeg's DCT scaling, 1/2 to 1/8: the full-size picture never exists in memory), any other
  format fully (at most ``MAX_DECODE_PIXELS``, 2**28 pixels, about 0.8 GB as RGB) and then box-reduced. Either
  way the shorter side is kept at ``WORKING_SIDE`` (1024) pixels or more, far above what CLIP's preprocessing
  (224) needs. A file above the bound is reported as unreadable with its size and what to do (downscale it).
  Images at or below the threshold are decoded at full size, bit-exactly as before.

``check_image`` is the dataset build's check: the same decode (a JPEG at 1/8 scale, which still reads every
byte of the file, so truncation and corruption are seen) returning the reason a file cannot be read.
"""

from __future__ import annotations

import math
import os
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Pillow's default decompression-bomb threshold (``Image.MAX_IMAGE_PIXELS``): larger images are "huge".
HUGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3
#: The most pixels mcbench decodes at full size (huge non-JPEG files); beyond it a file is reported unreadable.
MAX_DECODE_PIXELS = 1 << 28
#: A huge image is reduced to this shorter side (or a little more).
WORKING_SIDE = 1024

_OPEN_LOCK = threading.Lock()
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message says why (the caller adds the path)."""


def _open(path: str | os.PathLike) -> Image.Image:
    """``Image.open`` without Pillow's decompression-bomb refusal (the size is bounded by ``_plan`` instead)."""
    with _OPEN_LOCK:  # the limit is a module global of Pillow: change it for this call only
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _plan(im: Image.Image, check: bool) -> int:
    """Set up a reduced decode of ``im`` where needed; return the box-reduction factor to apply after loading."""
    w, h = im.size
    pixels = w * h
    jpeg = im.format in ("JPEG", "MPO")
    if check and jpeg:  # the check decodes every byte at 1/8 scale: as thorough, far cheaper
        im.draft(im.mode, (max(1, w // 8), max(1, h // 8)))
        return 1
    if pixels <= HUGE_PIXELS:
        return 1
    target = WORKING_SIDE / min(w, h)  # scale that keeps the shorter side at WORKING_SIDE
    if jpeg:
        im.draft(im.mode, (math.ceil(w * target), math.ceil(h * target)))
        w, h = im.size
        if w * h > MAX_DECODE_PIXELS:
            raise ImageReadError(_too_large(im.size, pixels))
        return max(1, min(w, h) // WORKING_SIDE)
    if pixels > MAX_DECODE_PIXELS:
        raise ImageReadError(_too_large((w, h), pixels))
    return max(1, min(w, h) // WORKING_SIDE)


def _too_large(size: tuple[int, int], pixels: int) -> str:
    return (
        f"{size[0]}x{size[1]} = {pixels:,} pixels, more than mcbench decodes ({MAX_DECODE_PIXELS:,} pixels; JPEG "
        f"files are decoded at up to 1/8 scale): downscale the file (CLIP sees 224x224 pixels)"
    )


def to_rgb(im: Image.Image) -> Image.Image:
    """An opened-and-loaded image in any Pillow mode as 8-bit RGB (see the module docstring)."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in _SIXTEEN_BIT or mode == "I":
        a = np.asarray(im).astype(np.float64)
        return Image.fromarray(np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)).convert("RGB")
    if mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        scale = 255.0 if a.size and a.max() <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)).convert("RGB")
    if mode in _ALPHA or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _decode(path: str | os.PathLike, check: bool) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with _open(path) as im:
            factor = _plan(im, check)
            im.load()
            upright = ImageOps.exif_transpose(im)  # a loaded copy, rotated when the EXIF tag says so
    if factor > 1:  # box-reduce (Image.reduce works on 8-bit, I and F modes)
        if upright.mode == "1":
            upright = upright.convert("L")
        elif upright.mode == "P" or upright.mode.startswith("I;16"):
            upright = to_rgb(upright)
        upright = upright.reduce(factor)
    return to_rgb(upright)


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """The image at ``path`` as upright 8-bit RGB; raises ``ImageReadError`` (or ``FileNotFoundError``) with the
    reason, not the path (callers name the path and the dataset)."""
    try:
        return _decode(path, check=False)
    except FileNotFoundError:
        raise
    except ImageReadError:
        raise
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, struct.error, ... on bad files
        raise ImageReadError(_reason(path, exc)) from exc


def check_image(path: str | os.PathLike) -> str | None:
    """Why the file cannot be read as an image, or None when it decodes."""
    try:
        _decode(path, check=True)
    except ImageReadError as exc:
        return str(exc)
    except Exception as exc:
        return _reason(path, exc)
    return None


def _reason(path: str | os.PathLike, exc: BaseException) -> str:
    try:
        size = os.path.getsize(path)
    except OSError:
        size = -1
    if size == 0:
        return "empty file (0 bytes)"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, UnidentifiedImageError):
        return f"not an image file Pillow can read ({size:,} bytes whose format is not recognised)"
    text = str(exc).strip() or type(exc).__name__
    if "truncated" in text.lower():
        return f"truncated or incomplete ({text})"
    return f"corrupt or unsupported ({type(exc).__name__}: {text})"
