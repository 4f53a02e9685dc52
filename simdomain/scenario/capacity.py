"""How many people a scenario brings, and whether this machine's memory could hold them.

The engine keeps one slot per person in numpy arrays (``simdomain.sim.population``);
this module estimates their number from the scenario alone, so that validation can
refuse a scenario that ``run`` could not hold before any array is allocated. It does
not import the engine: :data:`BYTES_PER_PERSON` is checked against the engine's
arrays by a test.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simdomain.scenario.model import Scenario

BYTES_PER_PERSON = 83
"""Bytes of one person's slot in the engine's arrays (``simdomain.sim.population.FIELDS``,
at their widest: an upper bound, as a run narrows some of them when its values fit and
reads segment, source and dormancy from the state key)."""
PEAK_FACTOR = 2
"""Peak memory over the arrays' size. Measured (``benchmarks/engine.py``): a twin-like
run of 10,000,000 known people x 365 days (about 18 million slots at the end, their own
multipliers, the lifecycle's groups of 4 bytes a person for each multiplier, and the
known people's input arrays, 49 bytes a person, included) peaked at 1,840 MiB, 122 of
them the interpreter's: about 98 bytes per slot, 1.18 times the slot's widest size."""


def month_lengths(start: dt.date, days: int) -> list[int]:
    """Calendar days of each month the ``days`` from ``start`` touch."""
    end = start + dt.timedelta(days=days - 1)
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    first = start.year * 12 + start.month - 1
    return [calendar.monthrange((first + m) // 12, (first + m) % 12 + 1)[1] for m in range(months)]


def expected_people(scenario: Scenario) -> float:
    """People the scenario may hold: the initial pool, the adds its channels buy (mean,
    up to staff capacity) or get free and, with referral, the whole addressable market.

    The first two are the engine's own sizing estimate; the market is an upper bound on
    the people word of mouth brings.
    """
    total = float(scenario.initial_pool.total)
    by_month = {name: scenario.expected_adds_by_month(name) for name in scenario.channels}
    for m, length in enumerate(month_lengths(scenario.start_date, scenario.horizon_days)):
        for name, channel in scenario.channels.items():
            adds = by_month[name][m]
            if channel.staff is not None:
                adds = min(adds, channel.staff.daily_capacity * length)
            total += adds + channel.free_adds_per_month
    if scenario.referral is not None:
        total += scenario.referral.addressable_market
    return total


def machine_memory() -> int:
    """This machine's physical memory in bytes (0 if the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return 0


def memory_problem(scenario: Scenario, share: float = 1.0) -> str | None:
    """Why this machine could not simulate ``scenario``, or ``None`` if it could.

    ``share`` is the part of the population this machine holds at once: below 1 when the
    population is split into shards (``run --shards``), of which it runs only some at a
    time, or none (a cluster's workers check their own shard).
    """
    people = expected_people(scenario) * share
    need = people * BYTES_PER_PERSON * PEAK_FACTOR
    have = machine_memory()
    if not have or need <= have:
        return None
    held = "" if share == 1.0 else f" in the shards run at once ({share:.3g} of the population)"
    return (f"would hold about {people:.3g} people{held} (the initial pool, the adds its "
            f"channels buy{' and the referral market' if scenario.referral else ''}), needing about "
            f"{_bytes(need)} of memory at {BYTES_PER_PERSON * PEAK_FACTOR} bytes each; this "
            f"machine has {_bytes(have)}")


def _bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1024:
            return f"{count:.3g} {unit}"
        count /= 1024
    return f"{count:.3g} PB"
