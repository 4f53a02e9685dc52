"""Cutting parsed tables at a time: what the data looked like on a given day.

Events at or after ``end`` (exclusive) are removed, deletions at or after it undone (the
person was still a contact then) and spend months after the one holding the last
included instant removed, tests not over by then removed whole. Used for ``as_of`` and for :meth:`Bundle.until` (backtests):
both cut before cleaning, so a later refund never reduces an earlier order.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from simdomain.data.report import CleaningReport, examples
from simdomain.data.tests_table import cut_tests
from simdomain.errors import InputError, Problem

TIME_COLUMN = {"orders": "ordered_at", "contacts": "added_at", "members": "joined_at",
               "referrals": "at", "touches": "at"}


_TIME = {**TIME_COLUMN, "tests": "test_id end"}


def cut_end(at: dt.date | dt.datetime | str | pd.Timestamp) -> pd.Timestamp:
    """The exclusive end of the data known at ``at``: a date (or ``YYYY-MM-DD``) includes
    that whole day; a time with a clock part includes everything up to that instant.

    Raises
    ------
    InputError
        When ``at`` is not a date.
    """
    try:
        stamp = pd.Timestamp(at)
    except (ValueError, TypeError):
        raise InputError([Problem("as_of", (), f"cannot read {at!r} as a date "
                                  "(expected YYYY-MM-DD)")]) from None
    if pd.isna(stamp):
        raise InputError([Problem("as_of", (), "is empty (expected YYYY-MM-DD)")])
    if isinstance(at, dt.datetime) and stamp != stamp.normalize():
        return stamp.tz_localize(None) + pd.Timedelta(1, "ns")
    return stamp.normalize().tz_localize(None) + pd.Timedelta(days=1)


def cut(parsed: dict[str, pd.DataFrame], end: pd.Timestamp, report: CleaningReport) -> None:
    """Remove from the tables (in place, one table at a time, so that only one copy of a
    large table is alive) everything at or after ``end``, counted in ``report``."""
    for table in list(parsed):
        frame = parsed.pop(table)
        if table == "spend":
            last_month = (end - pd.Timedelta(1, "ns")).strftime("%Y-%m")
            late = (frame["month"] > last_month).to_numpy(bool)
        elif table == "tests":
            late = cut_tests(frame, end)
        else:
            late = (frame[TIME_COLUMN[table]] >= end).to_numpy(bool)
        report.add(table, "after_as_of", int(late.sum()),
                   examples(frame, late, [*_TIME.get(table, "month").split(), "customer_id"]))
        if table == "orders":
            report.money["after_as_of_cny"] = float(frame["amount"][late].sum())
        if late.any():
            frame = frame[~late]
        if table == "contacts" and "deleted_at" in frame:
            undone = (frame["deleted_at"] >= end).to_numpy(bool)
            report.add(table, "deletions_after_as_of", int(undone.sum()),
                       examples(frame, undone, ["customer_id", "deleted_at"]))
            if undone.any():
                frame = frame.copy()
                frame.loc[undone, "deleted_at"] = pd.NaT
                if "deleted_by" in frame:
                    frame["deleted_by"] = frame["deleted_by"].where(~undone)
        parsed[table] = frame


def count_future(parsed: dict[str, pd.DataFrame], report: CleaningReport) -> None:
    """Count events after today (kept: no ``as_of`` was given to cut them)."""
    tomorrow = pd.Timestamp(dt.date.today()) + pd.Timedelta(days=1)
    for table, column in {**TIME_COLUMN, "tests": "end"}.items():
        if table in parsed:
            frame = parsed[table]
            late = (frame[column] >= tomorrow).to_numpy(bool)
            report.add(table, "future_dates", int(late.sum()),
                       examples(frame, late, [column, "customer_id"]))


def span_of(tables: dict[str, pd.DataFrame | None]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last event times over every table (deletions included)."""
    lows, highs = [], []
    for table, frame in tables.items():
        if frame is None or frame.empty or table in ("spend", "tests"):
            continue
        columns = [TIME_COLUMN[table]] + (["deleted_at"] if table == "contacts" else [])
        for column in columns:
            values = frame[column]
            if values.notna().any():
                lows.append(values.min())
                highs.append(values.max())
    return (min(lows), max(highs)) if lows else (pd.NaT, pd.NaT)

