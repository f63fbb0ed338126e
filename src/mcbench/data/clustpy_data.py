"""ClustPy's shipped multi-labelled data sets as mcbench datasets, read from inside the installed ``clustpy`` wheel
(``clustpy/data/datasets/*.data``: labels in the first columns, then the data; BSD-3). Never the network.

* ``clustpy_fruit``        — **features**, 105 × 6 hand-crafted features of the Fruit images (Hu et al., KAIS 2017):
  color 3, species 3.
* ``clustpy_aloi_small``   — **features**, 288 × 611 (ALOI subset of Ye et al., ICDM 2016): shape 2, color 2.
* ``clustpy_stickfigures`` — **features**, 900 × 400 raw pixels of 20 × 20 stick figures (Dancing Stick Figures,
  used by ENRC): upper-body pose 3, lower-body pose 3 (the poses are not named in the wheel: no images mode).
* ``clustpy_nrletters``    — **images**, 9 × 7 RGB letters (Leiber et al., SDM 2022): letter 6, color 3, corner 4;
  every method runs on it (CLIP sees the upscaled letter).

A feature dataset has no images: only methods with ``runs_on_features`` (``kmeans_image`` and the classic
controls of ``methods/classic.py``) run on it; its features stand in for the CLIP image embeddings. Cards:
``datasets/clustpy_*/README.md``.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np

from mcbench.data.base import DATASETS, Aspect, MultiViewDataset

PREPROCESS = ("none", "zscore")


def read_clustpy_file(file_name: str, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(data N×D float64, labels N×n_labels int64) from a ``.data`` file shipped inside the clustpy wheel."""
    try:
        path = files("clustpy") / "data" / "datasets" / file_name
    except ModuleNotFoundError as exc:  # pragma: no cover - clustpy is a dependency
        raise ModuleNotFoundError("the ClustPy datasets need the 'clustpy' package: bash scripts/setup.sh") from exc
    if not path.is_file():
        raise FileNotFoundError(f"{file_name} is not inside the installed clustpy package ({path}); "
                                f"reinstall it with bash scripts/setup.sh (pinned clustpy version)")
    table = np.genfromtxt(str(path), delimiter=",")
    return table[:, n_labels:], table[:, :n_labels].astype(np.int64)


def _preprocess(x: np.ndarray, preprocess: str) -> np.ndarray:
    if preprocess not in PREPROCESS:
        raise ValueError(f"dataset.preprocess={preprocess!r} is not valid; choose one of: {', '.join(PREPROCESS)}")
    if preprocess == "zscore":
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return x.astype(np.float32)


def _aspects(spec: dict[str, tuple[tuple[str, ...], str]]) -> dict[str, Aspect]:
    """``{aspect: (class names in label order, prompt)}``; the class names double as the reference words."""
    return {a: Aspect(a, classes, prompt, classes) for a, (classes, prompt) in spec.items()}


def feature_dataset(name: str, file_name: str, spec: dict[str, tuple[tuple[str, ...], str]],
                    preprocess: str, source: str) -> MultiViewDataset:
    x, y = read_clustpy_file(file_name, len(spec))
    aspects = _aspects(spec)
    labels = {a: y[:, j] for j, a in enumerate(spec)}
    return MultiViewDataset(
        name=name, aspects=aspects, labels=labels, image_ids=[f"{name}-{i:05d}" for i in range(len(x))],
        features=_preprocess(x, preprocess), info={"source": source, "kind": "features", "preprocess": preprocess},
    )


@DATASETS.register("clustpy_fruit")
def clustpy_fruit(preprocess: str = "none", cache_dir=None) -> MultiViewDataset:
    # column 0 is colour and column 1 species: the first three features are hue/saturation/value-like and predict
    # column 0 at 92 % (column 1: 52 %); class names from the mean hue and which colours each species comes in
    # (datasets/clustpy_fruit/README.md)
    return feature_dataset("clustpy_fruit", "fruit.data", {
        "color": (("green", "red", "yellow"), "Fruit with a color of *"),
        "species": (("apples", "bananas", "grapes"), "Fruit with a species of *"),
    }, preprocess, "clustpy.data.load_fruit (Hu et al., KAIS 2017)")


@DATASETS.register("clustpy_aloi_small")
def clustpy_aloi_small(preprocess: str = "none", cache_dir=None) -> MultiViewDataset:
    # ClustPy: "The two label sets are cylinder/ball and red/green"; which integer is which class is not shipped
    return feature_dataset("clustpy_aloi_small", "aloi_small.data", {
        "shape": (("shape 0", "shape 1"), "Object with a shape of *"),
        "color": (("color 0", "color 1"), "Object with a color of *"),
    }, preprocess, "clustpy.data.load_aloi_small (ALOI subset, Ye et al., ICDM 2016)")


@DATASETS.register("clustpy_stickfigures")
def clustpy_stickfigures(preprocess: str = "none", cache_dir=None) -> MultiViewDataset:
    return feature_dataset("clustpy_stickfigures", "stickfigures.data", {
        "upper_body": (("upper 0", "upper 1", "upper 2"), "A stick figure with an upper-body pose of *"),
        "lower_body": (("lower 0", "lower 1", "lower 2"), "A stick figure with a lower-body pose of *"),
    }, preprocess, "clustpy.data.load_stickfigures (Dancing Stick Figures)")


_LETTERS = ("A", "B", "C", "X", "Y", "Z")  # ClustPy's docstring order; the label→letter map is not shipped
_LETTER_COLORS = ("yellow", "pink", "cyan")  # checked on the pixels: label 0 lacks blue, 1 green, 2 red
_CORNERS = ("corner 0", "corner 1", "corner 2", "corner 3")


@DATASETS.register("clustpy_nrletters")
def clustpy_nrletters(n: int = 1000, seed: int = 0, cache_dir=None) -> MultiViewDataset:
    """``n`` of the 10,000 letters (a seeded draw; ``n=0``: all), as 9 × 7 RGB images."""
    x, y = read_clustpy_file("nrLetters.data", 3)
    if n < 0 or n > len(x):
        raise ValueError(f"dataset.n={n}: clustpy_nrletters has {len(x)} images (n=0 takes all)")
    keep = np.sort(np.random.default_rng(seed).permutation(len(x))[:n]) if n else np.arange(len(x))
    pixels = np.clip(x[keep], 0, 255).astype(np.uint8).reshape(-1, 9, 7, 3)  # HWC, as ClustPy stores them
    aspects = {
        "letter": Aspect("letter", _LETTERS, "A letter of *", ("A", "B", "C", "X", "Y", "Z", "D", "E", "O", "K")),
        "color": Aspect("color", _LETTER_COLORS, "A letter with a color of *",
                        ("yellow", "pink", "cyan", "red", "green", "blue", "white", "orange")),
        "corner": Aspect("corner", _CORNERS, "A letter with a highlighted *",
                         ("top left corner", "top right corner", "bottom left corner", "bottom right corner")),
    }
    labels = {a: y[keep, j] for j, a in enumerate(aspects)}
    return MultiViewDataset(name="clustpy_nrletters", aspects=aspects, labels=labels,
                            image_ids=[f"nrletters-{i:05d}" for i in keep], pixels=pixels,
                            info={"source": "clustpy.data.load_nrletters (Leiber et al., SDM 2022)", "kind": "images"})
