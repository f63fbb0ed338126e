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
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mcbench.contracts import METHODS
from mcbench.data.base import build_dataset
from mcbench.data.folder_scan import BadImageError, DatasetWarning
from mcbench.data.images import MAX_DECODE_PIXELS, ImageReadError, check_image, load_rgb
from mcbench.encoders import create_encoder
from mcbench.features import _checksum, cache_path, feature_key, image_features
from mcbench.results.store import CRC_COLUMN, ResultStore

from test_datasets_folder import write_layout

REPO = Path(__file__).resolve().parent.parent
FAST = ["encoder=tiny_clip_random", "logger=none", "protocol.n_restarts=2", "progress=false"]
FRUIT_YAML = (
    "object: fruit\naspects:\n  color:\n    prompt: 'Fruit with a color of *'\n"
    "    words: [red, yellow, green, purple, orange]\n  species:\n    words: [apples, bananas, grapes, pears]\n"
)


def mcbench(tmp_path: Path, *args: str, multirun: bool = False, results: str = "runs.csv"):
    """``mcbench ...`` in this process (tests/cli_inprocess.py: same argv, folder, environment and exit status as
    a subprocess, without torch's import per call)."""
    from cli_inprocess import run_cli

    env = {"MCBENCH_CACHE": str(tmp_path / "cache"), "WANDB_MODE": "offline"}
    return run_cli(tmp_path, *(["-m"] if multirun else []), f"results_file={tmp_path / results}", *args, env=env)


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


# ------------------------------------------------------------------ nothing lost, nothing counted twice (issue 20)

ONE_TASK = ["method=kmeans_image", "dataset=synth_fruit", "dataset.n=40", "aspect=color"]


@pytest.fixture(scope="module")
def job_cache(tmp_path_factory) -> Path:
    """One cache (synthetic images, features) for the in-process jobs of this file."""
    return tmp_path_factory.mktemp("job-cache")


def compose_job(results: Path, cache: Path, *overrides: str):
    """The CLI's config, composed in-process by Hydra's compose API (``mcbench.runner.run`` takes it as the app does)."""
    from hydra import compose, initialize_config_module

    with initialize_config_module("mcbench.conf", version_base="1.3"):
        fast = [o for o in FAST if not any(o.split("=")[0] == x.split("=")[0] for x in overrides)]
        return compose("config", overrides=[f"results_file={results}", f"paths.cache_dir={cache}", *fast, *overrides])


def _as_root_mount(*args: str) -> bool:
    return os.geteuid() == 0 and subprocess.run(["mount", *args], capture_output=True).returncode == 0


def _fill(folder: Path) -> None:
    """Fill the filesystem of ``folder`` to the last byte (a disk that became full)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_disk_full_is_one_error_and_leaves_no_half_row(tmp_path, job_cache):
    """The issue's reproduction: the results file on a 64 KiB tmpfs that fills up. The append's short write is
    undone and raised as one error (exit 2 through the CLI); the rows already there are intact; once space is
    freed the same task is written."""
    from mcbench.results.store import ResultsWriteError
    from mcbench.runner import run

    disk = tmp_path / "disk"
    disk.mkdir()
    if not _as_root_mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)):
        pytest.skip("mounting a tmpfs needs root; test_a_row_cut_by_the_file_size_limit_is_undone covers the write")
    try:
        results = disk / "runs.csv"
        seed = 0
        while True:  # rows until the next one cannot fit in the slack of the file's last 4 KiB page
            run(compose_job(results, job_cache, *ONE_TASK, f"seed={seed}"))
            seed += 1
            size, row_bytes = results.stat().st_size, len(results.read_bytes().splitlines()[-1])
            if -size % 4096 < row_bytes - 64:
                break
        before = results.read_bytes()
        _fill(disk)
        with pytest.raises(ResultsWriteError) as err:
            run(compose_job(results, job_cache, *ONE_TASK, f"seed={seed}"))
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"cannot write the result row to {results}: No space left on device")
        assert "the partial row was removed" in msg and "Free space on that disk" in msg
        assert results.read_bytes() == before  # no half row
        store = ResultStore(results)
        assert len(store.read()) == seed and store.last_read.rejected == 0
        (disk / "filler").unlink()
        run(compose_job(results, job_cache, *ONE_TASK, f"seed={seed}"))
        assert sorted(ResultStore(results).read()["seed"]) == list(range(seed + 1))
    finally:
        subprocess.run(["umount", str(disk)], check=True)


_FSIZE_CHILD = """
import os, resource, signal, sys
from mcbench.results.store import ResultStore, ResultsWriteError
path = sys.argv[1]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing the process
limit = os.path.getsize(path) + 100
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # 100 more bytes may be written: half a row
try:
    ResultStore(path).append({"run_id": "r2", "status": "ok", "nmi": 0.5, "note": "x" * 500})
except ResultsWriteError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_row_cut_by_the_file_size_limit_is_undone(tmp_path):
    """A short ``os.write`` for real (RLIMIT_FSIZE in a child process; no root needed): 100 bytes of the row are
    written, the rest fails; the store truncates the file back and raises one error."""
    path = tmp_path / "runs.csv"
    ResultStore(path).append({"run_id": "r1", "status": "ok", "nmi": 0.4, "note": "y"})
    before = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", _FSIZE_CHILD, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert re.search(r"File too large \(wrote 100 of \d+ bytes; the partial row was removed", proc.stdout)
    assert path.read_bytes() == before
    ResultStore(path).append({"run_id": "r2", "status": "ok", "nmi": 0.5, "note": "x" * 500})
    assert list(ResultStore(path).read()["run_id"]) == ["r1", "r2"]


def test_force_three_times_keeps_history_and_every_reader_counts_one_row(tmp_path, job_cache):
    """force=true appends a newer copy (history); a rerun without force skips; the leaderboard and the resume
    check count one row per run_id, the newest."""
    from mcbench.results.leaderboard import load_rows
    from mcbench.results.store import latest_per_run
    from mcbench.runner import run

    results = tmp_path / "runs.csv"
    for _ in range(3):
        run(compose_job(results, job_cache, *ONE_TASK, "force=true"))
    df = ResultStore(results).read()
    assert len(df) == 3 and df["run_id"].nunique() == 1
    assert len(latest_per_run(df)) == 1 and latest_per_run(df)["finished_at"].iloc[0] == df["finished_at"].iloc[-1]
    assert len(load_rows(results)) == 1
    (row,) = run(compose_job(results, job_cache, *ONE_TASK))  # not forced: skipped, the stored row shown
    assert row["run_id"] == df["run_id"].iloc[0] and len(ResultStore(results).read()) == 3


def test_two_jobs_of_one_task_at_once_write_it_once(tmp_path, job_cache, capsys):
    """The runner's side of the lock-time check: two jobs of the same task started together (threads of this
    process, so both read the file before either appends) leave one row; the one that finds the other's row
    says so and returns the stored row."""
    import threading

    from mcbench.runner import run

    results = tmp_path / "runs.csv"
    cfgs = [compose_job(results, job_cache, *ONE_TASK) for _ in range(2)]
    METHODS.get("kmeans_image")  # load the method registry here: its lazy first load is not thread-safe
    out: list = [None, None]

    def job(i: int) -> None:
        out[i] = run(cfgs[i])

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert all(o is not None and len(o) == 1 for o in out)
    df = ResultStore(results).read()
    assert len(df) == 1 and out[0][0]["run_id"] == out[1][0]["run_id"] == df["run_id"].iloc[0]
    printed = capsys.readouterr().out
    assert "another job wrote it to" in printed or "already in" in printed


@contextmanager
def read_only(path: Path):
    """``path`` (a folder or a file) made read-only for real: a read-only bind mount as root (root ignores
    permission bits), else chmod."""
    if _as_root_mount("--bind", str(path), str(path)):
        try:
            assert subprocess.run(["mount", "-o", "remount,bind,ro", str(path)]).returncode == 0
            yield
        finally:
            subprocess.run(["umount", str(path)], check=True)
        return
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        path.chmod(mode)


def test_a_bad_results_path_is_one_error_before_any_work(tmp_path):
    """results_file pointing at a folder, in a read-only folder, or at a read-only file: one error naming the
    path and the fix, raised before the dataset is built (no cache written), where it was a traceback after the
    fit."""
    from mcbench.results.store import ResultsPathError
    from mcbench.runner import run

    cache = tmp_path / "cache"
    with pytest.raises(ResultsPathError, match=f"results_file={tmp_path} is a folder, not a file. Point results_file"):
        run(compose_job(tmp_path, cache, *ONE_TASK))
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    with read_only(shelf), pytest.raises(ResultsPathError) as err:
        run(compose_job(shelf / "runs.csv", cache, *ONE_TASK))
    assert str(err.value).startswith(f"the folder {shelf} of results_file={shelf / 'runs.csv'} is not writable (")
    results = tmp_path / "runs.csv"
    ResultStore(results).append({"run_id": "r0", "status": "ok"})
    before = results.read_bytes()
    with read_only(results), pytest.raises(ResultsPathError, match=f"results_file={results} is not writable \\("):
        run(compose_job(results, cache, *ONE_TASK))
    assert results.read_bytes() == before and not cache.exists()  # nothing computed


def test_a_logger_failure_is_a_warning_and_the_row_is_kept(tmp_path, job_cache, monkeypatch, caplog):
    """WANDB_MODE=online without a key: wandb raises UsageError; the task's files go to a read-only folder. The
    row is appended before either, each failure is one warning, and the job ends normally."""
    from omegaconf import open_dict

    from mcbench.runner import run

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc key
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    results = tmp_path / "runs.csv"
    cfg = compose_job(results, job_cache, *ONE_TASK, "logger=wandb", f"logger.dir={tmp_path / 'outputs'}")
    shelf = tmp_path / "artifacts"
    shelf.mkdir()
    with open_dict(cfg):
        cfg.artifacts_dir = str(shelf)  # the task's files (partition, history): a read-only folder
    with caplog.at_level("WARNING", logger="mcbench"), read_only(shelf):
        rows = run(cfg)
    assert len(rows) == 1 and len(ResultStore(results).read()) == 1
    assert "logger=wandb failed (UsageError" in caplog.text and "result rows are still written" in caplog.text
    assert f"the task's files were not saved under {shelf}" in caplog.text


def test_bad_subset_and_restart_settings_name_the_setting(tmp_path, job_cache):
    """data.per_class=0 used to run on every image (the setting left empty in the row); -1 said "negative
    dimensions are not allowed"; protocol.n_restarts=0 ended in an IndexError. Each is one error naming the
    setting, before any work; a subset larger than a class is named with the class."""
    from mcbench.runner import ConfigError, run

    results = tmp_path / "runs.csv"
    for value in ("0", "-1"):
        with pytest.raises(ConfigError, match=f"data.per_class={value} is not valid: use a positive number of images "
                                              f"per class \\(data.per_class=20\\), or data.per_class=null"):
            run(compose_job(results, job_cache, *ONE_TASK, f"data.per_class={value}"))
    with pytest.raises(ConfigError, match="protocol.n_restarts=0 is not valid: use a positive integer"):
        run(compose_job(results, job_cache, *ONE_TASK, "protocol.n_restarts=0"))
    with pytest.raises(ConfigError, match=r"data.per_class=40: class '\w+' of aspect 'color' has only \d+ images; "
                                          r"use data.per_class=\d+ or less"):
        run(compose_job(results, job_cache, *ONE_TASK, "data.per_class=40"))
    assert not results.exists()


_LOKY_PARENT = """
import sys, time
from joblib import Parallel, delayed

def job(folder, i):
    import os, time
    from pathlib import Path
    from mcbench.parent_watch import stop_with_parent
    assert stop_with_parent(poll_s=0.2)
    Path(folder, f"worker-{i}").write_text(str(os.getpid()))
    time.sleep(float(sys.argv[2]))  # a long task ...
    Path(folder, f"row-{i}").write_text("appended after the sweep died")  # ... whose row must never be written

Parallel(n_jobs=2, backend="loky")(delayed(job)(sys.argv[1], i) for i in range(2))
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_sweep_parent_stops_its_loky_workers(tmp_path):
    """The mechanism behind hydra/launcher=parallel's workers: joblib loky workers that called stop_with_parent
    (run_with_results does, at every job's start) end within a second of their parent's SIGKILL, before their
    task could append a row."""
    parent = subprocess.Popen([sys.executable, "-c", _LOKY_PARENT, str(tmp_path), "30"], start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(tmp_path.glob("worker-*"))) < 2:
            assert parent.poll() is None
            time.sleep(0.1)
        workers = [int(p.read_text()) for p in tmp_path.glob("worker-*")]
        assert len(workers) == 2 and all(map(_alive, workers))
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 15
        while time.time() < deadline and any(map(_alive, workers)):
            time.sleep(0.1)
        assert not any(map(_alive, workers)), "loky workers outlived their parent"
        assert not list(tmp_path.glob("row-*"))
    finally:
        try:
            os.killpg(parent.pid, signal.SIGKILL)  # the group: whatever is left of this test's processes
        except ProcessLookupError:
            pass


def test_created_files_respect_the_umask(tmp_path, job_cache):
    """Results file (and its lock), feature cache, image-check cache and LLM cache: 0644 under umask 0022 and
    0664 under 0002, as open() would make them (mkstemp's 0600 made a shared results folder unreadable)."""
    from test_llm_words import FakeOpenAI, fruit_dataset

    from mcbench.llm import OpenAIWords

    old = os.umask(0o022)
    try:
        for umask, mode in ((0o022, 0o644), (0o002, 0o664)):
            os.umask(umask)
            here = tmp_path / f"u{umask:03o}"
            store = ResultStore(here / "runs.csv")
            store.append({"run_id": "r1", "status": "ok"})
            store.append({"run_id": "r2", "status": "ok", "extra": 1})  # a rewrite with new columns
            root = here / "fruit"
            write_layout(root, "fruit", 6)
            ds = build_dataset("folder", root=str(root), cache_dir=str(here / "cache"))
            image_features(create_encoder("mcbench-tiny-clip", "random"), ds, here / "cache", progress=False)
            server = FakeOpenAI()
            try:
                words = OpenAIWords(model="fake", base_url=server.url, api_key_env=None, cache_dir=here / "llm")
                words(fruit_dataset(), fruit_dataset().aspects["color"])
            finally:
                server.stop()
            made = [here / "runs.csv", here / "runs.csv.lock", *(here / "cache").rglob("*.safetensors"),
                    *(here / "cache" / "image_checks").rglob("*.json"), *(here / "llm").glob("*.json")]
            assert len(made) == 5
            assert {str(p): oct(p.stat().st_mode & 0o777) for p in made} == {str(p): oct(mode) for p in made}
    finally:
        os.umask(old)


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
