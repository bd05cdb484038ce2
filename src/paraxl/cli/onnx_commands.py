"""``paraxl export-onnx``: write a model folder's ONNX files for ``--backend onnx`` / ``onnx-int8``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from paraxl.cli.common import app, cli_errors, console, say, shown


@app.command("export-onnx")
@cli_errors
def export_onnx_command(
    model: Annotated[str, typer.Argument(help="a model folder, bundled:NAME or hub:ORG/NAME[@REV]")],
    int8: Annotated[
        bool, typer.Option("--int8/--no-int8", help="also write the int8 model (dynamic quantization)")
    ] = True,
    force: Annotated[bool, typer.Option("--force", help="re-export even if the files are up to date")] = False,
) -> None:
    """Export a model to ONNX (MODEL/onnx/model.onnx, and model_qint8.onnx with --int8) for fast CPU inference.

    A bi-encoder's graph gives token states (pooled in numpy), a cross-encoder's its logit; each file is
    checked against torch before it is kept.
    """
    from paraxl.inference.cross_encoder_export import export_cross_encoder
    from paraxl.inference.onnx_export import export_onnx
    from paraxl.inference.onnx_files import BACKEND_FILES, ONNX_DIR, manifest_path
    from paraxl.io.outputs import check_output
    from paraxl.loading.model import resolve_model
    from paraxl.modeling.cross_encoder import is_cross_encoder

    folder = resolve_model(model).folder
    check_output(folder / ONNX_DIR, "folder")  # the export writes there: fail before the model loads
    cross = is_cross_encoder(folder)  # a pair model: its logits graph, checked on pairs
    with console.status(Text(f"exporting {shown(model)}{' (cross-encoder)' if cross else ''} to ONNX")):
        report = (export_cross_encoder if cross else export_onnx)(folder, int8=int8, force=force)
    if report.up_to_date:
        say(f"{folder}: ONNX export up to date (--force to redo it)")
        return
    table = Table("backend", "file", "MB")
    for backend, name in BACKEND_FILES.items():
        path = folder / name
        if path in report.written:
            table.add_row(backend, shown(path), f"{path.stat().st_size / 1e6:.1f}")
    console.print(table)
    say(f"exported in {report.seconds:.1f} s; record: {manifest_path(folder)}; use --backend onnx or onnx-int8")
