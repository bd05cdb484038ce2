"""What every ``paraxl`` command shares: the Typer app, consoles, error handling, model loading.

Command modules (``main``, ``pi_commands``, ``search_commands``, ``serve_command``,
``onnx_commands``) register themselves on :data:`app`; ``paraxl.cli.main`` imports them all.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from paraxl.errors import ParaxlError
from paraxl.loading.backends import INFERENCE_BACKENDS
from paraxl.loading.model import LoadedModel, ResolvedModel, load_model

app = typer.Typer(
    name="paraxl",
    help="Cross-lingual paraphrase identification and multilingual sentence embeddings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

ModelOption = Annotated[str, typer.Option("--model", "-m", help="bundled:NAME, a model folder, or hub:ORG/NAME[@REV]")]
BackendOption = Annotated[
    str,
    typer.Option("--backend", help=f"inference backend: {', '.join(INFERENCE_BACKENDS)} (onnx* run on ONNX Runtime)"),
]


def _quiet_libraries() -> None:
    """Keep third-party chatter (load reports, download bars) off the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def cli_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn paraxl's own errors into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        _quiet_libraries()
        try:
            return command(*args, **kwargs)
        except ParaxlError as exc:
            errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper


def open_model(spec: str, backend: str = "torch") -> LoadedModel:
    """``load_model(spec, backend)`` with a spinner (the one way commands load a model by spec)."""
    with console.status(f"loading {spec} ({backend})"):
        return load_model(spec, backend)


def load_resolved(model: ResolvedModel, quiet: bool = False) -> LoadedModel:
    """Load a model resolved (and checked) earlier, with a spinner.

    ``quiet`` puts the spinner on stderr, for commands whose stdout is data.
    """
    with (errors if quiet else console).status(f"loading {model.spec} ({model.backend})"):
        return model.load()


def print_note(note: str) -> None:
    """A note for the user (never stops the command), on stderr."""
    errors.print(note, highlight=False, soft_wrap=True)
