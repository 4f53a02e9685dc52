"""Read scenario files, apply ``--set`` overrides and explain what is wrong."""

from __future__ import annotations

import copy
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from simdomain.errors import InputError, Problem
from simdomain.scenario import safeyaml
from simdomain.scenario.model import FieldError, Scenario
from simdomain.textio import read_text

Loc = tuple[str | int, ...]

MAX_YAML_BYTES = 4 * 1024 * 1024
"""Largest scenario or experiment file (real ones are a few kilobytes)."""


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                  memory_share: float = 1.0) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path
        A YAML scenario file.
    overrides
        ``"a.b.c=value"`` strings applied before validation; values are read as YAML.
    memory_share
        Part of the population this machine holds at once (see
        :func:`simdomain.scenario.capacity.memory_problem`).

    Raises
    ------
    InputError
        Naming the file (or ``--set``), the field path and what was expected.
    """
    source = str(path)
    raw = read_yaml(path)
    scenario = validate_scenario(raw, source, overrides, memory_share=memory_share)
    files = scenario.population
    if files is not None:  # relative to the scenario's folder, wherever it is run from
        folder = Path(path).resolve().parent
        files.people = str(folder / files.people)
        if files.parameters is not None:
            files.parameters = str(folder / files.parameters)
    return scenario


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning every failure into an :class:`InputError`.

    The file is read by :func:`simdomain.textio.read_text` (at most
    :data:`MAX_YAML_BYTES`, any supported encoding) and parsed by
    :func:`simdomain.scenario.safeyaml.load` (alias, nesting and repeated-key checks).
    """
    source = str(path)
    raw = parse_yaml(read_text(path, limit=MAX_YAML_BYTES), source)
    if not isinstance(raw, dict):
        raise InputError([Problem(source, (), f"expected a mapping of fields, got {_kind(raw)}")])
    return raw


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text within the loader's limits, or raise an :class:`InputError`."""
    try:
        return safeyaml.load(text)
    except safeyaml.LimitError as exc:
        raise InputError([Problem(source, (), f"line {exc.line}: {exc}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise InputError([Problem(source, (), f"invalid YAML{where}: {reason}")]) from None
    except (ValueError, OverflowError, RecursionError) as exc:
        raise InputError([Problem(source, (), f"cannot read a value: {_reason(exc)}")]) from None


def _reason(exc: Exception) -> str:
    text = str(exc)
    return "a number has too many digits" if text.startswith("Exceeds the limit") else text


def validate_scenario(
    raw: dict[str, Any], source: str = "<scenario>", overrides: list[str] | tuple[str, ...] = (),
    *, memory_share: float = 1.0,
) -> Scenario:
    """Validate a scenario given as a mapping, after applying ``overrides``; the memory
    check counts ``memory_share`` of its people."""
    raw, overridden = apply_overrides(raw, overrides)
    try:
        return Scenario.model_validate(raw, context={"memory_share": memory_share})
    except ValidationError as exc:
        raise InputError(explain(exc, Scenario, source, overridden)) from None


def apply_overrides(
    raw: dict[str, Any], overrides: list[str] | tuple[str, ...]
) -> tuple[dict[str, Any], dict[Loc, str]]:
    """Return a copy of ``raw`` with each ``path=value`` set, and the paths set.

    A list element is addressed by its index (``campaigns.0.days=5``). Only the mappings
    and lists along each path are copied: the rest is shared with ``raw``, which is
    never changed (an experiment sets its factors on thousands of copies).
    """
    raw = dict(raw)
    overridden: dict[Loc, str] = {}
    problems = []
    for text in overrides:
        path, sep, value_text = text.partition("=")
        loc: Loc = tuple(int(p) if p.isdigit() else p for p in path.strip().split("."))
        if not sep or not path.strip() or "" in loc:
            problems.append(Problem("--set", (), f"expected path=value, got {text!r}"))
            continue
        try:
            value = safeyaml.load(value_text)
        except yaml.YAMLError:
            value = value_text
        except (safeyaml.LimitError, ValueError, OverflowError) as exc:
            problems.append(Problem(f"--set {path.strip()}=...", (),
                                    f"cannot read the value: {_reason(exc)}"))
            continue
        if len(loc) > safeyaml.MAX_DEPTH:
            problems.append(Problem("--set", (), f"the path has {len(loc)} parts; the limit "
                                                 f"is {safeyaml.MAX_DEPTH}"))
            continue
        node: Any = raw
        for key in loc[:-1]:
            child = _child(node, key)
            if child is None:
                if not isinstance(node, dict):
                    break
                child = {}
            elif isinstance(child, (dict, list)):
                child = copy.copy(child)
            node[key] = child
            node = child
        else:
            if isinstance(node, dict):
                node[loc[-1]] = value
                overridden[loc] = text
                continue
            if isinstance(node, list) and isinstance(loc[-1], int) and loc[-1] < len(node):
                node[loc[-1]] = value
                overridden[loc] = text
                continue
        problems.append(Problem("--set", loc, f"no such place to set in {text!r}"))
    if problems:
        raise InputError(problems)
    return raw, overridden


def _child(node: Any, key: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node[key]
    return None


def explain(
    exc: ValidationError,
    model: type[BaseModel],
    source: str,
    overridden: dict[Loc, str] | None = None,
) -> list[Problem]:
    """Turn a pydantic error into problems with readable paths and suggestions."""
    problems = []
    errors = [(_clean_loc(e["loc"]), e) for e in exc.errors()]
    for loc, error in errors:
        if error["type"].endswith("_type") and any(
            other is not error and other_loc[: len(loc)] == loc for other_loc, other in errors
        ):
            continue  # a union branch the input was not meant for (a number, not a list)
        cause = (error.get("ctx") or {}).get("error")
        message = error["msg"].removeprefix("Value error, ")
        if isinstance(cause, FieldError):
            loc, message = loc + cause.loc, str(cause)
        elif error["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
            known = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            message += f"; did you mean {close[0]!r}?" if close else f"; expected one of {known}"
        elif error["type"] not in ("missing", "value_error"):  # a value error quotes it
            message += f" (got {_show(error.get('input'))})"
        origin = next(
            (text for path, text in (overridden or {}).items()
             if loc[: len(path)] == path or (loc and path[: len(loc)] == loc)), None
        )
        if origin:
            source_here = f"--set {origin}"
        elif overridden and not loc:  # about the whole scenario, the overrides included
            source_here = f"{source} with --set {' '.join(overridden.values())}"
        else:
            source_here = source
        problems.append(Problem(source_here, loc, message))
    return problems


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    """Drop pydantic's union branch names (``float``, ``list[...]``) from a location."""
    tags = {"float", "int", "str", "bool", "date", "none"}
    return tuple(p for p in loc if not (isinstance(p, str) and (
        p in tags or "[" in p or p.startswith(("constrained-", "function-")))))


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the model found by walking ``loc`` down from ``model``."""
    node: Any = model
    for part in loc:
        node = _descend(node, part)
        if node is None:
            return []
    return list(node.model_fields) if _is_model(node) else []


def _descend(annotation: Any, part: str | int) -> Any:
    if _is_model(annotation):
        field = annotation.model_fields.get(part)
        return _descend_type(field.annotation) if field else None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (dict, list) and args:
        return _descend_type(args[-1])
    return None


def _descend_type(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the part with fields."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = [a for a in typing.get_args(annotation) if a is not type(None)]
        structured = [a for a in candidates if _is_model(a) or typing.get_origin(a) in (dict, list)]
        return _descend_type(structured[0]) if structured else candidates[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    return "nothing (empty file)" if value is None else f"a {type(value).__name__}"


def dump_scenario(scenario: Scenario) -> str:
    """The resolved scenario as YAML, every default written out."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
