"""The papers' real datasets (Fruit, Fruit360, Cards, CMUface, Flowers, Stanford Cars, CIFAR-10-MC...), read
from their data files: every ``datasets/<name>/dataset.json`` whose ``kind`` is ``"paper_folder"`` becomes the
dataset ``<name>``. Adding one is a folder ``datasets/<name>/`` (the card ``README.md``, ``dataset.json`` and
``words/<aspect>.json``) and a config ``conf/dataset/<name>.yaml``; no Python changes (docs/datasets.md).

Each dataset is a folder in the authors' layout ``<root>/<aspect>/<class>/<image>`` (read by
:mod:`mcbench.data.folder`), checked against what is known about it. Facts come in two tiers (see each card and
the research notes):

* ``expected``: primary facts (the authors' code, a public file listing, or the definition of the labels,
  e.g. 13 ranks and 4 suits). A mismatch fails the build under ``verify=strict`` (default), is a warning under
  ``verify=warn``, and is skipped under ``verify=off``.
* ``reported``: second-hand numbers (third-party summaries, tables of later papers). A mismatch is only a
  warning, because those numbers are themselves unverified.

``dataset.json`` holds: ``kind``, ``name`` (the folder's name), ``title``, ``object`` (what the images show, for
the LLM question), ``licence``, ``urls`` (name -> URL), ``get`` (how to obtain the data, one sentence; ``{name}``
stands for ``urls[name]``), ``aspects`` (each ``name``, ``prompt`` with one ``*``, optional ``folders``: the
folder names accepted for it, the first that exists is read, and ``concept``), ``expected`` and ``reported``
(each optional: ``n``, a number or a list of accepted numbers, and per aspect ``k``, ``n_images``, ``counts``,
``classes``; see :class:`mcbench.data.folder_checks.Expect`).

The prompt templates are the papers' own where their code has them ("Card with suits of *"), else of the form
"{Object} with a {concept} of *". Reference words come from ``datasets/<name>/words/<aspect>.json``
(``llm=cached``) or a language model (``llm=openai``).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mcbench.data.base import DATASETS, Aspect
from mcbench.data.folder_build import FolderDataset, build_from_scans
from mcbench.data.folder_checks import Expect, FolderOptions, with_folder_options
from mcbench.data.folder_scan import DatasetLayoutError, DatasetWarning, child_dirs, scan_aspect
from mcbench.registry import Registry

#: The data file of a dataset, beside its card.
DATA_FILE = "dataset.json"
#: The ``kind`` of a data file this module reads: a folder dataset of a paper.
KIND = "paper_folder"


@dataclass(frozen=True)
class AspectSpec:
    """One aspect of a paper dataset: its name (the words file and the concept word), its prompt template, and
    the folder names accepted for it (the first that exists is read)."""

    name: str
    prompt: str
    folders: tuple[str, ...] = ()
    concept: str | None = None

    @property
    def folder_names(self) -> tuple[str, ...]:
        return self.folders or (self.name,)


@dataclass(frozen=True)
class PaperDataset:
    name: str
    title: str
    object: str  # what the images show, for the LLM question ("What are the common colors of fruit?")
    aspects: tuple[AspectSpec, ...]
    get: str  # how to obtain the data, one sentence
    expected: Expect = field(default_factory=Expect)
    reported: Expect = field(default_factory=Expect)
    licence: str = ""
    urls: Mapping[str, str] = field(default_factory=dict)
    home: Path | None = None  # the folder of the card and the data file (default: datasets/<name>)

    @property
    def aspect_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.aspects)


# ------------------------------------------------------------------------------------------- the data files

_KEYS = ("kind", "name", "title", "object", "licence", "urls", "get", "aspects", "expected", "reported")
_REQUIRED = ("kind", "name", "title", "object", "get", "aspects")
_ASPECT_KEYS = ("name", "prompt", "folders", "concept")
_EXPECT_KEYS = ("n", "k", "n_images", "counts", "classes")


def _keys(data: Any, valid: tuple[str, ...], required: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a JSON object with the keys: {', '.join(valid)}")
    unknown = [k for k in data if k not in valid]
    missing = [k for k in required if k not in data]
    if unknown or missing:
        what = "; ".join(x for x in (unknown and f"unknown key(s) {', '.join(map(str, unknown))}",
                                     missing and f"missing key(s) {', '.join(missing)}") if x)
        raise ValueError(f"{where}: {what}; valid keys: {', '.join(valid)}")
    return data


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where} must be a list of names")
    return tuple(value)


def _per_aspect(value: Any, aspects: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must map aspect names to values")
    unknown = [a for a in value if a not in aspects]
    if unknown:
        raise ValueError(f"{where} names unknown aspect(s) {', '.join(unknown)}; the aspects: {', '.join(aspects)}")
    return value


def _count(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where} must be a whole number, got {value!r}")
    return value


def _expect(data: Any, aspects: tuple[str, ...], where: str) -> Expect:
    data = _keys(data, _EXPECT_KEYS, (), where)
    n = data.get("n")
    if isinstance(n, list):
        n = tuple(_count(v, f"{where}.n") for v in n)
    elif n is not None:
        n = _count(n, f"{where}.n")
    return Expect(
        n=n,
        k={a: _count(v, f"{where}.k.{a}") for a, v in _per_aspect(data.get("k", {}), aspects, f"{where}.k").items()},
        n_images={a: _count(v, f"{where}.n_images.{a}")
                  for a, v in _per_aspect(data.get("n_images", {}), aspects, f"{where}.n_images").items()},
        counts={a: {c: _count(v, f"{where}.counts.{a}.{c}") for c, v in _mapping(counts, f"{where}.counts.{a}").items()}
                for a, counts in _per_aspect(data.get("counts", {}), aspects, f"{where}.counts").items()},
        classes={a: _strings(v, f"{where}.classes.{a}")
                 for a, v in _per_aspect(data.get("classes", {}), aspects, f"{where}.classes").items()},
    )


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a JSON object")
    return value


def parse_paper_dataset(data: Any, path: Path) -> PaperDataset:
    """A :class:`PaperDataset` from the content of its data file ``path`` (errors name the file and the key)."""
    data = _keys(data, _KEYS, _REQUIRED, str(path))
    name = data["name"]
    if name != path.parent.name:
        raise ValueError(f"{path}: name is {name!r} but the folder is {path.parent.name!r}; they must be the same "
                         f"(the words, the card and conf/dataset/<name>.yaml are found by it)")
    for key in ("title", "object", "get", "licence"):
        if not isinstance(data.get(key, ""), str):
            raise ValueError(f"{path}: {key} must be a string")
    urls = _mapping(data.get("urls", {}), f"{path}: urls")
    if not isinstance(data["aspects"], list) or not data["aspects"]:
        raise ValueError(f"{path}: aspects must be a non-empty list of {{name, prompt, folders, concept}}")
    aspects = []
    for i, entry in enumerate(data["aspects"]):
        where = f"{path}: aspects[{i}]"
        entry = _keys(entry, _ASPECT_KEYS, ("name", "prompt"), where)
        prompt = entry["prompt"]
        if not isinstance(prompt, str) or prompt.count("*") != 1:
            raise ValueError(f"{where}: the prompt is {prompt!r}; it must contain exactly one '*' (the slot of "
                             f"the proxy word), e.g. 'Fruit with a color of *'")
        folders = _strings(entry["folders"], f"{where}.folders") if "folders" in entry else ()
        concept = entry.get("concept")
        aspects.append(AspectSpec(str(entry["name"]), prompt, folders, str(concept) if concept else None))
    names = tuple(a.name for a in aspects)
    try:
        get = data["get"].format(**urls)
    except (KeyError, IndexError) as exc:
        raise ValueError(f"{path}: get names {{{exc.args[0]}}}, which urls does not define") from exc
    return PaperDataset(
        name=name, title=data["title"], object=data["object"], aspects=tuple(aspects), get=get,
        expected=_expect(data.get("expected", {}), names, f"{path}: expected"),
        reported=_expect(data.get("reported", {}), names, f"{path}: reported"),
        licence=data.get("licence", ""), urls=dict(urls), home=path.parent,
    )


def discover(datasets_root: str | os.PathLike | None = None) -> dict[str, PaperDataset]:
    """Every paper dataset described under ``datasets_root`` (default: the shipped ``datasets/`` folder), by name:
    the ``<name>/dataset.json`` files whose ``kind`` is ``"paper_folder"`` (other kinds are left to their loaders)."""
    from mcbench.paths import datasets_dir

    root = Path(datasets_root) if datasets_root is not None else datasets_dir()
    found: dict[str, PaperDataset] = {}
    for path in sorted(root.glob(f"*/{DATA_FILE}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} is not readable JSON: {exc}") from exc
        if isinstance(data, dict) and data.get("kind") == KIND:
            found[path.parent.name] = parse_paper_dataset(data, path)
    return found


# ------------------------------------------------------------------------------------------------ loading


def card_path(spec: PaperDataset) -> Path:
    from mcbench.paths import datasets_dir

    return (spec.home or datasets_dir() / spec.name) / "README.md"


def default_root(name: str) -> Path:
    """``$MCBENCH_DATA/<name>/images``, else ``datasets/<name>/images`` (what ``conf/dataset/<name>.yaml`` says)."""
    from mcbench.paths import datasets_dir

    base = os.environ.get("MCBENCH_DATA") or str(datasets_dir())
    return Path(base) / name / "images"


def _layout(spec: PaperDataset) -> str:
    return f"<root>/{{{','.join(spec.aspect_names)}}}/<class>/<image> (the same image file names under each aspect)"


def _where_to_get(spec: PaperDataset) -> str:
    return (
        f"Get it: {spec.get}, or point dataset.root=PATH (or MCBENCH_DATA=DIR, read as DIR/{spec.name}/images) at "
        f"a copy. Dataset card: {card_path(spec)}"
    )


def load_paper_dataset(
    spec: PaperDataset, root: str | os.PathLike | None = None, options: FolderOptions | None = None
) -> FolderDataset:
    """Read ``spec``'s folder, check it against the known facts, and build the dataset."""
    options = options or FolderOptions()
    verify = options.verify
    root_path = default_root(spec.name) if root in (None, "", "???") else Path(str(root)).expanduser()
    if not root_path.is_dir():
        raise FileNotFoundError(
            f"dataset '{spec.name}' is not on this machine: {root_path} does not exist. Expected layout: "
            f"{_layout(spec)}. {_where_to_get(spec)}"
        )
    folders: dict[str, str] = {}
    lacking = []
    for a in spec.aspects:
        hit = next((f for f in a.folder_names if (root_path / f).is_dir()), None)
        if hit is None:
            lacking.append("/".join(a.folder_names))
        else:
            folders[a.name] = hit
    if lacking:
        have = child_dirs(root_path)
        hint = ""
        if len(have) == 1 and all(
            any((root_path / have[0] / f).is_dir() for f in a.folder_names) for a in spec.aspects
        ):
            hint = f" (they are one level down: use dataset.root={root_path / have[0]})"
        raise FileNotFoundError(
            f"dataset '{spec.name}': {root_path} lacks the aspect folder(s) {', '.join(lacking)}; it holds "
            f"{', '.join(have) or 'no sub-folders'}{hint}. Expected layout: {_layout(spec)}. {_where_to_get(spec)}"
        )
    scans = {a.name: scan_aspect(root_path / folders[a.name], a.name) for a in spec.aspects}
    empty = [a for a, s in scans.items() if not s.files]
    if empty:
        raise DatasetLayoutError(
            f"dataset '{spec.name}': the aspect folder(s) {', '.join(str(scans[a].folder) for a in empty)} hold no "
            f"images in class folders. Expected layout: {_layout(spec)}. {_where_to_get(spec)}"
        )
    n_total = len(set().union(*(s.files for s in scans.values())))
    card = card_path(spec)
    problems = spec.expected.check(scans, n_total) if verify != "off" else []
    if problems:
        text = (
            f"dataset '{spec.name}' at {root_path} does not match its card ({card}): {'; '.join(problems)}. "
        )
        if verify == "strict":
            raise DatasetLayoutError(
                text + "If this is another version of the data, load it as any folder (dataset=folder "
                f"dataset.root={root_path}) or anyway with dataset.verify=warn."
            )
        warnings.warn(text.strip(), DatasetWarning, stacklevel=2)
    reported = spec.reported.check(scans, n_total) if verify != "off" else []
    if reported:
        warnings.warn(
            f"dataset '{spec.name}' differs from second-hand reports (unverified, see {card}): "
            f"{'; '.join(reported)}",
            DatasetWarning,
            stacklevel=2,
        )
    aspects = {a.name: Aspect(a.name, (), a.prompt, (), a.concept) for a in spec.aspects}
    info: dict[str, Any] = {
        "root": str(root_path),
        "title": spec.title,
        "object": spec.object,
        "card": str(card),
        "folders": folders,
        "ignored_folders": [d for d in child_dirs(root_path) if d not in folders.values()],
        "expected_mismatches": problems,
        "reported_mismatches": reported,
    }
    return build_from_scans(
        spec.name, scans, aspects, options, info=info,
        checksum_hint=f"the folder differs from the copy whose fingerprint was recorded (see {card})",
    )


def paper_factory(spec: PaperDataset):
    """The dataset factory of ``spec``: ``(root=None, verify=..., fingerprint=..., ...) -> FolderDataset``."""

    def load(root: str | None = None, *, options: FolderOptions) -> FolderDataset:
        return load_paper_dataset(spec, root, options)

    load.__name__ = load.__qualname__ = spec.name
    load.__doc__ = f"{spec.title}: aspects {', '.join(spec.aspect_names)}."
    return with_folder_options(load)


def register_paper_datasets(
    datasets_root: str | os.PathLike | None = None, registry: Registry | None = None
) -> dict[str, PaperDataset]:
    """Register a factory for every paper dataset under ``datasets_root`` (default: the shipped ``datasets/``)
    in ``registry`` (default: ``DATASETS``); return their specs by name."""
    registry = DATASETS if registry is None else registry
    specs = discover(datasets_root)
    for spec in specs.values():
        registry.register(spec.name)(paper_factory(spec))
    return specs


#: The shipped paper datasets (one ``datasets/<name>/dataset.json`` each), registered in ``DATASETS``.
PAPER_DATASETS: dict[str, PaperDataset] = register_paper_datasets()
