"""A YAML loader that refuses what could exhaust time or memory, and duplicate keys.

PyYAML's safe loader builds an alias once and shares it, so a file of a few lines
(the "billion laughs" bomb) stands for a document of billions of values; whatever
walks it afterwards (validation, a message quoting the value) never finishes. Deep
nesting makes the loader recurse past Python's limit. This loader measures each node
as it is composed, counting what its aliases would expand to, and stops at the first
node past a limit. It also refuses a key given twice in one mapping (PyYAML keeps the
last one silently), naming both lines.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_NODES = 100_000
"""Most values (scalars, lists, mappings), aliases expanded, in one document."""
MAX_DEPTH = 50
"""Most levels of nesting, aliases expanded."""


class LimitError(Exception):
    """A YAML document past a limit, or with a repeated key, at ``line`` (1-based)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


try:  # libyaml's event parser, when PyYAML was built with it
    from yaml.cyaml import CParser as _Parser
except ImportError:  # pragma: no cover - depends on the PyYAML build
    _Parser = None


class _Loader(yaml.composer.Composer,  # first: libyaml's parser has a composer of its own
              *((_Parser,) if _Parser else (yaml.reader.Reader, yaml.scanner.Scanner,
                                            yaml.parser.Parser)),  # type: ignore[misc]
              yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """A safe loader composing in Python, measuring every node: (expanded size, height).

    Events come from libyaml when PyYAML was built with it (several times faster than
    the pure-Python parser), nodes from PyYAML's Python composer, which can be extended.
    """

    def __init__(self, stream: str) -> None:
        if _Parser:
            _Parser.__init__(self, stream)
        else:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0
        self._total = 0
        self._measure: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            line = self.peek_event().start_mark.line + 1
            node = super().compose_node(parent, index)
            if id(node) not in self._measure:
                raise LimitError(line, "an alias refers to the value that contains it")
            self._count(self._measure[id(node)][0], line)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            line = self.peek_event().start_mark.line + 1
            raise LimitError(line, f"nested deeper than the limit of {MAX_DEPTH} levels")
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._measure[id(node)] = measure = self._size(node)
        line = node.start_mark.line + 1
        self._count(1, line)
        if measure[1] > MAX_DEPTH:
            raise LimitError(line, f"aliases nest deeper than the limit of {MAX_DEPTH} levels")
        return node

    def compose_mapping_node(self, anchor: str | None) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            line = key.start_mark.line + 1
            first = seen.get((key.tag, key.value))
            seen.setdefault((key.tag, key.value), line)
            if first is not None:
                lines = f"line {line}" if first == line else f"lines {first} and {line}"
                raise LimitError(line, f"key {key.value!r} appears twice ({lines}); keep one")
        return node

    def _count(self, nodes: int, line: int) -> None:
        self._total += nodes
        if self._total > MAX_NODES:
            raise LimitError(line, f"the document holds more than the limit of {MAX_NODES:,} "
                                   "values (aliases expanded; a YAML alias bomb?)")

    def _size(self, node: Node) -> tuple[int, int]:
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            return 1, 1
        measures = [self._measure[id(child)] for child in children]
        return (1 + sum(m[0] for m in measures),
                1 + max((m[1] for m in measures), default=0))


def load(text: str) -> Any:
    """Parse one YAML document with the safe loader, within the limits.

    Raises
    ------
    LimitError
        Past :data:`MAX_NODES` or :data:`MAX_DEPTH`, an alias to its own container, or
        a repeated key.
    yaml.YAMLError
        Not valid YAML.
    ValueError
        A value YAML reads but Python cannot hold (an integer of thousands of digits).
    """
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
