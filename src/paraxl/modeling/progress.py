"""The progress bar every encoder shows while embedding many texts (PyTorch and ONNX alike).

It lives below both encoders (``modeling.bi_encoder`` and ``inference.onnx_encoder``) so that
neither imports the other's private helpers.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

Advance = Callable[[int], None]

# Encoding more texts than this shows a progress bar (unless the caller says otherwise).
PROGRESS_THRESHOLD = 256


class EncodeProgress:
    """A transient rich progress bar when ``show``; a no-op otherwise. Yields an ``advance(n)`` callable.

    Example::

        with EncodeProgress(len(texts) > PROGRESS_THRESHOLD, len(texts)) as advance:
            for batch in batches:
                ...
                advance(len(batch))
    """

    def __init__(self, show: bool, total: int) -> None:
        self.bar: Progress | None = None
        if show:
            self.bar = Progress(
                TextColumn("encoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
            )
            self.task = self.bar.add_task("encode", total=total)

    def __enter__(self) -> Advance:
        if self.bar is None:
            return lambda n: None
        self.bar.start()
        bar, task = self.bar, self.task
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
