"""Per-epoch timing of a fit from outside the method: every method (and every official-style loop) asks its
task for a progress bar right before its first epoch and updates it once per epoch, so a task whose bar
records the clock splits a run into setup, epochs and readout without touching the method's code."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from mcbench.contracts import ClusteringTask


class EpochClock:
    """``created``: when training started (the bar was made); ``ticks``: the end of each epoch."""

    def __init__(self, probe: Any = None) -> None:
        self.created: float | None = None
        self.ticks: list[float] = []
        self.probe = probe  # optional: a callable whose value is also recorded at the start and every epoch
        self.probes: list[Any] = []

    def bar(self) -> "_Bar":
        self.created, self.ticks = time.perf_counter(), []
        self.probes = [self.probe()] if self.probe else []
        return _Bar(self)

    def split(self, start: float, end: float) -> dict[str, Any]:
        """(setup, per-epoch list, readout) seconds of a fit that ran from ``start`` to ``end``."""
        if self.created is None:
            return {"setup_s": None, "epochs_s": [], "readout_s": None}
        marks = [self.created, *self.ticks]
        return {"setup_s": round(self.created - start, 4),
                "epochs_s": [round(b - a, 4) for a, b in zip(marks, marks[1:])],
                "readout_s": round(end - marks[-1], 4)}


class _Bar:
    def __init__(self, clock: EpochClock) -> None:
        self._clock = clock

    def update(self, n: int = 1) -> None:
        self._clock.ticks.append(time.perf_counter())
        if self._clock.probe:
            self._clock.probes.append(self._clock.probe())

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class TimedTask(ClusteringTask):
    """A ``ClusteringTask`` whose progress bar is an ``EpochClock`` (``dataclasses.replace`` keeps it)."""

    clock: EpochClock = field(default_factory=EpochClock, compare=False, repr=False)

    def progress(self, total: int, method: str) -> Any:
        return self.clock.bar()


def timed_task(task: ClusteringTask, probe: Any = None) -> TimedTask:
    return TimedTask(**{f.name: getattr(task, f.name) for f in dataclasses.fields(ClusteringTask)},
                     clock=EpochClock(probe))
