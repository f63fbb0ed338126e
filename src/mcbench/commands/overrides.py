"""Checks of command-line overrides before Hydra composes: a typo in ``method.<key>`` or ``dataset.<key>``
gets one line naming the key and the valid settings, and a ``method.<key>`` value of the wrong type one line naming
the expected type (``mcbench.validation``, the same words as a run's own check), instead of Hydra's struct or
merge error."""

from __future__ import annotations

import inspect
from typing import Any

from mcbench.registry import UnknownNameError
from mcbench.validation import check_setting, read_method_configs, setting_names


def _choices(argv: list[str], group: str, default: str) -> list[str]:
    for arg in argv:
        if arg.startswith(f"{group}="):
            return [c for c in arg.split("=", 1)[1].split(",") if c]
    return [default]


def method_config(name: str) -> type:
    """The ``Config`` dataclass of method ``name``: read from the shipped methods' source (no torch), else a
    plugin's, imported (an unknown name raises the registry's UnknownNameError). Here, not in the library's
    validation module, which the contracts import: a lookup in METHODS from there would be an import cycle."""
    shipped = read_method_configs()
    if name in shipped:
        return shipped[name]
    from mcbench.contracts import METHODS  # a plugin (or an unknown name): imported only then

    return METHODS.get(name).Config


def _method_keys(name: str) -> set[str]:
    return setting_names(method_config(name)) | {"name"}


def _values(arg: str) -> list[Any]:
    """The values an override sets (each choice of a sweep ``a,b``; none for ranges, globs, interpolations)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep

    try:
        override = OverridesParser.create().parse_override(arg)
    except Exception:  # noqa: BLE001  (check_grammar reports unreadable overrides)
        return []
    value = override.value()
    values = value.list if isinstance(value, ChoiceSweep) else [] if override.is_sweep_override() else [value]
    return [v for v in values if not (isinstance(v, str) and "${" in v)]


def _method_type_problem(arg: str, key: str, name: str) -> str | None:
    config = method_config(name)
    for value in _values(arg):
        problem = check_setting("method", name, config, key, value)
        if problem:
            return problem
    return None


def _dataset_keys(name: str) -> set[str] | None:
    from mcbench.data.base import DATASETS

    params = inspect.signature(DATASETS.get(name)).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None  # the factory takes any keyword: nothing to check here
    return set(params) - {"cache_dir"} | {"name"}


def check_overrides(argv: list[str], default_method: str, default_dataset: str) -> str | None:
    """The first problem found in ``argv``, as one line, or None."""
    if any(a.startswith("experiment=") for a in argv):
        return None  # an experiment may switch method/dataset: Hydra checks those keys
    for group, default, keys_of in (("method", default_method, _method_keys),
                                    ("dataset", default_dataset, _dataset_keys)):
        for arg in argv:
            if not arg.startswith(f"{group}.") or "=" not in arg:
                continue
            key = arg.split("=", 1)[0][len(group) + 1:].split(".")[0]
            for choice in _choices(argv, group, default):
                try:
                    valid = keys_of(choice)
                except UnknownNameError:
                    continue  # Hydra reports an unknown config name with the list of options
                if valid is not None and key not in valid:
                    return (f"{group}.{key} is not a setting of {group} '{choice}'. Valid settings: "
                            f"{', '.join(sorted(valid - {'name'}))}")
                if group == "method" and key != "name" and "." not in arg.split("=", 1)[0][len(group) + 1:]:
                    problem = _method_type_problem(arg, key, choice)
                    if problem:
                        return problem
    return None


def check_grammar(argv: list[str]) -> str | None:
    """One line for the first override Hydra's grammar cannot read (e.g. an unquoted path with non-ASCII letters
    or parentheses), saying how to quote it; None when all parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in argv:
        if "=" not in arg:
            continue
        try:
            parser.parse_override(arg)
        except HydraException:  # OverrideParseException, or the lexer's "token recognition error"
            key, value = arg.split("=", 1)
            quote = '"' if "'" in value else "'"
            return (f"cannot read the override {arg!r}: Hydra's override grammar needs quotes around a value with "
                    f"non-ASCII letters, parentheses, brackets or other special characters; write "
                    f"{key}={quote}{value}{quote}")
    return None
