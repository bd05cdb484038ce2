"""Several models' profiles side by side: the table a user reads to choose what to train.

``paraxl eval --tasks profile`` writes one model's task JSONs into a folder; this module reads such
folders back and lays their profile columns (:data:`paraxl.evaluation.profile.PROFILE`) out as one
row per model. A row may name several folders, one per seed: its cell is then the mean and the
sample standard deviation (``statistics.stdev``, as the experiment tables) over the folders that
hold the column, with the count kept so that "3 seeds" and "1 of 3" never print alike. A reference
row (the off-the-shelf model, usually) gives a second table of changes, in points.

One folder holds one model: result files of two fingerprints in one folder are refused (file and
both specs named), since their columns would mix two models silently.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from paraxl.errors import InputError
from paraxl.evaluation.profile import PROFILE, ProfileColumn, profile_values
from paraxl.evaluation.results import ResultDocument, read_result
from paraxl.evaluation.tasks.registry import TASKS


@dataclass(frozen=True)
class ProfileCell:
    """One column of one row: the mean over the folders that hold it (None: none does)."""

    mean: float | None
    std: float | None  # sample standard deviation; None below two values
    count: int  # folders that hold the column
    of: int  # folders of the row


def profile_cell(values: Sequence[float | None]) -> ProfileCell:
    """Mean and sample std of the present values, each folder one value."""
    present = [v for v in values if v is not None]
    mean = statistics.fmean(present) if present else None
    std = statistics.stdev(present) if len(present) > 1 else None
    return ProfileCell(mean, std, len(present), len(values))


@dataclass(frozen=True)
class FolderModel:
    """What one eval folder was: the model's spec and fingerprint, and the PAWS-X protocol if any."""

    folder: Path
    spec: str
    fingerprint: str | None
    protocol: str | None


def folder_documents(folder: Path) -> tuple[FolderModel, list[ResultDocument]]:
    """The result files of one model in an eval folder (``<task>.json`` for each registered task)."""
    if not folder.is_dir():
        raise InputError("not an evaluation folder (no such directory)", folder)
    documents: list[ResultDocument] = []
    for name in TASKS:
        path = folder / f"{name}.json"
        if not path.is_file():
            continue
        document = read_result(path)
        if documents and _identity(document) != _identity(documents[0]):
            first = documents[0]
            raise InputError(
                f"holds results of two models: {document.model.spec!r} here and {first.model.spec!r} in "
                f"{first.task.name}.json; give each model its own folder",
                path,
            )
        documents.append(document)
    if not documents:
        tasks = ", ".join(f"{name}.json" for name in TASKS)
        raise InputError(f"no result files (expected one of {tasks}); run `paraxl eval -o` into it", folder)
    first = documents[0]
    pawsx = next((d for d in documents if d.task.name == "pawsx"), None)
    model = FolderModel(folder, first.model.spec, first.model.fingerprint, pawsx.protocol if pawsx else None)
    return model, documents


def _identity(document: ResultDocument) -> str:
    """Which model a result is of: its folder fingerprint, or its spec where none was recorded."""
    return document.model.fingerprint or f"spec:{document.model.spec}"


@dataclass(frozen=True)
class ProfileTableRow:
    """One model: its folders (one per seed) and the cell of every profile column."""

    name: str
    folders: tuple[FolderModel, ...]
    cells: Mapping[str, ProfileCell]  # by column key


def profile_row(name: str, folders: Sequence[Path]) -> ProfileTableRow:
    """One row from one folder per seed of a model."""
    if not folders:
        raise InputError(f"profile row {name!r} names no folder")
    read = [folder_documents(folder) for folder in folders]
    seen: dict[str, Path] = {}
    for model, documents in read:  # one seed twice would count twice and shrink the spread
        identity = _identity(documents[0])
        if identity in seen:
            raise InputError(
                f"profile row {name!r}: the same model as {seen[identity]} (each folder is one seed)", model.folder
            )
        seen[identity] = model.folder
    values = [profile_values(documents) for _, documents in read]
    cells = {c.key: profile_cell([v[c.key] for v in values]) for c in PROFILE}
    return ProfileTableRow(name, tuple(model for model, _ in read), cells)


@dataclass(frozen=True)
class ProfileTable:
    """Rows of distinct names, and optionally the row that changes are measured against."""

    rows: tuple[ProfileTableRow, ...]
    reference: str | None = None  # the row the changes are against

    def __post_init__(self) -> None:
        names = [row.name for row in self.rows]
        if len(set(names)) != len(names):
            raise InputError(f"profile rows need distinct names; got {names}")
        if self.reference is not None and self.reference not in names:
            raise InputError(f"reference row {self.reference!r} is not one of the rows {names}")

    def best(self, key: str) -> set[str]:
        """The rows with the highest mean in a column (rules in :meth:`_best_of`); computed once per table."""
        return self._winners[key]

    @cached_property
    def _winners(self) -> dict[str, set[str]]:
        return {c.key: self._best_of(c.key) for c in PROFILE}

    def _best_of(self, key: str) -> set[str]:
        """The rows with the highest mean in a column (every column is higher-is-better); ties all count.

        Only cells over all of their row's seeds compete (a "1 of 3" mean is not comparable), and a
        table of one row has no best.
        """
        full = {row.name: row.cells[key].mean for row in self.rows if row.cells[key].count == row.cells[key].of}
        present = [m for m in full.values() if m is not None]
        if len(self.rows) < 2 or not present:
            return set()
        return {name for name, m in full.items() if m == max(present)}

    def change(self, row: ProfileTableRow, key: str) -> float | None:
        """The row's mean minus the reference row's, in points; None without a reference or a number."""
        if self.reference is None:
            return None
        reference = next(r for r in self.rows if r.name == self.reference).cells[key].mean
        mean = row.cells[key].mean
        return None if reference is None or mean is None else mean - reference

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": [{"key": c.key, "title": c.title, "unit": c.unit.label} for c in PROFILE],
            "reference": self.reference,
            "rows": [self._row_json(row) for row in self.rows],
        }

    def _row_json(self, row: ProfileTableRow) -> dict[str, Any]:
        folders = [
            {"path": str(m.folder), "spec": m.spec, "fingerprint": m.fingerprint, "protocol": m.protocol}
            for m in row.folders
        ]
        cells = {
            c.key: {**vars(row.cells[c.key]), "change": self.change(row, c.key), "best": row.name in self.best(c.key)}
            for c in PROFILE
        }
        return {"name": row.name, "folders": folders, "cells": cells}


def _cell_text(cell: ProfileCell, best: bool) -> str:
    if cell.mean is None:
        return "-"
    text = f"{cell.mean:.2f}" + (f" ± {cell.std:.2f}" if cell.std is not None else "")
    text = f"**{text}**" if best else text
    return text + (f" ({cell.count} of {cell.of})" if cell.count < cell.of else "")


def _header(columns: Sequence[ProfileColumn]) -> list[str]:
    return ["| model | seeds | " + " | ".join(c.title for c in columns) + " |", "|---|---|" + "---|" * len(columns)]


def profiles_markdown(table: ProfileTable) -> str:
    """The rows (best mean per column in bold), then the changes against the reference row if any."""
    lines = _header(PROFILE)
    for row in table.rows:
        cells = [_cell_text(row.cells[c.key], row.name in table.best(c.key)) for c in PROFILE]
        lines.append(f"| {row.name} | {len(row.folders)} | " + " | ".join(cells) + " |")
    if table.reference is not None:
        lines += ["", f"Change against {table.reference}, in points:", "", *_header(PROFILE)]
        for row in table.rows:
            if row.name == table.reference:
                continue
            changes = [table.change(row, c.key) for c in PROFILE]
            texts = ["-" if d is None else f"{d:+.2f}" for d in changes]
            lines.append(f"| {row.name} | {len(row.folders)} | " + " | ".join(texts) + " |")
    protocols = {m.protocol for row in table.rows for m in row.folders if m.protocol is not None}
    if len(protocols) > 1:
        lines += ["", f"Note: the PAWS-X columns mix protocols ({', '.join(sorted(protocols))})."]
    sources = (f"{row.name}: " + ", ".join(str(m.folder) for m in row.folders) for row in table.rows)
    lines += ["", "Folders: " + "; ".join(sources) + "."]
    return "\n".join(lines) + "\n"


def parse_row(text: str) -> tuple[str, list[Path]]:
    """``"NAME=DIR[,DIR...]"`` (one folder per seed) -> (name, folders)."""
    name, sep, folders = text.partition("=")
    paths = [Path(part.strip()) for part in folders.split(",") if part.strip()]
    if not sep or not name.strip() or not paths:
        raise InputError(f"--row: expected NAME=FOLDER[,FOLDER...] (one eval folder per seed), got {text!r}")
    return name.strip(), paths
