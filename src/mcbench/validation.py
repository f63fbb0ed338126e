"""The one check of a method's settings against its ``Config`` dataclass (the schema): an unknown key or a
value of the wrong type is one line naming the setting, the expected type and the valid settings.

Used where settings enter: ``ProxyMethod.from_params`` (every run, whatever composed the config) and the
command line's check before Hydra composes (``mcbench.commands.overrides``), which asks :func:`setting_names`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping


def setting_names(config_class: type) -> set[str]:
    """The settings a ``Config`` dataclass declares."""
    return {f.name for f in dataclasses.fields(config_class)}


def expected_types(default: Any) -> tuple[type, ...] | None:
    """The types a setting accepts, read from its default (None: not checked, e.g. a None default)."""
    if default is None or default is dataclasses.MISSING:
        return None
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, int):
        return (int,)
    if isinstance(default, float):
        return (int, float)
    if isinstance(default, str):
        return (str,)
    return None


def check_params(kind: str, name: str, config_class: type, params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for the first unknown setting or mistyped value in ``params``.

    ``kind`` is the config group ("method"), ``name`` the entry ("multi_map")."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ValueError(
            f"Unknown setting(s) {', '.join(f'{kind}.{u}' for u in unknown)} for {kind} '{name}'. "
            f"Valid settings: {', '.join(sorted(fields))}"
        )
    for key, value in params.items():
        expected = expected_types(fields[key].default)
        if expected is None or value is None:
            continue
        if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
            raise ValueError(
                f"{kind}.{key}={value!r} has the wrong type for {kind} '{name}': expected "
                f"{expected[-1].__name__} (default {fields[key].default!r})"
            )
