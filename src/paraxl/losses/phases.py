"""Wall-clock seconds per phase of a training step (tokenize, no-grad pass, forward, loss, backward).

The step functions take a ``clock`` that wraps each phase; the default does nothing, so the
trainer pays nothing for it. A benchmark passes a :class:`PhaseClock` and reads its totals
(``benchmarks/bench_training.py``). On a CPU no device synchronisation is needed: every torch
call has finished when it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

Clock = Callable[[str], AbstractContextManager[object]]


def no_clock(name: str) -> AbstractContextManager[object]:
    """The default clock: measures nothing."""
    return nullcontext()


class PhaseClock:
    """Adds the wall-clock seconds of each ``with clock(name):`` block to ``seconds[name]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began
