"""A small typed registry (after lm-evaluation-harness ``Registry`` and timm's ``register_model``).

One instance each serves methods, datasets, encoders and word sources. A duplicate name is an error; an
unknown name answers with the close matches and the full list of valid names.
"""

from __future__ import annotations

import difflib
import fnmatch
import threading
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to objects (classes or factories) of one kind."""

    def __init__(self, kind: str, loader: Callable[[], None] | None = None,
                 entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group  # where entries from other packages register
        self._entries: dict[str, T] = {}
        self._loader = loader
        self._loaded = False  # the loader has finished: lookups need no lock
        self._loading = False  # the loader has started (a lookup from inside it must not start it again)
        self._lock = threading.RLock()  # two threads' first lookups: the second waits for the whole load

    def _ensure_loaded(self) -> None:
        if self._loaded or self._loader is None:
            return
        with self._lock:
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                self._loader()
            finally:
                self._loaded = True

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@METHODS.register("multi_map")``."""

        def decorate(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            return obj

        return decorate

    def get(self, name: str) -> T:
        self._ensure_loaded()
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
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
