"""The authors' folder layout ``<root>/<aspect>/<class>/<image>``: its vocabulary (extensions, errors) and the
scan of one aspect folder into classes and image keys.

An image is keyed by its file name relative to its class folder (``0_100.jpg``, or ``sub/0_100.jpg`` when class
folders nest), never by an ImageFolder index. Hidden entries and ``__MACOSX`` are skipped; broken symbolic links
named like images are collected (they are unreadable images); a folder link back to a folder above it (a loop) is
not followed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"})
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



def slug(text: str) -> str:
    """``text`` as a safe file or folder name."""
    out = "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-.")
    return out or "data"
