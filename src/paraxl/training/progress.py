"""The training progress bar: steps done, the loss and examples/s; a no-op when hidden."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class StepProgress:
    """``with StepProgress(...) as advance: advance(loss, rate)`` once per step."""

    def __init__(self, total: int, done: int, show: bool, console: Console) -> None:
        self.bar = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:.1f} ex/s"),
            TimeRemainingColumn(),
            console=console,
            disable=not show,
        )
        self.task = self.bar.add_task("train", total=total, completed=done, loss=float("nan"), rate=0.0)

    def __enter__(self) -> Callable[[float, float], None]:
        self.bar.start()
        return lambda loss, rate: self.bar.update(self.task, advance=1, loss=loss, rate=rate)

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()
