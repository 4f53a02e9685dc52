"""A brand's own data: an order log read, checked, and turned into model features.

The file is a CSV with one row per order and the columns

====================  ========  ===========================================================
column                required  meaning
====================  ========  ===========================================================
``customer_id``       yes       any text identifying the customer
``date``              yes       order date, ``YYYY-MM-DD``
``amount``            yes       order value in yuan, 0 or more
``channel``           no        the customer's acquisition channel (if rows of a customer
                                disagree, the first order's counts)
``member_join_date``  no        the day the customer joined the membership, ``YYYY-MM-DD``;
                                empty if never (the same on every row of a customer)
====================  ========  ===========================================================

Other columns are ignored, unless a name is close to one of these (a likely typo).
The file may be UTF-8, UTF-16 or GB18030 (GBK) text, as :mod:`simdomain.textio` detects.
Dates must lie in the supported window (2000..2100) and span at most
:data:`MAX_SPAN_DAYS`; fitting needs at least :data:`MIN_CUSTOMERS` customers over
:data:`MIN_SPAN_DAYS` days.
Every problem is reported with its row as a spreadsheet numbers it (the header is row
1, the first order row 2) and its column, e.g. ``orders.csv: row 7 -> date: cannot read
'2027-02-30' as a date (expected YYYY-MM-DD)``. The last date in the file is taken as
the end of observation.

A transaction panel (:func:`transaction_panel`) describes each customer on a cutoff day
from their orders up to it, and labels what followed: another order within 30 days,
no order within 90 days (a lapse: a log of orders cannot show who deleted the brand),
and joining the membership within 30 days (with ``member_join_date``).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simdomain.errors import InputError, Problem
from simdomain.scenario.model import FIRST_DATE, LAST_DATE
from simdomain.simulation import SimulationResult
from simdomain.textio import detect_encoding

REQUIRED = ("customer_id", "date", "amount")
OPTIONAL = ("channel", "member_join_date")
MAX_PROBLEMS = 20
"""Problems listed before the rest are only counted."""
MAX_SPAN_DAYS = 3660
"""Longest span of order dates (ten years): fitting the rates takes time in proportion."""
MIN_CUSTOMERS = 5
MIN_SPAN_DAYS = 30
"""Least data to fit on: customers, and days from the first order to the last (the
labels look 30 days ahead of each cutoff)."""

TX_FEATURES = ("channel", "tenure_days", "orders", "spend_cny", "recency_days", "orders_30d",
               "orders_90d", "spend_90d_cny", "aov_cny", "member", "member_tenure_days")
TX_LABELS = ("order_30d", "lapse_90d", "join_30d")
"""Labels of a transaction panel (``join_30d`` only with ``member_join_date``)."""


@dataclass
class Transactions:
    """A checked order log, with days counted from the first date in the file.

    Attributes
    ----------
    orders
        ``customer`` (code), ``day``, ``amount`` per order, sorted by customer and day.
    customers
        Per customer code: ``customer_id``, ``first_day``, ``member_day`` (-1 = never
        or unknown), ``channel`` ("all" without the column).
    start
        The first date in the file (day 0); ``end_day`` is the last date's day.
    """

    orders: pd.DataFrame
    customers: pd.DataFrame
    start: dt.date
    end_day: int
    source: str
    has_members: bool
    has_channels: bool

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.end_day)


def read_transactions(path: str | Path, *, min_customers: int = MIN_CUSTOMERS,
                      min_span_days: int = MIN_SPAN_DAYS) -> Transactions:
    """Read and check an order log (see the module docstring).

    Parameters
    ----------
    min_customers, min_span_days
        Least data to fit on (0 for none).

    Raises
    ------
    InputError
        Listing each bad row and column (missing columns, unreadable dates, amounts
        that are not numbers or negative, duplicate rows, ...), or saying there is too
        little data to fit on.
    """
    source = str(path)
    try:
        with open(path, "rb") as handle:
            encoding = detect_encoding(handle.read(1 << 20), source)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                            encoding=encoding)
    except FileNotFoundError:
        raise InputError([Problem(source, (), "no such file")]) from None
    except IsADirectoryError:
        raise InputError([Problem(source, (), "is a folder, expected a CSV file")]) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = "the file is empty" if isinstance(exc, pd.errors.EmptyDataError) else str(exc)
        raise InputError([Problem(source, (), f"cannot read it as CSV: {reason}")]) from None
    tx = check_transactions(frame, source)
    customers, span = len(tx.customers), tx.end_day
    if customers < min_customers or span < min_span_days:
        raise InputError([Problem(source, (), (
            f"too little data to fit: {_count(customers, 'customer')} with "
            f"{_count(len(tx.orders), 'order')} over {_count(span, 'day')}; need at least "
            f"{min_customers} customers and {min_span_days} days from the first order to the last"
        ))])
    return tx


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def check_transactions(frame: pd.DataFrame, source: str = "<transactions>") -> Transactions:
    """Check an order log given as a frame of text cells (see :func:`read_transactions`)."""
    frame = frame.rename(columns=lambda c: str(c).strip().lower())
    problems = _column_problems(list(frame.columns), source)
    if problems:
        raise InputError(problems)
    if frame.empty:
        raise InputError([Problem(source, (), "has a header but no orders")])
    row = np.arange(len(frame)) + 2
    problems = []
    customer = frame["customer_id"].str.strip()
    for r in row[(customer == "").to_numpy()]:
        problems.append(Problem(source, (f"row {r}", "customer_id"), "is empty"))
    date = _dates(frame["date"], row, "date", source, problems, required=True)
    amount = pd.to_numeric(frame["amount"].str.strip(), errors="coerce").to_numpy(float)
    for r, text, value in zip(row, frame["amount"], amount):
        if np.isnan(value):
            problems.append(Problem(source, (f"row {r}", "amount"),
                                    f"not a number: {text!r}" if text.strip() else "is empty"))
        elif not np.isfinite(value) or value < 0:
            problems.append(Problem(source, (f"row {r}", "amount"), f"must be 0 or more, got {text}"))
    duplicated = frame.duplicated(keep=False).to_numpy()
    if duplicated.any():
        first_of = frame[duplicated].groupby(list(frame.columns), sort=False).ngroup()
        first_row: dict[int, int] = {}
        for r, group in zip(row[duplicated], first_of):
            if group in first_row:
                problems.append(Problem(source, (f"row {r}",),
                                        f"duplicates row {first_row[group]}"))
            else:
                first_row[group] = r
    member = None
    if "member_join_date" in frame:
        member = _dates(frame["member_join_date"], row, "member_join_date", source, problems,
                        required=False)
        problems += _conflicts(customer, member, row, source)
    if problems:
        raise InputError(_capped(problems, source))
    span = (date.max() - date.min()).days
    if span > MAX_SPAN_DAYS:
        raise InputError([Problem(source, ("date",), (
            f"the orders span {span:,} days ({date.min():%Y-%m-%d}..{date.max():%Y-%m-%d}); "
            f"the limit is {MAX_SPAN_DAYS:,} (ten years): keep the recent years"))])
    return _assemble(frame, customer, date, amount, member, source)


def _column_problems(columns: list[str], source: str) -> list[Problem]:
    problems = []
    for name in REQUIRED:
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; found {columns}"
            problems.append(Problem(source, ("columns",), f"missing column {name!r}{hint}"))
    for name in columns:
        if name in REQUIRED or name in OPTIONAL:
            continue
        close = difflib.get_close_matches(name, [*REQUIRED, *OPTIONAL], n=1, cutoff=0.8)
        if close and close[0] not in columns:
            problems.append(Problem(source, ("columns",),
                                    f"unknown column {name!r}; did you mean {close[0]!r}?"))
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        problems.append(Problem(source, ("columns",), f"repeated columns {duplicates}"))
    return problems


def _dates(text: pd.Series, row: np.ndarray, column: str, source: str,
           problems: list[Problem], *, required: bool) -> pd.Series:
    cleaned = text.str.strip()
    parsed = pd.to_datetime(cleaned, format="%Y-%m-%d", errors="coerce")
    for r, raw, value in zip(row, cleaned, parsed):
        if pd.isna(value) and (raw or required):
            problems.append(Problem(source, (f"row {r}", column),
                                    f"cannot read {raw!r} as a date (expected YYYY-MM-DD)"
                                    if raw else "is empty"))
    outside = ~parsed.between(pd.Timestamp(FIRST_DATE), pd.Timestamp(LAST_DATE)) & parsed.notna()
    for r, raw in zip(row[outside.to_numpy()], cleaned[outside]):
        problems.append(Problem(source, (f"row {r}", column), f"{raw} is outside the supported "
                                                              f"window {FIRST_DATE}..{LAST_DATE}"))
    return parsed


def _conflicts(customer: pd.Series, member: pd.Series, row: np.ndarray,
               source: str) -> list[Problem]:
    """Rows whose member join date differs from the customer's first row's."""
    frame = pd.DataFrame({"customer": customer.to_numpy(), "member": member.to_numpy(),
                          "row": row})
    first = frame.groupby("customer", sort=False).first()
    expected = frame["customer"].map(first["member"])
    first_row = frame["customer"].map(frame.groupby("customer", sort=False)["row"].first())
    differs = ~((frame["member"] == expected) | (frame["member"].isna() & expected.isna()))
    return [Problem(source, (f"row {r}", "member_join_date"),
                    f"differs from row {f} of the same customer")
            for r, f in zip(frame["row"][differs], first_row[differs])]


def _capped(problems: list[Problem], source: str) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = len(problems) - MAX_PROBLEMS
    return [*problems[:MAX_PROBLEMS], Problem(source, (), f"... and {rest} more problems")]


def _assemble(frame: pd.DataFrame, customer: pd.Series, date: pd.Series, amount: np.ndarray,
              member: pd.Series | None, source: str) -> Transactions:
    start = date.min()
    day = (date - start).dt.days.to_numpy(np.int64)
    codes, ids = pd.factorize(customer)
    orders = pd.DataFrame({"customer": codes, "day": day, "amount": amount})
    orders = orders.sort_values(["customer", "day"], kind="stable").reset_index(drop=True)
    first_day = orders.groupby("customer")["day"].min().to_numpy()
    customers = pd.DataFrame({"customer_id": np.asarray(ids, dtype=object), "first_day": first_day})
    has_members = member is not None
    if has_members:
        joined = pd.Series(member.to_numpy()).groupby(codes).first()
        member_day = ((joined - start).dt.days).to_numpy()
        customers["member_day"] = np.where(np.isnan(member_day), -1, member_day).astype(np.int64)
    else:
        customers["member_day"] = -1
    has_channels = "channel" in frame
    if has_channels:
        first = pd.DataFrame({"customer": codes, "day": day,
                              "channel": frame["channel"].str.strip().replace("", "unknown")})
        first = first.sort_values(["customer", "day"], kind="stable").groupby("customer").first()
        customers["channel"] = first["channel"].to_numpy()
    else:
        customers["channel"] = "all"
    return Transactions(orders=orders, customers=customers, start=start.date(),
                        end_day=int(day.max()), source=source, has_members=has_members,
                        has_channels=has_channels)


def default_cutoffs(tx: Transactions, count: int = 6) -> list[int]:
    """Cutoff days spread over the log: after 90 days of history, 90 days before its end
    (shorter logs use what fits)."""
    first, last = min(90, tx.end_day // 3), tx.end_day - min(90, tx.end_day // 3)
    if last < first:
        return [tx.end_day // 2]
    return sorted({round(float(d)) for d in np.linspace(first, last, count)})


def transaction_panel(tx: Transactions, cutoffs: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per cutoff day and customer who had ordered by it: ``customer, day``,
    the :data:`TX_FEATURES` and the :data:`TX_LABELS` (NaN when not at risk or the
    window runs past the end of the log)."""
    cutoffs = default_cutoffs(tx) if cutoffs is None else list(cutoffs)
    orders = tx.orders
    customer, day, amount = (orders[c].to_numpy() for c in ("customer", "day", "amount"))
    n = len(tx.customers)
    member_day = tx.customers["member_day"].to_numpy()
    channels = pd.Categorical(tx.customers["channel"])
    frames = []
    for cut in cutoffs:
        def count(lo: int, hi: int, weights: np.ndarray | None = None) -> np.ndarray:
            inside = (day > lo) & (day <= hi)
            return np.bincount(customer[inside], weights=None if weights is None
                               else weights[inside], minlength=n)
        upto = day <= cut
        seen = np.bincount(customer[upto], minlength=n)
        people = np.flatnonzero(seen > 0)
        spend = np.bincount(customer[upto], weights=amount[upto], minlength=n)
        last = np.full(n, -1)
        np.maximum.at(last, customer[upto], day[upto])
        first = tx.customers["first_day"].to_numpy()
        member = (member_day >= 0) & (member_day <= cut)
        frame = pd.DataFrame({
            "customer": people, "day": cut,
            "channel": channels[people],
            "tenure_days": (cut - first[people]).astype(np.float32),
            "orders": seen[people].astype(np.float32),
            "spend_cny": spend[people].astype(np.float32),
            "recency_days": (cut - last[people]).astype(np.float32),
            "orders_30d": count(cut - 30, cut)[people].astype(np.float32),
            "orders_90d": count(cut - 90, cut)[people].astype(np.float32),
            "spend_90d_cny": count(cut - 90, cut, amount)[people].astype(np.float32),
            "aov_cny": (spend[people] / seen[people]).astype(np.float32),
            "member": member[people].astype(np.float32),
            "member_tenure_days": np.where(member, cut - member_day, np.nan)[people].astype(np.float32),
        })
        later30 = count(cut, cut + 30)[people]
        later90 = count(cut, cut + 90)[people]
        frame["order_30d"] = np.where(cut + 30 <= tx.end_day, later30 > 0, np.nan)
        frame["lapse_90d"] = np.where(cut + 90 <= tx.end_day, later90 == 0, np.nan)
        joins = (member_day[people] > cut) & (member_day[people] <= cut + 30)
        at_risk = ~member[people] & (cut + 30 <= tx.end_day) & tx.has_members
        frame["join_30d"] = np.where(at_risk, joins, np.nan)
        frames.append(frame)
    panel = pd.concat(frames, ignore_index=True)
    panel[list(TX_LABELS)] = panel[list(TX_LABELS)].astype(np.float32)
    return panel


def transactions_from_simulation(result: SimulationResult, rep: int = 0) -> pd.DataFrame:
    """The order log of one replication, as a brand would export it (for demos and tests).

    Needs a snapshot at the end of every day (``observe_days=range(horizon_days)``):
    an order is a day on which a person's order count rose (the engine books at most one
    order per person and day), its amount the rise in their GMV. Columns:
    ``customer_id, date, amount, channel, member_join_date``.
    """
    horizon = result.scenario.horizon_days
    snaps = result.snapshots
    if snaps is None or snaps["day"].nunique() < horizon:
        raise ValueError("needs a snapshot of every day: simulate with "
                         "observe_days=range(scenario.horizon_days)")
    snaps = snaps[snaps["rep"] == rep]
    n = int(snaps["agent"].max()) + 1
    orders = np.zeros((horizon + 1, n), dtype=np.int32)
    gmv = np.zeros((horizon + 1, n))
    for day, group in snaps.groupby("day"):
        agents = group["agent"].to_numpy()
        orders[day + 1, agents] = group["orders"].to_numpy()
        gmv[day + 1, agents] = group["gmv_cny"].to_numpy()
    rise = np.diff(orders, axis=0)
    day, agent = np.nonzero(rise)
    if np.any(rise[day, agent] != 1):
        raise ValueError("a person ordered more than once on a day; cannot split the amounts")
    amount = np.diff(gmv, axis=0)[day, agent]
    agents = result.agents[result.agents["rep"] == rep].set_index("agent")
    start = pd.Timestamp(result.scenario.start_date)
    member_day = agents["member_day"].to_numpy()[agent]
    log = pd.DataFrame({
        "customer_id": [f"c{a:06d}" for a in agent],
        "date": (start + pd.to_timedelta(day, unit="D")).strftime("%Y-%m-%d"),
        "amount": np.round(amount, 2),
        "channel": agents["source"].astype(str).to_numpy()[agent],
        "member_join_date": np.where(
            member_day >= 0,
            (start + pd.to_timedelta(np.maximum(member_day, 0), unit="D")).strftime("%Y-%m-%d"), ""),
    })
    return log.sort_values(["date", "customer_id"], kind="stable").reset_index(drop=True)
