"""One typed registry for methods, datasets, encoders, word sources and loggers (after lm-evaluation-harness's
``Registry`` with lazy ``"module:attr"`` entries, and timm's ``register_model``).

The one registration pattern:

* a module registers what it defines with the decorator, ``@METHODS.register("multi_map")``;
* a registry names the modules that hold its entries as strings (``modules=("mcbench.data.synthetic", ...)`` or a
  package whose every module is imported) and imports them on the first lookup, so importing a contract never
  imports an implementation and no module imports its registrants at the bottom of a file;
* another package's entries arrive through an entry-point group as lazy ``"module:attr"`` references, imported
  only when that name is looked up (:meth:`Registry.add_lazy` takes the same form).

A duplicate name is an error; an unknown name answers with the close matches and the full list of valid names.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import pkgutil
import threading
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def resolve(reference: str) -> object | None:
    """Import ``"package.module:attr"`` (``attr`` may be dotted) and return the attribute; a bare
    ``"package.module"`` is imported for what it registers (None is returned)."""
    module_name, _, attr = reference.partition(":")
    if not module_name:
        raise ValueError(f"a lazy registry entry is 'module:attr' or 'module', got {reference!r}")
    obj: object = importlib.import_module(module_name)
    if not attr:
        return None
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Maps names to objects (classes, factories or specs) of one kind.

    ``modules`` are imported on the first lookup (a module name ending in ``.*`` imports every module of that
    package); ``entry_point_group`` adds other packages' entries as lazy ``"module:attr"`` references.
    """

    def __init__(self, kind: str, modules: tuple[str, ...] = (), entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.modules = tuple(modules)
        self.entry_point_group = entry_point_group  # where entries from other packages register
        self._entries: dict[str, T] = {}
        self._lazy: dict[str, str] = {}  # name -> "module:attr", imported on its first lookup
        self._loaded = False  # the modules are imported: lookups need no lock
        self._loading = False  # the import has started (a lookup from inside it must not start it again)
        self._lock = threading.RLock()  # two threads' first lookups: the second waits for the whole load

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                for name in self.modules:
                    if name.endswith(".*"):
                        package = importlib.import_module(name[:-2])
                        for info in pkgutil.iter_modules(package.__path__):
                            importlib.import_module(f"{package.__name__}.{info.name}")
                    else:
                        importlib.import_module(name)
                if self.entry_point_group:
                    from importlib.metadata import entry_points

                    for ep in entry_points(group=self.entry_point_group):
                        if ep.name not in self._entries:
                            self._lazy.setdefault(ep.name, ep.value)
            finally:
                self._loaded = True

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@METHODS.register("multi_map")``."""

        def decorate(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            self._lazy.pop(name, None)
            return obj

        return decorate

    def add_lazy(self, name: str, reference: str) -> None:
        """Register ``name`` as ``"module:attr"``, imported when the name is first looked up."""
        if name in self._entries or self._lazy.get(name, reference) != reference:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._lazy[name] = reference

    def get(self, name: str) -> T:
        self._ensure_loaded()
        if name not in self._entries and name in self._lazy:
            reference = self._lazy[name]
            obj = resolve(reference)  # importing it may register it (a decorated class) under this name
            with self._lock:
                self._lazy.pop(name, None)
                if obj is not None:
                    self._entries.setdefault(name, obj)  # type: ignore[arg-type]
        if name not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        return self._entries[name]

    def unknown_message(self, name: str) -> str:
        names = self.names()
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        plugins = (f" A {self.kind} from another package registers through the '{self.entry_point_group}' "
                   f"entry-point group (README, \"Plugins\")." if self.entry_point_group else "")
        return f"Unknown {self.kind} '{name}'.{hint} Available: {', '.join(names)}.{plugins}"

    def names(self, pattern: str = "*") -> list[str]:
        self._ensure_loaded()
        return sorted(n for n in {*self._entries, *self._lazy} if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
