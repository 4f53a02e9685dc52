"""Arithmetic over factor values, for the ``derived`` fields of an experiment.

An expression is Python arithmetic on numbers and factor names: ``+ - * / ** %``,
parentheses, and the functions ``min``, ``max``, ``abs`` and ``round``. Nothing else
parses, so an experiment file cannot run code. Nothing can take long either: an
expression has at most :data:`MAX_CHARS` characters and :data:`MAX_DEPTH` levels, an
exponent is at most :data:`MAX_EXPONENT` in size, and a whole-number power too large for
a float is refused (``9**9**9`` is refused at once instead of computed).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs, "round": round}
MAX_CHARS = 1000
"""Longest expression."""
MAX_DEPTH = 30
"""Most levels of nesting (operations within operations)."""
MAX_EXPONENT = 1000
"""Largest exponent (in size) of ``**``."""
_MAX_INT_BITS = 1024
"""Largest whole-number result of ``**`` (floats beyond about 1e308 overflow anyway)."""


def parse(text: str) -> ast.Expression:
    """Parse an expression, refusing anything but arithmetic.

    Raises
    ------
    ValueError
        Naming the construct that is not allowed.
    """
    if len(text) > MAX_CHARS:
        raise ValueError(f"the expression has {len(text):,} characters; the limit is {MAX_CHARS:,}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"nested deeper than the limit of {MAX_DEPTH} levels") from None
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        raise ValueError(f"nested {depth} levels deep; the limit is {MAX_DEPTH}")
    for node in ast.walk(tree):
        complaint = _complaint(node, text)
        if complaint:
            raise ValueError(complaint)
    return tree


def _depth(tree: ast.AST) -> int:
    """Levels of nesting of ``tree``, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node)
                     if not isinstance(child, (ast.expr_context, ast.operator, ast.unaryop)))
    return deepest


def _complaint(node: ast.AST, text: str) -> str | None:
    """Why ``node`` may not appear in an expression, or ``None`` if it may."""
    if isinstance(node, ast.Call):
        named = isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
        if not named or node.keywords:
            return f"only {sorted(_FUNCTIONS)} may be called, got {ast.unparse(node)!r}"
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            return f"only numbers may appear, got {node.value!r}"
    elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load,
                               *_BINARY, *_UNARY)):
        return f"{type(node).__name__} is not allowed in {text.strip()!r}"
    return None


def names(tree: ast.Expression) -> set[str]:
    """Names the expression refers to (function names excluded)."""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def evaluate(tree: ast.Expression, values: Mapping[str, Any]) -> float | int:
    """Value of a parsed expression with each name bound to ``values[name]``.

    Raises
    ------
    ValueError
        If the result is not a finite number, or an operation is out of range (an
        exponent past :data:`MAX_EXPONENT`, a power or product too large, a division
        by zero).
    """
    try:
        result = _eval(tree.body, values)
        finite = math.isfinite(result)
    except OverflowError:
        raise ValueError(f"{ast.unparse(tree)} is too large to compute") from None
    except ZeroDivisionError:
        raise ValueError(f"{ast.unparse(tree)} divides by zero") from None
    if not finite:
        raise ValueError(f"{ast.unparse(tree)} = {result}")
    return result


def _eval(node: ast.expr, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # parse() allows no more
    return _FUNCTIONS[node.func.id](*(_eval(arg, values) for arg in node.args))


def _power(base: Any, exponent: Any) -> Any:
    """``base ** exponent`` within the limits; a large whole-number power as a float
    (which raises ``OverflowError`` past about 1e308)."""
    if abs(exponent) > MAX_EXPONENT:
        shown = f"{exponent:,}" if isinstance(exponent, int) else f"{exponent:g}"
        raise ValueError(f"the exponent {shown} is beyond the limit of {MAX_EXPONENT}")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 \
            and base.bit_length() * exponent > _MAX_INT_BITS:
        base = float(base)
    result = base ** exponent
    if isinstance(result, complex):
        raise ValueError(f"{base:g} ** {exponent:g} is not a real number")  # noqa: TRY004
    return result
