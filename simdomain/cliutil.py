"""What every ``simdomain`` subcommand shares: exit codes, common arguments and the
argparse types that refuse a bad flag value with one line (exit 2) before work starts."""

from __future__ import annotations

import argparse
import datetime as dt
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from simdomain.errors import InputError, Problem
from simdomain.scenario.model import MAX_CNY
from simdomain.shards import MAX_SHARDS
from simdomain.workers import Cluster, is_scheduler_address, open_cluster

OK = 0
INTERNAL_ERROR = 1
BAD_INPUT = 2
INFEASIBLE = 3
ALL_FAILED = 4
INTERRUPTED = 130
"""Exit codes, documented in the README."""

MAX_REPS = 10_000
"""Most replications of one command (``--reps``, ``--verify``)."""
MAX_SEED = 2**63 - 1
"""Largest root seed (seeds are stored as 64-bit integers)."""
MAX_WORKERS = 1024
"""Most local worker processes."""


def int_in(low: int, high: int, what: str = "an integer") -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} from {low:,} to {high:,}, "
                                             f"got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {low:,} to {high:,}, "
                                             f"got {text}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def number_in(low: float, high: float, what: str = "a number", *,
              low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` (excluded if ``low_open``) to ``high``."""
    span = f"{'above' if low_open else 'from'} {low:g} up to {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = (value > low if low_open else value >= low) and value <= high
        if not (math.isfinite(value) and inside):
            raise argparse.ArgumentTypeError(f"expected {what} {span}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


positive_int = int_in(1, 2**31 - 1, "a positive integer")
"""An argparse type: an integer of at least 1."""
replications = int_in(1, MAX_REPS, "a number of replications")
"""An argparse type: replications, 1 to :data:`MAX_REPS`."""
workers = int_in(1, MAX_WORKERS, "a number of workers")
"""An argparse type: worker processes, 1 to :data:`MAX_WORKERS`."""
seed = int_in(0, MAX_SEED, "a seed")
"""An argparse type: a root seed, 0 to :data:`MAX_SEED`."""
amount = number_in(0.0, MAX_CNY, "an amount in yuan")
"""An argparse type: money, 0 to :data:`simdomain.scenario.model.MAX_CNY`."""
seconds = number_in(0.0, 7 * 86400.0, "a number of seconds", low_open=True)
"""An argparse type: a duration above 0, up to a week."""


def add_simulation_args(parser: argparse.ArgumentParser, *, reps: int = 10) -> None:
    """``--reps``, ``--seed``, ``--set``, ``--out`` and ``--quiet``."""
    parser.add_argument("--reps", type=replications, default=reps,
                        help=f"replications (default {reps}, at most {MAX_REPS:,})")
    parser.add_argument("--seed", type=seed, default=0, help="root seed (default 0)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a scenario field, e.g. touch_policy.one_to_one.per_week=3")
    parser.add_argument("--out", metavar="DIR", help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or tables")


def scheduler_address(text: str) -> str:
    """An argparse type: a Dask scheduler's address, ``[PROTOCOL://]HOST:PORT``."""
    if not is_scheduler_address(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a scheduler address; expected "
                                         "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    return text


def add_cluster_args(parser: argparse.ArgumentParser) -> None:
    """``--shards``, ``--scheduler`` and ``--workers``: the population split by person."""
    parser.add_argument("--shards", type=int_in(1, MAX_SHARDS, "a number of shards"),
                        metavar="N",
                        help="split the population by person into N shards, each simulating "
                             "1/N of the world, and merge them (docs/sharding.md); the same "
                             "seed and N give the same outputs on any number of workers")
    parser.add_argument("--scheduler", type=scheduler_address, metavar="ADDRESS",
                        help="run the shards on this dask.distributed scheduler "
                             "(tcp://HOST:PORT; needs --shards)")
    parser.add_argument("--workers", type=workers,
                        help="local worker processes for the shards (default: the cores, "
                             "at most the shards' tasks; 1 runs them in this process)")


@contextmanager
def cluster_from(args: argparse.Namespace, tasks: int) -> Iterator[Cluster | None]:
    """The cluster ``--shards``, ``--scheduler`` and ``--workers`` ask for (``None``
    without ``--shards``), connected before anything is written and released after."""
    if args.shards is None:
        for flag, value in (("--scheduler", args.scheduler), ("--workers", args.workers)):
            if value is not None:
                raise InputError([Problem(flag, (), "needs --shards N (the outputs depend "
                                                    "on the number of shards, not of workers)")])
        yield None
        return
    with open_cluster(args.scheduler, args.workers, tasks) as cluster:
        yield cluster


def date(text: str) -> dt.date:
    """An argparse type: a date written YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None
