"""The cleaning report: what was normal but worth knowing, counted, with a few examples.

Every rule of :mod:`simdomain.data.clean` that changes or flags rows adds one entry
here, by table and kind, with the number of rows (or people) concerned and the first
few as examples. The money accounting says where every yuan of the orders file went.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

EXAMPLES = 3
"""Example rows kept per kind."""

TREATMENTS: dict[str, str] = {
    "order_lines_merged": "rows sharing an order id (per customer) made one order: amounts "
                          "and items summed, the earliest time kept",
    "repeated_rows": "rows without an order id repeating customer, time and amount: kept as "
                     "separate orders (aggregate_duplicates=True merges them)",
    "repeated_rows_merged": "rows without an order id repeating customer, time and amount: "
                            "merged into one order, amounts and items summed",
    "refunds_netted": "negative rows netted against the order with the same order id",
    "refunds_applied": "refunds without a matching order id reduced the customer's latest "
                       "order at or before the refund",
    "refunds_dropped": "refunds with no earlier order of the customer: dropped",
    "cancelled_orders": "orders netted by refunds to 0 yuan or less: dropped as cancelled",
    "zero_amount": "orders of 0 yuan without any refund (gifts, points): kept",
    "after_as_of": "events after as_of (tests: not over by then): dropped",
    "deletions_after_as_of": "deletions after as_of: undone (the person is still a contact)",
    "future_dates": "events after today while no as_of was given: kept (give as_of to cut)",
    "unsorted": "rows not in time order in the file: sorted by time",
    "orders_before_add": "orders placed before the customer's contact add: kept (marketplace "
                         "buyers who added later)",
    "buyers_not_contacts": "customers with orders who are not in contacts: kept",
    "contacts_not_buyers": "contacts who never ordered: kept",
    "added_by_several_staff": "people added by several staff accounts: one person, the "
                              "earliest add and its channel and staff, n_staff counts them",
    "deleted_before_added": "a deletion earlier than its add (a later re-add): deletion "
                            "dropped, the person is a contact",
    "no_channel": "contacts without a channel code: channel 'unknown'",
    "member_rows_merged": "several membership rows of one customer: the earliest join "
                          "kept, the latest tier given",
    "self_referrals": "people referring themselves: dropped",
    "referred_twice": "people referred more than once: the earliest referral kept",
    "spend_rows_merged": "several spend rows for one month and channel: summed",
    "lever_names_normalised": "test levers written in another case or with spaces: read as "
                              "touch_frequency, content_mix, channel_spend or reward",
    "kind_names_normalised": "test kinds written in another case or with spaces: read as "
                             "the code (one_to_one, a channel, ...)",
    "repeated_arm_rows": "a test's arm repeated row for row: kept once",
    "bad_rows_skipped": "rows with a cell that cannot be read (skip_bad_rows=True): dropped, "
                        "listed in rejects",
}


@dataclass
class CleaningReport:
    """Counted warnings of one bundle's cleaning.

    Attributes
    ----------
    entries
        One dict per (table, kind): ``count``, ``examples`` (a few rows as text).
    rows
        Per table: rows ``read``, ``rejected`` and ``kept`` (after merging).
    money
        The orders' yuan: ``rows_cny`` (every accepted row, refunds included),
        ``orders_cny`` (the clean orders), ``refunds_dropped_cny`` and
        ``cancelled_cny`` (the net amounts of orders dropped as cancelled), so that
        ``rows_cny == orders_cny + refunds_dropped_cny + cancelled_cny + after_as_of_cny``.
    """

    entries: list[dict] = field(default_factory=list)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    money: dict[str, float] = field(default_factory=dict)

    def add(self, table: str, kind: str, count: int, examples: list[str]) -> None:
        """Record ``count`` rows of ``kind`` (nothing when the count is 0), adding to an
        earlier count of the same kind and table."""
        for entry in self.entries:
            if count and entry["table"] == table and entry["kind"] == kind:
                entry["count"] += int(count)
                entry["examples"] = (entry["examples"] + list(examples))[:EXAMPLES]
                return
        if count:
            self.entries.append({"table": table, "kind": kind, "count": int(count),
                                 "examples": list(examples[:EXAMPLES])})

    def count(self, kind: str, table: str | None = None) -> int:
        """The count of ``kind`` (in ``table``, or summed over tables); 0 if absent."""
        return sum(e["count"] for e in self.entries
                   if e["kind"] == kind and (table is None or e["table"] == table))

    @property
    def warnings(self) -> pd.DataFrame:
        """One row per (table, kind): table, kind, count, example, treatment."""
        return pd.DataFrame({
            "table": [e["table"] for e in self.entries],
            "kind": [e["kind"] for e in self.entries],
            "count": np.array([e["count"] for e in self.entries], dtype=np.int64),
            "example": ["; ".join(e["examples"]) for e in self.entries],
            "treatment": [TREATMENTS[e["kind"]] for e in self.entries]})

    def __str__(self) -> str:
        lines = [f"{e['table']}: {e['count']:,} {e['kind']}: {TREATMENTS[e['kind']]}"
                 + (f" (e.g. {e['examples'][0]})" if e["examples"] else "")
                 for e in self.entries]
        return "\n".join(lines) if lines else "no cleaning needed"


def examples(frame: pd.DataFrame, mask: np.ndarray | None, columns: list[str],
             n: int = EXAMPLES) -> list[str]:
    """The first ``n`` rows of ``frame`` where ``mask`` as text: ``row 7: a=1, b=x``."""
    index = np.flatnonzero(mask)[:n] if mask is not None else np.arange(min(n, len(frame)))
    part = frame.iloc[index]
    shown = [c for c in columns if c in part]
    out = []
    for i in range(len(part)):
        cells = ", ".join(f"{c}={_cell(part[c].iloc[i])}" for c in shown)
        row = part["_row"].iloc[i] if "_row" in part else None
        out.append(f"row {row}: {cells}" if row is not None else cells)
    return out


def _cell(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S").removesuffix(" 00:00:00")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
