"""The once-a-minute progress line of a Trainer run whose tqdm bar is hidden."""

from __future__ import annotations

from types import SimpleNamespace

from paraxl.training.step_log import progress_line, step_log


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_line_at_most_every_interval_with_the_rate_of_this_sitting() -> None:
    said: list[str] = []
    clock = FakeClock()
    callback = step_log(said.append, every_seconds=60.0, clock=clock)
    # a resumed sitting: the Trainer is at step 500 of 1563 already; each step takes 2.5 s
    state = SimpleNamespace(global_step=500, max_steps=1563, epoch=0.96)
    callback.on_step_end(None, state, None)  # the sitting's first step: the rate counts from here
    for _ in range(30):  # 75 s: one line, after the 24th step (60 s)
        clock.now += 2.5
        state.global_step += 1
        state.epoch += 1 / 521
        callback.on_step_end(None, state, None)
    assert len(said) == 1
    assert said[0].startswith("step 524/1563 (epoch 1.01), 2.50 s/step, ~43 min left")
    # (1563 - 524) steps x 2.5 s = 2,597.5 s = 43.3 min
    for _ in range(24):
        clock.now += 2.5
        state.global_step += 1
        callback.on_step_end(None, state, None)
    assert len(said) == 2
    assert said[1].startswith("step 548/1563")


def test_progress_line_arithmetic() -> None:
    assert progress_line(0, 100, 0.0, 6.0) == "step 0/100 (epoch 0.00), 6.00 s/step, ~10 min left"
    assert progress_line(100, 100, 3.0, 6.0).endswith("~0 min left")
