"""YAML with a comment on each value that says where the number came from."""

from __future__ import annotations

import math
from typing import Any

import yaml

Loc = tuple[str | int, ...]


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 10)) if not math.isnan(value) else ".nan"
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
    return text.removesuffix("\n...\n").strip()


def dump_annotated(data: dict[str, Any], notes: dict[Loc, str], header: str = "") -> str:
    """``data`` as block YAML, with ``notes[loc]`` as a comment after the value at ``loc``.

    A note on a mapping or a list goes on the line of its key. The output loads back
    to ``data`` with ``yaml.safe_load``.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]

    def note(loc: Loc) -> str:
        text = notes.get(loc)
        return f"  # {text}" if text else ""

    def emit(node: Any, loc: Loc, indent: int) -> None:
        pad = " " * indent
        for key, value in node.items():
            here = (*loc, key)
            label = _scalar(key)
            if isinstance(value, dict) and value:
                lines.append(f"{pad}{label}:{note(here)}")
                emit(value, here, indent + 2)
            elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
                lines.append(f"{pad}{label}:{note(here)}")
                for i, item in enumerate(value):
                    lines.append(f"{pad}  -{note((*here, i))}")
                    emit(item, (*here, i), indent + 4)
            elif isinstance(value, list):
                flow = ", ".join(_scalar(v) for v in value)
                lines.append(f"{pad}{label}: [{flow}]{note(here)}")
            else:
                lines.append(f"{pad}{label}: {_scalar(value)}{note(here)}")

    emit(data, (), 0)
    return "\n".join(lines) + "\n"
