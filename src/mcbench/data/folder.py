"""Image folders as multi-view datasets: the authors' layout ``<root>/<aspect>/<class>/<image>``.

The papers' code reads one ``torchvision.datasets.ImageFolder`` per aspect, with the same images copied under
each aspect's class folders. This module reads that layout into one :class:`MultiViewDataset`:

* **Keying.** An image is identified by its file name relative to its class folder (``0_100.jpg``, or
  ``sub/0_100.jpg`` when class folders nest), never by its ImageFolder index (the orders differ between aspects).
  The same name under two class folders of one aspect is an error that names both paths. An image present under
  some aspects but not others gets label ``-1`` for the aspects it lacks; it is reported in ``dataset.info`` and
  as a :class:`DatasetWarning` (the runner leaves ``-1`` images out of that aspect's task).
* **Classes** are the non-empty class folders, sorted by name (ImageFolder's order); images are in name order.
* **Pixels are read lazily** from ``dataset.paths`` (the copy under the first aspect that has the image).
* **Fingerprint** (``dataset.revision``, the key of the feature cache): ``fingerprint="stat"`` (default) hashes the
  dataset name, aspect and class names, every image's relative name, file size and labels. It needs only a
  directory listing (10k files: well under a second) and changes when a file is added, removed, renamed, relabelled
  or resized; it does *not* see an edit that keeps the byte size. ``fingerprint="content"`` also hashes every file's
  bytes (every copy), and checks that the copies of one image under different aspects are identical; it reads the
  whole dataset once per build (seconds for the papers' sets, longer for CIFAR-10-MC).
* **Verification** (``verify``): ``strict`` (default) raises on structural problems and on expected counts that
  fail; ``warn`` reports them as warnings and loads anyway; ``off`` skips the count checks (duplicate names stay an
  error: they make the labels ambiguous). ``checksum`` (optional) is a revision the build must reproduce.
* **Unreadable images** (``on_bad_image``): every image that will be read is decoded once when the dataset is built
  (:func:`mcbench.data.images.check_image`: a JPEG at 1/8 scale, which still reads every byte; see
  ``docs/reliability.md`` for the cost), in threads, and the result is cached under ``cache_dir`` by the files'
  names, sizes and modification times, so later builds only list the folder. ``error`` (default) raises one
  :class:`BadImageError` that lists every bad file with its path and reason; ``skip`` leaves them out of every
  aspect (the revision changes accordingly) and counts them in ``info["skipped_images"]`` (a result-row column).

``dataset=folder dataset.root=PATH`` reads any such folder; an optional ``mcbench.yaml`` at its root names the
aspects and gives their prompt templates, reference words and concept words (see ``docs/datasets.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from mcbench.atomic import write_text_atomic
from mcbench.data.base import DATASETS, Aspect, MultiViewDataset
from mcbench.data.images import ImageReadError, check_image, load_rgb

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"})
CONFIG_FILE = "mcbench.yaml"
VERIFY_MODES = ("strict", "warn", "off")
FINGERPRINTS = ("stat", "content")
BAD_IMAGE_MODES = ("error", "skip")
#: Bump when the image check changes (it keys the cached check results).
IMAGE_CHECK_VERSION = 1
#: The prompt of an aspect that ``mcbench.yaml`` does not describe (``{aspect}`` is its concept word).
DEFAULT_PROMPT = "A photo with a {aspect} of *"
#: Bump when the fingerprint recipe changes (it is part of the revision).
MANIFEST_VERSION = 1
_SKIP_DIRS = {"__MACOSX"}
LAYOUT = "<root>/<aspect>/<class>/<image> (the same image file names repeated under every aspect)"


class DatasetWarning(UserWarning):
    """Something in an on-disk dataset that the loader worked around (missing images, empty classes...)."""


class DatasetLayoutError(ValueError):
    """The folder does not have the expected layout, or its content contradicts itself."""


class BadImageError(DatasetLayoutError):
    """Image files that cannot be decoded (``dataset.on_bad_image=error``); the message lists them all."""


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in _SKIP_DIRS


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


# ---------------------------------------------------------------------------------------------- scanning


@dataclass
class AspectScan:
    """One aspect folder: its classes and, per image key, (class index, path, size in bytes)."""

    name: str
    folder: Path
    classes: tuple[str, ...]
    files: dict[str, tuple[int, str, int]]
    empty_classes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # non-image files and loose files (relative to the folder)
    #: image key -> (path, reason) of image names that are broken symbolic links (dangling, or a link loop)
    broken_links: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: folders not walked because a symbolic link leads back to a folder above them (a loop)
    symlink_loops: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self.classes, 0)
        for ci, _, _ in self.files.values():
            out[self.classes[ci]] += 1
        return out


def _kind(entry: os.DirEntry) -> str:
    """'dir', 'file', 'loop' (a symbolic link that resolves to itself: ELOOP), 'dangling' (a link whose target
    does not exist) or 'other'. ``DirEntry.is_dir`` raises on a link loop; this never does."""
    try:
        if entry.is_dir():
            return "dir"
        if entry.is_file():
            return "file"
    except OSError:
        return "loop"
    try:
        return "dangling" if entry.is_symlink() else "other"
    except OSError:
        return "other"


def _link_reason(entry: os.DirEntry, kind: str) -> str:
    try:
        target = os.readlink(entry.path)
    except OSError:
        target = "?"
    if kind == "loop":
        return f"symbolic link loop (-> {target}; it never reaches a file)"
    return f"dangling symbolic link (its target {target} does not exist)"


def _walk_images(top: str, broken: dict[str, tuple[str, str]] | None = None,
                 loops: list[str] | None = None) -> Iterable[tuple[str, os.DirEntry]]:
    """(name relative to ``top`` with '/' separators, entry) of every non-hidden file under ``top``.

    Broken symbolic links (dangling or looping) go to ``broken`` (relative name -> (path, reason)); a folder
    link back to a folder above it (a loop, common on shared drives) is not followed and goes to ``loops``."""
    chain = set()
    for folder in (Path(os.path.realpath(top)), *Path(os.path.realpath(top)).parents):
        try:  # every folder above ``top`` too: a class folder's link to its aspect folder is a loop
            st = os.stat(folder)
            chain.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    root_ancestors = frozenset(chain)
    stack = [("", top, root_ancestors)]
    while stack:
        prefix, path, ancestors = stack.pop()
        with os.scandir(path) as it:
            for entry in it:
                if _hidden(entry.name):
                    continue
                rel = f"{prefix}{entry.name}"
                kind = _kind(entry)
                if kind == "dir":
                    try:
                        st = entry.stat()
                        node = (st.st_dev, st.st_ino)
                    except OSError:
                        node = None
                    if node is not None and node in ancestors:
                        if loops is not None:
                            loops.append(entry.path)
                        continue
                    stack.append((f"{rel}/", entry.path, ancestors | {node} if node else ancestors))
                elif kind == "file":
                    yield rel, entry
                elif kind in ("loop", "dangling") and broken is not None:
                    broken[rel] = (entry.path, _link_reason(entry, kind))


def scan_aspect(folder: str | Path, name: str | None = None) -> AspectScan:
    """Read one aspect folder ``<folder>/<class>/<image>``; raise on a file name found under two classes."""
    folder = Path(folder)
    name = name or folder.name
    class_dirs, ignored = [], []
    with os.scandir(folder) as it:
        for entry in it:
            if _hidden(entry.name):
                continue
            if _kind(entry) == "dir":
                class_dirs.append(entry.name)
            else:
                ignored.append(entry.name)
    files: dict[str, tuple[int, str, int]] = {}
    classes, empty = [], []
    broken_links: dict[str, tuple[str, str]] = {}
    loops: list[str] = []
    for cls in sorted(class_dirs):
        found = []
        broken: dict[str, tuple[str, str]] = {}
        for rel, entry in _walk_images(str(folder / cls), broken, loops):
            if not _is_image(rel):
                ignored.append(f"{cls}/{rel}")
                continue
            found.append((rel, entry.path, entry.stat().st_size))
        for rel, hit in broken.items():
            if _is_image(rel):
                broken_links.setdefault(rel, hit)
            else:
                ignored.append(f"{cls}/{rel}")
        if not found:
            empty.append(cls)
            continue
        ci = len(classes)
        classes.append(cls)
        for rel, path, size in found:
            if rel in files:
                other = files[rel][1]
                raise DatasetLayoutError(
                    f"aspect '{name}' lists the image name '{rel}' under two classes: {other} and {path}. Images are "
                    f"matched across aspects by their file name within the class folder, so a name must be unique "
                    f"within an aspect: remove the wrong copy or rename one of them (in every aspect)."
                )
            files[rel] = (ci, path, size)
    return AspectScan(name, folder, tuple(classes), files, empty, sorted(ignored), broken_links, sorted(loops))


def _has_class_with_images(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:
            subdirs = [e.path for e in it if not _hidden(e.name) and _kind(e) == "dir"]
    except OSError:
        return False
    for sub in subdirs:
        for rel, _ in _walk_images(sub):
            if _is_image(rel):
                return True
    return False


def child_dirs(root: Path) -> list[str]:
    """The visible sub-folders of ``root``, sorted."""
    with os.scandir(root) as it:
        return sorted(e.name for e in it if not _hidden(e.name) and _kind(e) == "dir")


def discover_aspects(root: str | Path) -> list[str]:
    """The sub-folders of ``root`` that hold class folders with images (sorted)."""
    root = Path(root)
    return [d for d in child_dirs(root) if _has_class_with_images(root / d)]


# --------------------------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expect:
    """Facts a dataset folder must show. Every field is optional: ``None`` means unknown, not checked.

    ``n`` is the number of distinct images over all aspects (one value, or a tuple of accepted values);
    ``k``/``n_images``/``counts``/``classes`` map an aspect to its class count, its number of images, its images
    per class (names and numbers), or its class names. Names compare case-insensitively.
    """

    n: int | tuple[int, ...] | None = None
    k: Mapping[str, int] = field(default_factory=dict)
    n_images: Mapping[str, int] = field(default_factory=dict)
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    classes: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def check(self, scans: Mapping[str, AspectScan], n_total: int) -> list[str]:
        """Human-readable mismatches, empty when everything known matches."""
        bad = []
        if self.n is not None:
            accepted = (self.n,) if isinstance(self.n, int) else tuple(self.n)
            if n_total not in accepted:
                want = " or ".join(f"{v:,}" for v in accepted)
                bad.append(f"{n_total:,} distinct images, expected {want}")
        for aspect, scan in scans.items():
            k = self.k.get(aspect)
            if k is not None and len(scan.classes) != k:
                bad.append(f"aspect '{aspect}' has {len(scan.classes)} classes ({', '.join(scan.classes)}), expected {k}")
            n = self.n_images.get(aspect)
            if n is not None and len(scan.files) != n:
                bad.append(f"aspect '{aspect}' has {len(scan.files):,} images, expected {n:,}")
            names = self.classes.get(aspect)
            if names is not None:
                have = {c.casefold() for c in scan.classes}
                want = {c.casefold() for c in names}
                if have != want:
                    bad.append(
                        f"aspect '{aspect}' has classes {', '.join(scan.classes)}; expected {', '.join(names)}"
                    )
            counts = self.counts.get(aspect)
            if counts is not None:
                have_counts = {c.casefold(): v for c, v in scan.counts().items()}
                want_counts = {c.casefold(): v for c, v in counts.items()}
                if have_counts != want_counts:
                    diff = [
                        f"{c}: {have_counts.get(c.casefold(), 0)} (expected {v})"
                        for c, v in counts.items()
                        if have_counts.get(c.casefold(), 0) != v
                    ] + [f"{c}: unexpected class" for c in scan.classes if c.casefold() not in want_counts]
                    bad.append(f"aspect '{aspect}' class counts differ: {'; '.join(diff)}")
        return bad


# ---------------------------------------------------------------------------------------------- building


@dataclass
class FolderDataset(MultiViewDataset):
    """A :class:`MultiViewDataset` read from image files; an unreadable file is named in the error."""

    def image(self, i: int) -> Image.Image:
        path = self.paths[i]  # type: ignore[index]
        try:
            return load_rgb(path)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"image {path} of dataset '{self.name}' is gone (it was listed when the dataset was built)"
            ) from exc
        except ImageReadError as exc:
            raise ImageReadError(
                f"cannot read image {path} of dataset '{self.name}': {exc}. It decoded when the dataset was built, "
                f"so it probably changed since: replace or delete it and rerun (dataset.on_bad_image=skip leaves "
                f"unreadable files out)"
            ) from exc


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _report(message: str, verify: str, problems: list[str]) -> None:
    """Raise (strict) or warn about ``problems``."""
    if not problems:
        return
    text = message + "; ".join(problems)
    if verify == "strict":
        raise DatasetLayoutError(text)
    warnings.warn(text, DatasetWarning, stacklevel=3)


def check_modes(verify: str, fingerprint: str, on_bad_image: str = "error") -> None:
    if on_bad_image not in BAD_IMAGE_MODES:
        raise ValueError(
            f"dataset.on_bad_image={on_bad_image!r} is not valid; choose one of: {', '.join(BAD_IMAGE_MODES)}"
        )
    if verify not in VERIFY_MODES:
        raise ValueError(f"dataset.verify={verify!r} is not valid; choose one of: {', '.join(VERIFY_MODES)}")
    if fingerprint not in FINGERPRINTS:
        raise ValueError(
            f"dataset.fingerprint={fingerprint!r} is not valid; choose one of: {', '.join(FINGERPRINTS)}"
        )


# ----------------------------------------------------------------------------------------- unreadable images


def _read_copies(scans: Mapping[str, AspectScan]) -> dict[str, str]:
    """Image key -> the path that is read for it (the copy under the first aspect that has it)."""
    out: dict[str, str] = {}
    for scan in scans.values():
        for key, (_, path, _) in scan.files.items():
            out.setdefault(key, path)
    return out


def find_bad_images(
    name: str, scans: Mapping[str, AspectScan], cache_dir: Any = None
) -> dict[str, tuple[str, str]]:
    """Image key -> (path, reason) for every image that does not decode (see ``mcbench.data.images``).

    The result is cached under ``<cache_dir>/image_checks/<name>/`` by the read files' keys, sizes and modification
    times: a changed, added or removed file means a new check."""
    from concurrent.futures import ThreadPoolExecutor

    read = _read_copies(scans)
    keys = sorted(read)
    cache_file = None
    if cache_dir:
        h = hashlib.sha256(f"mcbench-image-check/{IMAGE_CHECK_VERSION}\n{name}\n".encode())
        for key in keys:
            try:
                st = os.stat(read[key])
                h.update(f"{key}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{key}\t-\n".encode())
        cache_file = Path(str(cache_dir)) / "image_checks" / _slug(name) / f"{h.hexdigest()[:20]}.json"
        if cache_file.is_file():
            try:
                stored = json.loads(cache_file.read_text(encoding="utf-8"))
                return {k: (read[k], reason) for k, reason in stored["bad"].items() if k in read}
            except (OSError, ValueError, KeyError, TypeError):
                pass  # unreadable cache: check again
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:  # Pillow's decoders release the GIL
        reasons = list(pool.map(lambda k: check_image(read[k]), keys))
    bad = {k: (read[k], r) for k, r in zip(keys, reasons) if r is not None}
    if cache_file is not None:
        record = {"n_checked": len(keys), "bad": {k: r for k, (_, r) in bad.items()}}
        try:
            write_text_atomic(cache_file, json.dumps(record))
        except OSError:
            pass  # a read-only cache only costs a new check next time
    return bad


def bad_images_message(name: str, bad: Mapping[str, tuple[str, str]], n_total: int, limit: int = 20) -> str:
    """One line: how many files are bad, each path with its reason (up to ``limit``), and what to do."""
    listed = [f"{path} ({reason})" for path, reason in sorted(bad.values())]
    more = f"; and {len(listed) - limit} more" if len(listed) > limit else ""
    return (
        f"dataset '{name}': {len(bad)} of {n_total} image file(s) cannot be read: {'; '.join(listed[:limit])}{more}. "
        f"Replace or delete them, or leave them out with dataset.on_bad_image=skip (the number skipped is recorded "
        f"in each result row's skipped_images column)."
    )


def _without(scan: AspectScan, drop: set[str]) -> AspectScan:
    """``scan`` without the images ``drop``; classes left without images become empty classes."""
    kept = {k: v for k, v in scan.files.items() if k not in drop}
    used = sorted({ci for ci, _, _ in kept.values()})
    remap = {old: new for new, old in enumerate(used)}
    classes = tuple(scan.classes[ci] for ci in used)
    emptied = [c for ci, c in enumerate(scan.classes) if ci not in remap]
    files = {k: (remap[ci], path, size) for k, (ci, path, size) in kept.items()}
    return AspectScan(scan.name, scan.folder, classes, files, sorted(scan.empty_classes + emptied), scan.ignored,
                      {k: v for k, v in scan.broken_links.items() if k not in drop}, scan.symlink_loops)


def build_from_scans(
    name: str,
    scans: Mapping[str, AspectScan],
    aspects: Mapping[str, Aspect],
    *,
    verify: str = "strict",
    fingerprint: str = "stat",
    checksum: str | None = None,
    info: dict[str, Any] | None = None,
    checksum_hint: str = "",
    on_bad_image: str = "error",
    cache_dir: Any = None,
) -> FolderDataset:
    """Join the aspect scans on image names into one dataset (``aspects`` supplies prompts and words; its
    ``classes`` are replaced by the scanned class folders). Every image is decoded once first (``on_bad_image``)."""
    check_modes(verify, fingerprint, on_bad_image)
    bad = find_bad_images(name, scans, cache_dir)
    for scan in scans.values():  # an image name that is a broken symbolic link cannot be read either
        for key, hit in scan.broken_links.items():
            bad.setdefault(key, hit)
    loops = sorted({p for s in scans.values() for p in s.symlink_loops})
    if loops:
        warnings.warn(
            f"dataset '{name}': {len(loops)} folder link(s) lead back to a folder above them (a symbolic link loop), "
            f"not followed: {', '.join(loops[:3])}",
            DatasetWarning,
            stacklevel=2,
        )
    if bad:
        n_read = len(set(_read_copies(scans)) | set(bad))
        if on_bad_image == "error":
            raise BadImageError(bad_images_message(name, bad, n_read))
        scans = {a: _without(s, set(bad)) for a, s in scans.items()}
        warnings.warn(
            f"dataset '{name}': skipped {len(bad)} of {n_read} image file(s) that cannot be read "
            f"(dataset.on_bad_image=skip), e.g. {'; '.join(f'{p} ({r})' for p, r in sorted(bad.values())[:3])}",
            DatasetWarning,
            stacklevel=2,
        )
        empty = [a for a, s in scans.items() if not s.files]
        if empty:
            raise BadImageError(
                f"dataset '{name}': no readable image is left in aspect(s) {', '.join(empty)} after skipping "
                f"{len(bad)} unreadable file(s): " + bad_images_message(name, bad, n_read)
            )
    order = list(scans)
    keys = sorted(set().union(*(s.files for s in scans.values())))
    n = len(keys)
    labels = {a: np.full(n, -1, dtype=np.int64) for a in order}
    paths: list[str] = []
    sizes: list[int] = []
    mismatched: list[str] = []
    for i, key in enumerate(keys):
        first = None
        for a in order:
            hit = scans[a].files.get(key)
            if hit is None:
                continue
            labels[a][i] = hit[0]
            if first is None:
                first = hit
            elif hit[2] != first[2]:
                mismatched.append(f"{first[1]} ({first[2]} bytes) vs {hit[1]} ({hit[2]} bytes)")
        assert first is not None
        paths.append(first[1])
        sizes.append(first[2])
    info = dict(info or {})
    if mismatched:
        _report(
            f"dataset '{name}': {len(mismatched)} image names have copies of different sizes under different "
            f"aspects, so they are probably different images sharing a name: ",
            verify,
            mismatched[:3] + ["use dataset.verify=warn to load anyway (the first aspect's copy is read)"],
        )
        info["size_mismatches"] = len(mismatched)

    missing: dict[str, dict[str, Any]] = {}
    for a in order:
        lacking = [keys[i] for i in np.flatnonzero(labels[a] < 0)]
        if lacking:
            present = [b for b in order if b != a]
            missing[a] = {"count": len(lacking), "examples": lacking[:5]}
            warnings.warn(
                f"dataset '{name}': {len(lacking)} of {n} images are under aspect(s) {', '.join(present)} but not "
                f"under '{a}' (e.g. {', '.join(lacking[:3])}); they get label -1 for '{a}' and are left out of its "
                f"task",
                DatasetWarning,
                stacklevel=2,
            )
    for a, scan in scans.items():
        if scan.empty_classes:
            warnings.warn(
                f"dataset '{name}': aspect '{a}' has class folders without images, ignored: "
                f"{', '.join(scan.empty_classes)}",
                DatasetWarning,
                stacklevel=2,
            )

    h = hashlib.sha256()
    h.update(f"mcbench-folder-manifest/{MANIFEST_VERSION}/{fingerprint}\n{name}\n".encode())
    for a in order:
        h.update(f"aspect\t{a}\t{chr(31).join(scans[a].classes)}\n".encode())
    for i, key in enumerate(keys):
        row = "\t".join([key, str(sizes[i])] + [str(int(labels[a][i])) for a in order])
        h.update(row.encode() + b"\n")
    if fingerprint == "content":
        differing = []
        for i, key in enumerate(keys):
            read = _file_digest(paths[i])  # the copy whose pixels are encoded
            copies = [scans[a].files[key][1] for a in order if key in scans[a].files]
            others = {_file_digest(p) for p in copies if p != paths[i]} - {read}
            if others:
                differing.append(key)
            h.update(read.encode())
        if differing:
            _report(
                f"dataset '{name}': {len(differing)} image names have copies with different content under different "
                f"aspects (e.g. {', '.join(differing[:3])}): ",
                verify,
                ["use dataset.verify=warn to load anyway (the first aspect's copy is read)"],
            )
            info["content_mismatches"] = len(differing)
    revision = h.hexdigest()[:16]
    if checksum and str(checksum) != revision:
        _report(
            f"dataset '{name}': its fingerprint is {revision} ({fingerprint}) but dataset.checksum={checksum}. ",
            verify,
            [checksum_hint or "the folder differs from the recorded one"],
        )

    final_aspects = {}
    for a in order:
        base = aspects[a]
        final_aspects[a] = Aspect(a, scans[a].classes, base.prompt, base.reference_words, base.concept)
    info.update(
        {
            "layout": LAYOUT,
            "n_images": n,
            "aspect_folders": {a: str(s.folder) for a, s in scans.items()},
            "class_counts": {a: s.counts() for a, s in scans.items()},
            "images_per_aspect": {a: len(s.files) for a, s in scans.items()},
            "missing": missing,
            "empty_classes": {a: s.empty_classes for a, s in scans.items() if s.empty_classes},
            "ignored_files": sum(len(s.ignored) for s in scans.values()),
            "fingerprint": fingerprint,
            "verify": verify,
            "on_bad_image": on_bad_image,
            "skipped_images": len(bad),
            "symlink_loops": loops,
            "bad_images": {path: reason for path, reason in sorted(bad.values())},
        }
    )
    return FolderDataset(
        name=name, aspects=final_aspects, labels=labels, image_ids=keys, paths=paths, revision=revision, info=info
    )


# ------------------------------------------------------------------------------------- dataset=folder


_TOP_KEYS = {"name", "object", "description", "aspects"}
_ASPECT_KEYS = {"prompt", "words", "concept"}


def _words_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)) or not all(isinstance(w, (str, int, float)) for w in value):
        raise ValueError(f"{where}: 'words' must be a list of words or one comma-separated string")
    words = tuple(dict.fromkeys(str(w).strip() for w in value if str(w).strip()))
    return words


def read_folder_config(root: Path) -> dict[str, Any]:
    """``<root>/mcbench.yaml`` validated ({} when absent)."""
    import yaml

    path = root / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path} is not readable YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must be a mapping with the keys: {', '.join(sorted(_TOP_KEYS))}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ValueError(
            f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; valid keys: {', '.join(sorted(_TOP_KEYS))}"
        )
    aspects = data.get("aspects") or {}
    if not isinstance(aspects, dict):
        raise ValueError(f"{path}: 'aspects' must map each aspect folder name to {{prompt, words, concept}}")
    for a, spec in aspects.items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ValueError(f"{path}: aspect '{a}' must be a mapping with keys {', '.join(sorted(_ASPECT_KEYS))}")
        bad = set(spec) - _ASPECT_KEYS
        if bad:
            raise ValueError(
                f"{path}: aspect '{a}' has unknown key(s) {', '.join(sorted(map(str, bad)))}; valid keys: "
                f"{', '.join(sorted(_ASPECT_KEYS))}"
            )
        prompt = spec.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or prompt.count("*") != 1):
            raise ValueError(
                f"{path}: the prompt of aspect '{a}' is {prompt!r}; it must contain exactly one '*' "
                f"(the slot of the proxy word), e.g. 'Fruit with a color of *'"
            )
        aspects[a] = spec
    data["aspects"] = {str(a): s for a, s in aspects.items()}
    data["_path"] = str(path)
    return data


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-.")
    return out or "data"


def missing_root_message(root: Path, what: str, layout: str, how: str) -> str:
    return f"{what}: {root} does not exist. Expected layout: {layout}. {how}"


@DATASETS.register("folder")
def folder_dataset(
    root: str | None = None,
    dataset_name: str | None = None,
    object: str | None = None,  # noqa: A002  (the config key)
    aspects: Sequence[str] | None = None,
    verify: str = "strict",
    fingerprint: str = "stat",
    checksum: str | None = None,
    on_bad_image: str = "error",
    cache_dir: Any = None,
) -> FolderDataset:
    """Any folder in the layout ``<root>/<aspect>/<class>/<image>`` (``dataset=folder dataset.root=PATH``)."""
    check_modes(verify, fingerprint, on_bad_image)  # cache_dir keeps the image check's results
    if root in (None, "", "???"):
        raise ValueError(
            f"dataset=folder needs the folder: add dataset.root=PATH (layout {LAYOUT}; see docs/datasets.md)"
        )
    root_path = Path(str(root)).expanduser()
    if not root_path.is_dir():
        raise FileNotFoundError(
            missing_root_message(
                root_path, "dataset=folder", LAYOUT,
                f"Point dataset.root at such a folder; an optional {CONFIG_FILE} there gives each aspect's prompt "
                f"and reference words (docs/datasets.md).",
            )
        )
    config = read_folder_config(root_path)
    declared = config.get("aspects") or {}
    found = discover_aspects(root_path)
    if declared:
        names = list(declared)
        source = f"{CONFIG_FILE} lists them"
    elif aspects:
        names = [str(a) for a in aspects]
        source = "dataset.aspects lists them"
    else:
        names = found
        source = "found"
    absent = [a for a in names if a not in found]
    if absent or not names:
        have = ", ".join(child_dirs(root_path)) or "no sub-folders"
        raise FileNotFoundError(
            f"dataset=folder: {root_path} has no aspect folder(s) {', '.join(absent) or '(any)'} with class folders "
            f"of images ({source}; it holds: {have}). Expected layout: {LAYOUT}; image extensions: "
            f"{' '.join(sorted(IMAGE_EXTENSIONS))}."
        )
    name = str(dataset_name or config.get("name") or f"folder-{_slug(root_path.resolve().name)}")
    obj = str(object or config.get("object") or "photos")
    config_path = config.get("_path")
    aspect_objs = {}
    without_words = []
    for a in names:
        spec = declared.get(a) or {}
        concept = spec.get("concept")
        concept = str(concept) if concept else None
        prompt = spec.get("prompt") or DEFAULT_PROMPT.format(aspect=concept or a)
        where = f"{config_path or CONFIG_FILE}: aspect '{a}'"
        words = _words_list(spec.get("words"), where)
        if not words:
            without_words.append(a)
        aspect_objs[a] = Aspect(a, (), prompt, words, concept)
    scans = {a: scan_aspect(root_path / a, a) for a in names}
    yaml_where = config_path or str(root_path / CONFIG_FILE)
    info = {
        "root": str(root_path),
        "config_file": config_path,
        "object": obj,
        "ignored_folders": [d for d in child_dirs(root_path) if d not in names],
        "aspects_without_words": without_words,
        # read by llm=cached when an aspect has no words: where they go (str.format with dataset, aspect)
        "missing_words_message": (
            "No reference words for {dataset}/{aspect}: the folder dataset declares none. Write them into "
            + yaml_where.replace("{", "{{").replace("}", "}}")
            + " (aspects: {aspect}: words: [...]) or use llm=openai to ask a language model."
        ),
    }
    return build_from_scans(
        name, scans, aspect_objs, verify=verify, fingerprint=fingerprint, checksum=checksum, info=info,
        on_bad_image=on_bad_image, cache_dir=cache_dir,
    )


import mcbench.data.papers  # noqa: E402,F401  (registers the papers' datasets: fruit, cards, ...)
