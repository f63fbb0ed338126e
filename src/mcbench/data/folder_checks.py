"""What a folder dataset is checked against: the settings every folder dataset takes (:class:`FolderOptions`,
listed once here) and the known facts of a dataset (:class:`Expect`).

* ``verify``: ``strict`` (default) raises on structural problems and on expected counts that fail; ``warn``
  reports them as warnings and loads anyway; ``off`` skips the count checks (duplicate names stay an error: they
  make the labels ambiguous).
* ``fingerprint``: ``stat`` (names, sizes, labels: a directory listing) or ``content`` (also every file's bytes).
* ``checksum`` (optional): a revision the build must reproduce.
* ``on_bad_image``: ``error`` (default) or ``skip`` for image files that do not decode.
* ``cache_dir``: where the image check's results are kept (the runner passes ``paths.cache_dir``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from mcbench.data.folder_scan import AspectScan, DatasetLayoutError, DatasetWarning

VERIFY_MODES = ("strict", "warn", "off")
FINGERPRINTS = ("stat", "content")
BAD_IMAGE_MODES = ("error", "skip")


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


@dataclass(frozen=True)
class FolderOptions:
    """The keywords every folder dataset takes besides its root (``dataset.<key>=...``), with their defaults.

    This is the one list of them: :func:`with_folder_options` builds each folder factory's signature (which the
    command line's override check reads) from these fields."""

    verify: str = "strict"
    fingerprint: str = "stat"
    checksum: str | None = None
    on_bad_image: str = "error"
    cache_dir: Any = None

    def __post_init__(self) -> None:
        check_modes(self.verify, self.fingerprint, self.on_bad_image)


OPTION_NAMES = tuple(f.name for f in dataclasses.fields(FolderOptions))


def with_folder_options(build: Callable[..., Any]) -> Callable[..., Any]:
    """``build(..., options: FolderOptions)`` as a dataset factory that takes ``build``'s other parameters and
    every :class:`FolderOptions` field as keywords; its signature lists them all (checked before building)."""
    own = inspect.signature(build)
    params = [p for name, p in own.parameters.items() if name != "options"]
    params += [
        inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=f.default, annotation=f.type)
        for f in dataclasses.fields(FolderOptions)
    ]
    signature = own.replace(parameters=params)

    @functools.wraps(build)
    def factory(*args: Any, **kwargs: Any) -> Any:
        given = signature.bind(*args, **kwargs).arguments
        options = FolderOptions(**{k: given.pop(k) for k in OPTION_NAMES if k in given})
        return build(**given, options=options)

    factory.__signature__ = signature  # type: ignore[attr-defined]
    return factory


def report(message: str, verify: str, problems: list[str]) -> None:
    """Raise (strict) or warn about ``problems``."""
    if not problems:
        return
    text = message + "; ".join(problems)
    if verify == "strict":
        raise DatasetLayoutError(text)
    warnings.warn(text, DatasetWarning, stacklevel=3)


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
