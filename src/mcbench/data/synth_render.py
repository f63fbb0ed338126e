"""Rendering the synthetic images: a textured background, the family's object placed with the level's nuisance
(or the echoed group of an alignment-hard level), pixel noise; :func:`generate` draws a whole set from a seed.
Image i is drawn from its own random stream, so the same seed gives the same pixels everywhere.
"""

from __future__ import annotations

import math
import zlib
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mcbench.data.base import Aspect
from mcbench.data.synth_families import _CANVAS, FAMILY, FAMILIES, RGB, _Family
from mcbench.data.synth_levels import ECHO, NUISANCE, _STREAM, DIFFICULTIES, Echo, Nuisance


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return yy, xx


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A low-saturation textured background: a gradient, stripes and blotches (float32 H×W×3)."""
    ends = rng.uniform(60, 220, size=(2, 1, 1, 1)) + rng.uniform(-25, 25, size=(2, 1, 1, 3))
    yy, xx = _grid(size)
    a, phase, b = rng.uniform(0, 2 * math.pi, size=3)
    f = rng.uniform(2, 9)
    t = np.clip(0.5 + (xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a), 0, 1)
    stripes = rng.uniform(0, 12) * np.sin(2 * math.pi * f * (xx * math.cos(b) + yy * math.sin(b)) + phase)
    small = rng.integers(0, 256, size=(6, 6), dtype=np.uint8)
    blotch = np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC), dtype=np.float32) - 128
    shade = stripes + blotch * rng.uniform(0.05, 0.15)
    return (ends[0] * (1 - t[..., None]) + ends[1] * t[..., None] + shade[..., None]).astype(np.float32)


def _object_colour(fam: _Family, lab: dict[str, int], nu: Nuisance, rng: np.random.Generator) -> RGB:
    i = fam.colour(lab)
    base = np.array(fam.palette[i], dtype=np.float64)
    if nu.hue_shift > 0:
        neighbour = np.array(fam.palette[(i + rng.choice((-1, 1))) % len(fam.palette)], dtype=np.float64)
        base += rng.uniform(0, nu.hue_shift) * (neighbour - base)
    if nu.desaturate > 0:
        base += rng.uniform(0, nu.desaturate) * (base.mean() - base)
    rgb = base * rng.uniform(0.85, 1.1) + rng.uniform(-15, 15, size=3)
    return tuple(int(v) for v in np.clip(rgb, 0, 255))  # type: ignore[return-value]


def _paste(img: Image.Image, fam: _Family, lab: dict[str, int], scale: float, nu: Nuisance, rng) -> tuple:
    """Draw one object, rotate, scale and paste it at a random place; return its box (x0, y0, x1, y1)."""
    canvas = Image.new("RGBA", (_CANVAS, _CANVAS), (0, 0, 0, 0))
    fam.draw(ImageDraw.Draw(canvas), lab, _object_colour(fam, lab, nu, rng), rng)
    side = max(4, int(round(fam.extent(lab) * scale * img.size[0])))
    return _place(img, canvas, side, min(180.0, fam.rotation * nu.rotation), rng)


def _place(img: Image.Image, canvas: Image.Image, side: int, max_rot: float, rng) -> tuple:
    """Resize a square canvas to ``side``, rotate it and paste it at a random place; return its box."""
    size = img.size[0]
    canvas = canvas.resize((side, side), Image.LANCZOS)  # shrink first: rotating the small image is cheap
    canvas = canvas.rotate(rng.uniform(-max_rot, max_rot), resample=Image.BICUBIC, expand=True)
    side = canvas.size[0]
    half = 0.35 * side
    cx, cy = rng.uniform(min(half, size / 2), max(size - half, size / 2), size=2)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    img.paste(canvas, (x0, y0), canvas)
    return x0, y0, x0 + side, y0 + side


def _clutter(img: Image.Image, count: int, rng: np.random.Generator) -> None:
    d, size = ImageDraw.Draw(img), img.size[0]
    for _ in range(count):
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        x0, y0, x1, y1 = rng.uniform(0, size, size=4)
        if rng.random() < 0.5:
            d.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 3)))
        else:
            r = rng.uniform(1, size / 16)
            d.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=colour)


def _other_labels(fam: _Family, lab: dict[str, int], rng: np.random.Generator) -> dict[str, int]:
    """Labels differing from ``lab`` in every aspect (a distractor of another class)."""
    return {a: int((lab[a] + rng.integers(1, asp.k)) % asp.k) for a, asp in fam.aspects.items()}


def _render(fam: _Family, lab: dict[str, int], size: int, nu: Nuisance, rng: np.random.Generator) -> np.ndarray:
    bg = np.clip(_background(rng, size), 0, 255).astype(np.uint8)
    img = Image.fromarray(bg)
    _clutter(img, nu.clutter, rng)
    for _ in range(int(rng.integers(nu.distractors[0], nu.distractors[1] + 1))):
        _paste(img, fam, _other_labels(fam, lab, rng), rng.uniform(*nu.distractor_scale), nu, rng)
    x0, y0, x1, y1 = _paste(img, fam, lab, rng.uniform(*nu.scale), nu, rng)
    if rng.random() < nu.occlusion:
        w = rng.uniform(*nu.occlusion_size) * (x1 - x0)
        ox, oy = rng.uniform(x0, x1 - w), rng.uniform(y0, y1 - w)
        grey = tuple(int(v) for v in rng.integers(60, 200, size=1).repeat(3))
        ImageDraw.Draw(img).rectangle((ox, oy, ox + w, oy + w), fill=grey)
    if nu.blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, nu.blur) * size / 64))
    out = np.asarray(img, dtype=np.float32)
    if nu.contrast < 1:
        mean = out.mean()
        out = mean + rng.uniform(nu.contrast, 1.0) * (out - mean)
    out += nu.noise * rng.standard_normal(out.shape, dtype=np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _render_echoed(fam: _Family, lab: dict[str, int], size: int, nu: Nuisance, echo: Echo,
                   rng: np.random.Generator) -> np.ndarray:
    """An echo level's image: the object and its echoes (``Echo``) as one group, with mild nuisance."""
    t = {aspect: float(rng.uniform(a, b)) for aspect, a, b in echo.scales}
    img = Image.fromarray(np.clip(_background(rng, size), 0, 255).astype(np.uint8))
    i = fam.colour(lab)
    brightness, tint = rng.uniform(0.85, 1.1), rng.uniform(-15, 15, size=3)
    own, nxt = (tuple(int(v) for v in np.clip(np.array(fam.palette[j % len(fam.palette)]) * brightness + tint, 0, 255))
                for j in (i, i + 1))
    group = fam.echoed(lab, (own, nxt), t, rng)
    side = max(4, int(round(fam.echo_extent(lab) * group.size[0] / _CANVAS * rng.uniform(*nu.scale) * size)))
    _place(img, group, side, fam.echo_rotation, rng)
    out = np.asarray(img, dtype=np.float32) + nu.noise * rng.standard_normal((size, size, 3), dtype=np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _check(family: str, n: int, image_size: int, difficulty: str) -> None:
    if family not in FAMILY:
        raise ValueError(f"Unknown synthetic family '{family}'. Valid families: {', '.join(FAMILIES)}")
    if difficulty not in NUISANCE:
        raise ValueError(f"Unknown difficulty '{difficulty}'. Valid difficulties: {', '.join(DIFFICULTIES)}")
    if n < 1 or image_size < 16:
        raise ValueError(f"need n >= 1 and image_size >= 16 (got n={n}, image_size={image_size})")


def family_aspects(family: str) -> dict[str, Aspect]:
    """The aspects (factors) of a synthetic family, in label order."""
    _check(family, 1, 64, "easy")
    return dict(FAMILY[family].aspects)


def generate(
    family: str, n: int, seed: int, image_size: int = 64, difficulty: str = "easy"
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Aspect]]:
    """Draw ``n`` images of a family: (pixels N×H×W×3 uint8, factor labels per aspect, aspects).

    Labels depend only on (family, n, seed), so the difficulty levels of one seed share their labels.
    Image i is drawn from its own random stream, keyed by (seed, family, level stream, i).
    """
    _check(family, n, image_size, difficulty)
    fam, nu, code = FAMILY[family], NUISANCE[difficulty][family], zlib.crc32(family.encode())
    echo = ECHO[difficulty][family] if difficulty in ECHO else None
    label_rng = np.random.default_rng([seed, code])
    labels = {a: label_rng.permutation(np.resize(np.arange(asp.k), n)) for a, asp in fam.aspects.items()}
    pixels = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    for i in range(n):
        rng = np.random.default_rng([seed, code, _STREAM[difficulty], i])
        lab = {a: int(y[i]) for a, y in labels.items()}
        if echo is None:
            pixels[i] = _render(fam, lab, image_size, nu, rng)
        else:
            pixels[i] = _render_echoed(fam, lab, image_size, nu, echo, rng)
    return pixels, labels, family_aspects(family)

