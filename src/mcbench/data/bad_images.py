"""Unreadable image files in a folder dataset: every image that will be read is decoded once when the dataset is
built (:func:`mcbench.data.images.check_image`: a JPEG at 1/8 scale, which still reads every byte; see
``docs/reliability.md`` for the cost), in threads, and the result is cached under ``cache_dir`` by the files' names,
sizes and modification times, so later builds only list the folder."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from mcbench.atomic import write_text_atomic
from mcbench.data.folder_scan import AspectScan, slug
from mcbench.data.images import check_image

#: Bump when the image check changes (it keys the cached check results).
IMAGE_CHECK_VERSION = 1


def read_copies(scans: Mapping[str, AspectScan]) -> dict[str, str]:
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

    read = read_copies(scans)
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
        cache_file = Path(str(cache_dir)) / "image_checks" / slug(name) / f"{h.hexdigest()[:20]}.json"
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
