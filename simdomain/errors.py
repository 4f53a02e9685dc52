"""Errors a user can act on, each naming the file and the field path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem in an input: where it is and what is wrong."""

    source: str
    loc: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        where = " -> ".join(str(part) for part in self.loc)
        return f"{self.source}: {where}: {self.message}" if where else f"{self.source}: {self.message}"


class InputError(Exception):
    """Bad input: every problem found, ready to print one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)  # args hold the problems, so a copy (SimPy, pickle) keeps them
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class SimdomainWarning(UserWarning):
    """Something the user should know that does not stop the command (printed by the
    CLI as one ``warning: ...`` line)."""
