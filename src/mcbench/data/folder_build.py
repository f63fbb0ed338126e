"""Building one :class:`FolderDataset` from aspect scans: images joined across aspects by their key, labels per
aspect (``-1`` where an aspect lacks an image), unreadable images listed or skipped, and the fingerprint.

* **Classes** are the non-empty class folders, sorted by name (ImageFolder's order); images are in name order.
  An image present under some aspects but not others gets label ``-1`` for the aspects it lacks; it is reported
  in ``dataset.info`` and as a :class:`DatasetWarning` (the runner leaves ``-1`` images out of that aspect's task).
* **Pixels are read lazily** from ``dataset.paths`` (the copy under the first aspect that has the image).
* **Fingerprint** (``dataset.revision``, the key of the feature cache): ``fingerprint="stat"`` (default) hashes the
  dataset name, aspect and class names, every image's relative name, file size and labels. It needs only a
  directory listing (10k files: well under a second) and changes when a file is added, removed, renamed, relabelled
  or resized; it does *not* see an edit that keeps the byte size. ``fingerprint="content"`` also hashes every file's
  bytes (every copy), and checks that the copies of one image under different aspects are identical; it reads the
  whole dataset once per build (seconds for the papers' sets, longer for CIFAR-10-MC).
* **Unreadable images** (``on_bad_image``, see :mod:`mcbench.data.bad_images`): ``error`` (default) raises one
  :class:`BadImageError` that lists every bad file with its path and reason; ``skip`` leaves them out of every
  aspect (the revision changes accordingly) and counts them in ``info["skipped_images"]`` (a result-row column).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from PIL import Image

from mcbench.data.bad_images import bad_images_message, find_bad_images, read_copies
from mcbench.data.base import Aspect, MultiViewDataset
from mcbench.data.folder_checks import FolderOptions, report
from mcbench.data.folder_scan import LAYOUT, AspectScan, BadImageError, DatasetWarning
from mcbench.data.images import ImageReadError, load_rgb
from mcbench.hashing import file_sha256

#: Bump when the fingerprint recipe changes (it is part of the revision).
MANIFEST_VERSION = 1


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
    options: FolderOptions | None = None,
    *,
    info: dict[str, Any] | None = None,
    checksum_hint: str = "",
) -> FolderDataset:
    """Join the aspect scans on image names into one dataset (``aspects`` supplies prompts and words; its
    ``classes`` are replaced by the scanned class folders). Every image is decoded once first (``on_bad_image``)."""
    options = options or FolderOptions()
    verify, fingerprint, checksum = options.verify, options.fingerprint, options.checksum
    on_bad_image = options.on_bad_image
    bad = find_bad_images(name, scans, options.cache_dir)
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
        n_read = len(set(read_copies(scans)) | set(bad))
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
        report(
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
            read = file_sha256(paths[i])  # the copy whose pixels are encoded
            copies = [scans[a].files[key][1] for a in order if key in scans[a].files]
            others = {file_sha256(p) for p in copies if p != paths[i]} - {read}
            if others:
                differing.append(key)
            h.update(read.encode())
        if differing:
            report(
                f"dataset '{name}': {len(differing)} image names have copies with different content under different "
                f"aspects (e.g. {', '.join(differing[:3])}): ",
                verify,
                ["use dataset.verify=warn to load anyway (the first aspect's copy is read)"],
            )
            info["content_mismatches"] = len(differing)
    revision = h.hexdigest()[:16]
    if checksum and str(checksum) != revision:
        report(
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

