"""Orders cleaning: each rule with its exact count, and against a plain reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from data_support import bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simdomain.data import load_bundle


def load(tmp_path, orders, **options):
    return load_bundle(bundle(tmp_path / "b", orders=orders), **options)


def test_lines_sharing_an_order_id_are_one_order(tmp_path):
    b = load(tmp_path, """customer_id,ordered_at,amount,order_id,items
        c1,2024-01-05 10:00:00,100,o1,1
        c1,2024-01-05 10:05:00,50,o1,2
        c1,2024-01-05 09:59:00,5,o1,
        c2,2024-01-05 11:00:00,70,o1,1""")
    assert b.report.count("order_lines_merged") == 2
    first = b.orders.iloc[0]
    assert (first["customer_id"], first["amount"], first["items"]) == ("c1", 155.0, 3)
    assert first["ordered_at"] == pd.Timestamp("2024-01-05 09:59:00")
    assert len(b.orders) == 2  # the same order id for another customer is another order


def test_repeated_rows_without_order_id_are_kept_and_counted(tmp_path):
    text = """customer_id,ordered_at,amount
        c1,2024-01-05,30
        c1,2024-01-05,30
        c1,2024-01-05,30
        c1,2024-01-05,31
        c2,2024-01-05,30"""
    kept = load(tmp_path, text)
    assert kept.report.count("repeated_rows") == 2
    assert len(kept.orders) == 5
    merged = load(tmp_path / "m", text, aggregate_duplicates=True)
    assert merged.report.count("repeated_rows_merged") == 2
    assert sorted(merged.orders["amount"]) == [30.0, 31.0, 90.0]


def test_refunds_with_an_order_id_are_netted_and_cancel_at_zero(tmp_path):
    b = load(tmp_path, """customer_id,ordered_at,amount,order_id
        c1,2024-01-05,100,o1
        c1,2024-01-09,-30,o1
        c1,2024-01-06,50,o2
        c1,2024-01-07,-50,o2
        c2,2024-01-06,50,o3
        c2,2024-01-08,-60,o3""")
    assert b.report.count("refunds_netted") == 3
    assert b.report.count("cancelled_orders") == 2
    assert b.orders["amount"].tolist() == [70.0]
    assert b.report.money["cancelled_cny"] == -10.0


def test_refunds_without_their_order_reduce_the_latest_earlier_order(tmp_path):
    b = load(tmp_path, """customer_id,ordered_at,amount,order_id
        c1,2024-01-01,100,
        c1,2024-01-03,40,
        c1,2024-01-02,-20,
        c1,2024-01-04,-30,
        c1,2024-01-05,-50,r9
        c2,2024-01-03,-5,
        c3,2024-01-03,10,
        c3,2024-01-03,-4,""")
    assert b.report.count("refunds_applied") == 4
    assert b.report.count("refunds_dropped") == 1
    assert b.report.count("cancelled_orders") == 1  # 40 - 30 - 50
    assert b.orders["amount"].tolist() == [80.0, 6.0]  # refund at the order's own time
    assert b.report.money == pytest.approx({
        "rows_cny": 41.0, "orders_cny": 86.0, "refunds_dropped_cny": -5.0,
        "cancelled_cny": -40.0})


def test_zero_amount_orders_kept_and_counted(tmp_path):
    b = load(tmp_path, """customer_id,ordered_at,amount
        c1,2024-01-01,0
        c1,2024-01-02,10""")
    assert b.report.count("zero_amount") == 1
    assert len(b.orders) == 2


def test_out_of_order_rows_are_sorted_and_counted(tmp_path):
    b = load(tmp_path, """customer_id,ordered_at,amount
        c1,2024-01-03,1
        c2,2024-01-01,2
        c3,2024-01-02,3
        c4,2024-01-04,4""")
    assert b.report.count("unsorted") == 1
    assert b.orders["amount"].tolist() == [2.0, 3.0, 1.0, 4.0]
    assert b.orders["ordered_at"].is_monotonic_increasing


def test_contract_types(tmp_path):
    b = load(tmp_path, """customer_id,ordered_at,amount,order_id,channel,items
        c1,2024-01-05 10:00:00,100,o1,mall,2""")
    dtypes = b.orders.dtypes.astype(str).to_dict()
    assert dtypes["customer_id"] == "category" and dtypes["channel"] == "category"
    assert dtypes["ordered_at"] == "datetime64[ns]" and dtypes["amount"] == "float64"
    assert dtypes["items"] == "Int64"
    assert list(b.orders.columns) == ["customer_id", "ordered_at", "amount", "order_id",
                                      "channel", "items"]


# A plain, loop-by-loop reading of the documented rules, to check the vectorised one.
def reference(rows: list[tuple], aggregate: bool) -> tuple[list[tuple], dict[str, float]]:
    """``rows``: (position, customer, day, amount, order id or None)."""
    orders, refunds, cancelled = [], [], 0.0
    groups: dict[tuple, list[tuple]] = {}
    for row in rows:
        if row[4] is not None:
            groups.setdefault((row[1], row[4]), []).append(row)
    for (customer, oid), lines in groups.items():
        lines = sorted(lines, key=lambda r: (r[2], r[0]))
        net = sum(r[3] for r in lines)
        positive = [r for r in lines if r[3] > 0]
        day = min(r[2] for r in positive) if positive else lines[0][2]
        merged = [lines[0][0], customer, day, net, oid, bool(positive)
                  and any(r[3] < 0 for r in lines)]
        if positive and net <= 0:
            cancelled += net
        elif net < 0:
            refunds.append(merged)
        else:
            orders.append(merged)
    seen: dict[tuple, list] = {}
    for row in rows:
        if row[4] is None:
            if row[3] < 0:
                refunds.append([row[0], row[1], row[2], row[3], None, False])
            elif (row[1], row[2], row[3]) in seen and aggregate:
                seen[(row[1], row[2], row[3])][3] += row[3]
            else:
                order = [row[0], row[1], row[2], row[3], None, False]
                seen.setdefault((row[1], row[2], row[3]), order)
                orders.append(order)
    dropped, targets = 0.0, []
    for refund in refunds:
        mine = [o for o in orders if o[1] == refund[1] and o[2] <= refund[2]]
        if mine:
            targets.append((max(mine, key=lambda o: (o[2], o[0])), refund[3]))
        else:
            dropped += refund[3]
    for order, amount in targets:
        order[3] += amount
        order[5] = True
    kept = []
    for order in orders:
        if order[5] and order[3] <= 0:
            cancelled += order[3]
        else:
            kept.append((order[1], order[2], round(order[3], 6), order[4]))
    return sorted(kept), {"refunds_dropped_cny": dropped, "cancelled_cny": cancelled}


order_rows = st.lists(st.tuples(
    st.sampled_from(["a", "b", "c"]), st.integers(1, 6),
    st.sampled_from([-40.0, -25.5, -10.0, 0.0, 10.0, 25.5, 40.0, 60.0]),
    st.sampled_from([None, None, "o1", "o2", "o3"])), min_size=1, max_size=14)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=order_rows, aggregate=st.booleans())
def test_vectorised_rules_match_the_reference_and_account_for_every_yuan(tmp_path_factory,
                                                                         rows, aggregate):
    folder = tmp_path_factory.mktemp("b")
    lines = ["customer_id,ordered_at,amount,order_id"] + [
        f"{c},2024-01-0{d},{a},{o or ''}" for c, d, a, o in rows]
    (folder / "orders.csv").write_text("\n".join(lines) + "\n")
    b = load_bundle(folder, aggregate_duplicates=aggregate)
    got = sorted((str(r.customer_id), r.ordered_at.day, round(r.amount, 6),
                  None if pd.isna(r.order_id) else r.order_id) for r in b.orders.itertuples())
    expected, money = reference([(i, c, d, a, o) for i, (c, d, a, o) in enumerate(rows)],
                                aggregate)
    assert got == expected
    m = b.report.money
    assert m["refunds_dropped_cny"] == pytest.approx(money["refunds_dropped_cny"])
    assert m["cancelled_cny"] == pytest.approx(money["cancelled_cny"])
    # money is neither lost nor invented except as documented
    assert m["rows_cny"] == pytest.approx(sum(a for _, _, a, _ in rows))
    assert m["rows_cny"] == pytest.approx(m["orders_cny"] + m["refunds_dropped_cny"]
                                          + m["cancelled_cny"])
    assert m["orders_cny"] == pytest.approx(b.orders["amount"].sum())
    assert (b.orders["amount"] >= 0).all()


def test_hash_collisions_never_merge_different_orders(tmp_path, monkeypatch):
    from simdomain.data import orders

    monkeypatch.setattr(orders, "string_hash", lambda array: np.zeros(len(array), np.uint64))
    rows = [("a", 1, 10.0, "o1"), ("a", 2, 20.0, "o2"), ("b", 2, 5.0, "o1"),
            ("a", 3, -5.0, "o1"), ("a", 3, 7.0, "o2"), ("a", 4, 1.0, "o3")]
    (tmp_path / "orders.csv").write_text("customer_id,ordered_at,amount,order_id\n" + "".join(
        f"{c},2024-01-0{d},{a},{o}\n" for c, d, a, o in rows))
    b = load_bundle(tmp_path)
    got = sorted((str(r.customer_id), r.ordered_at.day, r.amount, r.order_id)
                 for r in b.orders.itertuples())
    assert got == reference([(i, *r) for i, r in enumerate(rows)], False)[0]
    assert b.report.count("order_lines_merged") == 2


def test_string_hash_equal_strings_agree():
    import pyarrow as pa

    from simdomain.data.orders import string_hash

    array = pa.array(["a", "ab", "", None, "ab", "x" * 100, "x" * 100 + "y", "é"])
    h = string_hash(array.slice(1))
    assert h[0] == h[3]
    assert len(set(h[[0, 1, 4, 5, 6]].tolist())) == 5
