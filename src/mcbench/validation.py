"""The one validation layer of a method's settings. A method's ``Config`` dataclass is the schema:

* :func:`check_params` / :func:`check_setting`: an unknown key or a value of the wrong type is one line naming
  the setting, the expected type and the valid settings. Used where settings enter: ``ProxyMethod.from_params``
  (every run, whatever composed the config) and the command line's check before Hydra composes
  (``mcbench.commands.overrides``), so a typo is reported by this module's words, not by Hydra's.
* :func:`register_method_schemas`: every method's ``Config`` is stored in Hydra's ConfigStore as the structured
  config ``method_schema/<name>`` (its defaults, typed); ``conf/method/<name>.yaml`` pulls it through its
  defaults list (``/method_schema/<name>@_here_``) and holds only what differs (``name``, tuned values).

The schemas are read from the methods' source (:func:`read_method_configs`, the ``ast`` of ``methods/*.py``)
so that composing a config (``mcbench --help``, ``--cfg job``, tab completion) imports neither torch nor the
methods; a module whose ``Config`` the reader cannot follow is imported instead (the same dataclass, slower).
tests/test_method_configs.py checks the source reading against the imported dataclasses.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import importlib.util
import pkgutil
import typing
from pathlib import Path
from typing import Any, Callable, Mapping, Union

SCHEMA_GROUP = "method_schema"  # ConfigStore group of the methods' schemas (conf/method/<name>.yaml's defaults)
METHODS_PACKAGE = "mcbench.methods"


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


def _unknown(kind: str, name: str, config_class: type, keys: list[str]) -> str:
    return (f"Unknown setting(s) {', '.join(f'{kind}.{u}' for u in keys)} for {kind} '{name}'. "
            f"Valid settings: {', '.join(sorted(setting_names(config_class)))}")


def check_setting(kind: str, name: str, config_class: type, key: str, value: Any) -> str | None:
    """One line for a mistyped ``value`` of the setting ``key`` (None: fine or not checked). ``key`` must be a
    setting (:func:`setting_names`)."""
    default = next(f.default for f in dataclasses.fields(config_class) if f.name == key)
    return _type_problem(kind, name, key, value, default)


def _type_problem(kind: str, name: str, key: str, value: Any, default: Any) -> str | None:
    expected = expected_types(default)
    if expected is None or value is None:
        return None
    if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
        return (f"{kind}.{key}={value!r} has the wrong type for {kind} '{name}': expected "
                f"{expected[-1].__name__} (default {default!r})")
    return None


def check_params(kind: str, name: str, config_class: type, params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for the first unknown setting or mistyped value in ``params``.

    ``kind`` is the config group ("method"), ``name`` the entry ("multi_map")."""
    unknown = sorted(set(params) - setting_names(config_class))
    if unknown:
        raise ValueError(_unknown(kind, name, config_class, unknown))
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    for key, value in params.items():
        problem = _type_problem(kind, name, key, value, defaults[key])
        if problem:
            raise ValueError(problem)


# ------------------------------------------------------------------------------------ schemas for Hydra


def schema_class(name: str, config_class: type) -> type:
    """The structured config of method ``name``: a dataclass with ``name`` and every field of ``config_class``,
    same defaults. A float setting takes ``Union[int, float]`` (as :func:`check_params`: ``lr=1`` stays the int 1,
    so a run's recorded settings and identity are those of the value written); a type OmegaConf cannot check
    (anything but str, int, float, bool) is ``Any`` there and left to :func:`check_params`."""
    hints = typing.get_type_hints(config_class)
    fields: list[tuple[str, Any, Any]] = [("name", str, dataclasses.field(default=name))]
    for f in dataclasses.fields(config_class):
        hint = hints.get(f.name, Any)
        typ = Union[int, float] if hint is float else hint if hint in (str, int, bool) else Any
        if f.default is not dataclasses.MISSING:
            spec = dataclasses.field(default=f.default)
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            spec = dataclasses.field(default_factory=f.default_factory)  # type: ignore[misc]
        else:
            spec = dataclasses.field()  # required: OmegaConf's '???'
        fields.append((f.name, typ, spec))
    return dataclasses.make_dataclass(f"{config_class.__name__}Schema", fields, kw_only=True)


def schema_node(name: str, config_class: type) -> Any:
    """The ConfigStore node of method ``name``: its typed structured config, or (where OmegaConf rejects a
    default, e.g. an object it cannot hold) the plain defaults, which only :func:`check_params` checks."""
    from omegaconf import OmegaConf

    try:
        node = OmegaConf.structured(schema_class(name, config_class))
    except Exception:  # noqa: BLE001  (the untyped fallback below keeps the method usable)
        node = OmegaConf.create({"name": name, **{
            f.name: f.default if f.default is not dataclasses.MISSING else
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "???"  # type: ignore[misc]
            for f in dataclasses.fields(config_class)}})
    # the composed config holds no reference to the generated class (the launchers pickle configs)
    node._metadata.object_type = None  # type: ignore[attr-defined]
    OmegaConf.set_struct(node, True)  # a key the schema lacks is an error, in a YAML file too
    return node


def register_method_schemas(store: Any = None) -> dict[str, type]:
    """Store ``method_schema/<name>`` for every method of ``mcbench.methods`` (read from source); returns
    name -> ``Config`` as read. Each node is built when Hydra first loads it (:class:`_LazyGroup`)."""
    from hydra.core.config_store import ConfigNode, ConfigStore

    store = store or ConfigStore.instance()
    configs = read_method_configs()

    def builder(name: str, config_class: type) -> Callable[[], Any]:
        return lambda: ConfigNode(name=f"{name}.yaml", node=schema_node(name, config_class), group=SCHEMA_GROUP,
                                  package=None, provider="mcbench")

    store.repo[SCHEMA_GROUP] = _LazyGroup({f"{n}.yaml": builder(n, c) for n, c in configs.items()})
    return configs


class _LazyGroup(dict):
    """A ConfigStore group whose nodes are built on their first lookup. Hydra deep-copies the whole ConfigStore
    for each config lookup (``CachingConfigRepository``; ``mcbench --help`` makes about 90): twelve built schemas
    cost about 0.3 s there, unbuilt entries nothing. Copies share the built nodes, which ``ConfigStore.load``
    deep-copies before handing out."""

    def __init__(self, builders: dict[str, Callable[[], Any]], built: dict[str, Any] | None = None) -> None:
        super().__init__(dict.fromkeys(builders))
        self._builders = builders
        self._built = {} if built is None else built  # shared by every copy: each node is built once

    def __getitem__(self, key: str) -> Any:
        dict.__getitem__(self, key)  # KeyError for a name that is not there
        if key not in self._built:
            self._built[key] = self._builders[key]()
        return self._built[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def values(self) -> Any:
        return [self[k] for k in self]

    def items(self) -> Any:
        return [(k, self[k]) for k in self]

    def __deepcopy__(self, memo: dict) -> "_LazyGroup":
        return _LazyGroup(self._builders, self._built)


# ------------------------------------------------------------------------- Config dataclasses, from source


class _Unreadable(Exception):
    """The source does not declare its ``Config`` in the plain form the reader follows."""


_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def read_method_configs(package: str = METHODS_PACKAGE) -> dict[str, type]:
    """Method name -> its ``Config`` dataclass (field names, types, defaults), read from the source of every
    module of ``package`` without importing it; a module the reader cannot follow is imported instead."""
    return dict(_read_method_configs(package))


@functools.lru_cache(maxsize=None)
def _read_method_configs(package: str) -> dict[str, type]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return {}
    out: dict[str, type] = {}
    for info in sorted(pkgutil.iter_modules(spec.submodule_search_locations), key=lambda i: i.name):
        module = f"{package}.{info.name}"
        path = Path(info.module_finder.path) / f"{info.name}.py"  # type: ignore[union-attr]
        try:
            out.update(configs_in_source(path.read_text(encoding="utf-8")))
        except (_Unreadable, OSError, SyntaxError, ValueError):
            out.update(_configs_by_import(module))
    return out


def _configs_by_import(module_name: str) -> dict[str, type]:
    module = importlib.import_module(module_name)
    return {cls.name: cls.Config for cls in vars(module).values()
            if isinstance(cls, type) and cls.__module__ == module_name and isinstance(getattr(cls, "name", None), str)
            and dataclasses.is_dataclass(getattr(cls, "Config", None))}


def configs_in_source(source: str) -> dict[str, type]:
    """Method name -> ``Config`` of the ``@register_method("<name>")`` classes of one module's source."""
    classes = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}
    out = {}
    for node in classes.values():
        name = _registered_name(node)
        if name is not None:
            out[name] = _dataclass(classes[_config_name(node, classes)], classes)
    return out


def _registered_name(node: ast.ClassDef) -> str | None:
    for deco in node.decorator_list:
        if isinstance(deco, ast.Call) and ast.unparse(deco.func).split(".")[-1] in ("register_method", "register"):
            if len(deco.args) == 1 and isinstance(deco.args[0], ast.Constant) and isinstance(deco.args[0].value, str):
                return deco.args[0].value
            raise _Unreadable(node.name)
    return None


def _config_name(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> str:
    """The class ``Config`` names in ``node``'s body, or in its bases' (same module)."""
    for stmt in node.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "Config" for t in targets):
                if isinstance(stmt.value, ast.Name) and stmt.value.id in classes:
                    return stmt.value.id
                raise _Unreadable(node.name)
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            try:
                return _config_name(classes[base.id], classes)
            except _Unreadable:
                continue
    raise _Unreadable(node.name)


def _dataclass(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> type:
    if not any(ast.unparse(d).split("(")[0].split(".")[-1] == "dataclass" for d in node.decorator_list):
        raise _Unreadable(node.name)
    fields: list[tuple[str, type, Any]] = []
    for base in node.bases:
        if not (isinstance(base, ast.Name) and base.id in classes):
            raise _Unreadable(node.name)
        fields += [(f.name, f.type, dataclasses.field(default=f.default))
                   for f in dataclasses.fields(_dataclass(classes[base.id], classes))]
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            annotation = ast.unparse(stmt.annotation)
            if annotation.startswith(("ClassVar", "typing.ClassVar")):
                continue
            if annotation not in _TYPES or stmt.value is None:
                raise _Unreadable(f"{node.name}.{stmt.target.id}")
            default = ast.literal_eval(stmt.value)  # ValueError for field(...) and other expressions
            if type(default) is not _TYPES[annotation] and not (annotation == "float" and type(default) is int):
                raise _Unreadable(f"{node.name}.{stmt.target.id}")
            fields = [f for f in fields if f[0] != stmt.target.id]
            fields.append((stmt.target.id, _TYPES[annotation], dataclasses.field(default=default)))
    return dataclasses.make_dataclass(node.name, fields)
