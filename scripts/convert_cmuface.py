"""Lay out the UCI "CMU Face Images" as the ``cmuface`` dataset: ``<dst>/{identity,emotion,glass,pose}/<class>/``.

    curl -O http://archive.ics.uci.edu/ml/machine-learning-databases/faces-mld/faces_4.tar.gz
    tar xzf faces_4.tar.gz
    .venv/bin/python scripts/convert_cmuface.py faces_4 datasets/cmuface/images   # --scale 1|2|4, --link

The class folders are named by the labels in the UCI file names (``<user>_<pose>_<expression>_<eyes>_4.pgm``);
the ``*.bad`` (glitched) files are skipped. See datasets/cmuface/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from mcbench.data.folder_scan import LAYOUT

CMU_POSES = ("straight", "left", "right", "up")
CMU_EXPRESSIONS = ("neutral", "happy", "sad", "angry")
CMU_EYES = ("open", "sunglasses")


def _uci_faces_url() -> str:
    """The archive's address, from datasets/cmuface/dataset.json (read when needed: ``--help`` parses no data file)."""
    from mcbench.data.papers import PAPER_DATASETS

    return PAPER_DATASETS["cmuface"].urls["uci_faces"]


def cmuface_from_uci(src: str | os.PathLike, dst: str | os.PathLike, scale: int = 4, link: bool = False) -> int:
    """Write the UCI "CMU Face Images" (``<src>/<user>/<user>_<pose>_<expression>_<eyes>[_<scale>].pgm``) into the
    layout ``<dst>/{identity,emotion,glass,pose}/<class>/<file>``; return the number of images.

    ``scale`` picks the resolution: 1 (128x120), 2 (64x60) or 4 (32x30, what ClustPy loads). The 16 glitched
    images the UCI archive ships as ``*.bad`` are skipped (640 - 16 = 624 images at scale 4).
    """
    src, dst = Path(src), Path(dst)
    uci_faces = _uci_faces_url()
    if scale not in (1, 2, 4):
        raise ValueError(f"scale={scale} is not valid; choose 1, 2 or 4")
    if not src.is_dir():
        raise FileNotFoundError(f"{src} does not exist: extract {uci_faces} and pass its faces_4 folder")
    n = 0
    for path in sorted(src.rglob("*.pgm")):
        parts = path.stem.split("_")
        tail = parts[4:] if len(parts) > 4 else []
        if len(parts) < 4 or (tail and tail != [str(scale)]) or (not tail and scale != 1):
            continue
        user, pose, expression, eyes = parts[:4]
        if pose not in CMU_POSES or expression not in CMU_EXPRESSIONS or eyes not in CMU_EYES:
            continue
        for aspect, cls in (("identity", user), ("emotion", expression), ("glass", eyes), ("pose", pose)):
            out = dst / aspect / cls / path.name
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.exists():
                out.unlink()
            if link:
                os.link(path, out)
            else:
                shutil.copyfile(path, out)
        n += 1
    if n == 0:
        raise FileNotFoundError(
            f"no CMU face images (<user>_<pose>_<expression>_<eyes>_{scale}.pgm) under {src}; pass the extracted "
            f"faces_4 folder of {uci_faces} (or faces/ with --scale 1)"
        )
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scripts/convert_cmuface.py", description=__doc__.splitlines()[0])
    parser.add_argument("src", help="the extracted faces_4 folder (or faces/ with --scale 1)")
    parser.add_argument("dst", help="the dataset root, e.g. datasets/cmuface/images")
    parser.add_argument("--scale", type=int, default=4, choices=(1, 2, 4))
    parser.add_argument("--link", action="store_true", help="hard-link instead of copying")
    args = parser.parse_args(argv)
    try:
        n = cmuface_from_uci(args.src, args.dst, args.scale, args.link)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"wrote {n} images under {args.dst}/{{identity,emotion,glass,pose}}/; layout: {LAYOUT}")


if __name__ == "__main__":
    main()
