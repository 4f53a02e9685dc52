"""What every ``simdomain`` subcommand shares: exit codes and common arguments."""

from __future__ import annotations

import argparse

OK = 0
INTERNAL_ERROR = 1
BAD_INPUT = 2
INFEASIBLE = 3
ALL_FAILED = 4
INTERRUPTED = 130
"""Exit codes, documented in the README."""


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_simulation_args(parser: argparse.ArgumentParser, *, reps: int = 10) -> None:
    """``--reps``, ``--seed``, ``--set``, ``--out`` and ``--quiet``."""
    parser.add_argument("--reps", type=positive_int, default=reps,
                        help=f"replications (default {reps})")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a scenario field, e.g. touch_policy.one_to_one.per_week=3")
    parser.add_argument("--out", metavar="DIR", help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or tables")
