"""What a fit asks of the hardware, counted rather than timed: floating-point operations (torch's
``FlopCounterMode``: matrix products, attention, convolutions) and the number of tensor operations dispatched
(each one a kernel launch on a GPU, plus the host's eager-mode overhead). With an ``EpochClock`` probe the
counts split into start, epochs and readout like the times. They feed the GPU estimate of
``benchmarks.projection`` where no GPU was measured."""

from __future__ import annotations

from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode


class OpCounter(TorchDispatchMode):
    """Counts every aten operation dispatched under it."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops += 1
        return func(*args, **(kwargs or {}))


class WorkCounter:
    """``with WorkCounter() as w: ...``; ``w.now()`` is (flops, ops) so far."""

    def __enter__(self) -> "WorkCounter":
        self.flops = FlopCounterMode(display=False)
        self.op = OpCounter()
        self.flops.__enter__()
        self.op.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.op.__exit__(*exc)
        self.flops.__exit__(*exc)

    def now(self) -> tuple[int, int]:
        return int(self.flops.get_total_flops()), self.op.ops
