"""Cleaning the orders table: order lines, repeated rows, refunds, cancellations.

The rules, in the order they apply (``docs/data.md`` lists them with examples):

1. Rows sharing an order id (and customer) are one order: amounts and items summed,
   the time of the earliest positive line (or of the earliest line) kept; its negative
   lines are refunds netted against it. An order netted to 0 or less is cancelled
   (dropped); a group of only negative lines is a refund without its order.
2. Rows without an order id repeating customer, time and amount are kept as separate
   orders and counted, or merged into one (amounts summed) with ``aggregate_duplicates``.
3. A refund without a matching order id (a negative row, or a negative order id of its
   own) reduces the customer's latest order at or before it; with none it is dropped.
   An order reduced to 0 or less is cancelled (dropped).

Every yuan is accounted for: ``rows_cny == orders_cny + refunds_dropped_cny +
cancelled_cny`` in the report's money. The work is vectorised: duplicate keys are found
by sorting 64-bit hashes, then the candidates are grouped on the values themselves (a
hash collision costs time, never a wrong merge).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from simdomain.data.clean import count_unsorted
from simdomain.data.report import CleaningReport, examples

ORDER_COLUMNS = ("customer_id", "ordered_at", "amount", "order_id", "channel", "items")
_FNV_OFFSET = np.uint64(14695981039346656037)
_MIX = np.uint64(0x9E3779B97F4A7C15)


def clean_orders(frame: pd.DataFrame, report: CleaningReport, *,
                 aggregate_duplicates: bool = False) -> pd.DataFrame:
    """One row per order, refunds treated, sorted by time (stable in file order)."""
    n = len(frame)
    cust = frame["customer_id"].cat.codes.to_numpy(np.int64)
    t = frame["ordered_at"].to_numpy("datetime64[ns]").view(np.int64).copy()
    amount = frame["amount"].to_numpy(np.float64).copy()
    items = (frame["items"].to_numpy(np.float64, na_value=np.nan).copy() if "items" in frame
             else np.full(n, np.nan))
    oid = pa.array(frame["order_id"].array) if "order_id" in frame else None
    report.money["rows_cny"] = float(amount.sum())
    count_unsorted(frame, "ordered_at", "orders", report)
    report.money.setdefault("cancelled_cny", 0.0)
    keep = np.ones(n, dtype=bool)
    refund = amount < 0
    refunded = np.zeros(n, dtype=bool)
    has_id = np.zeros(n, dtype=bool) if oid is None else np.asarray(oid.is_valid(), dtype=bool)
    if has_id.any():
        _merge_lines(frame, oid, cust, t, amount, items, has_id, keep, refund, refunded, report)
    _repeated(frame, cust, t, amount, items, keep & ~has_id & ~refund, keep, report,
              aggregate_duplicates)
    _apply_refunds(frame, cust, t, amount, keep, refund, refunded, report)
    zero = keep & (amount == 0) & ~refunded
    report.add("orders", "zero_amount", int(zero.sum()),
               examples(frame, zero, ["customer_id", "ordered_at", "amount"]))
    final = np.flatnonzero(keep)
    times = t[final]
    if len(times) > 1 and (times[1:] < times[:-1]).any():
        final = final[np.argsort(times, kind="stable")]
    report.money["orders_cny"] = float(amount[final].sum())
    return _assemble(frame, final, cust, t, amount, items, oid)


def _assemble(frame, final, cust, t, amount, items, oid) -> pd.DataFrame:
    dtype = frame["customer_id"].dtype
    values = items[final]
    missing = np.isnan(values)
    out = {
        "customer_id": pd.Categorical.from_codes(cust[final], dtype=dtype, validate=False),
        "ordered_at": t[final].view("datetime64[ns]"),
        "amount": amount[final],
        "order_id": (pd.arrays.ArrowStringArray(oid.take(pa.array(final)))
                     if oid is not None else pd.arrays.ArrowStringArray(pa.nulls(len(final),
                                                                                 pa.string()))),
        "channel": (frame["channel"].array.take(final) if "channel" in frame
                    else pd.Categorical([None] * len(final))),
        "items": pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing),
        "_row": frame["_row"].to_numpy()[final]}
    return pd.DataFrame(out, copy=False)  # fresh arrays: no copy


def string_hash(array: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string (its length and bytes, eight at a time), vectorised
    over the array's buffers; equal strings hash equal, nulls hash as empty."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string()) if not pa.types.is_large_string(array.type) else array
    _, offsets, data = array.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[array.offset: array.offset + len(array) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    padded = np.zeros(len(raw) + 8, dtype=np.uint8)
    padded[: len(raw)] = raw
    words = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    start = offsets[:-1]
    length = np.diff(offsets)
    h = _FNV_OFFSET ^ length.astype(np.uint64)
    for k in range(-(-int(length.max(initial=0)) // 8)):
        left = np.clip(length - 8 * k, 0, 8).astype(np.uint64)  # bytes of this word in use
        mask = np.where(left == 8, np.uint64(0xFFFFFFFFFFFFFFFF),
                        (np.uint64(1) << (np.uint64(8) * np.minimum(left, np.uint64(7))))
                        - np.uint64(1))
        word = words[np.minimum(start + 8 * k, len(words) - 1)] & mask
        h = (h ^ word) * _MIX
        h ^= h >> np.uint64(29)
    return h


def _mix(*columns: np.ndarray) -> np.ndarray:
    h = np.full(len(columns[0]), _FNV_OFFSET, dtype=np.uint64)
    for column in columns:
        h = (h ^ column.view(np.uint64)) * _MIX
        h ^= h >> np.uint64(29)
    return h


def _equal_runs(keys: np.ndarray, exact: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sort ``keys`` (stable); return the order and, per sorted position, whether it
    repeats the previous one exactly (same key and same ``exact`` values)."""
    order = np.argsort(keys, kind="stable")
    same = keys[order][1:] == keys[order][:-1]
    for column in exact:
        same &= column[order][1:] == column[order][:-1]
    return order, np.concatenate([[False], same])


def _merge_lines(frame, oid, cust, t, amount, items, has_id, keep, refund, refunded,
                 report: CleaningReport) -> None:
    """Rule 1: rows sharing (customer, order id) become their earliest line, summed."""
    index = np.flatnonzero(has_id)
    keys = _mix(string_hash(oid)[index], cust[index])
    order, repeats = _equal_runs(keys, [])
    candidate = repeats | np.concatenate([repeats[1:], [False]])
    if not candidate.any():
        return
    lines = index[order[candidate]]
    key = keys[order[candidate]]
    text = oid.take(pa.array(lines))
    exact = pc.sort_indices(pa.table({"k": key, "c": cust[lines], "t": text}),
                            sort_keys=[("k", "ascending"), ("c", "ascending"),
                                       ("t", "ascending")])  # equal values next to each other
    exact = np.asarray(exact, dtype=np.int64)
    lines, key, text = lines[exact], key[exact], text.take(pa.array(exact))
    same = (key[1:] == key[:-1]) & (cust[lines][1:] == cust[lines][:-1]) & np.asarray(
        pc.equal(text.slice(1), text.slice(0, len(text) - 1)), dtype=bool)
    group = np.cumsum(np.concatenate([[True], ~same])) - 1  # confirmed on the values
    size = np.bincount(group)
    lines, group = lines[size[group] > 1], group[size[group] > 1]  # hash collisions only
    if len(lines) == 0:
        return
    _, group = np.unique(group, return_inverse=True)
    by = np.lexsort((lines, t[lines], group))
    lines, group = lines[by], group[by]
    first = np.concatenate([[True], group[1:] != group[:-1]])
    rep = lines[first]
    line_amount = amount[lines]
    net = np.bincount(group, weights=line_amount)
    has_pos = np.bincount(group, weights=line_amount > 0) > 0
    has_neg = np.bincount(group, weights=line_amount < 0) > 0
    positive = line_amount > 0
    first_pos = np.full(len(rep), -1, dtype=np.int64)
    pos_groups, at = np.unique(group[positive], return_index=True)
    first_pos[pos_groups] = t[lines[positive][at]]
    counted = ~np.isnan(items[lines])
    item_sum = np.bincount(group, weights=np.where(counted, items[lines], 0))
    any_items = np.bincount(group, weights=counted) > 0
    report.add("orders", "order_lines_merged", int(len(lines) - len(rep)),
               examples(frame, _mask(len(frame), lines),
                        ["customer_id", "order_id", "ordered_at", "amount"]))
    netted = lines[(line_amount < 0) & has_pos[group]]
    report.add("orders", "refunds_netted", len(netted),
               examples(frame, _mask(len(frame), netted), ["customer_id", "order_id", "amount"]))
    keep[lines] = False
    keep[rep] = True
    amount[rep] = net
    items[rep] = np.where(any_items, item_sum, np.nan)
    t[rep] = np.where(has_pos, first_pos, t[rep])
    refund[rep] = (net < 0) & ~has_pos
    refunded[rep] = has_pos & has_neg
    cancelled = has_pos & (net <= 0)
    report.add("orders", "cancelled_orders", int(cancelled.sum()),
               [f"{e}, net {v:g}" for e, v in zip(
                   examples(frame, _mask(len(frame), rep[cancelled]),
                            ["customer_id", "order_id"]), net[cancelled])])
    report.money["cancelled_cny"] += float(net[cancelled].sum())
    keep[rep[cancelled]] = False


def _repeated(frame, cust, t, amount, items, plain, keep, report: CleaningReport,
              aggregate: bool) -> None:
    """Rule 2: rows without an order id repeating customer, time and amount."""
    index = np.flatnonzero(plain)
    if len(index) < 2:
        return
    c, tt, a = cust[index], t[index], amount[index]
    order, repeats = _equal_runs(_mix(c, tt, a), [c, tt, a])
    repeat = index[order[repeats]]
    kind = "repeated_rows_merged" if aggregate else "repeated_rows"
    report.add("orders", kind, len(repeat),
               examples(frame, _mask(len(frame), repeat), ["customer_id", "ordered_at", "amount"]))
    if not aggregate or len(repeat) == 0:
        return
    run = np.cumsum(~repeats) - 1  # the run (group) of each sorted position
    head = index[order[~repeats]]
    sorted_rows = index[order]
    amount_sum = np.bincount(run, weights=amount[sorted_rows])
    counted = ~np.isnan(items[sorted_rows])
    item_sum = np.bincount(run, weights=np.where(counted, items[sorted_rows], 0))
    any_items = np.bincount(run, weights=counted) > 0
    amount[head] = amount_sum
    items[head] = np.where(any_items, item_sum, np.nan)
    keep[repeat] = False


def _apply_refunds(frame, cust, t, amount, keep, refund, refunded,
                   report: CleaningReport) -> None:
    """Rule 3: each remaining refund reduces the customer's latest order at or before it."""
    report.money["refunds_dropped_cny"] = 0.0
    refunds = np.flatnonzero(keep & refund)
    if len(refunds) == 0:
        return
    with_refund = np.zeros(int(cust.max()) + 1, dtype=bool)
    with_refund[cust[refunds]] = True
    orders = np.flatnonzero(keep & ~refund & with_refund[cust])
    both = np.concatenate([orders, refunds])
    is_refund = np.concatenate([np.zeros(len(orders), bool), np.ones(len(refunds), bool)])
    by = np.lexsort((is_refund, t[both], cust[both]))  # orders first at equal times
    both, is_refund = both[by], is_refund[by]
    last = np.maximum.accumulate(np.where(is_refund, -1, np.arange(len(both))))
    mine = is_refund & (last >= 0)
    mine[mine] = cust[both[last[mine]]] == cust[both[mine]]
    matched = both[mine]
    target = both[last[mine]]
    dropped = both[is_refund & ~mine]
    fields = ["customer_id", "ordered_at", "amount"]
    report.add("orders", "refunds_applied", len(matched),
               examples(frame, _mask(len(frame), matched), fields))
    report.add("orders", "refunds_dropped", len(dropped),
               examples(frame, _mask(len(frame), dropped), fields))
    report.money["refunds_dropped_cny"] = float(amount[dropped].sum())
    np.add.at(amount, target, amount[matched])
    refunded[target] = True
    keep[refunds] = False
    cancelled = np.unique(target[amount[target] <= 0])
    report.add("orders", "cancelled_orders", len(cancelled),
               [f"{e}, net {v:g}" for e, v in zip(
                   examples(frame, _mask(len(frame), cancelled), ["customer_id", "ordered_at"]),
                   amount[cancelled])])
    report.money["cancelled_cny"] += float(amount[cancelled].sum())
    keep[cancelled] = False


def _mask(n: int, index: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[index] = True
    return mask
