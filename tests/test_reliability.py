"""Faults a real dataset or machine throws at a benchmark run, each made to happen for real (real files, real
processes, real NaNs), and what mcbench does about it. ``docs/reliability.md`` lists them one for one (checked by
``test_reliability_doc_matches_the_tests``)."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mcbench.api import METHODS
from mcbench.data.base import build_dataset
from mcbench.data.folder import BadImageError, DatasetWarning
from mcbench.data.images import MAX_DECODE_PIXELS, ImageReadError, check_image, load_rgb
from mcbench.encoders import create_encoder
from mcbench.features import _checksum, cache_path, feature_key, image_features
from mcbench.results import CRC_COLUMN, ResultStore

from test_datasets_folder import write_layout

REPO = Path(__file__).resolve().parent.parent
FAST = ["encoder=tiny_clip_random", "logger=none", "protocol.n_restarts=2", "progress=false"]
FRUIT_YAML = (
    "object: fruit\naspects:\n  color:\n    prompt: 'Fruit with a color of *'\n"
    "    words: [red, yellow, green, purple, orange]\n  species:\n    words: [apples, bananas, grapes, pears]\n"
)


def mcbench(tmp_path: Path, *args: str, multirun: bool = False, results: str = "runs.csv"):
    env = dict(os.environ, MCBENCH_CACHE=str(tmp_path / "cache"), WANDB_MODE="offline")
    cmd = [sys.executable, "-m", "mcbench.cli", *(["-m"] if multirun else []), f"results_file={tmp_path / results}"]
    return subprocess.run([*cmd, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def last_line(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def random_clip():
    return create_encoder("mcbench-tiny-clip", "random")


# ------------------------------------------------------------------------------------------------ images


def _add_bad_files(root: Path) -> dict[str, Path]:
    """A zero-byte PNG, a truncated JPEG and a text file named .jpg, under every aspect (as real copies are)."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    contents = {"empty.png": b"", "cut.jpg": buf.getvalue()[: len(buf.getvalue()) // 2],
                "notes.jpg": b"these are my notes, not a photo\n" * 4}
    made = {}
    for aspect, cls in (("color", "red"), ("species", "apples")):
        for name, data in contents.items():
            path = root / aspect / cls / name
            path.write_bytes(data)
            made.setdefault(name, path)
    return made


@pytest.fixture(scope="module")
def fruit_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clean") / "fruit"
    write_layout(root, "fruit", 24)
    return root


def test_unreadable_files_are_listed_in_one_error_or_skipped_and_counted(fruit_root, tmp_path):
    root = tmp_path / "fruit"
    shutil.copytree(fruit_root, root)
    bad = _add_bad_files(root)
    with pytest.raises(BadImageError) as err:
        build_dataset("folder", root=str(root))
    msg = str(err.value)
    assert "\n" not in msg and "3 of 27 image file(s) cannot be read" in msg
    assert f"{bad['empty.png']} (empty file (0 bytes))" in msg
    assert f"{bad['cut.jpg']} (truncated or incomplete" in msg
    assert f"{bad['notes.jpg']} (not an image file Pillow can read" in msg
    assert "dataset.on_bad_image=skip" in msg
    with pytest.warns(DatasetWarning, match="skipped 3 of 27 image file"):
        ds = build_dataset("folder", root=str(root), on_bad_image="skip")
    assert len(ds) == 24 and ds.info["skipped_images"] == 3
    assert set(ds.info["bad_images"]) == {str(p) for p in bad.values()}
    clean = build_dataset("folder", root=str(fruit_root), dataset_name=ds.name)
    assert ds.revision == clean.revision and clean.info["skipped_images"] == 0  # the same images: the same features
    with pytest.raises(ValueError, match="dataset.on_bad_image='ignore' is not valid; choose one of: error, skip"):
        build_dataset("folder", root=str(root), on_bad_image="ignore")


def test_image_check_is_cached_by_name_size_and_mtime(fruit_root, tmp_path):
    root = tmp_path / "fruit"
    shutil.copytree(fruit_root, root)
    cache = tmp_path / "cache"
    ds = build_dataset("folder", root=str(root), cache_dir=str(cache))
    assert len(list((cache / "image_checks").rglob("*.json"))) == 1
    victim = Path(ds.paths[5])
    st = victim.stat()
    victim.write_bytes(b"\0" * st.st_size)  # same size ...
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and time: the cached check is (knowingly) trusted
    assert len(build_dataset("folder", root=str(root), cache_dir=str(cache))) == 24
    os.utime(victim)  # a new modification time: checked again
    with pytest.raises(BadImageError, match=re.escape(str(victim))):
        build_dataset("folder", root=str(root), cache_dir=str(cache))


def test_a_file_that_breaks_after_the_check_is_named_at_extraction(fruit_root, tmp_path, random_clip):
    root = tmp_path / "fruit"
    shutil.copytree(fruit_root, root)
    ds = build_dataset("folder", root=str(root))
    victim = Path(ds.paths[17])
    victim.write_bytes(victim.read_bytes()[:40])  # truncated after the dataset was built
    with pytest.raises(ImageReadError) as err:  # read in DataLoader worker processes (folder datasets)
        image_features(random_clip, ds, tmp_path / "cache", progress=False)
    msg = str(err.value)
    assert "\n" not in msg and f"cannot read image {victim} of dataset '{ds.name}'" in msg
    assert "DataLoader" not in msg and not list((tmp_path / "cache").rglob("*.safetensors"))


def _write(root: Path, name: str, im: Image.Image, **save) -> Path:
    path = root / "look" / "any" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **save)
    return path


def test_grayscale_palette_alpha_cmyk_and_one_bit_images_become_the_right_rgb(tmp_path):
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    gray = rgb.convert("L")
    pal = rgb.quantize(6)
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[:, :16, 3] = 255  # left half opaque green, right half fully transparent (hiding green)
    pal_t = pal.copy()
    pal_t.info["transparency"] = 0
    files = {
        "gray.png": _write(tmp_path, "gray.png", gray),
        "palette.png": _write(tmp_path, "palette.png", pal),
        "palette_t.png": _write(tmp_path, "palette_t.png", pal_t, transparency=0),
        "rgba.png": _write(tmp_path, "rgba.png", Image.fromarray(rgba)),
        "la.png": _write(tmp_path, "la.png", Image.fromarray(np.ascontiguousarray(rgba[..., [1, 3]]))),
        "cmyk.tif": _write(tmp_path, "cmyk.tif", rgb.convert("CMYK")),
        "cmyk.jpg": _write(tmp_path, "cmyk.jpg", rgb.convert("CMYK"), quality=98),
        "bits.png": _write(tmp_path, "bits.png", gray.convert("1")),
    }
    assert {n: Image.open(p).mode for n, p in files.items()} == {
        "gray.png": "L", "palette.png": "P", "palette_t.png": "P", "rgba.png": "RGBA", "la.png": "LA",
        "cmyk.tif": "CMYK", "cmyk.jpg": "CMYK", "bits.png": "1"}
    out = {n: np.asarray(load_rgb(p)) for n, p in files.items()}
    assert all(a.shape == (24, 32, 3) and a.dtype == np.uint8 for a in out.values())
    assert np.array_equal(out["gray.png"], np.repeat(np.asarray(gray)[..., None], 3, axis=2))
    assert np.array_equal(out["palette.png"], np.asarray(pal.convert("RGB")))
    assert np.array_equal(out["cmyk.tif"], np.asarray(rgb))  # PIL's CMYK round trip is exact
    assert np.abs(out["cmyk.jpg"].astype(int) - np.asarray(rgb)).mean() < 6  # lossy, but the same colours
    assert np.array_equal(np.unique(out["bits.png"]), [0, 255])
    # transparency: composited on white, not the colour that hid under it
    assert (out["rgba.png"][:, :16] == (10, 200, 30)).all() and (out["rgba.png"][:, 16:] == 255).all()
    assert (out["la.png"][:, :16] == 200).all() and (out["la.png"][:, 16:] == 255).all()
    transparent = np.asarray(pal_t) == 0
    assert transparent.any() and (out["palette_t.png"][transparent] == 255).all()
    assert np.array_equal(out["palette_t.png"][~transparent], np.asarray(pal.convert("RGB"))[~transparent])
    assert (np.asarray(Image.open(files["rgba.png"]).convert("RGB"))[:, 16:] == (10, 200, 30)).all()  # the fault


def _png16_rgb(path: Path, arr: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG written byte by byte (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def test_sixteen_bit_images_are_scaled_to_eight_bits_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 32 * 16).round().astype(np.uint16).reshape(16, 32)
    want = np.rint(ramp / 257.0)
    paths = {fmt: _write(tmp_path, f"ramp.{ext}", Image.fromarray(ramp)) for fmt, ext in
             (("png", "png"), ("tiff", "tif"), ("pgm", "pgm"))}
    assert {f: Image.open(p).mode for f, p in paths.items()} == {"png": "I;16", "tiff": "I;16", "pgm": "I"}
    for fmt, path in paths.items():
        got = np.asarray(load_rgb(path)).astype(int)
        assert np.abs(got[..., 0] - want).max() <= 1, fmt
        assert (got[..., 0] == got[..., 2]).all()
    assert (np.asarray(Image.open(paths["png"]).convert("RGB"))[ramp > 255] == 255).all()  # Pillow alone: clipped
    rgb16 = np.stack([ramp, ramp[::-1], np.full_like(ramp, 40000)], axis=-1)
    _png16_rgb(tmp_path / "rgb16.png", rgb16)
    got = np.asarray(load_rgb(tmp_path / "rgb16.png")).astype(int)
    assert np.abs(got - np.rint(rgb16 / 257.0)).max() <= 1


def test_exif_rotated_photos_are_upright(tmp_path):
    up = np.zeros((40, 64, 3), np.uint8)  # landscape: red top-left, green top-right, blue bottom-left, white
    up[:20, :32] = (255, 0, 0)
    up[:20, 32:] = (0, 255, 0)
    up[20:, :32] = (0, 0, 255)
    up[20:, 32:] = 255
    upright = Image.fromarray(up)
    T = Image.Transpose
    for orientation, stored_as in ((3, T.ROTATE_180), (6, T.ROTATE_90), (8, T.ROTATE_270), (2, T.FLIP_LEFT_RIGHT)):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = _write(tmp_path, f"o{orientation}.jpg", upright.transpose(stored_as), exif=exif.tobytes(), quality=95)
        got = load_rgb(path)
        assert got.size == (64, 40), orientation
        assert np.abs(np.asarray(got).astype(int) - up).mean() < 8, orientation
        if orientation in (6, 8):
            assert Image.open(path).size == (40, 64)  # without the tag applied: on its side


def test_huge_images_are_decoded_reduced_not_refused(tmp_path):
    jpg = _write(tmp_path / "data", "huge.jpg", Image.new("L", (13500, 13400), 128), quality=75)  # 180.9 M pixels
    png = _write(tmp_path / "png", "huge.png", Image.new("L", (13500, 13400), 77), compress_level=1)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(jpg)  # the fault: Pillow refuses files beyond twice its 89.5 M pixel threshold
    for path, value in ((jpg, 128), (png, 77)):
        assert check_image(path) is None
        im = load_rgb(path)
        assert im.mode == "RGB" and 1024 <= min(im.size) <= 2048, im.size
        assert abs(im.size[0] / im.size[1] - 13500 / 13400) < 0.01  # aspect ratio kept
        assert np.abs(np.asarray(im).astype(int) - value).max() <= 2
    too_big = _write(tmp_path / "data", "too_big.png", Image.new("1", (16500, 16500), 1))
    reason = check_image(too_big)
    assert reason and "16500x16500 = 272,250,000 pixels" in reason and f"{MAX_DECODE_PIXELS:,}" in reason
    assert "downscale the file" in reason
    with pytest.raises(ImageReadError, match="downscale the file"):
        load_rgb(too_big)
    ds = build_dataset("folder", root=str(tmp_path / "data"), on_bad_image="skip", dataset_name="huge")
    assert ds.info["bad_images"] == {str(too_big): reason} and len(ds) == 1  # the huge JPEG passes the check


@pytest.mark.slow
def test_unicode_and_spaces_in_paths_and_a_one_class_aspect_through_the_cli(tmp_path):
    root = tmp_path / "mes données" / "фото 1"
    truth = write_layout(root, "fruit", 16)
    for aspect in ("color", "species"):
        for cls in list((root / aspect).iterdir()):
            cls.rename(cls.with_name(f"{cls.name} ✓"))  # class folders with a space and a non-ASCII mark
        for img in (root / aspect).rglob("*.png"):
            img.rename(img.with_name(f"é {img.name}"))
    words = "[red ✓, yellow ✓, green ✓, purple ✓]"
    (root / "mcbench.yaml").write_text(FRUIT_YAML.replace("[red, yellow, green, purple, orange]", words),
                                       encoding="utf-8")
    unquoted = mcbench(tmp_path, "dataset=folder", f"dataset.root={root}", "method=kmeans_image", *FAST)
    assert unquoted.returncode == 2
    assert last_line(unquoted).startswith(f"mcbench: error: cannot read the override 'dataset.root={root}'")
    assert f"write dataset.root='{root}'" in last_line(unquoted)
    proc = mcbench(tmp_path, "dataset=folder", f"dataset.root='{root}'", "method=kmeans_image", *FAST)
    assert proc.returncode == 0, proc.stderr
    rows = ResultStore(tmp_path / "runs.csv").read()
    assert sorted(rows["aspect"]) == ["color", "species"] and (rows["n_images"] == 16).all()
    assert (rows["dataset"] == "folder-фото-1").all() and (rows["skipped_images"] == 0).all()
    assert len(truth) == 16
    # an aspect folder with a single class: nothing to cluster, rejected before any work
    one = tmp_path / "one"
    write_layout(one, "fruit", 12)
    (one / "kind" / "fruit").mkdir(parents=True)
    for img in (one / "color").rglob("*.png"):
        shutil.copy(img, one / "kind" / "fruit" / img.name)
    proc = mcbench(tmp_path, "dataset=folder", f"dataset.root={one}", "method=kmeans_image", *FAST,
                   results="one.csv")
    assert proc.returncode == 2
    assert last_line(proc) == (
        "mcbench: error: aspect 'kind' of dataset 'folder-one' has 1 class (fruit): there is nothing to cluster. "
        "Add class folders, or run another aspect (aspect=color; valid aspects: color, species)"
    )
    assert not (tmp_path / "one.csv").exists()


@pytest.mark.slow
def test_bad_images_through_the_cli_error_then_skip_with_the_count_in_the_row(fruit_root, tmp_path):
    root = tmp_path / "fruit"
    shutil.copytree(fruit_root, root)
    bad = _add_bad_files(root)
    (root / "mcbench.yaml").write_text(FRUIT_YAML)
    args = ["dataset=folder", f"dataset.root={root}", "method=kmeans_image", *FAST]
    proc = mcbench(tmp_path, *args)
    assert proc.returncode == 2
    line = last_line(proc)
    assert line.startswith("mcbench: error: dataset 'folder-fruit': 3 of 27 image file(s) cannot be read: ")
    assert all(str(p) in line for p in bad.values()) and "dataset.on_bad_image=skip" in line
    assert not (tmp_path / "runs.csv").exists()
    proc = mcbench(tmp_path, *args, "dataset.on_bad_image=skip")
    assert proc.returncode == 0, proc.stderr
    rows = ResultStore(tmp_path / "runs.csv").read()
    assert len(rows) == 2 and (rows["skipped_images"] == 3).all() and (rows["n_images"] == 24).all()
    assert "on_bad_image" not in rows["dataset_params"].iloc[0]  # not part of the run identity: the revision is


# ------------------------------------------------------------------------------------------ feature cache


def test_feature_cache_from_another_encoder_corrupted_or_nan_is_recomputed(random_clip, tmp_path):
    ds = build_dataset("synth_cards", n=12, seed=0, cache_dir=str(tmp_path))
    other = create_encoder("mcbench-tiny-clip", "random", init_seed=5)
    truth, hit = image_features(random_clip, ds, tmp_path, progress=False)
    assert not hit
    path = cache_path(tmp_path, random_clip, ds)
    assert not list(path.parent.glob(".*.tmp"))  # atomic: temp file renamed, nothing left beside it
    good = path.read_bytes()
    image_features(other, ds, tmp_path, progress=False)
    foreign = cache_path(tmp_path, other, ds).read_bytes()

    def reload(data: bytes) -> bool:
        path.write_bytes(data)
        feats, hit = image_features(random_clip, ds, tmp_path, progress=False)
        assert torch.equal(feats.embeddings, truth.embeddings)
        assert torch.equal(feats.pre_projection, truth.pre_projection)
        return hit

    assert reload(good)  # intact: loaded
    assert not reload(foreign)  # another encoder's file at this path: its key differs
    flipped = bytearray(good)
    flipped[-5] ^= 0xFF  # one tensor byte, same length: the checksum differs
    assert not reload(bytes(flipped))
    assert not reload(b"\x00" * 8 + good[8:])  # a broken header
    assert not reload(good[:100])  # truncated
    # a file whose key and checksum are right but whose features are NaN (written by a broken run)
    from safetensors.torch import save_file

    poisoned = {"embeddings": truth.embeddings.clone(), "pre_projection": truth.pre_projection.clone()}
    poisoned["embeddings"][3, 0] = float("nan")
    key = feature_key(random_clip, ds)
    save_file(poisoned, str(path), metadata={"key": key, "sha256": _checksum(poisoned)})
    feats, hit = image_features(random_clip, ds, tmp_path, progress=False)
    assert not hit and torch.isfinite(feats.embeddings).all()
    assert image_features(random_clip, ds, tmp_path, progress=False)[1]  # the recomputed file is loaded


_EXTRACT = """
import os, signal, sys
from mcbench.data.base import build_dataset
from mcbench.encoders import create_encoder
from mcbench.features import image_features
cache, mode, batch = sys.argv[1], sys.argv[2], int(sys.argv[4])
ds = build_dataset("synth_cards", n=int(sys.argv[3]), seed=0, image_size=32, cache_dir=cache)
enc = create_encoder("mcbench-tiny-clip", "random")
if mode == "die-at-rename":  # SIGKILL at the moment the finished temp file would be renamed into place
    os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
image_features(enc, ds, cache, progress=True, batch_size=batch)
"""


@pytest.mark.slow
def test_feature_extraction_killed_halfway_leaves_nothing_that_is_loaded(random_clip, tmp_path):
    n = 600
    cache = tmp_path / "cache"
    ds = build_dataset("synth_cards", n=n, seed=0, image_size=32, cache_dir=str(cache))  # images cached for the child
    final = cache_path(cache, random_clip, ds)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = tmp_path / "child.log"
    with open(log, "w") as err:
        child = subprocess.Popen([sys.executable, "-c", _EXTRACT, str(cache), "kill", str(n), "1"], stderr=err,
                                 stdout=subprocess.DEVNULL, env=env, start_new_session=True)
        done, deadline = 0, time.time() + 300
        while time.time() < deadline and child.poll() is None:
            counts = re.findall(rf"(\d+)/{n}", log.read_text(errors="replace"))
            done = int(counts[-1]) if counts else 0
            if 0 < done < n // 2:
                break
            time.sleep(0.05)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert 0 < done < n, f"the extraction was not caught halfway ({done}/{n})"
    assert child.returncode == -signal.SIGKILL and not final.exists()
    proc = subprocess.run([sys.executable, "-c", _EXTRACT, str(cache), "die-at-rename", str(n), "64"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL and not final.exists()
    assert len(list(final.parent.glob(".*.tmp"))) == 1  # the killed writer's complete temp file: never read
    rerun, hit = image_features(random_clip, ds, cache, progress=False)
    assert not hit and final.exists()
    clean, _ = image_features(random_clip, ds, tmp_path / "clean", progress=False)
    assert torch.equal(rerun.embeddings, clean.embeddings) and torch.equal(rerun.pre_projection, clean.pre_projection)
    assert image_features(random_clip, ds, cache, progress=False)[1]


def test_nan_features_from_the_encoder_stop_the_job_before_fitting(tmp_path):
    from safetensors.torch import save_file

    model = create_encoder("mcbench-tiny-clip", "random").model
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state["visual.conv1.weight"][0, 0, 0, 0] = float("nan")  # one broken weight poisons every image
    weights = tmp_path / "broken.safetensors"
    save_file(state, str(weights))
    proc = mcbench(tmp_path, "method=multi_map", "dataset=synth_cards", "dataset.n=20", "encoder=tiny_clip",
                   f"encoder.pretrained={weights}", "logger=none", "progress=false")
    assert proc.returncode == 2
    line = last_line(proc)
    assert line.startswith("mcbench: error: the encoder mcbench-tiny-clip (mcbench-tiny-clip/sha256:")
    assert "NaN/Inf features for 20 of 20 images of dataset 'synth_cards'" in line
    assert "no method was run" in line and "encoder.pretrained" in line
    assert not (tmp_path / "runs.csv").exists() and not list((tmp_path / "cache").rglob("*.safetensors"))


# ------------------------------------------------------------------------------------------------ training


def test_huge_learning_rate_stops_with_method_epoch_and_setting_and_no_row(tmp_path):
    proc = mcbench(tmp_path, "method=multi_map", "method.lr=1e30", "method.epochs=3", "method.batch_size=40",
                   "dataset=synth_cards", "dataset.n=40", "aspect=suits", *FAST)
    assert proc.returncode == 2
    line = last_line(proc)
    assert re.fullmatch(r"mcbench: error: multi_map: \S.* became NaN/Inf at epoch \d+; no result row was written\. "
                        r"The learning rate \(method\.lr=1e\+30(, method\.lr_scale=\w+)?\) is the likely cause: try a smaller one\.",
                        line), line
    assert not (tmp_path / "runs.csv").exists()


def test_k_larger_than_the_images_is_rejected_before_any_work(tmp_path):
    proc = mcbench(tmp_path, "method=kmeans_image", "dataset=synth_cards", "dataset.n=8", "aspect=number", *FAST)
    assert proc.returncode == 2
    assert last_line(proc) == "mcbench: error: aspect 'number' has k=13 classes but only 8 images"
    assert not (tmp_path / "cache" / "features").exists() and not (tmp_path / "runs.csv").exists()


@pytest.mark.slow
def test_fewer_words_than_k_and_an_empty_prompt_are_rejected_before_any_work(fruit_root, tmp_path):
    root = tmp_path / "fruit"
    shutil.copytree(fruit_root, root)
    (root / "mcbench.yaml").write_text(FRUIT_YAML.replace("[apples, bananas, grapes, pears]", "[apples, bananas]"))
    proc = mcbench(tmp_path, "dataset=folder", f"dataset.root={root}", "method=multi_map", *FAST)
    assert proc.returncode == 2
    assert last_line(proc) == ("mcbench: error: 2 reference words for folder-fruit/species but k=4: a word list must "
                               "have at least k words (apples, bananas)")
    assert not (tmp_path / "runs.csv").exists()  # not even the first aspect (color), whose words are fine
    assert not (tmp_path / "cache" / "features").exists()
    (root / "mcbench.yaml").write_text(FRUIT_YAML.replace("'Fruit with a color of *'", "''"))
    proc = mcbench(tmp_path, "dataset=folder", f"dataset.root={root}", "method=multi_map", *FAST)
    assert proc.returncode == 2
    assert last_line(proc) == (f"mcbench: error: {root / 'mcbench.yaml'}: the prompt of aspect 'color' is ''; it must "
                               f"contain exactly one '*' (the slot of the proxy word), e.g. 'Fruit with a color of *'")
    assert not (tmp_path / "runs.csv").exists()


# ------------------------------------------------------------------------------------------------- results


@pytest.mark.slow
def test_results_file_of_an_older_version_is_read_and_extended(tmp_path):
    args = ["method=kmeans_image", "dataset=synth_fruit", "dataset.n=40", *FAST]
    assert mcbench(tmp_path, *args, "aspect=color").returncode == 0
    path = tmp_path / "runs.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        header, *body = list(csv.reader(fh))
    dropped = ("skipped_images", "words_mode", "cluster_names", "name_collisions")
    keep = [i for i, c in enumerate(header[:-1]) if c not in dropped]
    with open(path, "w", newline="", encoding="utf-8") as fh:  # as an older mcbench wrote it: fewer columns
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([header[i] for i in keep] + [CRC_COLUMN])
        for row in body:
            fields = [row[i] for i in keep]
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow(fields)
            writer.writerow(fields + [f"{zlib.crc32(buf.getvalue().encode()):08x}"])
    old = ResultStore(path).read()
    assert len(old) == 1 and "skipped_images" not in old.columns
    proc = mcbench(tmp_path, *args)  # color is already there (read from the old file), species is new
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("skip kmeans_image synth_fruit/color") == 1
    store = ResultStore(path)
    df = store.read()
    assert store.last_read.rejected == 0 and list(df["aspect"]) == ["color", "species"]
    assert set(dropped) <= set(df.columns) and list(df.columns[: len(keep)]) == [header[i] for i in keep]
    assert df.loc[0, "nmi"] == old.loc[0, "nmi"] and pd.isna(df.loc[0, "skipped_images"])
    assert df.loc[1, "skipped_images"] == 0


# --------------------------------------------------------------------------------------------- determinism

# fast settings per trained method (every other method takes none)
FAST_METHOD = {"multi_map": {"epochs": 3, "batch_size": 30},
               "multi_sub": {"rounds": 1, "phase1_epochs": 2, "phase2_epochs": 2},
               "multi_dproxy": {"epochs": 6, "batch_size": 30}}
METRICS = ["nmi", "ri", "ari", "ami", "acc", "nmi_std", "ri_std", "ari_std", "nmi_other_aspects", "cluster_names",
           "representation", "epochs_run", "hparams", "n_images"]


@pytest.mark.slow
def test_every_method_gives_identical_rows_twice_and_other_seeds_other_trajectories(tmp_path):
    """Two CLI sweeps over every registered method: the same config and seed give the same metrics to the last
    digit; another seed gives another training trajectory (the per-epoch losses in history.json)."""
    names = METHODS.names()
    # per-method fast settings, picked up by Hydra for synth_cards (where the package ships its own
    # conf/method_dataset/<method>_synth_cards.yaml, that one wins: e.g. multi_map's CPU budget of 15 epochs)
    extra = tmp_path / "conf" / "method_dataset"
    extra.mkdir(parents=True)
    for name, settings in FAST_METHOD.items():
        (extra / f"{name}_synth_cards.yaml").write_text("# @package method\n" + json.dumps(settings) + "\n")
    common = [f"method={','.join(names)}", "dataset=synth_cards", "dataset.n=60", "aspect=suits",
              f"hydra.searchpath=['file://{tmp_path / 'conf'}']", *FAST]
    first = mcbench(tmp_path, *common, "seed=0,1", "hydra.sweep.dir=sweep1", multirun=True, results="a.csv")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    second = mcbench(tmp_path, *common, "seed=0", "hydra.sweep.dir=sweep2", multirun=True, results="b.csv")
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    a = pd.read_csv(tmp_path / "a.csv", dtype=str, keep_default_na=False)
    b = pd.read_csv(tmp_path / "b.csv", dtype=str, keep_default_na=False)
    assert sorted(b["method"]) == sorted(names) and len(a) == 2 * len(names)
    a0 = a[a["seed"] == "0"].set_index("run_id").sort_index()
    b = b.set_index("run_id").sort_index()
    assert list(a0.index) == list(b.index)  # the same identities
    pd.testing.assert_frame_equal(a0[METRICS], b[METRICS])  # strings: every digit
    histories = {}
    for row in (tmp_path / "sweep1").rglob("row.json"):
        meta = json.loads(row.read_text())
        histories[meta["method"], meta["seed"]] = json.loads((row.parent / "history.json").read_text())
    for row in (tmp_path / "sweep2").rglob("row.json"):
        meta = json.loads(row.read_text())
        assert json.loads((row.parent / "history.json").read_text()) == histories[meta["method"], 0], meta["method"]
    trained = [m for m in names if histories[m, 0]]
    assert {"multi_map", "multi_sub", "multi_dproxy"} <= set(trained)
    for method in trained:
        assert histories[method, 0] != histories[method, 1], method


# -------------------------------------------------------------------------------------------- the doc table


def test_reliability_doc_matches_the_tests():
    """Every test that docs/reliability.md names exists; every test of this file is named there."""
    doc = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    refs = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc)
    assert refs, "docs/reliability.md names no test"
    defined: dict[str, set[str]] = {}
    for file, _ in refs:
        if file not in defined:
            tree = ast.parse((REPO / file).read_text(encoding="utf-8"))
            defined[file] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                             and n.name.startswith("test_")}
    missing = [f"{f}::{t}" for f, t in refs if t not in defined[f]]
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
    here = {n.name for n in ast.parse(Path(__file__).read_text(encoding="utf-8")).body
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
    unnamed = here - {t for f, t in refs if f == "tests/test_reliability.py"}
    assert not unnamed, f"tests/test_reliability.py has tests that docs/reliability.md does not list: {unnamed}"
