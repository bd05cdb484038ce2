"""The options that choose where a corpus command runs its shards, shared by ``encode-corpus``,
``mine-corpus`` and ``index build-sharded`` (one definition: the same names and help everywhere), and
their one progress bar over shards."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from paraxl.cli.common import errors

EngineOption = Annotated[str, typer.Option(help="local (this machine) or ray (Ray: the ray extra of paraxl)")]
WorkersOption = Annotated[int, typer.Option(min=1, help="worker processes (local) or actors (ray)")]
RayAddressOption = Annotated[
    str | None, typer.Option(help="auto or HOST:PORT of a running Ray cluster (default: start one here)")
]


@contextlib.contextmanager
def shard_progress() -> Iterator[Callable[[int, int], None]]:
    """A transient bar over shards on stderr; yields the ``progress(done, total)`` callback the corpus jobs take."""
    bar = Progress(
        TextColumn("shards"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=True,
    )
    with bar:
        task = bar.add_task("shards", total=None)

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield show
