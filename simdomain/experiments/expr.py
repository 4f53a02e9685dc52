"""Arithmetic over factor values, for the ``derived`` fields of an experiment.

An expression is Python arithmetic on numbers and factor names: ``+ - * / ** %``,
parentheses, and the functions ``min``, ``max``, ``abs`` and ``round``. Nothing else
parses, so an experiment file cannot run code.
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


def parse(text: str) -> ast.Expression:
    """Parse an expression, refusing anything but arithmetic.

    Raises
    ------
    ValueError
        Naming the construct that is not allowed.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {exc.msg}") from None
    for node in ast.walk(tree):
        complaint = _complaint(node, text)
        if complaint:
            raise ValueError(complaint)
    return tree


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
        If the result is not a finite number.
    """
    result = _eval(tree.body, values)
    if not math.isfinite(result):
        raise ValueError(f"{ast.unparse(tree)} = {result}")
    return result


def _eval(node: ast.expr, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, values), _eval(node.right, values))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # parse() allows no more
    return _FUNCTIONS[node.func.id](*(_eval(arg, values) for arg in node.args))
