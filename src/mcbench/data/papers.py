"""The papers' real datasets: Fruit, Fruit360, Cards, CMUface, Flowers, Stanford Cars and CIFAR-10-MC.

Each is a folder in the authors' layout ``<root>/<aspect>/<class>/<image>`` (read by
:mod:`mcbench.data.folder`), checked against what is known about it. Facts come in two tiers (see each
``datasets/<name>/README.md`` and the research notes):

* ``expected``: primary facts (the authors' code, a public file listing, or the definition of the labels,
  e.g. 13 ranks and 4 suits). A mismatch fails the build under ``verify=strict`` (default), is a warning under
  ``verify=warn``, and is skipped under ``verify=off``.
* ``reported``: second-hand numbers (third-party summaries, tables of later papers). A mismatch is only a
  warning, because those numbers are themselves unverified.

The prompt templates are the papers' own where their code has them ("Card with suits of *"), else of the form
"{Object} with a {concept} of *". Reference words come from ``datasets/<name>/words/<aspect>.json``
(``llm=cached``) or a language model (``llm=openai``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcbench.data.base import DATASETS, Aspect
from mcbench.data.folder import (
    LAYOUT,
    DatasetLayoutError,
    DatasetWarning,
    Expect,
    FolderDataset,
    build_from_scans,
    check_modes,
    child_dirs,
    scan_aspect,
)

AUGDMC_ZIP = "https://faculty.washington.edu/juhuah/images/AugDMC_datasets.zip"
CIFAR10_MC_ZIP = "https://faculty.washington.edu/juhuah/images/cifar10_mc.zip"
ESMC_REPO = "https://github.com/JCSTARS/Embedding-Selective-Multiple-Clustering"
UCI_FACES = "http://archive.ics.uci.edu/ml/machine-learning-databases/faces-mld/faces_4.tar.gz"


@dataclass(frozen=True)
class AspectSpec:
    """One aspect of a paper dataset: its name (the words file and the concept word), its prompt template, and
    the folder names accepted for it (the first that exists is read)."""

    name: str
    prompt: str
    folders: tuple[str, ...] = ()
    concept: str | None = None

    @property
    def folder_names(self) -> tuple[str, ...]:
        return self.folders or (self.name,)


@dataclass(frozen=True)
class PaperDataset:
    name: str
    title: str
    object: str  # what the images show, for the LLM question ("What are the common colors of fruit?")
    aspects: tuple[AspectSpec, ...]
    get: str  # how to obtain the data, one sentence
    expected: Expect = field(default_factory=Expect)
    reported: Expect = field(default_factory=Expect)

    @property
    def aspect_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.aspects)


def _augdmc(folder: str, aspects: str) -> str:
    return (
        f"download {AUGDMC_ZIP} (the AugDMC authors' Fruit, Fruit360 and Cards, linked from the AugDMC and Multi-MaP "
        f"READMEs), extract it and move the {folder} folder's {aspects} folders there"
    )


PAPER_DATASETS: dict[str, PaperDataset] = {
    spec.name: spec
    for spec in (
        PaperDataset(
            name="fruit",
            title="Fruit (Hu et al.; the AugDMC authors' image version)",
            object="fruit",
            aspects=(
                AspectSpec("species", "Fruit with a species of *"),
                AspectSpec("color", "Fruit with a color of *"),
            ),
            get=_augdmc("fruit", "species/ and color/"),
            expected=Expect(n=105, k={"species": 3, "color": 3}),
            reported=Expect(
                classes={"species": ("apples", "bananas", "grapes"), "color": ("green", "red", "yellow")}
            ),
        ),
        PaperDataset(
            name="fruit360",
            title="Fruit360 (a relabelled subset of Fruits-360, by the AugDMC authors)",
            object="fruit",
            aspects=(
                AspectSpec("species", "Fruit with a species of *"),
                AspectSpec("color", "Fruit with a color of *"),
            ),
            get=_augdmc("fruit360", "species/ and color/"),
            reported=Expect(n=4856, k={"species": 4, "color": 4}),
        ),
        PaperDataset(
            name="cards",
            title="Cards (playing cards relabelled by rank and suit, by the AugDMC authors)",
            object="playing cards",
            aspects=(
                AspectSpec("number", "Card with number of *", folders=("number", "order")),
                AspectSpec("suits", "Card with suits of *", folders=("suits", "suit")),
            ),
            get=_augdmc("cards", "number/ and suits/"),
            expected=Expect(k={"number": 13, "suits": 4}),
            reported=Expect(n=8029, classes={"suits": ("clubs", "diamonds", "hearts", "spades")}),
        ),
        PaperDataset(
            name="cmuface",
            title="CMUface (UCI CMU Face Images, 20 people x pose x expression x sunglasses)",
            object="faces",
            aspects=(
                AspectSpec("identity", "Face with identity of *"),
                AspectSpec("emotion", "Face with emotion of *", folders=("emotion", "expression")),
                AspectSpec("glass", "Face with glass of *", folders=("glass", "glasses", "eyes")),
                AspectSpec("pose", "Face with pose of *", folders=("pose", "position")),
            ),
            get=(
                f"use the authors' CMUface folder if you have it, or build it from the UCI original: download "
                f"{UCI_FACES}, extract it and run `python -m mcbench.data.papers cmuface-from-uci <faces_4> <root>`"
            ),
            expected=Expect(k={"identity": 20, "emotion": 4, "glass": 2, "pose": 4}),
            reported=Expect(
                n=(640, 624),
                classes={
                    "emotion": ("neutral", "happy", "sad", "angry"),
                    "glass": ("open", "sunglasses"),
                    "pose": ("straight", "left", "right", "up"),
                },
            ),
        ),
        PaperDataset(
            name="flowers",
            title="Flowers (the ESMC release: a subset of Oxford Flowers-102 by colour and species)",
            object="flowers",
            aspects=(
                AspectSpec("color", "Flower with a color of *"),
                AspectSpec("species", "Flower with a species of *"),
            ),
            get=f"copy the flower/color/ and flower/species/ folders of {ESMC_REPO} there",
            expected=Expect(
                n=533,
                counts={
                    "color": {"pink": 203, "purple": 48, "red": 68, "white": 112, "yellow": 102},
                    "species": {"daisy": 127, "hyacinth": 41, "lily": 194, "rose": 171},
                },
            ),
        ),
        PaperDataset(
            name="stanford_cars",
            title="Stanford Cars (the ESMC release: a subset of Stanford Cars by colour and manufacturer)",
            object="cars",
            aspects=(
                AspectSpec("color", "Car with a color of *"),
                AspectSpec("manufacturer", "Car with a manufacturer of *", folders=("manufacturer", "type")),
            ),
            get=f"copy the stanford_cars/color/ and stanford_cars/manufacturer/ folders of {ESMC_REPO} there",
            expected=Expect(
                n=356,
                n_images={"color": 333, "manufacturer": 356},
                counts={
                    "color": {"black": 67, "red": 79, "silver": 120, "white": 67},
                    "manufacturer": {"BMW": 78, "Hyundai": 118, "Volkswagen": 37, "Volvo": 123},
                },
            ),
        ),
        PaperDataset(
            name="cifar10_mc",
            title="CIFAR-10-MC (CIFAR-10 relabelled by type and environment, introduced with Multi-Sub)",
            object="objects",
            aspects=(
                AspectSpec("type", "Object with a type of *"),
                AspectSpec("environment", "Object with an environment of *"),
            ),
            get=(
                f"download {CIFAR10_MC_ZIP} (linked from the Multi-Sub README), extract it and move its type/ and "
                f"environment/ folders there"
            ),
            expected=Expect(k={"type": 2, "environment": 3}),
            reported=Expect(
                n=(60000, 50000),
                classes={"type": ("animals", "transportation"), "environment": ("air", "land", "water")},
            ),
        ),
    )
}


def card_path(name: str) -> Path:
    from mcbench.paths import datasets_dir

    return datasets_dir() / name / "README.md"


def default_root(name: str) -> Path:
    """``$MCBENCH_DATA/<name>/images``, else ``datasets/<name>/images`` (what ``conf/dataset/<name>.yaml`` says)."""
    from mcbench.paths import datasets_dir

    base = os.environ.get("MCBENCH_DATA") or str(datasets_dir())
    return Path(base) / name / "images"


def _layout(spec: PaperDataset) -> str:
    return f"<root>/{{{','.join(spec.aspect_names)}}}/<class>/<image> (the same image file names under each aspect)"


def _where_to_get(spec: PaperDataset) -> str:
    return (
        f"Get it: {spec.get}, or point dataset.root=PATH (or MCBENCH_DATA=DIR, read as DIR/{spec.name}/images) at "
        f"a copy. Dataset card: {card_path(spec.name)}"
    )


def load_paper_dataset(
    spec: PaperDataset,
    root: str | os.PathLike | None = None,
    *,
    verify: str = "strict",
    fingerprint: str = "stat",
    checksum: str | None = None,
    on_bad_image: str = "error",
    cache_dir: Any = None,
) -> FolderDataset:
    """Read ``spec``'s folder, check it against the known facts, and build the dataset."""
    check_modes(verify, fingerprint, on_bad_image)
    root_path = default_root(spec.name) if root in (None, "", "???") else Path(str(root)).expanduser()
    if not root_path.is_dir():
        raise FileNotFoundError(
            f"dataset '{spec.name}' is not on this machine: {root_path} does not exist. Expected layout: "
            f"{_layout(spec)}. {_where_to_get(spec)}"
        )
    folders: dict[str, str] = {}
    lacking = []
    for a in spec.aspects:
        hit = next((f for f in a.folder_names if (root_path / f).is_dir()), None)
        if hit is None:
            lacking.append("/".join(a.folder_names))
        else:
            folders[a.name] = hit
    if lacking:
        have = child_dirs(root_path)
        hint = ""
        if len(have) == 1 and all(
            any((root_path / have[0] / f).is_dir() for f in a.folder_names) for a in spec.aspects
        ):
            hint = f" (they are one level down: use dataset.root={root_path / have[0]})"
        raise FileNotFoundError(
            f"dataset '{spec.name}': {root_path} lacks the aspect folder(s) {', '.join(lacking)}; it holds "
            f"{', '.join(have) or 'no sub-folders'}{hint}. Expected layout: {_layout(spec)}. {_where_to_get(spec)}"
        )
    scans = {a.name: scan_aspect(root_path / folders[a.name], a.name) for a in spec.aspects}
    empty = [a for a, s in scans.items() if not s.files]
    if empty:
        raise DatasetLayoutError(
            f"dataset '{spec.name}': the aspect folder(s) {', '.join(str(scans[a].folder) for a in empty)} hold no "
            f"images in class folders. Expected layout: {_layout(spec)}. {_where_to_get(spec)}"
        )
    n_total = len(set().union(*(s.files for s in scans.values())))
    card = card_path(spec.name)
    problems = spec.expected.check(scans, n_total) if verify != "off" else []
    if problems:
        text = (
            f"dataset '{spec.name}' at {root_path} does not match its card ({card}): {'; '.join(problems)}. "
        )
        if verify == "strict":
            raise DatasetLayoutError(
                text + "If this is another version of the data, load it as any folder (dataset=folder "
                f"dataset.root={root_path}) or anyway with dataset.verify=warn."
            )
        warnings.warn(text.strip(), DatasetWarning, stacklevel=2)
    reported = spec.reported.check(scans, n_total) if verify != "off" else []
    if reported:
        warnings.warn(
            f"dataset '{spec.name}' differs from second-hand reports (unverified, see {card}): "
            f"{'; '.join(reported)}",
            DatasetWarning,
            stacklevel=2,
        )
    aspects = {a.name: Aspect(a.name, (), a.prompt, (), a.concept) for a in spec.aspects}
    info: dict[str, Any] = {
        "root": str(root_path),
        "title": spec.title,
        "object": spec.object,
        "card": str(card),
        "folders": folders,
        "ignored_folders": [d for d in child_dirs(root_path) if d not in folders.values()],
        "expected_mismatches": problems,
        "reported_mismatches": reported,
    }
    return build_from_scans(
        spec.name, scans, aspects, verify=verify, fingerprint=fingerprint, checksum=checksum, info=info,
        checksum_hint=f"the folder differs from the copy whose fingerprint was recorded (see {card})",
        on_bad_image=on_bad_image, cache_dir=cache_dir,
    )


def _factory(spec: PaperDataset):
    def load(root=None, verify="strict", fingerprint="stat", checksum=None, on_bad_image="error",
             cache_dir=None) -> FolderDataset:
        return load_paper_dataset(spec, root, verify=verify, fingerprint=fingerprint, checksum=checksum,
                                  on_bad_image=on_bad_image, cache_dir=cache_dir)

    load.__name__ = spec.name
    load.__doc__ = f"{spec.title}: aspects {', '.join(spec.aspect_names)}."
    return load


if __name__ != "__main__":  # under `python -m`, the imported copy of this module registers them
    for _spec in PAPER_DATASETS.values():
        DATASETS.register(_spec.name)(_factory(_spec))


# ------------------------------------------------------------------------------- CMUface from the UCI original

CMU_POSES = ("straight", "left", "right", "up")
CMU_EXPRESSIONS = ("neutral", "happy", "sad", "angry")
CMU_EYES = ("open", "sunglasses")


def cmuface_from_uci(src: str | os.PathLike, dst: str | os.PathLike, scale: int = 4, link: bool = False) -> int:
    """Write the UCI "CMU Face Images" (``<src>/<user>/<user>_<pose>_<expression>_<eyes>[_<scale>].pgm``) into the
    layout ``<dst>/{identity,emotion,glass,pose}/<class>/<file>``; return the number of images.

    ``scale`` picks the resolution: 1 (128x120), 2 (64x60) or 4 (32x30, what ClustPy loads). The 16 glitched
    images the UCI archive ships as ``*.bad`` are skipped (640 - 16 = 624 images at scale 4).
    """
    src, dst = Path(src), Path(dst)
    if scale not in (1, 2, 4):
        raise ValueError(f"scale={scale} is not valid; choose 1, 2 or 4")
    if not src.is_dir():
        raise FileNotFoundError(f"{src} does not exist: extract {UCI_FACES} and pass its faces_4 folder")
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
            f"faces_4 folder of {UCI_FACES} (or faces/ with --scale 1)"
        )
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mcbench.data.papers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmu = sub.add_parser("cmuface-from-uci", help="lay out the UCI CMU Face Images as <dst>/<aspect>/<class>/")
    cmu.add_argument("src", help="the extracted faces_4 folder (or faces/ with --scale 1)")
    cmu.add_argument("dst", help="the dataset root, e.g. datasets/cmuface/images")
    cmu.add_argument("--scale", type=int, default=4, choices=(1, 2, 4))
    cmu.add_argument("--link", action="store_true", help="hard-link instead of copying")
    args = parser.parse_args(argv)
    try:
        n = cmuface_from_uci(args.src, args.dst, args.scale, args.link)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"wrote {n} images under {args.dst}/{{identity,emotion,glass,pose}}/; layout: {LAYOUT}")


if __name__ == "__main__":
    main()
