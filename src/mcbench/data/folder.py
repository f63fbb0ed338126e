"""Image folders as multi-view datasets: ``dataset=folder dataset.root=PATH`` reads any folder in the authors'
layout ``<root>/<aspect>/<class>/<image>``; an optional ``mcbench.yaml`` at its root names the aspects and gives
their prompt templates, reference words and concept words (see ``docs/datasets.md``).

The papers' code reads one ``torchvision.datasets.ImageFolder`` per aspect, with the same images copied under
each aspect's class folders. The parts, one module each:

* :mod:`mcbench.data.folder_scan`: the layout's vocabulary and the scan of an aspect folder. An image is
  identified by its file name relative to its class folder, never by its ImageFolder index (the orders differ
  between aspects); the same name under two class folders of one aspect is an error that names both paths.
* :mod:`mcbench.data.folder_checks`: the settings every folder dataset takes (:class:`FolderOptions`: ``verify``,
  ``fingerprint``, ``checksum``, ``on_bad_image``, ``cache_dir``) and the known facts (:class:`Expect`).
* :mod:`mcbench.data.bad_images`: every image is decoded once at build time (cached by names, sizes, times).
* :mod:`mcbench.data.folder_build`: the join across aspects, labels, warnings and the fingerprint (``revision``).
* this module: ``dataset=folder`` and its ``mcbench.yaml``; :mod:`mcbench.data.papers`: the papers' datasets,
  each described by ``datasets/<name>/dataset.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mcbench.data.base import DATASETS, Aspect
from mcbench.data.folder_build import FolderDataset, build_from_scans
from mcbench.data.folder_checks import FolderOptions, with_folder_options
from mcbench.data.folder_scan import IMAGE_EXTENSIONS, LAYOUT, child_dirs, discover_aspects, scan_aspect, slug

CONFIG_FILE = "mcbench.yaml"
#: The prompt of an aspect that ``mcbench.yaml`` does not describe (``{aspect}`` is its concept word).
DEFAULT_PROMPT = "A photo with a {aspect} of *"

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


def missing_root_message(root: Path, what: str, layout: str, how: str) -> str:
    return f"{what}: {root} does not exist. Expected layout: {layout}. {how}"


@DATASETS.register("folder")
@with_folder_options
def folder_dataset(
    root: str | None = None,
    dataset_name: str | None = None,
    object: str | None = None,  # noqa: A002  (the config key)
    aspects: Sequence[str] | None = None,
    *,
    options: FolderOptions,
) -> FolderDataset:
    """Any folder in the layout ``<root>/<aspect>/<class>/<image>`` (``dataset=folder dataset.root=PATH``)."""
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
    name = str(dataset_name or config.get("name") or f"folder-{slug(root_path.resolve().name)}")
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
    return build_from_scans(name, scans, aspect_objs, options, info=info)
