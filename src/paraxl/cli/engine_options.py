"""The options that choose where a corpus command runs its shards, shared by ``encode-corpus``,
``mine-corpus`` and ``index build-sharded`` (one definition: the same names and help everywhere)."""

from __future__ import annotations

from typing import Annotated

import typer

EngineOption = Annotated[str, typer.Option(help="local (this machine) or ray (Ray: the ray extra of paraxl)")]
WorkersOption = Annotated[int, typer.Option(min=1, help="worker processes (local) or actors (ray)")]
RayAddressOption = Annotated[
    str | None, typer.Option(help="auto or HOST:PORT of a running Ray cluster (default: start one here)")
]
