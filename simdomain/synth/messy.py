"""The dirt of real exports, added to a clean bundle and counted in ``truth["messy"]``.

Orders: several items of one order as several rows sharing its order_id (the amount
split between them), refunds as negative rows with the refunded order's id, exact
duplicate rows, no order ids from the tills (``pos``), marketplace orders of some contacts under another id (so ids join only
partly), a few unparseable dates and amounts, a few dates in the future, and rows out
of time order. Contacts: people added by a second staff account (a normal row, not an
error), exact duplicate rows, and a few deletions dated before the add. Each kind is
counted so that a loader's counted warnings can be checked against it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from simdomain.synth.bundle import Bundle, timestamps

BAD_DATES = ("2025-02-30 10:00:00", "", "not a date")
BAD_AMOUNTS = ("", "abc", "1..5")
MARKETPLACES = ("tmall", "jd", "douyin")


@dataclass(frozen=True)
class Dirt:
    """How much of each kind of dirt (shares of rows, or of people where said)."""

    multi_item_share: float = 0.05
    """Of orders with 2+ items: split into one row per item (at most 3 rows)."""
    refund_share: float = 0.02
    partial_refund_share: float = 0.3
    duplicate_share: float = 0.005
    unjoined_share: float = 0.05
    """Of contacts with marketplace orders: those orders carry a marketplace id."""
    bad_date_share: float = 0.0002
    bad_amount_share: float = 0.0002
    future_share: float = 0.0001
    out_of_order_share: float = 0.01
    second_staff_share: float = 0.03
    contact_duplicate_share: float = 0.002
    deletion_before_add_share: float = 0.0005
    no_order_id_channels: tuple[str, ...] = ("pos",)
    """Channels whose export has no order ids (their orders are never split in rows)."""


def make_messy(bundle: Bundle, rng: np.random.Generator, dirt: Dirt = Dirt()) -> Bundle:
    """A copy of ``bundle`` with realistic dirt; ``truth["messy"]`` counts each kind.

    Counts: ``multi_item_orders`` (orders split) and ``multi_item_extra_rows``,
    ``refund_rows``, ``partial_refunds``, ``duplicate_rows`` (exact copies of an order
    row), ``rows_without_order_id`` and ``duplicate_rows_without_order_id`` (of them, the
    exact copies), ``unjoined_customers`` and ``unjoined_rows``, ``bad_dates``, ``bad_amounts``,
    ``future_dates`` (after the window), ``out_of_order_rows`` (readable rows dated before
    the previous readable row), ``orders_before_add`` (orders of a contact dated before
    their first add, counted by order id; not injected: some contacts bought first),
    ``second_staff_rows``, ``duplicate_contact_rows``, ``deletions_before_add``.
    """
    as_of = dt.date.fromisoformat(str(bundle.truth["window"]["as_of"]))
    counts: dict[str, int] = {}
    orders = bundle.orders.copy()
    orders = _split_items(orders, rng, dirt, counts)
    orders = _refunds(orders, as_of, rng, dirt, counts)
    orders = _unjoin(orders, bundle.contacts["customer_id"].unique(), rng, dirt, counts)
    orders = _duplicate(orders, dirt.duplicate_share, rng, counts, "duplicate_rows")
    orders = _shuffle(orders, rng, dirt, counts)
    orders = _drop_order_ids(orders, dirt, counts)
    orders = _bad_values(orders, as_of, rng, dirt, counts)
    counts["out_of_order_rows"] = _out_of_order(orders)
    contacts = _second_staff(bundle.contacts, rng, dirt, counts)
    contacts = _deletion_before_add(contacts, rng, dirt, counts)  # before copies: both alike
    contacts = _duplicate(contacts, dirt.contact_duplicate_share, rng, counts,
                          "duplicate_contact_rows")
    counts["orders_before_add"] = _orders_before_add(orders, contacts)
    truth = {**bundle.truth, "messy": counts, "dirt": asdict(dirt)}
    truth["counts"] = {**truth["counts"], "order_rows": len(orders), "contact_rows": len(contacts)}
    return replace(bundle, orders=orders.reset_index(drop=True),
                   contacts=contacts.reset_index(drop=True), truth=truth)


def _some(rng: np.random.Generator, n: int, share: float, minimum: int = 0) -> np.ndarray:
    """Sorted distinct row positions: a ``share`` of ``n`` (at least ``minimum``)."""
    k = min(n, max(round(n * share), minimum if n else 0))
    return np.sort(rng.choice(n, size=k, replace=False))


def _split_items(orders: pd.DataFrame, rng: np.random.Generator, dirt: Dirt,
                 counts: dict[str, int]) -> pd.DataFrame:
    keeps_id = ~orders["channel"].isin(dirt.no_order_id_channels).to_numpy()
    multi = np.flatnonzero((orders["items"].to_numpy() >= 2) & keeps_id)
    chosen = multi[_some(rng, len(multi), dirt.multi_item_share)]
    rows = np.minimum(orders["items"].to_numpy()[chosen], 3)
    parts = orders.iloc[np.repeat(chosen, rows)].copy()
    first = np.cumsum(rows) - rows
    rank = np.arange(len(parts)) - np.repeat(first, rows)
    weight = rng.random(len(parts)) + 0.5
    share = weight / np.repeat(np.add.reduceat(weight, first), rows)
    total = np.repeat(orders["amount"].to_numpy()[chosen], rows)
    amount = np.round(total * share, 2)
    last = rank == np.repeat(rows, rows) - 1  # the last row takes the rounding remainder
    before = np.repeat(np.add.reduceat(np.where(last, 0, amount), first), rows)
    amount[last] = np.round(total[last] - before[last], 2)
    items = np.where(last, np.repeat(orders["items"].to_numpy()[chosen] - rows + 1, rows), 1)
    parts["amount"] = amount
    parts["items"] = items
    counts["multi_item_orders"] = len(chosen)
    counts["multi_item_extra_rows"] = int(rows.sum() - len(chosen))
    kept = orders.drop(orders.index[chosen])
    return pd.concat([kept, parts]).sort_values(["ordered_at", "order_id"], kind="stable")


def _refunds(orders: pd.DataFrame, as_of: dt.date, rng: np.random.Generator, dirt: Dirt,
             counts: dict[str, int]) -> pd.DataFrame:
    first_rows = orders.drop_duplicates("order_id")
    chosen = first_rows.iloc[_some(rng, len(first_rows), dirt.refund_share)]
    totals = orders.groupby("order_id", sort=False)["amount"].sum()
    amount = totals.loc[chosen["order_id"]].to_numpy()
    partial = rng.random(len(chosen)) < dirt.partial_refund_share
    refund = chosen.copy()
    refund["amount"] = -np.where(partial, np.round(amount * 0.5, 2), amount)
    refund["items"] = 0
    start = pd.Timestamp(as_of)
    days = (_valid_times(chosen["ordered_at"]) - start).dt.total_seconds().to_numpy() / 86_400
    later = np.minimum(days + rng.uniform(1, 14, len(chosen)), -1 / 86_400)
    refund["ordered_at"] = timestamps(as_of, later)
    counts["refund_rows"] = len(refund)
    counts["partial_refunds"] = int(partial.sum())
    return pd.concat([orders, refund]).sort_values("ordered_at", kind="stable")


def _member(values: pd.Series, among: np.ndarray) -> np.ndarray:
    """Whether each value is in ``among`` (distinct), by a hash lookup."""
    return pd.Index(among).get_indexer(values) >= 0


def _unjoin(orders: pd.DataFrame, contacts: np.ndarray, rng: np.random.Generator, dirt: Dirt,
            counts: dict[str, int]) -> pd.DataFrame:
    market = orders["channel"].isin(MARKETPLACES).to_numpy()
    known = _member(orders["customer_id"], contacts)
    people = np.unique(orders["customer_id"].to_numpy()[market & known].astype(str))
    chosen = people[_some(rng, len(people), dirt.unjoined_share)]
    rows = market & _member(orders["customer_id"], chosen)
    ids = orders["customer_id"].to_numpy().copy()
    ids[rows] = np.char.add("tb_", np.char.lower(ids[rows].astype(str))).astype(object)
    orders = orders.assign(customer_id=ids)
    counts["unjoined_customers"] = len(chosen)
    counts["unjoined_rows"] = int(rows.sum())
    return orders


def _duplicate(frame: pd.DataFrame, share: float, rng: np.random.Generator,
               counts: dict[str, int], name: str) -> pd.DataFrame:
    chosen = _some(rng, len(frame), share)
    counts[name] = len(chosen)
    order = np.sort(np.concatenate([np.arange(len(frame)), chosen]), kind="stable")
    return frame.iloc[order]


def _shuffle(orders: pd.DataFrame, rng: np.random.Generator, dirt: Dirt,
             counts: dict[str, int]) -> pd.DataFrame:
    """Move a share of rows to random places (exports appended from several stores)."""
    n = len(orders)
    moved = _some(rng, n, dirt.out_of_order_share)
    key = np.arange(n, dtype=np.float64)
    key[moved] = rng.random(len(moved)) * n
    counts["moved_rows"] = len(moved)
    return orders.iloc[np.argsort(key, kind="stable")]


def _drop_order_ids(orders: pd.DataFrame, dirt: Dirt, counts: dict[str, int]) -> pd.DataFrame:
    """Blank the order ids of the channels that export none (a till, say)."""
    rows = orders["channel"].isin(dirt.no_order_id_channels).to_numpy()
    counts["rows_without_order_id"] = int(rows.sum())
    counts["duplicate_rows_without_order_id"] = int(orders[rows].duplicated().sum())  # copies
    # of a row are in its channel, so counting within the channel counts them all
    ids = orders["order_id"].to_numpy().copy()
    ids[rows] = ""
    return orders.assign(order_id=ids)


def _bad_values(orders: pd.DataFrame, as_of: dt.date, rng: np.random.Generator, dirt: Dirt,
                counts: dict[str, int]) -> pd.DataFrame:
    """Unparseable dates and amounts and future dates, each on distinct rows of orders
    that have one row (not split, refunded or copied)."""
    n = len(orders)
    k_date, k_amount, k_future = (max(round(n * s), 1) for s in
                                  (dirt.bad_date_share, dirt.bad_amount_share, dirt.future_share))
    # rows of single-row, unrefunded orders that have no copy: every other count stays exact
    single = ~orders["order_id"].duplicated(keep=False).to_numpy()
    clean = np.flatnonzero(single & (orders["amount"].to_numpy() > 0))
    rows = rng.choice(clean, size=min(len(clean), k_date + k_amount + k_future), replace=False)
    dates, amounts, future = np.split(rows, [k_date, k_date + k_amount])
    at = orders["ordered_at"].to_numpy().copy()
    amount = orders["amount"].to_numpy().astype(object)
    at[dates] = np.asarray(BAD_DATES, dtype=object)[np.arange(len(dates)) % len(BAD_DATES)]
    amount[amounts] = np.asarray(BAD_AMOUNTS, dtype=object)[
        np.arange(len(amounts)) % len(BAD_AMOUNTS)]
    at[future] = timestamps(as_of, rng.uniform(30, 400, len(future)))
    counts["bad_dates"] = len(dates)
    counts["bad_amounts"] = len(amounts)
    counts["future_dates"] = len(future)
    if len(amounts):
        return orders.assign(ordered_at=at, amount=amount)
    return orders.assign(ordered_at=at)


def _valid_times(at: pd.Series) -> pd.Series:
    return pd.to_datetime(at, format="%Y-%m-%d %H:%M:%S", errors="coerce")


def _out_of_order(orders: pd.DataFrame) -> int:
    """Readable rows (time and amount) whose time is before the previous readable row's."""
    times = _valid_times(orders["ordered_at"])
    readable = times.notna() & pd.to_numeric(orders["amount"], errors="coerce").notna()
    times = times[readable].to_numpy()
    return int(np.count_nonzero(times[1:] < times[:-1]))


def _second_staff(contacts: pd.DataFrame, rng: np.random.Generator, dirt: Dirt,
                  counts: dict[str, int]) -> pd.DataFrame:
    chosen = contacts.iloc[_some(rng, len(contacts), dirt.second_staff_share)].copy()
    added = _valid_times(chosen["added_at"]) + pd.to_timedelta(
        np.floor(rng.uniform(0, 30 * 86_400, len(chosen))), unit="s")
    chosen["added_at"] = added.dt.strftime("%Y-%m-%d %H:%M:%S")
    deleted = _valid_times(chosen["deleted_at"])
    late = deleted.notna() & (deleted < added)  # the second account is added before deletion
    chosen.loc[late.to_numpy(), ["deleted_at", "deleted_by"]] = ""
    chosen["staff_id"] = chosen["staff_id"].str.replace(r"-(\d+)$", r"-b\1", regex=True)
    counts["second_staff_rows"] = len(chosen)
    return pd.concat([contacts, chosen]).sort_values("added_at", kind="stable")


def _deletion_before_add(contacts: pd.DataFrame, rng: np.random.Generator, dirt: Dirt,
                         counts: dict[str, int]) -> pd.DataFrame:
    contacts = contacts.copy()
    rows = _some(rng, len(contacts), dirt.deletion_before_add_share, minimum=1)
    added = _valid_times(contacts["added_at"].iloc[rows])
    early = added - pd.to_timedelta(np.floor(rng.uniform(3600, 30 * 86_400, len(rows))), unit="s")
    position = contacts.columns.get_indexer(["deleted_at", "deleted_by"])
    contacts.iloc[rows, position[0]] = early.dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy()
    contacts.iloc[rows, position[1]] = "staff"
    counts["deletions_before_add"] = len(rows)
    return contacts


def _orders_before_add(orders: pd.DataFrame, contacts: pd.DataFrame) -> int:
    """Orders dated before the customer's first add: readable sales rows, those sharing an
    order id counted once."""
    first_add = _valid_times(contacts["added_at"]).groupby(contacts["customer_id"]).min()
    at = _valid_times(orders["ordered_at"])
    amount = pd.to_numeric(orders["amount"], errors="coerce")
    added = orders["customer_id"].map(first_add)
    early = (at.notna() & (amount > 0) & added.notna() & (at < added)).to_numpy()
    ids = orders["order_id"].to_numpy()[early]
    return int(len(set(ids[ids != ""])) + np.count_nonzero(ids == ""))
