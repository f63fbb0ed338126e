"""Synthetic multi-view image datasets drawn with numpy/PIL: ``synth_shapes``, ``synth_cards``, ``synth_fruit``.

Every image shows one object whose factors (the aspects) are sampled independently and balanced; nuisance
variation (position, rotation, scale, background texture, pixel noise) keeps clustering from being trivial.
The ``difficulty`` levels (docs/difficulty.md), calibrated per family against the shipped tiny CLIP:

* ``easy`` — the images the tiny CLIP was trained on (never change);
* ``medium``, ``hard`` — alignment-hard: beside the true object stand "echoes" of the NEXT class of each aspect
  (fixed ring order) at a level-specific relative scale, so the classes stay apart in image space while the
  class names point elsewhere (a linear probe on the image embeddings stays >= 0.95, zero-shot drops);
* ``noisy_medium``, ``noisy_hard`` — the earlier noise-based levels (distractors, hue shifts toward a
  neighbouring class, fading, occlusion, blur, low contrast, clutter), which erase the aspect from the images
  as much as they confuse CLIP: the low-ceiling regime.

Generation is deterministic from ``seed``; datasets are cached on disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
import zlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mcbench.atomic import atomic_path
from mcbench.data.base import DATASETS, Aspect, MultiViewDataset

#: Bump when the drawings change: it is part of the cache key.
GENERATOR_VERSION = 2
FAMILIES = ("shapes", "cards", "fruit")
DIFFICULTIES = ("easy", "medium", "hard", "noisy_medium", "noisy_hard")

_CANVAS = 128  # objects are drawn on a square RGBA canvas of this side, then rotated and resized
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class _Nuisance:
    """How much a difficulty level perturbs an image (every default leaves the image as "easy" draws it)."""

    rotation: float = 1.0  # multiplier of the family's base rotation range
    scale: tuple[float, float] = (0.9, 1.1)  # object scale jitter
    noise: float = 4.0  # std of the Gaussian pixel noise (0-255 scale)
    hue_shift: float = 0.0  # max fraction of the way toward a neighbouring class colour
    distractors: tuple[int, int] = (0, 0)  # min, max number of objects of another class
    distractor_scale: tuple[float, float] = (0.5, 0.7)  # their scale
    occlusion: float = 0.0  # probability of an occluding patch over the object
    occlusion_size: tuple[float, float] = (0.2, 0.4)  # its side, as a fraction of the object's box
    blur: float = 0.0  # max Gaussian blur radius (pixels at 64 px)
    contrast: float = 1.0  # min contrast factor (1 = unchanged)
    clutter: int = 0  # saturated strokes drawn over the background
    desaturate: float = 0.0  # max fraction of the object's colour washed toward grey (faded light)


@dataclass(frozen=True)
class _Echo:
    """An alignment-hard level: echoes of the NEXT class (fixed ring order) drawn beside the true object.

    ``scales`` holds (aspect, a, b): per image, the echo of that aspect is drawn at t ~ U(a, b) times the true
    object's size (t > 1: the echo is the larger). The rule is the same for every class, so class c always
    comes with echoes of class c + 1: the classes stay apart in the images (a linear probe on the embeddings
    separates them) while zero-shot CLIP, reading the most prominent cue, is pulled toward the next class.
    """

    scales: tuple[tuple[str, float, float], ...]


@dataclass(frozen=True)
class _Family:
    """One generator: its aspects and how to draw an object from its factor labels."""

    aspects: dict[str, Aspect]
    palette: tuple[RGB, ...]  # object colours in ring order (neighbours for the hue shift)
    rotation: float  # max rotation in degrees at "easy"
    colour: Callable[[dict[str, int]], int]  # palette index of an object
    extent: Callable[[dict[str, int]], float]  # canvas side as a fraction of the image side
    draw: Callable[[ImageDraw.ImageDraw, dict[str, int], RGB, np.random.Generator], None]
    # the echo levels: the square RGBA group (object and echoes, any side; the true object drawn on the usual
    # canvas side) from the labels, (own colour, next class's colour), echo scales and the random stream
    echoed: Callable[[dict[str, int], tuple[RGB, RGB], dict[str, float], np.random.Generator], Image.Image]
    echo_rotation: float  # max rotation of the whole group, degrees
    echo_extent: Callable[[dict[str, int]], float]  # the true object's canvas side / image side in a group


# ----------------------------------------------------------------------------------------------- shapes


def _regular_polygon(cx: float, cy: float, r: float, k: int, phase: float = -90.0) -> list[tuple[float, float]]:
    return [
        (cx + r * math.cos(math.radians(phase + 360.0 * i / k)), cy + r * math.sin(math.radians(phase + 360.0 * i / k)))
        for i in range(k)
    ]


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    outer, inner = _regular_polygon(cx, cy, r, 5), _regular_polygon(cx, cy, 0.45 * r, 5, phase=-54.0)
    return [p for pair in zip(outer, inner) for p in pair]


def _shade(rgb: RGB, f: float) -> RGB:
    """Darker (f < 1) or lighter (f > 1) version of a colour."""
    if f <= 1:
        return tuple(int(c * f) for c in rgb)  # type: ignore[return-value]
    return tuple(int(c + (255 - c) * (f - 1)) for c in rgb)  # type: ignore[return-value]


def _draw_shape(d: ImageDraw.ImageDraw, lab: dict[str, int], rgb: RGB, rng: np.random.Generator) -> None:
    c, r, line = _CANVAS / 2, 0.44 * _CANVAS, _shade(rgb, 0.6)
    shape = ("circle", "square", "triangle", "star")[lab["shape"]]
    if shape == "circle":
        d.ellipse((c - 0.9 * r, c - 0.9 * r, c + 0.9 * r, c + 0.9 * r), fill=rgb, outline=line, width=4)
        return
    points = {
        "square": _regular_polygon(c, c, 1.1 * r, 4, phase=45.0),
        "triangle": _regular_polygon(c, c + 0.15 * r, 1.1 * r, 3),
        "star": _star(c, c, 1.1 * r),
    }[shape]
    d.polygon(points, fill=rgb, outline=line, width=4)


def _canvas() -> Image.Image:
    return Image.new("RGBA", (_CANVAS, _CANVAS), (0, 0, 0, 0))


def _row(left: tuple[Image.Image, float] | None, own: Image.Image,
         right: tuple[Image.Image, float] | None) -> Image.Image:
    """A square group with ``own`` at the centre and echoes (canvas, scale) centred one cell to its left/right.

    Cells are 1.05 canvas sides apart whatever the scales, so a large echo reaches toward (and behind) the
    object; the object is pasted last, on top. The group is centred on the object.
    """
    cell = int(round(1.05 * _CANVAS))
    big = max([1.0] + [e[1] for e in (left, right) if e is not None])
    side = 2 * cell + int(math.ceil(big * _CANVAS)) + 4
    out = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    centre = side // 2
    for echo, dx in ((left, -cell), (right, cell)):
        if echo is not None:
            canvas, scale = echo
            s = max(4, int(round(_CANVAS * scale)))
            out.alpha_composite(canvas.resize((s, s), Image.LANCZOS), (centre + dx - s // 2, centre - s // 2))
    out.alpha_composite(own, (centre - _CANVAS // 2, centre - _CANVAS // 2))
    return out


def _shapes_echoed(lab: dict[str, int], colours: tuple[RGB, RGB], t: dict[str, float],
                   rng: np.random.Generator) -> Image.Image:
    """The object at the centre; right: the NEXT shape in the object's colour (``shape`` echo); left: the
    object's shape in the NEXT colour (``color`` echo). Each piece turns on its own (shapes' full 180 degrees)."""

    def piece(labels: dict[str, int], rgb: RGB) -> Image.Image:
        canvas = _canvas()
        _draw_shape(ImageDraw.Draw(canvas), labels, rgb, rng)
        return canvas.rotate(rng.uniform(-180, 180), resample=Image.BICUBIC)

    own = piece(lab, colours[0])
    right = (piece(dict(lab, shape=(lab["shape"] + 1) % 4), colours[0]), t["shape"]) if "shape" in t else None
    left = (piece(lab, colours[1]), t["color"]) if "color" in t else None
    return _row(left, own, right)


_SHAPES = _Family(
    aspects={
        "color": Aspect(
            "color",
            ("red", "yellow", "green", "blue"),
            "Object with a color of *",
            ("red", "yellow", "green", "blue", "orange", "purple", "pink", "brown"),
        ),
        "shape": Aspect(
            "shape",
            ("circle", "square", "triangle", "star"),
            "Object with a shape of *",
            ("circle", "square", "triangle", "star", "hexagon", "heart", "cross", "pentagon", "oval", "diamond"),
        ),
        "size": Aspect(
            "size", ("small", "large"), "Object with a size of *", ("small", "large", "medium", "tiny", "huge")
        ),
    },
    palette=((205, 35, 35), (235, 205, 40), (40, 160, 60), (40, 80, 210)),
    rotation=180.0,
    colour=lambda lab: lab["color"],
    extent=lambda lab: (0.34, 0.68)[lab["size"]],
    draw=_draw_shape,
    echoed=_shapes_echoed,
    echo_rotation=0.0,  # the pieces turn one by one; the row stays level
    echo_extent=lambda lab: (0.34, 0.68)[lab["size"]],  # the object keeps its size; large groups are cropped
)

# ------------------------------------------------------------------------------------------------ cards

_RANK_GLYPHS = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
_SUITS = ("hearts", "diamonds", "clubs", "spades")


@lru_cache(maxsize=None)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled TrueType font: works offline


def _draw_suit(d: ImageDraw.ImageDraw, suit: str, cx: float, cy: float, r: float, ink: RGB) -> None:
    """A suit symbol of half-height ``r`` centred at (cx, cy), from circles and polygons."""

    def disc(x: float, y: float, rad: float) -> None:
        d.ellipse((x - rad, y - rad, x + rad, y + rad), fill=ink)

    if suit == "diamonds":
        d.polygon([(cx, cy - r), (cx + 0.7 * r, cy), (cx, cy + r), (cx - 0.7 * r, cy)], fill=ink)
    elif suit == "hearts":
        disc(cx - 0.48 * r, cy - 0.35 * r, 0.52 * r)
        disc(cx + 0.48 * r, cy - 0.35 * r, 0.52 * r)
        d.polygon([(cx - 0.98 * r, cy - 0.2 * r), (cx + 0.98 * r, cy - 0.2 * r), (cx, cy + r)], fill=ink)
    elif suit == "spades":
        disc(cx - 0.48 * r, cy + 0.2 * r, 0.5 * r)
        disc(cx + 0.48 * r, cy + 0.2 * r, 0.5 * r)
        d.polygon([(cx - 0.97 * r, cy + 0.1 * r), (cx + 0.97 * r, cy + 0.1 * r), (cx, cy - r)], fill=ink)
        d.polygon([(cx, cy + 0.2 * r), (cx - 0.35 * r, cy + r), (cx + 0.35 * r, cy + r)], fill=ink)
    else:  # clubs
        disc(cx, cy - 0.45 * r, 0.42 * r)
        disc(cx - 0.48 * r, cy + 0.12 * r, 0.42 * r)
        disc(cx + 0.48 * r, cy + 0.12 * r, 0.42 * r)
        d.polygon([(cx, cy), (cx - 0.35 * r, cy + r), (cx + 0.35 * r, cy + r)], fill=ink)


def _draw_card(d: ImageDraw.ImageDraw, lab: dict[str, int], rgb: RGB, rng: np.random.Generator) -> None:
    face = tuple(int(v) for v in rng.integers(225, 256, size=3))
    d.rounded_rectangle((26, 8, 102, 120), radius=8, fill=face, outline=(90, 90, 90), width=2)
    glyph = _RANK_GLYPHS[lab["number"]]
    font = _font(46 if len(glyph) == 1 else 40)
    d.text((64, 38), glyph, fill=rgb, font=font, anchor="mm")
    _draw_suit(d, _SUITS[lab["suits"]], 64, 88, 22, rgb)


_CARD_INK = ((200, 20, 30), (20, 20, 20))  # the palette: hearts and diamonds red, clubs and spades black


def _cards_echoed(lab: dict[str, int], colours: tuple[RGB, RGB], t: dict[str, float],
                  rng: np.random.Generator) -> Image.Image:
    """A wider card: the true rank and suit on the left; on the right the NEXT rank (``number`` echo) and the
    NEXT suit (``suits`` echo, in that suit's ink), each at its own scale."""
    canvas = _canvas()
    d = ImageDraw.Draw(canvas)
    face = tuple(int(v) for v in rng.integers(225, 256, size=3))
    d.rounded_rectangle((6, 12, 122, 116), radius=8, fill=face, outline=(90, 90, 90), width=2)
    rank, suit = lab["number"], lab["suits"]
    echo_ink = _jitter_like(_CARD_INK[0 if (suit + 1) % 4 < 2 else 1], _CARD_INK[0 if suit < 2 else 1], colours[0])
    sides = ((36, rank, suit, 1.0, 1.0, colours[0]),
             (92, (rank + 1) % 13, (suit + 1) % 4, t.get("number", 1.0), t.get("suits", 1.0), echo_ink))
    for x, r, s, rank_scale, suit_scale, ink in sides:
        glyph = _RANK_GLYPHS[r]
        d.text((x, 40), glyph, fill=ink, font=_font(int(round((46 if len(glyph) == 1 else 40) * rank_scale))),
               anchor="mm")
        _draw_suit(d, _SUITS[s], x, 88, 18 * suit_scale, ink)
    return canvas


def _jitter_like(target: RGB, base: RGB, jittered: RGB) -> RGB:
    """``target`` with the per-image brightness/tint offset that turned ``base`` into ``jittered``."""
    return tuple(int(np.clip(v + (j - b), 0, 255)) for v, b, j in zip(target, base, jittered))  # type: ignore


_CARDS = _Family(
    aspects={
        "number": Aspect(
            "number",
            ("ace", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "jack", "queen", "king"),
            "Card with number of *",
            (
                "ace", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "jack", "queen",
                "king", "joker", "one", "zero", "eleven",
            ),  # fmt: skip
        ),
        "suits": Aspect(
            "suits",
            _SUITS,
            "Card with suits of *",
            _SUITS + ("stars", "coins", "cups", "swords"),
        ),
    },
    palette=((200, 20, 30), (20, 20, 20)),
    rotation=15.0,
    colour=lambda lab: 0 if lab["suits"] < 2 else 1,
    extent=lambda lab: 0.8,
    draw=_draw_card,
    echoed=_cards_echoed,
    echo_rotation=15.0,
    echo_extent=lambda lab: 1.0,  # the wider card fills the image (its glyphs stay legible)
)

# ------------------------------------------------------------------------------------------------ fruit


def _draw_fruit(d: ImageDraw.ImageDraw, lab: dict[str, int], rgb: RGB, rng: np.random.Generator) -> None:
    species = ("apples", "bananas", "grapes", "pears")[lab["species"]]
    line, light, stem = _shade(rgb, 0.6), _shade(rgb, 1.45), (100, 65, 30)
    if species == "apples":
        d.line((64, 34, 70, 10), fill=stem, width=6)
        d.ellipse((18, 30, 76, 112), fill=rgb, outline=line, width=3)
        d.ellipse((52, 30, 110, 112), fill=rgb, outline=line, width=3)
        d.ellipse((30, 38, 98, 110), fill=rgb)
        d.ellipse((36, 52, 50, 70), fill=light)
    elif species == "pears":
        d.line((64, 24, 68, 4), fill=stem, width=6)
        d.ellipse((44, 20, 84, 60), fill=rgb, outline=line, width=3)
        d.ellipse((28, 54, 100, 122), fill=rgb, outline=line, width=3)
        d.polygon([(46, 44), (82, 44), (96, 80), (32, 80)], fill=rgb)
        d.ellipse((40, 70, 54, 90), fill=light)
    elif species == "grapes":
        d.line((64, 24, 58, 4), fill=stem, width=6)
        rows = ((30, (28, 52, 76, 100)), (52, (40, 64, 88)), (74, (28, 52, 76, 100)), (96, (52, 76)), (116, (64,)))
        for y, xs in rows:
            for x in xs:
                jx, jy = rng.uniform(-3, 3, size=2)
                d.ellipse((x + jx - 13, y + jy - 13, x + jx + 13, y + jy + 13), fill=rgb, outline=line, width=3)
    else:  # bananas: a crescent around a circular centre line, thick in the middle, pointed at the tips
        angles = np.linspace(math.radians(25), math.radians(155), 24)
        width = 2 + 16 * np.sin(np.linspace(0, math.pi, 24)) ** 0.7
        cx, cy, rad = 64.0, 22.0, 64.0
        outer = [(cx + (rad + w) * math.cos(a), cy + (rad + w) * math.sin(a)) for a, w in zip(angles, width)]
        inner = [(cx + (rad - w) * math.cos(a), cy + (rad - w) * math.sin(a)) for a, w in zip(angles, width)]
        d.polygon(outer + inner[::-1], fill=rgb, outline=line, width=3)
        for a in (angles[0], angles[-1]):
            x, y = cx + rad * math.cos(a), cy + rad * math.sin(a)
            d.ellipse((x - 4, y - 4, x + 4, y + 4), fill=stem)


def _fruit_echoed(lab: dict[str, int], colours: tuple[RGB, RGB], t: dict[str, float],
                  rng: np.random.Generator) -> Image.Image:
    """The fruit with, beside it on the right, the NEXT species in the NEXT colour (the ``species`` echo: one
    object of the next class in both aspects, so the colour is pulled along with the species)."""
    own = _canvas()
    _draw_fruit(ImageDraw.Draw(own), lab, colours[0], rng)
    echo = _canvas()
    _draw_fruit(ImageDraw.Draw(echo), dict(lab, species=(lab["species"] + 1) % 4), colours[1], rng)
    scale = t["species"]
    side = max(4, int(round(_CANVAS * scale)))
    width = int(round(_CANVAS / 2 + 0.9 * (_CANVAS + side) / 2 + side / 2))
    out = Image.new("RGBA", (max(width, side, _CANVAS),) * 2, (0, 0, 0, 0))
    left, mid = (out.size[0] - width) // 2, out.size[1] // 2
    out.alpha_composite(echo.resize((side, side), Image.LANCZOS), (left + width - side, mid - side // 2))
    out.alpha_composite(own, (left, mid - _CANVAS // 2))
    return out


_FRUIT_COLOURS = ("red", "yellow", "green", "purple")
_FRUIT = _Family(
    aspects={
        "color": Aspect(
            "color",
            _FRUIT_COLOURS,
            "Fruit with a color of *",
            _FRUIT_COLOURS + ("orange", "blue", "pink", "brown"),
        ),
        "species": Aspect(
            "species",
            ("apples", "bananas", "grapes", "pears"),
            "Fruit with a species of *",
            ("apples", "bananas", "grapes", "pears", "oranges", "cherries", "lemons", "peaches", "plums",
             "strawberries"),  # fmt: skip
        ),
    },
    palette=((200, 30, 35), (235, 205, 45), (70, 170, 50), (110, 40, 130)),
    rotation=30.0,
    colour=lambda lab: lab["color"],
    extent=lambda lab: 0.7,
    draw=_draw_fruit,
    echoed=_fruit_echoed,
    echo_rotation=30.0,
    echo_extent=lambda lab: 0.5,  # the pair fits the image
)

_FAMILY = {"shapes": _SHAPES, "cards": _CARDS, "fruit": _FRUIT}

# ------------------------------------------------------------------------------------------ difficulty

#: The noise-based levels, per family: calibrated (when they were called medium and hard) so that zero-shot
#: CLIP with the true class names (``zeroshot_label``, the shipped tiny CLIP) scores about 60-85 % and 30-60 %;
#: they also erase the aspect from the images (a linear probe on the embeddings stays far below 0.95).
_EASY = _Nuisance()
_MILD = _Nuisance()  # the echo levels: easy's mild nuisance (pose, scale jitter, pixel noise)
_NUISANCE: dict[str, dict[str, _Nuisance]] = {
    "easy": {f: _EASY for f in FAMILIES},
    "noisy_medium": {
        # colour: hue shift + fading; shape: one distractor, a rare occluder; size: apparent size varies
        "shapes": _Nuisance(1.5, (0.65, 1.3), 6.0, 0.45, (0, 1), occlusion=0.05, blur=0.3, contrast=0.8),
        # suits: red ink shifted and faded toward black (the red/black cue weakens); number: light blur
        "cards": _Nuisance(1.5, (0.8, 1.1), 8.0, 0.7, (0, 1), occlusion=0.3, blur=0.2, contrast=0.8, clutter=2,
                           desaturate=0.4),
        "fruit": _Nuisance(1.5, (0.8, 1.1), 6.0, 0.45, (0, 1), occlusion=0.15, blur=0.5, contrast=0.8, clutter=1,
                           desaturate=0.3),
    },
    "noisy_hard": {
        "shapes": _Nuisance(2.0, (0.55, 1.35), 8.0, 0.5, (1, 2), (0.55, 0.8), occlusion=0.08, blur=0.4,
                            contrast=0.7, desaturate=0.5),
        "cards": _Nuisance(2.0, (0.75, 1.0), 8.0, 0.9, (1, 1), occlusion=0.4, blur=0.3, contrast=0.65, clutter=3,
                           desaturate=0.9),
        "fruit": _Nuisance(2.0, (0.75, 1.1), 8.0, 0.5, (1, 2), occlusion=0.25, blur=0.5, contrast=0.6, clutter=2,
                           desaturate=0.6),
    },
    "medium": {f: _MILD for f in FAMILIES},
    "hard": {f: _MILD for f in FAMILIES},
}
#: The echo levels' relative echo scales, chosen on development generator seeds so that ``zeroshot_label``
#: lands in 60-85 % (medium) and 30-60 % (hard) on every aspect while a linear probe on the frozen image
#: embeddings stays >= 0.95 (docs/difficulty.md; ``python -m mcbench.data.calibrate``).
_ECHO: dict[str, dict[str, _Echo]] = {
    "medium": {
        "shapes": _Echo((("color", 1.0, 1.2), ("shape", 0.3, 0.5))),
        "cards": _Echo((("number", 0.5, 0.8), ("suits", 0.5, 0.8))),
        "fruit": _Echo((("species", 0.55, 0.95),)),
    },
    "hard": {
        "shapes": _Echo((("color", 1.6, 1.8), ("shape", 0.75, 0.95))),
        "cards": _Echo((("number", 0.8, 1.05), ("suits", 0.9, 1.2))),
        "fruit": _Echo((("species", 0.9, 1.4),)),
    },
}
#: Image i of a level is drawn from the random stream (seed, family, stream, i). The noisy levels keep the
#: streams 1 and 2 they had when they were called medium and hard, so their images are unchanged.
_STREAM = {"easy": 0, "noisy_medium": 1, "noisy_hard": 2, "medium": 3, "hard": 4}
#: Bump when the rendering of a level other than "easy" changes. It and the level's settings are part of the
#: cache key of those levels, so stale cached arrays are never read; "easy" images and their key never change.
#: 2: medium/hard became the echo levels, the noise-based ones were renamed noisy_medium/noisy_hard.
NUISANCE_VERSION = 2

# ------------------------------------------------------------------------------------------- rendering


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


def _object_colour(fam: _Family, lab: dict[str, int], nu: _Nuisance, rng: np.random.Generator) -> RGB:
    i = fam.colour(lab)
    base = np.array(fam.palette[i], dtype=np.float64)
    if nu.hue_shift > 0:
        neighbour = np.array(fam.palette[(i + rng.choice((-1, 1))) % len(fam.palette)], dtype=np.float64)
        base += rng.uniform(0, nu.hue_shift) * (neighbour - base)
    if nu.desaturate > 0:
        base += rng.uniform(0, nu.desaturate) * (base.mean() - base)
    rgb = base * rng.uniform(0.85, 1.1) + rng.uniform(-15, 15, size=3)
    return tuple(int(v) for v in np.clip(rgb, 0, 255))  # type: ignore[return-value]


def _paste(img: Image.Image, fam: _Family, lab: dict[str, int], scale: float, nu: _Nuisance, rng) -> tuple:
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


def _render(fam: _Family, lab: dict[str, int], size: int, nu: _Nuisance, rng: np.random.Generator) -> np.ndarray:
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


def _render_echoed(fam: _Family, lab: dict[str, int], size: int, nu: _Nuisance, echo: _Echo,
                   rng: np.random.Generator) -> np.ndarray:
    """An echo level's image: the object and its echoes (``_Echo``) as one group, with mild nuisance."""
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
    if family not in _FAMILY:
        raise ValueError(f"Unknown synthetic family '{family}'. Valid families: {', '.join(FAMILIES)}")
    if difficulty not in _NUISANCE:
        raise ValueError(f"Unknown difficulty '{difficulty}'. Valid difficulties: {', '.join(DIFFICULTIES)}")
    if n < 1 or image_size < 16:
        raise ValueError(f"need n >= 1 and image_size >= 16 (got n={n}, image_size={image_size})")


def family_aspects(family: str) -> dict[str, Aspect]:
    """The aspects (factors) of a synthetic family, in label order."""
    _check(family, 1, 64, "easy")
    return dict(_FAMILY[family].aspects)


def generate(
    family: str, n: int, seed: int, image_size: int = 64, difficulty: str = "easy"
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Aspect]]:
    """Draw ``n`` images of a family: (pixels N×H×W×3 uint8, factor labels per aspect, aspects).

    Labels depend only on (family, n, seed), so the difficulty levels of one seed share their labels.
    Image i is drawn from its own random stream, keyed by (seed, family, level stream, i).
    """
    _check(family, n, image_size, difficulty)
    fam, nu, code = _FAMILY[family], _NUISANCE[difficulty][family], zlib.crc32(family.encode())
    echo = _ECHO[difficulty][family] if difficulty in _ECHO else None
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


# ----------------------------------------------------------------------------------------------- datasets


def default_cache_dir() -> Path:
    """``$MCBENCH_CACHE`` or ``~/.cache/mcbench``."""
    return Path(os.environ.get("MCBENCH_CACHE") or Path.home() / ".cache" / "mcbench")


def cache_path(
    family: str, n: int, seed: int, image_size: int, difficulty: str, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Where the cached arrays of one generated dataset live."""
    fields = {"family": family, "n": n, "seed": seed, "image_size": image_size, "difficulty": difficulty,
              "version": GENERATOR_VERSION}  # fmt: skip
    if difficulty != "easy":
        fields["nuisance"] = [NUISANCE_VERSION, asdict(_NUISANCE[difficulty][family])]
        if difficulty in _ECHO:
            fields["echo"] = asdict(_ECHO[difficulty][family])
    key = json.dumps(fields, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()) / "synthetic" / f"{family}-{digest}.npz"


def _load_cached(path: Path, n: int, image_size: int, aspects: dict[str, Aspect]):
    """The cached (pixels, labels), or None when the file is missing, unreadable or inconsistent."""
    try:
        with np.load(path, allow_pickle=False) as z:
            pixels = z["pixels"]
            labels = {a: z[f"labels_{a}"] for a in aspects}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if pixels.shape != (n, image_size, image_size, 3) or pixels.dtype != np.uint8:
        return None
    if any(y.shape != (n,) or y.min() < 0 or y.max() >= aspects[a].k for a, y in labels.items()):
        return None
    return pixels, labels


def _save_atomic(path: Path, pixels: np.ndarray, labels: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, pixels=pixels, **{f"labels_{a}": y for a, y in labels.items()})


def synthetic_dataset(
    family: str,
    n: int = 600,
    seed: int = 0,
    image_size: int = 64,
    difficulty: str = "easy",
    cache_dir: str | os.PathLike | None = None,
) -> MultiViewDataset:
    """The ``synth_<family>`` dataset, read from the disk cache or generated and cached."""
    _check(family, n, image_size, difficulty)
    aspects = family_aspects(family)
    path = cache_path(family, n, seed, image_size, difficulty, cache_dir)
    cached = _load_cached(path, n, image_size, aspects)
    if cached is None:
        pixels, labels, _ = generate(family, n, seed, image_size, difficulty)
        _save_atomic(path, pixels, labels)
    else:
        pixels, labels = cached
    name = f"synth_{family}"
    return MultiViewDataset(
        name=name,
        aspects=aspects,
        labels={a: np.asarray(y, dtype=np.int64) for a, y in labels.items()},
        image_ids=[f"{name}_s{seed}_{i:06d}" for i in range(n)],
        pixels=pixels,
        info={
            "generator": f"mcbench.data.synthetic:{family}@v{GENERATOR_VERSION}",
            "difficulty": difficulty,
            "n": n,
            "seed": seed,
            "image_size": image_size,
            "cache_file": str(path),
        },
    )


@DATASETS.register("synth_shapes")
def synth_shapes(n: int = 600, seed: int = 0, image_size: int = 64, difficulty: str = "easy", cache_dir=None):
    """Shapes: aspects ``color`` (4), ``shape`` (4), ``size`` (2)."""
    return synthetic_dataset("shapes", n, seed, image_size, difficulty, cache_dir)


@DATASETS.register("synth_cards")
def synth_cards(n: int = 600, seed: int = 0, image_size: int = 64, difficulty: str = "easy", cache_dir=None):
    """Playing cards: aspects ``number`` (13 ranks) and ``suits`` (4)."""
    return synthetic_dataset("cards", n, seed, image_size, difficulty, cache_dir)


@DATASETS.register("synth_fruit")
def synth_fruit(n: int = 600, seed: int = 0, image_size: int = 64, difficulty: str = "easy", cache_dir=None):
    """Fruit: aspects ``color`` (4) and ``species`` (4)."""
    return synthetic_dataset("fruit", n, seed, image_size, difficulty, cache_dir)
