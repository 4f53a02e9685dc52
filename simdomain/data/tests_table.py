"""The ``tests`` table: one row per arm of a brand's experiment, checked and cleaned.

A test varies one lever between its arms: ``touch_frequency`` (kind ``one_to_one``,
``group`` or ``moments``; level = messages per week, or posts per day),
``content_mix`` (kind = a content label of the group posts, or ``moments:label`` for
moments posts; level = its share of the posts), ``channel_spend`` (kind = a channel;
level = monthly spend in yuan) or ``reward`` (kind ``referral_gift``; level = the gift
in yuan). Each arm has its dates, its people and at least one outcome count; optionally
the stage its people were in, whether it is the control, and whether its people were
``settled`` under the brand's usual touches when the test began (empty: yes) or new to
them (e.g. new adds randomised on their add).

Normal mess is counted (:class:`~simdomain.data.report.CleaningReport`): lever and kind
names in another case or with spaces, repeated rows. What makes a test unusable is an
error naming file, row and column: an unknown lever or kind, a channel seen neither in
the contacts nor in the spend, no people where the lever needs them, an end before the
start, dates outside the data, a test with a single arm, counts above the people.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simdomain.data.report import CleaningReport, examples
from simdomain.errors import InputError, Problem

LEVERS = ("touch_frequency", "content_mix", "channel_spend", "reward")
TOUCH_KINDS = ("one_to_one", "group", "moments")
REWARD_KINDS = ("referral_gift",)
OUTCOMES = ("adds", "orders", "deletions", "joins")
STAGE_NAMES = ("fan", "customer", "member", "koc")
NEEDS_PEOPLE = ("touch_frequency", "content_mix", "reward")
PER_PERSON = ("deletions", "joins")
"""Outcomes that happen at most once per person: never above the arm's people."""
MAX_LEVEL = {"one_to_one": 7.0, "group": 24.0, "moments": 24.0}
TEST_COLUMNS = ("test_id", "arm", "lever", "kind", "level", "start", "end", "people",
                *OUTCOMES, "stage", "control", "settled")
MAX_SHOWN = 10


def _normalise(values: pd.Series) -> pd.Series:
    """Lower case, spaces and hyphens as underscores, trimmed."""
    return (values.astype("str").str.strip().str.lower()
            .str.replace(r"[\s\-]+", "_", regex=True))


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Problem] = []

    def add(self, row: int | None, column: str | None, message: str) -> None:
        loc = tuple(x for x in (f"row {row}" if row is not None else None, column) if x)
        self.items.append(Problem(self.source, loc, message))

    def raise_any(self) -> None:
        if self.items:
            shown = self.items[:MAX_SHOWN]
            if len(self.items) > MAX_SHOWN:
                shown.append(Problem(self.source, (), f"... and {len(self.items) - MAX_SHOWN} "
                                     "more problems"))
            raise InputError(shown)


def clean_tests(frame: pd.DataFrame, source: str, report: CleaningReport, *,
                channels: set[str] | None,
                span: tuple[pd.Timestamp, pd.Timestamp]) -> pd.DataFrame:
    """Check and clean the tests table (parsed, bad cells already refused).

    Parameters
    ----------
    frame
        The parsed table with ``_row``.
    source
        The file's name, for errors.
    channels
        Channels seen in the contacts or the spend (None: neither table given).
    span
        The data's first and last event time: every test lies within these days.

    Raises
    ------
    InputError
        Naming file, row and column, for what makes a test unusable (see the module).
    """
    frame = frame.copy()
    for column in TEST_COLUMNS:
        if column not in frame:
            frame[column] = (pd.array([pd.NA] * len(frame), dtype="boolean")
                             if column in ("control", "settled") else
                             pd.array([pd.NA] * len(frame), dtype="Int64")
                             if column in (*OUTCOMES, "people") else
                             pd.Categorical([None] * len(frame)))
    problems = _Problems(source)
    for column in ("test_id", "arm", "lever", "kind"):
        for row in frame.loc[frame[column].isna(), "_row"]:
            problems.add(int(row), column, "is empty")
    problems.raise_any()
    for column in ("test_id", "arm"):
        frame[column] = frame[column].astype("str").str.strip()
    for column in ("lever", "kind"):
        raw = frame[column].astype("str")
        norm = _normalise(raw)
        if column == "kind":  # content labels keep their case; others are codes
            coded = frame["lever"].astype("str").pipe(_normalise) != "content_mix"
            norm = norm.where(coded, raw.str.strip())
        changed = (norm != raw).to_numpy()
        report.add("tests", f"{column}_names_normalised", int(changed.sum()),
                   examples(frame, changed, [column]))
        frame[column] = norm
    frame["stage"] = frame["stage"].astype("str").str.strip().str.lower()
    frame.loc[frame["stage"].isin(["", "all", "everyone"]) | frame["stage"].isna(),
              "stage"] = ""
    frame["stage"] = frame["stage"].fillna("")
    repeat = frame.drop(columns="_row").duplicated().to_numpy()
    report.add("tests", "repeated_arm_rows", int(repeat.sum()),
               examples(frame, repeat, ["test_id", "arm"]))
    frame = frame[~repeat].reset_index(drop=True)
    _check_rows(frame, problems, channels, span)
    problems.raise_any()
    _check_tests(frame, problems)
    problems.raise_any()
    frame = frame.sort_values(["start", "test_id", "_row"], kind="stable", ignore_index=True)
    for column in ("test_id", "arm", "lever", "kind", "stage"):
        frame[column] = frame[column].astype("str")
    return frame[[*TEST_COLUMNS, "_row"]]


def _check_rows(frame: pd.DataFrame, problems: _Problems, channels: set[str] | None,
                span: tuple[pd.Timestamp, pd.Timestamp]) -> None:
    first, last = (pd.Timestamp(t).normalize() for t in span)
    for r in frame.rename(columns={"_row": "row"}).itertuples(index=False):  # a short table
        row = int(r.row)
        if r.lever not in LEVERS:
            problems.add(row, "lever", f"{r.lever!r} is not {', '.join(LEVERS[:-1])} or "
                         f"{LEVERS[-1]}")
            continue
        _check_kind(r, row, problems, channels)
        if r.level < 0:
            problems.add(row, "level", f"{r.level:g} is negative")
        elif r.lever == "content_mix" and r.level > 1:
            problems.add(row, "level", f"{r.level:g} is not a share (0 to 1) of the posts")
        elif r.lever == "touch_frequency" and r.kind in MAX_LEVEL and r.level > MAX_LEVEL[r.kind]:
            unit = "messages a week" if r.kind == "one_to_one" else "posts a day"
            problems.add(row, "level", f"{r.level:g} is above {MAX_LEVEL[r.kind]:g} {unit}")
        if r.end < r.start:
            problems.add(row, "end", f"{r.end:%Y-%m-%d} is before the start {r.start:%Y-%m-%d}")
        elif pd.notna(first) and (r.start.normalize() < first or r.end.normalize() > last):
            problems.add(row, "start" if r.start.normalize() < first else "end",
                         f"the test ({r.start:%Y-%m-%d}..{r.end:%Y-%m-%d}) is outside the "
                         f"data's dates {first:%Y-%m-%d}..{last:%Y-%m-%d}")
        if r.stage not in ("", *STAGE_NAMES):
            problems.add(row, "stage", f"{r.stage!r} is not fan, customer, member, koc or empty "
                         "(everyone)")
        people = r.people
        if r.lever in NEEDS_PEOPLE and (pd.isna(people) or people == 0):
            problems.add(row, "people", f"arm {r.arm!r} of test {r.test_id!r} has no people "
                         f"({r.lever} tests count outcomes per person)")
        outcomes = [o for o in OUTCOMES if pd.notna(getattr(r, o))]
        if not outcomes:
            problems.add(row, None, f"arm {r.arm!r} of test {r.test_id!r} has no outcome: "
                         f"give at least one of {', '.join(OUTCOMES)}")
        for o in PER_PERSON:
            count = getattr(r, o)
            if pd.notna(count) and pd.notna(people) and people > 0 and count > people:
                problems.add(row, o, f"{int(count):,} is above the arm's {int(people):,} people")


def _check_kind(r, row: int, problems: _Problems, channels: set[str] | None) -> None:
    if r.lever == "touch_frequency" and r.kind not in TOUCH_KINDS:
        problems.add(row, "kind", f"{r.kind!r} is not one_to_one, group or moments "
                     "(the touch whose frequency the test varied)")
    elif r.lever == "reward" and r.kind not in REWARD_KINDS:
        problems.add(row, "kind", f"{r.kind!r} is not referral_gift")
    elif r.lever == "content_mix":
        post, _, label = r.kind.rpartition(":")
        if post not in ("", "group", "moments") or not label:
            problems.add(row, "kind", f"{r.kind!r} is not a content label (or moments:label)")
    elif r.lever == "channel_spend":
        if channels is None:
            problems.add(row, "kind", f"channel {r.kind!r} cannot be checked: the bundle has "
                         "neither contacts nor spend")
        elif r.kind not in channels:
            known = ", ".join(sorted(channels)[:8]) or "none"
            problems.add(row, "kind", f"unknown channel {r.kind!r} (not in the contacts or the "
                         f"spend; known: {known})")


def _check_tests(frame: pd.DataFrame, problems: _Problems) -> None:
    """Rules over a test's arms: two arms or more, one lever and kind, no repeated arm."""
    for test_id, arms in frame.groupby("test_id", sort=False):
        rows = arms["_row"].astype(int).tolist()
        if len(arms) < 2:
            problems.add(rows[0], "test_id", f"test {test_id!r} has a single arm; a test "
                         "compares two arms or more")
            continue
        twice = arms["arm"].duplicated()
        for row, arm in zip(arms.loc[twice, "_row"], arms.loc[twice, "arm"]):
            problems.add(int(row), "arm", f"arm {arm!r} of test {test_id!r} appears twice "
                         "with different values")
        for column in ("lever", "kind"):
            values = arms[column].unique()
            if len(values) > 1:
                problems.add(rows[0], column, f"test {test_id!r} mixes {column}s "
                             f"{', '.join(map(repr, values))}; a test varies one lever")


def cut_tests(frame: pd.DataFrame, end: pd.Timestamp) -> np.ndarray:
    """Rows of tests not over before ``end`` (exclusive): a test's outcomes are known once
    its last arm's last day (included) has passed."""
    over = frame.groupby(frame["test_id"].astype("str"))["end"].transform("max")
    return (over.dt.normalize() + pd.Timedelta(days=1) > end).to_numpy(bool)
