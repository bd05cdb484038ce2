"""A line of training progress at most once a minute, for runs whose progress bar is hidden.

transformers' Trainer shows progress only through tqdm, which paraxl turns off when stderr is not a
terminal (``nohup``, CI, a scheduler's log file), so a cross-encoder epoch of ~15 min on a CPU
was silent until its end. :func:`step_log` makes the Trainer callback that prints, at most every
``every_seconds``, the global step, the epoch, the mean seconds per step of this sitting and the
time left at that rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def progress_line(step: int, total: int, epoch: float, seconds_per_step: float) -> str:
    """``step 120/1563 (epoch 1.23), 2.41 s/step, ~58 min left``."""
    left_minutes = (total - step) * seconds_per_step / 60
    return f"step {step}/{total} (epoch {epoch:.2f}), {seconds_per_step:.2f} s/step, ~{left_minutes:.0f} min left"


def step_log(
    say: Callable[[str], None],
    every_seconds: float = 60.0,
    clock: Callable[[], float] = time.perf_counter,
) -> Any:
    """A ``TrainerCallback`` calling ``say(progress_line(...))`` at most every ``every_seconds``.

    The rate is measured from this sitting's first step (a resumed run's earlier steps took an
    unknown time), so the first line comes after the first full interval; it includes the epoch-end
    validation and checkpoints, which the time left has to cover too.
    """
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):  # type: ignore[misc]
        start_time: float | None = None
        start_step = 0
        last_said = 0.0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            now = clock()
            if self.start_time is None:  # the first step of this sitting: the rate counts from here
                self.start_time, self.start_step, self.last_said = now, state.global_step, now
                return
            if now - self.last_said < every_seconds:
                return
            self.last_said = now
            rate = (now - self.start_time) / (state.global_step - self.start_step)
            say(progress_line(state.global_step, state.max_steps, state.epoch or 0.0, rate))

    return StepLog()
