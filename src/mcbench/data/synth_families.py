"""The synthetic families' drawings: ``shapes``, ``cards`` and ``fruit``, each an object drawn with PIL on a square
RGBA canvas from its factor labels (the aspects), plus its "echoed" group for the alignment-hard levels
(:mod:`mcbench.data.synth_levels`). :mod:`mcbench.data.synth_render` places the drawings on textured images.
Changing a drawing changes the images: bump ``GENERATOR_VERSION`` in :mod:`mcbench.data.synthetic`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mcbench.data.base import Aspect

FAMILIES = ("shapes", "cards", "fruit")

_CANVAS = 128  # objects are drawn on a square RGBA canvas of this side, then rotated and resized
RGB = tuple[int, int, int]


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

FAMILY = {"shapes": _SHAPES, "cards": _CARDS, "fruit": _FRUIT}
