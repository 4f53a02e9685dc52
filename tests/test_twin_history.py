"""People's timelines: the columnar summary equals a plain per-customer computation."""

import datetime as dt

import numpy as np
import pandas as pd

from simdomain.twin.history import NOT_A_CONTACT, build_history


def test_summaries_equal_a_plain_groupby_and_deletions_end_the_observation():
    rng = np.random.default_rng(0)
    n = 3000
    as_of = dt.date(2026, 6, 30)
    orders = pd.DataFrame({
        "customer_id": pd.Categorical(rng.choice([f"c{i}" for i in range(400)], n)),
        "ordered_at": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.uniform(0, 600, n),
                                                                      unit="D"),
        "amount": rng.uniform(10, 100, n),
    })
    contacts = pd.DataFrame({"customer_id": [f"c{i}" for i in range(0, 400, 2)],
                             "added_at": pd.Timestamp("2024-12-01"), "channel": "card",
                             "deleted_at": pd.NaT, "deleted_by": None})
    contacts.loc[0, ["deleted_at", "deleted_by"]] = [pd.Timestamp("2026-01-01"), "customer"]
    history = build_history(orders, as_of, contacts=contacts)
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    kept = orders[orders["ordered_at"] < end].assign(
        customer_id=lambda f: f["customer_id"].astype(str),
        whole=lambda f: np.floor((f["ordered_at"] - end) / pd.Timedelta(days=1)))
    for cid, group in kept.groupby("customer_id"):
        row = history.people.loc[cid]
        first, last = group["whole"].min(), group["whole"].max()
        assert row["orders"] == len(group) and row["x"] == group["whole"].nunique() - 1
        assert row["t_x"] == last - first
        assert abs(row["gmv_cny"] - group["amount"].sum()) < 1e-6
        # observed until the end of the data, or the day after a deletion (c0's)
        deleted = np.floor((pd.Timestamp("2026-01-01") - end) / pd.Timedelta(days=1))
        ended = deleted + 1 if cid == "c0" else 0.0
        assert row["T"] == max(ended - first, last - first)
    assert (history.people.loc[[f"c{i}" for i in range(1, 400, 2)], "source"]
            == NOT_A_CONTACT).all()
    # the customer-days: one row per customer and day, amounts summed
    days = history.days.assign(customer_id=history.people.index[history.days["person"]])
    assert len(days) == kept.groupby(["customer_id", "whole"]).ngroups
    assert abs(days["amount"].sum() - kept["amount"].sum()) < 1e-6
