"""Pydantic's validation errors of a training config, as messages that name the YAML line.

A key no section has: "unknown key 'loss.margn'; did you mean 'margin'?". A key of another
kind of a section that has kinds (``loss``, ``data``): "`margin` does not apply to loss kind
info_nce; it applies to additive_margin". Errors raised by an override name the override
instead of a line. A block of a list (``tasks:``) is named by its position: ``tasks[1].loss``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from paraxl.errors import InputError


def union_kinds(field: FieldInfo | None) -> dict[str, type[BaseModel]] | None:
    """``{kind: model}`` of a section that is a union discriminated by ``kind`` (or such a union
    that may be absent: ``Annotated[A | B, Field(discriminator="kind")] | None``); None otherwise."""
    if field is None:
        return None
    union = field.annotation if field.discriminator == "kind" else _optional_kind_union(field)
    if union is None:
        return None
    kinds: dict[str, type[BaseModel]] = {}
    for model in get_args(union):
        if isinstance(model, type) and issubclass(model, BaseModel):
            for tag in get_args(model.model_fields["kind"].annotation):
                kinds[str(tag)] = model
    return kinds


def _optional_kind_union(field: FieldInfo) -> object | None:
    """The union inside ``Annotated[union, Field(discriminator="kind")] | None``, if that is the field."""
    for option in get_args(field.annotation):
        metadata = getattr(option, "__metadata__", ())
        if any(isinstance(meta, FieldInfo) and meta.discriminator == "kind" for meta in metadata):
            union: object = get_args(option)[0]
            return union
    return None


def config_error(
    exc: ValidationError, root: type[BaseModel], node: yaml.Node | None, path: Path, overrides: Sequence[str]
) -> InputError:
    """The first error of ``exc`` (validating ``root``), located in the YAML tree ``node`` of ``path``."""
    first = exc.errors()[0]
    where = _resolve(root, first["loc"])
    location = where.location
    if first["type"] in ("union_tag_not_found", "union_tag_invalid"):
        location = (*location, "kind")
    from_override = _override_for(location, overrides)
    prefix = f"override {from_override!r}: " if from_override else ""
    line = None if from_override else _yaml_line(node, location)
    return InputError(prefix + _describe(first, where), path, line)


@dataclass(frozen=True)
class _Where:
    location: tuple[str, ...]  # dotted path of the error, without the kind tags pydantic inserts
    section: type[BaseModel] | None  # the model of the section that holds the last key
    kinds: dict[str, type[BaseModel]] | None  # that section's models by kind, if it has kinds
    kind: str | None  # the kind chosen there


def _resolve(root: type[BaseModel], loc: tuple[int | str, ...]) -> _Where:
    """Walk ``loc`` through the models, dropping the tag pydantic adds after a union section."""
    parts = [str(part) for part in loc]
    model: type[BaseModel] | None = root
    location: list[str] = []
    kinds: dict[str, type[BaseModel]] | None = None
    kind: str | None = None
    index = 0
    while index < len(parts) - 1:  # down to the section that holds the last key
        field = model.model_fields.get(parts[index]) if model is not None else None
        location.append(parts[index])
        model, kinds, kind = _nested(field), union_kinds(field), None
        if kinds is not None and parts[index + 1] in kinds:
            kind = parts[index + 1]
            model = kinds[kind]
            index += 1
        elif parts[index + 1].isdigit():  # a block of a list of sections (`tasks`): same model
            location.append(parts[index + 1])
            index += 1
        index += 1
    location += parts[index:]
    return _Where(tuple(location), model, kinds if kind is not None else None, kind)


def _nested(field: FieldInfo | None) -> type[BaseModel] | None:
    if field is None:
        return None
    candidates = [field.annotation, *get_args(field.annotation)]
    candidates += [inner for outer in candidates[1:] for inner in get_args(outer)]  # list[Model] | None
    nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return nested[0] if nested else None


def _dotted(location: Sequence[str]) -> str:
    """``tasks[1].loss.margin``: keys joined by dots, list positions in brackets."""
    return "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in location).removeprefix(".")


def _describe(error: ErrorDetails, where: _Where) -> str:
    location = where.location
    dotted = _dotted(location) or "config"
    if error["type"] == "extra_forbidden":
        return _unknown_key(where)
    if error["type"] in ("missing", "union_tag_not_found"):
        suffix = ".kind" if error["type"] == "union_tag_not_found" else ""
        return f"missing required key {dotted + suffix!r}"
    if error["type"] == "union_tag_invalid":
        context = error.get("ctx") or {}
        tags = [tag.strip(" '") for tag in str(context.get("expected_tags", "")).split(",")]
        given = str(context.get("tag", ""))
        close = difflib.get_close_matches(given, tags, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{dotted}.kind: {given!r} is not a {location[-1]} kind; expected one of {', '.join(tags)}{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{dotted}: {message}" if location else message


def _unknown_key(where: _Where) -> str:
    location, key = where.location, where.location[-1]
    dotted = _dotted(location)
    if where.kinds is not None and where.kind is not None:
        others = [kind for kind, model in where.kinds.items() if kind != where.kind and key in model.model_fields]
        if others:
            section = location[-2]
            return f"`{key}` does not apply to {section} kind {where.kind}; it applies to {', '.join(others)}"
    known = sorted(where.section.model_fields) if where.section is not None else []
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else (f"; known keys: {', '.join(known)}" if known else "")
    return f"unknown key {dotted!r}{hint}"


def _override_for(location: tuple[str, ...], overrides: Sequence[str]) -> str | None:
    dotted = ".".join(location)
    for override in overrides:
        key = override.partition("=")[0].strip()
        if dotted == key or dotted.startswith(key + ".") or key.startswith(dotted + "."):
            return override
    return None


def _yaml_line(node: yaml.Node | None, location: tuple[str, ...]) -> int | None:
    """The 1-based line of the deepest key of ``location`` present in the YAML tree."""
    line = None
    for part in location:
        if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]  # a block of a list: its first line
            line = node.start_mark.line + 1
            continue
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if key_node.value == part:
                line = key_node.start_mark.line + 1
                node = value_node
                break
        else:
            break
    return line
