"""On-disk datasets in the authors' layout ``<root>/<aspect>/<class>/<image>``: ``dataset=folder`` and the papers'
loaders, on small folders written from the synthetic generators."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mcbench.data.base import DATASETS, build_dataset
from mcbench.data.folder_checks import Expect
from mcbench.data.folder_scan import IMAGE_EXTENSIONS, BadImageError, DatasetLayoutError, DatasetWarning
from mcbench.data.papers import PAPER_DATASETS, load_paper_dataset
from mcbench.data.synthetic import generate
from mcbench.words import WORD_SOURCES

PAPER_NAMES = ("fruit", "fruit360", "cards", "cmuface", "flowers", "stanford_cars", "cifar10_mc")


def write_layout(root: Path, family: str, n: int, seed: int = 0, size: int = 32, ext: str = ".png",
                 skip: dict[str, set[int]] | None = None) -> dict[str, dict[str, str]]:
    """Write a synthetic set as ``root/<aspect>/<class>/img_<i>.png``; return {image name: {aspect: class}}."""
    pixels, labels, aspects = generate(family, n, seed, size)
    truth: dict[str, dict[str, str]] = {}
    for a, asp in aspects.items():
        for i in range(n):
            if skip and i in skip.get(a, set()):
                continue
            cls = asp.classes[labels[a][i]]
            path = root / a / cls / f"img_{i:04d}{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[i]).save(path)
            truth.setdefault(path.name, {})[a] = cls
    return truth


@pytest.fixture(scope="module")
def fruit_dir(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("fruit") / "images"
    return root, write_layout(root, "fruit", 24)


def quiet_build(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        return build_dataset(*args, **kwargs)


# ------------------------------------------------------------------------------------------- dataset=folder


def test_folder_reads_the_layout_keyed_by_file_name(fruit_dir):
    root, truth = fruit_dir
    ds = build_dataset("folder", root=str(root))
    assert ds.name == "folder-images" and set(ds.aspects) == {"color", "species"}
    assert ds.aspects["color"].classes == ("green", "purple", "red", "yellow")  # sorted, like ImageFolder
    assert ds.aspects["species"].prompt == "A photo with a species of *"  # the documented default
    assert ds.image_ids == sorted(truth) and len(ds) == 24
    for i, key in enumerate(ds.image_ids):
        for a, cls in truth[key].items():
            assert ds.aspects[a].classes[ds.labels[a][i]] == cls
        assert Path(ds.paths[i]).name == key and Path(ds.paths[i]).is_file()
    pixels, _, _ = generate("fruit", 24, 0, 32)
    assert np.array_equal(np.asarray(ds.image(3)), pixels[int(ds.image_ids[3][4:8])])  # lazily read, lossless
    assert ds.info["missing"] == {} and ds.info["n_images"] == 24
    assert build_dataset("folder", root=str(root)).revision == ds.revision  # deterministic


def test_revision_follows_names_sizes_and_labels_not_the_location(fruit_dir, tmp_path):
    src, _ = fruit_dir
    root = tmp_path / "copy"
    shutil.copytree(src, root)
    base = build_dataset("folder", root=str(root), dataset_name="x")
    assert base.revision == build_dataset("folder", root=str(src), dataset_name="x").revision
    content = build_dataset("folder", root=str(root), dataset_name="x", fingerprint="content")
    assert content.revision != base.revision
    # relabel one image in one aspect: same bytes, new revision
    moved = next((root / "color" / "red").iterdir())
    shutil.move(str(moved), root / "color" / "green" / moved.name)
    relabelled = build_dataset("folder", root=str(root), dataset_name="x")
    assert relabelled.revision != base.revision
    # rename it (in both aspects): new revision
    for a in ("color", "species"):
        hit = next(root.glob(f"{a}/*/{moved.name}"))
        hit.rename(hit.with_name("renamed.png"))
    assert build_dataset("folder", root=str(root), dataset_name="x").revision != relabelled.revision


def test_same_name_under_two_classes_of_one_aspect_is_an_error_naming_both(fruit_dir, tmp_path):
    root = tmp_path / "dup"
    shutil.copytree(fruit_dir[0], root)
    first = next((root / "color" / "red").iterdir())
    shutil.copy(first, root / "color" / "green" / first.name)
    with pytest.raises(DatasetLayoutError) as err:
        build_dataset("folder", root=str(root))
    msg = str(err.value)
    assert f"'{first.name}'" in msg and str(first) in msg and str(root / "color" / "green" / first.name) in msg
    assert "aspect 'color'" in msg


def test_image_missing_from_one_aspect_is_reported_and_gets_minus_one(tmp_path):
    root = tmp_path / "cars"
    truth = write_layout(root, "fruit", 16, skip={"color": {2, 5, 7}})
    with pytest.warns(DatasetWarning, match=r"3 of 16 images are under aspect\(s\) species but not under 'color'"):
        ds = build_dataset("folder", root=str(root))
    assert ds.info["missing"]["color"]["count"] == 3
    assert ds.info["images_per_aspect"] == {"color": 13, "species": 16}
    lacking = [ds.image_ids[i] for i in np.flatnonzero(ds.labels["color"] < 0)]
    assert lacking == ["img_0002.png", "img_0005.png", "img_0007.png"]
    assert all("color" not in truth[k] for k in lacking) and (ds.labels["species"] >= 0).all()
    # the image is read from the aspect that has it
    assert "/species/" in ds.paths[ds.image_ids.index("img_0002.png")]


def test_extensions_hidden_files_and_empty_classes(tmp_path):
    root = tmp_path / "ext"
    img = Image.fromarray(np.full((8, 8, 3), 120, np.uint8))
    exts = sorted(IMAGE_EXTENSIONS) + [".JPG"]
    for j, ext in enumerate(exts):
        for a, cls in (("shape", f"s{j % 2}"), ("tone", f"t{j % 3}")):
            path = root / a / cls / f"im{j}{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            img.convert("L" if ext in (".pgm",) else "RGB").save(path, format={".jpg": "JPEG", ".JPG": "JPEG"}.get(ext))
    (root / "shape" / "s0" / "notes.txt").write_text("not an image")
    (root / "shape" / "s0" / "._im0.png").write_bytes(b"macos resource fork")
    (root / "shape" / ".DS_Store").write_bytes(b"x")
    (root / "__MACOSX" / "shape").mkdir(parents=True)
    (root / "tone" / "empty_class").mkdir()
    with pytest.warns(DatasetWarning, match="without images, ignored: empty_class"):
        ds = build_dataset("folder", root=str(root))
    assert len(ds) == len(exts) and set(ds.aspects) == {"shape", "tone"}
    assert ds.aspects["tone"].classes == ("t0", "t1", "t2") and ds.info["ignored_files"] == 1
    assert all(ds.image(i).mode == "RGB" for i in range(len(ds)))


def test_manifest_of_ten_thousand_files_takes_seconds(tmp_path):
    root = tmp_path / "big"
    for a, k in (("a", 10), ("b", 4)):
        for c in range(k):
            (root / a / f"c{c}").mkdir(parents=True)
    tiny = []
    for i in range(7):  # real (tiny) JPEGs of 7 sizes: the build lists them and decodes each once (on_bad_image)
        buf = io.BytesIO()
        Image.new("RGB", (2 + i, 2), (i * 30, 0, 0)).save(buf, format="JPEG")
        tiny.append(buf.getvalue())
    for i in range(5000):  # 2 aspects x 5,000
        (root / "a" / f"c{i % 10}" / f"{i:05d}.jpg").write_bytes(tiny[i % 7])
        (root / "b" / f"c{i % 4}" / f"{i:05d}.jpg").write_bytes(tiny[i % 7])
    start = time.perf_counter()
    ds = build_dataset("folder", root=str(root))
    took = time.perf_counter() - start
    assert len(ds) == 5000 and ds.aspects["a"].k == 10
    assert took < 10, f"building the manifest of 10,000 files took {took:.1f}s"


def test_mcbench_yaml_gives_aspects_prompts_words_and_concepts(fruit_dir, tmp_path):
    root = tmp_path / "yaml"
    shutil.copytree(fruit_dir[0], root)
    (root / "instance").mkdir()  # an extra folder, not listed: ignored
    (root / "mcbench.yaml").write_text(
        "name: my_fruit\nobject: fruit\naspects:\n"
        "  color:\n    prompt: 'Fruit with a color of *'\n    words: [red, yellow, green, purple, orange]\n"
        "    concept: colour\n"
        "  species:\n    words: 'apples, bananas, grapes, pears, plums'\n"
    )
    ds = build_dataset("folder", root=str(root))
    assert ds.name == "my_fruit" and list(ds.aspects) == ["color", "species"] and ds.info["object"] == "fruit"
    color, species = ds.aspects["color"], ds.aspects["species"]
    assert color.prompt == "Fruit with a color of *" and color.concept_word == "colour"
    assert color.reference_words == ("red", "yellow", "green", "purple", "orange")
    assert species.prompt == "A photo with a species of *" and species.reference_words[-1] == "plums"
    assert "instance" in ds.info["ignored_folders"]
    words = WORD_SOURCES.get("cached")()(ds, species)
    assert words.words == species.reference_words and words.source == "declared"


@pytest.mark.parametrize(
    "text, match",
    [
        ("aspects:\n  color:\n    prompt: 'Fruit with a color of'\n", "exactly one '\\*'"),
        ("aspects:\n  color:\n    word: [red]\n", "unknown key\\(s\\) word"),
        ("aspect:\n  color: {}\n", "unknown key\\(s\\) aspect"),
        ("aspects: [color]\n", "'aspects' must map"),
    ],
)
def test_mcbench_yaml_mistakes_are_named(fruit_dir, tmp_path, text, match):
    root = tmp_path / "bad"
    shutil.copytree(fruit_dir[0], root)
    (root / "mcbench.yaml").write_text(text)
    with pytest.raises(ValueError, match=match):
        build_dataset("folder", root=str(root))


def test_mcbench_yaml_naming_an_absent_aspect(fruit_dir, tmp_path):
    root = tmp_path / "absent"
    shutil.copytree(fruit_dir[0], root)
    (root / "mcbench.yaml").write_text("aspects:\n  shape: {}\n")
    with pytest.raises(FileNotFoundError, match="no aspect folder\\(s\\) shape .*it holds: color, species"):
        build_dataset("folder", root=str(root))


def test_folder_without_words_under_llm_cached_says_to_write_mcbench_yaml(fruit_dir):
    ds = build_dataset("folder", root=str(fruit_dir[0]))
    with pytest.raises(FileNotFoundError) as err:
        WORD_SOURCES.get("cached")()(ds, ds.aspects["color"])
    msg = str(err.value)
    assert "folder-images/color" in msg and str(fruit_dir[0] / "mcbench.yaml") in msg and "llm=openai" in msg


def test_folder_root_missing_or_not_given(tmp_path):
    with pytest.raises(ValueError, match="dataset=folder needs the folder: add dataset.root=PATH"):
        build_dataset("folder")
    with pytest.raises(FileNotFoundError, match="does not exist. Expected layout: <root>/<aspect>/<class>/<image>"):
        build_dataset("folder", root=str(tmp_path / "nope"))
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(FileNotFoundError, match="no aspect folder"):
        build_dataset("folder", root=str(tmp_path / "flat"))
    with pytest.raises(ValueError, match="dataset.verify='loose' is not valid"):
        build_dataset("folder", root=str(tmp_path), verify="loose")


def test_checksum_pins_the_revision(fruit_dir):
    root = str(fruit_dir[0])
    rev = build_dataset("folder", root=root).revision
    assert build_dataset("folder", root=root, checksum=rev).revision == rev
    with pytest.raises(DatasetLayoutError, match=f"fingerprint is {rev} \\(stat\\) but dataset.checksum=0000"):
        build_dataset("folder", root=root, checksum="0000")
    with pytest.warns(DatasetWarning, match="dataset.checksum=0000"):
        build_dataset("folder", root=root, checksum="0000", verify="warn")


def test_copies_that_differ_between_aspects(fruit_dir, tmp_path):
    root = tmp_path / "differ"
    shutil.copytree(fruit_dir[0], root)
    a = next(root.glob("color/*/img_0001.png"))
    b = next(root.glob("species/*/img_0001.png"))
    b.write_bytes(b.read_bytes() + b"\0")  # another size: caught by the default stat fingerprint
    with pytest.raises(DatasetLayoutError, match="copies of different sizes"):
        build_dataset("folder", root=str(root))
    with pytest.warns(DatasetWarning, match="copies of different sizes"):
        build_dataset("folder", root=str(root), verify="warn")
    data = bytearray(a.read_bytes())
    data[-1] ^= 1
    b.write_bytes(bytes(data))  # same size, other bytes: only the content fingerprint sees it
    assert build_dataset("folder", root=str(root)).revision
    with pytest.raises(DatasetLayoutError, match="copies with different content"):
        build_dataset("folder", root=str(root), fingerprint="content")


# ------------------------------------------------------------------------------------------ papers' datasets


def test_every_paper_dataset_is_registered_with_config_card_and_words():
    from mcbench.paths import datasets_dir
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parent.parent / "conf" / "dataset"
    for name in PAPER_NAMES:
        assert name in DATASETS and name in PAPER_DATASETS
        cfg = OmegaConf.load(conf / f"{name}.yaml")
        assert cfg.name == name and OmegaConf.to_container(cfg)["root"] == f"${{paths.data_root}}/{name}/images"
        card = (datasets_dir() / name / "README.md").read_text()
        for heading in ("## Aspects", "## Layout", "## How to get it", "## Expected counts", "Licence"):
            assert heading in card, (name, heading)
        for aspect in PAPER_DATASETS[name].aspects:
            assert aspect.prompt.count("*") == 1
            assert (datasets_dir() / name / "words" / f"{aspect.name}.json").is_file(), (name, aspect.name)


@pytest.mark.parametrize("name", PAPER_NAMES)
def test_missing_paper_dataset_is_one_clear_message(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MCBENCH_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        build_dataset(name)  # no root: $MCBENCH_DATA/<name>/images, like the config
    msg = str(err.value)
    assert "\n" not in msg
    assert f"dataset '{name}' is not on this machine: {tmp_path / name / 'images'} does not exist" in msg
    assert f"<root>/{{{','.join(a.name for a in PAPER_DATASETS[name].aspects)}}}/<class>/<image>" in msg
    assert "http" in msg and f"{name}/README.md" in msg and "dataset.root=PATH" in msg


def test_paper_root_with_the_wrong_layout_names_what_it_found(fruit_dir, tmp_path):
    nested = tmp_path / "unzipped"
    shutil.copytree(fruit_dir[0], nested / "fruit")
    with pytest.raises(FileNotFoundError, match="lacks the aspect folder\\(s\\) species, color; it holds fruit "
                                                "\\(they are one level down: use dataset.root=.*unzipped/fruit\\)"):
        build_dataset("fruit", root=str(nested))


def test_paper_count_check_fires_with_a_clear_message(fruit_dir):
    root = fruit_dir[0]  # synthetic fruit: 24 images, 4 colours x 4 species; the real Fruit has 105, 3 x 3
    with pytest.raises(DatasetLayoutError) as err:
        build_dataset("fruit", root=str(root))
    msg = str(err.value)
    assert "does not match its card" in msg and "fruit/README.md" in msg
    assert "24 distinct images, expected 105" in msg
    assert "aspect 'color' has 4 classes (green, purple, red, yellow), expected 3" in msg
    assert "dataset=folder" in msg and "dataset.verify=warn" in msg
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build_dataset("fruit", root=str(root), verify="warn")
    texts = [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]
    assert any("does not match its card" in t for t in texts)
    assert any("differs from second-hand reports" in t and "expected green, red, yellow" in t for t in texts)
    assert ds.name == "fruit" and ds.aspects["species"].prompt == "Fruit with a species of *"
    assert len(ds.info["expected_mismatches"]) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)
        build_dataset("fruit", root=str(root), verify="off")


def test_cards_loader_on_a_folder_with_the_same_structure(tmp_path):
    root = tmp_path / "cards"
    write_layout(root, "cards", 52)  # 13 ranks x 4 suits: the strict checks pass; 8,029 images is only reported
    with pytest.warns(DatasetWarning, match="second-hand reports .*52 distinct images, expected 8,029"):
        ds = build_dataset("cards", root=str(root))
    assert ds.aspects["number"].k == 13 and ds.aspects["suits"].k == 4
    assert ds.aspects["suits"].prompt == "Card with suits of *" and ds.info["object"] == "playing cards"
    words = WORD_SOURCES.get("cached")()(ds, ds.aspects["suits"])  # the shipped, fixed list
    assert set(words.words) == {"hearts", "diamonds", "clubs", "spades"}
    assert words.source == "file:suits.json (oracle-like)" and words.provenance["oracle_like"]  # exactly the classes


def test_paper_loader_passes_with_fixture_sized_counts_and_an_aspect_alias(tmp_path):
    """Stanford Cars' structure: colour labels fewer images than manufacturer; the folder is called ``type``."""
    root = tmp_path / "cars"
    skip = {"color": {0, 1, 2}}
    truth = write_layout(root, "fruit", 20, skip=skip)
    (root / "species").rename(root / "type")
    counts = {"color": {}, "manufacturer": {}}
    for names in truth.values():
        for a, cls in names.items():
            a = "manufacturer" if a == "species" else a
            counts[a][cls] = counts[a].get(cls, 0) + 1
    spec = dataclasses.replace(
        PAPER_DATASETS["stanford_cars"],
        expected=Expect(n=20, n_images={"color": 17, "manufacturer": 20}, counts=counts),
    )
    with pytest.warns(DatasetWarning, match="3 of 20 images .* not under 'color'"):
        ds = load_paper_dataset(spec, root)
    assert ds.info["folders"] == {"color": "color", "manufacturer": "type"}
    assert (ds.labels["color"] < 0).sum() == 3 and ds.aspects["manufacturer"].prompt == "Car with a manufacturer of *"
    wrong = dataclasses.replace(spec, expected=Expect(counts={"color": {**counts["color"], "red": 99}}))
    with pytest.raises(DatasetLayoutError, match="class counts differ: red: \\d+ \\(expected 99\\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DatasetWarning)
            load_paper_dataset(wrong, root)


REPO = Path(__file__).resolve().parent.parent


def load_script(name: str):
    """A module of ``scripts/`` (not a package), imported from its file."""
    import importlib.util

    path = REPO / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cmuface_from_the_uci_layout(tmp_path):
    convert = load_script("convert_cmuface")  # the converter is a script: the library keeps none
    CMU_EXPRESSIONS, CMU_EYES, CMU_POSES = convert.CMU_EXPRESSIONS, convert.CMU_EYES, convert.CMU_POSES
    src = tmp_path / "faces_4"
    users = [f"user{u:02d}" for u in range(20)]
    img = Image.fromarray(np.arange(30 * 32, dtype=np.uint8).reshape(30, 32) % 251)
    for u, user in enumerate(users):
        (src / user).mkdir(parents=True)
        for j in range(2):
            i = 2 * u + j
            stem = f"{user}_{CMU_POSES[i % 4]}_{CMU_EXPRESSIONS[(i // 4) % 4]}_{CMU_EYES[i % 2]}"
            img.save(src / user / f"{stem}_4.pgm")
            img.save(src / user / f"{stem}_2.pgm")  # another scale: skipped
    (src / users[0] / f"{users[0]}_up_sad_open_4.bad").write_bytes(b"glitch")  # UCI's broken files: skipped
    dst = tmp_path / "cmuface" / "images"
    assert convert.cmuface_from_uci(src, dst) == 40
    with pytest.warns(DatasetWarning, match="40 distinct images, expected 640 or 624"):
        ds = build_dataset("cmuface", root=str(dst))
    assert {a: asp.k for a, asp in ds.aspects.items()} == {"identity": 20, "emotion": 4, "glass": 2, "pose": 4}
    assert ds.aspects["glass"].classes == ("open", "sunglasses") and len(ds) == 40
    words = WORD_SOURCES.get("cached")()(ds, ds.aspects["identity"])
    assert len(words.words) >= 20 and words.provenance["paper_words"] == [str(i) for i in range(1, 11)]
    subprocess.run([sys.executable, str(REPO / "scripts" / "convert_cmuface.py"), str(src), str(tmp_path / "again"),
                    "--link"], check=True, capture_output=True)  # the command the card gives
    assert sorted(p.name for p in (tmp_path / "again" / "glass").iterdir()) == ["open", "sunglasses"]
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "convert_cmuface.py"), str(tmp_path / "nope"), "x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "faces_4.tar.gz" in proc.stderr


# ------------------------------------------------------------------------------------------------ the CLI

FAST = ["method=kmeans_image", "encoder=tiny_clip_random", "logger=none", "protocol.n_restarts=2", "progress=false"]


def mcbench(tmp_path: Path, *args: str, env: dict | None = None):
    """``mcbench ...`` in this process (tests/cli_inprocess.py: same argv, folder, environment, exit status)."""
    from cli_inprocess import run_cli

    full_env = {"MCBENCH_CACHE": str(tmp_path / "cache"), "WANDB_MODE": "offline", **(env or {})}
    return run_cli(tmp_path, f"results_file={tmp_path}/runs.csv", *args, env=full_env)


@pytest.mark.slow
def test_cli_runs_a_folder_dataset_with_mcbench_yaml(tmp_path):
    root = tmp_path / "photos"
    write_layout(root, "fruit", 24, skip={"color": {0, 1}})
    (root / "mcbench.yaml").write_text(
        "object: fruit\naspects:\n  color:\n    prompt: 'Fruit with a color of *'\n"
        "    words: [red, yellow, green, purple, orange]\n  species:\n    words: [apples, bananas, grapes, pears]\n"
    )
    proc = mcbench(tmp_path, "dataset=folder", f"dataset.root={root}", *FAST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "but not under 'color'" in proc.stderr  # the missing images are reported
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert set(rows["aspect"]) == {"color", "species"} and (rows["dataset"] == "folder-photos").all()
    assert dict(zip(rows["aspect"], rows["n_images"])) == {"color": 22, "species": 24}
    assert (rows["words_source"] == "declared").all()


@pytest.mark.slow
def test_cli_missing_paper_data_and_missing_folder_words(tmp_path):
    start = time.perf_counter()
    proc = mcbench(tmp_path, "dataset=cards", *FAST, env={"MCBENCH_DATA": str(tmp_path / "data")})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("mcbench: error: dataset 'cards' is not on this machine: ")
    assert str(tmp_path / "data" / "cards" / "images") in lines[-1] and "AugDMC_datasets.zip" in lines[-1]
    assert time.perf_counter() - start < 120  # imports dominate; the check itself takes milliseconds
    root = tmp_path / "photos"
    write_layout(root, "shapes", 12)
    proc = mcbench(tmp_path, "dataset=folder", f"dataset.root={root}", *FAST)
    assert proc.returncode == 2
    assert "mcbench.yaml" in proc.stderr and "llm=openai" in proc.stderr


def test_dangling_symlink_image_is_listed_as_unreadable_or_skipped_and_counted(fruit_dir, tmp_path):
    """A dangling link named like an image was dropped silently; now it is a bad image: named in the error
    (dataset.on_bad_image=error) or skipped with a warning and counted (skip), as the row's skipped_images."""
    src, _ = fruit_dir
    root = tmp_path / "fruit"
    shutil.copytree(src, root, symlinks=True)
    link = root / "color" / "red" / "gone.png"
    link.symlink_to(tmp_path / "moved-away.png")
    with pytest.raises(BadImageError) as err:
        quiet_build("folder", root=str(root))
    msg = str(err.value)
    assert f"{link} (dangling symbolic link (its target {tmp_path / 'moved-away.png'} does not exist))" in msg
    assert "1 of 25 image file(s) cannot be read" in msg and "dataset.on_bad_image=skip" in msg
    with pytest.warns(DatasetWarning, match="skipped 1 of 25 image file"):
        ds = build_dataset("folder", root=str(root), on_bad_image="skip")
    assert len(ds) == 24 and ds.info["skipped_images"] == 1 and str(link) in ds.info["bad_images"]


def test_symlink_loops_in_a_folder_dataset_are_handled(fruit_dir, tmp_path):
    """A link to itself named like an image (ELOOP) and a folder link back to an ancestor: no OSError [Errno 40]
    traceback; the first is an unreadable image, the second is not followed (a warning, recorded in info)."""
    src, _ = fruit_dir
    root = tmp_path / "fruit"
    shutil.copytree(src, root, symlinks=True)
    (root / "color" / "red" / "again").symlink_to(root / "color")  # a folder loop, as on shared drives
    (root / "species" / "apples" / "up").symlink_to("..")
    (root / "loop").symlink_to(root / "loop")  # a self-loop at the top: not an aspect
    with pytest.warns(DatasetWarning, match="2 folder link\\(s\\) lead back to a folder above them"):
        ds = build_dataset("folder", root=str(root))
    assert len(ds) == 24 and len(ds.info["symlink_loops"]) == 2
    selfish = root / "color" / "green" / "self.jpg"
    selfish.symlink_to(selfish)
    with pytest.raises(BadImageError, match=re.escape(f"{selfish} (symbolic link loop")):
        quiet_build("folder", root=str(root))
