"""What every ``paraxl`` command shares: the Typer app, consoles, error handling, model loading.

Command modules (``main``, ``pi_commands``, ``search_commands``, ``serve_command``,
``onnx_commands``) register themselves on :data:`app`; ``paraxl.cli.main`` imports them all.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

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
# Markup and emoji codes are off: every line paraxl prints interpolates user text (paths, column names,
# model specs, texts), and "[/x]" or ":smile:" in a file name must print as is, never as markup (a
# MarkupError inside the error handler was a traceback). Styled words are built as rich Text instead.
console = Console(markup=False, emoji=False)
errors = Console(stderr=True, markup=False, emoji=False)

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
            errors.print(Text.assemble(("error:", "bold red"), " ", shown(exc)), highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper


def open_model(spec: str, backend: str = "torch") -> LoadedModel:
    """``load_model(spec, backend)`` with a spinner (the one way commands load a model by spec)."""
    with console.status(Text(f"loading {shown(spec)} ({backend})")):
        return load_model(spec, backend)


def load_resolved(model: ResolvedModel, quiet: bool = False) -> LoadedModel:
    """Load a model resolved (and checked) earlier, with a spinner.

    ``quiet`` puts the spinner on stderr, for commands whose stdout is data.
    """
    with (errors if quiet else console).status(Text(f"loading {shown(model.spec)} ({model.backend})")):
        return model.load()


def say(message: str, *, stderr: bool = False, style: str | None = None) -> None:
    """A plain line (or lines) for the user: user text in it printed as is, each line made safe by :func:`shown`."""
    text = "\n".join(shown(line) for line in message.split("\n"))
    (errors if stderr else console).print(text, style=style, highlight=False, soft_wrap=True)


def print_note(note: str) -> None:
    """A note for the user (never stops the command), on stderr."""
    errors.print(shown(note), highlight=False, soft_wrap=True)


def print_labelled(label: str, message: str, style: str = "yellow") -> None:
    """``label: message`` on stderr, the label styled, the message (user text in it) shown as is."""
    errors.print(Text.assemble((f"{label}:", style), " ", shown(message)), highlight=False, soft_wrap=True)


def shown(value: object) -> str:
    """``str(value)`` safe for one terminal line: control characters and lone surrogates escaped.

    A file name may hold a newline or an escape sequence (which would break the one-line error or
    drive the terminal), and an undecodable argument arrives as a lone surrogate, which a UTF-8
    stream cannot write; both are shown as Python escapes (``\\n``, ``\\x1b``, ``\\udcff``).
    Markup needs no escaping here: the consoles print with markup off.
    """
    text = str(value)
    if text.isprintable():
        return text
    # repr() of one character: "\\n", "\\x1b", "\\udcff"; spaces of any kind stay as they are
    return "".join(
        char if char.isprintable() or unicodedata.category(char) == "Zs" else repr(char)[1:-1] for char in text
    )
