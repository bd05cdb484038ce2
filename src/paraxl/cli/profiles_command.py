"""``paraxl profiles``: several models' evaluation profiles as one table (one row per model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paraxl.cli.common import app, cli_errors, say


@app.command("profiles")
@cli_errors
def profiles_command(
    rows: Annotated[
        list[str],
        typer.Option(
            "--row",
            help="NAME=FOLDER[,FOLDER...]: a model's `paraxl eval` folder, one per seed (repeat; NAME without =)",
        ),
    ],
    reference: Annotated[
        str | None, typer.Option(help="row name to print changes against (e.g. the off-the-shelf model)")
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="write profiles.json and profiles.md here")
    ] = None,
) -> None:
    """Lay the profile columns of several evaluated models side by side: mean ± std over seeds, best in bold."""
    from paraxl.evaluation.profile_table import ProfileTable, parse_row, profile_row, profiles_markdown
    from paraxl.io.atomic import atomic_path, write_json_atomic
    from paraxl.io.outputs import check_output

    if output_dir is not None:
        check_output(output_dir, "folder")
    table = ProfileTable(tuple(profile_row(*parse_row(text)) for text in rows), reference)
    markdown = profiles_markdown(table)
    print(markdown, end="")
    if output_dir is not None:
        write_json_atomic(output_dir / "profiles.json", table.to_json(), indent=1, ensure_ascii=False, allow_nan=False)
        with atomic_path(output_dir / "profiles.md") as tmp:
            tmp.write_text(markdown, encoding="utf-8")
        say(f"wrote {output_dir / 'profiles.json'} and {output_dir / 'profiles.md'}")
