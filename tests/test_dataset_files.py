"""The papers' datasets are data: one ``datasets/<name>/dataset.json`` beside each card, read by one loader
(:mod:`mcbench.data.papers`). Adding a paper dataset is a folder and a YAML, never a Python edit."""

from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from PIL import Image

from mcbench.data.base import DATASETS
from mcbench.data.folder_scan import DatasetLayoutError, DatasetWarning
from mcbench.data.folder_checks import OPTION_NAMES, FolderOptions
from mcbench.data.papers import DATA_FILE, KIND, PAPER_DATASETS, discover, register_paper_datasets
from mcbench.data.synthetic import generate
from mcbench.paths import datasets_dir
from mcbench.registry import Registry

REPO = Path(__file__).resolve().parent.parent


def test_every_shipped_data_file_is_a_registered_dataset_with_card_words_and_config():
    files = [p for p in sorted(datasets_dir().glob(f"*/{DATA_FILE}")) if json.loads(p.read_text())["kind"] == KIND]
    assert {p.parent.name for p in files} == set(PAPER_DATASETS) and len(files) >= 7
    for path in files:
        name = path.parent.name
        spec = PAPER_DATASETS[name]
        assert name in DATASETS and spec.home == path.parent
        assert (path.parent / "README.md").is_file() and spec.licence and "http" in spec.get
        assert all(url in spec.get for url in spec.urls.values())  # every URL named is used in the sentence
        for aspect in spec.aspects:
            assert (path.parent / "words" / f"{aspect.name}.json").is_file(), (name, aspect.name)
        cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "dataset" / f"{name}.yaml"))
        assert cfg["name"] == name and cfg["root"] == f"${{paths.data_root}}/{name}/images"


@pytest.mark.parametrize("name", ["folder", *sorted(PAPER_DATASETS)])
def test_the_folder_keywords_are_listed_once_and_the_yaml_matches_them(name):
    """FolderOptions owns verify/fingerprint/checksum/on_bad_image/cache_dir: every folder factory's signature
    (read by the command line's override check) comes from it, and each YAML sets exactly those keys."""
    params = inspect.signature(DATASETS.get(name)).parameters
    assert tuple(params)[-len(OPTION_NAMES):] == OPTION_NAMES
    assert {k: params[k].default for k in OPTION_NAMES} == vars(FolderOptions())
    cfg = OmegaConf.load(REPO / "conf" / "dataset" / f"{name}.yaml")
    assert set(cfg) == set(params) - {"cache_dir"} | {"name"}


def write_new_dataset(datasets_root: Path, images: Path) -> dict:
    """A dataset nobody has written Python for: ``toys`` with aspects ``tint`` (read from a folder named
    ``color``) and ``kind``, from a synthetic fruit layout under ``images``."""
    pixels, labels, aspects = generate("fruit", 16, 0, 32)
    for a, folder in (("color", "color"), ("species", "species")):
        for i in range(16):
            path = images / folder / aspects[a].classes[labels[a][i]] / f"toy_{i:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[i]).save(path)
    spec = {
        "kind": KIND, "name": "toys", "title": "Toys (a test set)", "object": "toys",
        "licence": "CC0 (made up for this test)", "urls": {"zip": "https://example.org/toys.zip"},
        "get": "download {zip} and unpack it there",
        "aspects": [
            {"name": "tint", "prompt": "Toy with a tint of *", "folders": ["tint", "color"], "concept": "colour"},
            {"name": "kind", "prompt": "Toy of kind *", "folders": ["kind", "species"]},
        ],
        "expected": {"n": 16, "k": {"tint": 4, "kind": 4}},
        "reported": {"classes": {"kind": ["apples", "bananas", "grapes", "pears"]}},
    }
    (datasets_root / "toys" / "words").mkdir(parents=True)
    (datasets_root / "toys" / DATA_FILE).write_text(json.dumps(spec, indent=1))
    (datasets_root / "toys" / "README.md").write_text("# Toys\n")
    (datasets_root / "other").mkdir()
    (datasets_root / "other" / DATA_FILE).write_text('{"kind": "something_else"}')  # another loader's: left alone
    return spec


def test_a_new_paper_dataset_is_a_folder_with_a_data_file_and_no_python(tmp_path, monkeypatch):
    root, images = tmp_path / "datasets", tmp_path / "data" / "toys" / "images"
    write_new_dataset(root, images)
    registry = Registry("dataset")  # the same registration as the shipped ones, kept out of the global registry
    specs = register_paper_datasets(root, registry)
    assert list(specs) == ["toys"] and registry.names() == ["toys"]
    factory = registry.get("toys")
    assert list(inspect.signature(factory).parameters) == ["root", *OPTION_NAMES]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # the reported class names match: no warning
        ds = factory(root=str(images))
    assert ds.name == "toys" and len(ds) == 16 and list(ds.aspects) == ["tint", "kind"]
    assert ds.info["folders"] == {"tint": "color", "kind": "species"} and ds.info["object"] == "toys"
    assert ds.aspects["tint"].prompt == "Toy with a tint of *" and ds.aspects["tint"].concept_word == "colour"
    assert ds.aspects["kind"].classes == ("apples", "bananas", "grapes", "pears")
    assert ds.info["card"] == str(root / "toys" / "README.md")
    # the default root ($MCBENCH_DATA/<name>/images) and the where-to-get sentence with its URL filled in
    monkeypatch.setenv("MCBENCH_DATA", str(tmp_path / "data"))
    assert factory().revision == ds.revision
    monkeypatch.setenv("MCBENCH_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"Get it: download https://example.org/toys.zip and unpack it"):
        factory()
    # the expected facts are checked as for the shipped datasets
    data = json.loads((root / "toys" / DATA_FILE).read_text())
    data["expected"]["k"]["kind"] = 3
    (root / "toys" / DATA_FILE).write_text(json.dumps(data))
    fresh = Registry("dataset")
    register_paper_datasets(root, fresh)
    with pytest.raises(DatasetLayoutError, match="aspect 'kind' has 4 classes .*expected 3"):
        fresh.get("toys")(root=str(images))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"name": "toy"}, "name is 'toy' but the folder is 'toys'"),
        ({"colour": "red"}, r"unknown key\(s\) colour"),
        ({"title": 3}, "title must be a string"),
        ({"get": "download {zipfile}"}, r"get names \{zipfile\}, which urls does not define"),
        ({"aspects": [{"name": "tint", "prompt": "Toy with a tint of"}]}, "exactly one '\\*'"),
        ({"aspects": [{"name": "tint"}]}, r"aspects\[0\]: missing key\(s\) prompt"),
        ({"expected": {"k": {"shape": 3}}}, r"expected.k names unknown aspect\(s\) shape"),
        ({"reported": {"n": "many"}}, "reported.n must be a whole number"),
    ],
)
def test_mistakes_in_a_data_file_are_named(tmp_path, change, match):
    root = tmp_path / "datasets"
    spec = write_new_dataset(root, tmp_path / "images")
    spec.update(change)
    (root / "toys" / DATA_FILE).write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=match) as err:
        discover(root)
    assert str(root / "toys" / DATA_FILE) in str(err.value)
