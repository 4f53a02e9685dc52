"""The channel value table: its column contract, and its members per add against what
the simulation realized on replications the cohort model never saw.

"Within the replications' spread" means: the prediction differs from the held-out
replications' mean by at most two standard deviations of one replication's realized
value (computed over all replications). A channel brings ~7,000 adds per replication
in the stationary scenario, so that spread is about 0.005-0.01 members per add.
"""

from __future__ import annotations

import numpy as np
import pytest
from models_support import stationary

from simdomain.models.panel import simulate_panel
from simdomain.models.pipeline import _subset, value_check
from simdomain.models.value import (
    VALUE_COLUMNS,
    CohortModel,
    Cohorts,
    channel_value_table,
    realized_outcomes,
)

REPS = 8
HORIZON = 240


@pytest.fixture(scope="module")
def simulated():
    return simulate_panel(stationary(HORIZON), seed=21, reps=REPS,
                          days=list(range(30, HORIZON - 30, 30)))


@pytest.fixture(scope="module")
def table(simulated):
    result, panel = simulated
    return channel_value_table(CohortModel().fit(Cohorts.of(result), panel))


def test_column_contract(table):
    assert list(table.columns) == VALUE_COLUMNS
    assert list(table["channel"].unique()) == ["cards", "calls"]
    for channel in ("cards", "calls"):
        rows = table[table["channel"] == channel]
        assert list(rows["segment"]) == ["mass", "premium", "all"]
    numbers = table.drop(columns=["channel", "segment", "basis_90d", "basis_365d"])
    assert numbers.notna().all().all() and (numbers >= 0).all().all()
    assert set(table["basis_90d"]) == {"observed"} and set(table["basis_365d"]) == {"extrapolated"}
    for low, high in [("members_per_add_90d", "members_per_add"),
                      ("orders_per_add_90d", "orders_per_add_365d"),
                      ("retention_365d", "retention_90d"), ("members_per_add", "customers_per_add")]:
        assert (table[low] <= table[high] + 1e-12).all()


def test_all_row_mixes_the_segments_by_adds(table):
    for channel, rows in table.groupby("channel"):
        parts, total = rows[rows["segment"] != "all"], rows[rows["segment"] == "all"].iloc[0]
        assert total["adds"] == pytest.approx(parts["adds"].sum())
        weights = parts["adds"] / parts["adds"].sum()
        assert total["members_per_add"] == pytest.approx((weights * parts["members_per_add"]).sum())


def test_ltv_is_the_domain_formula(table):
    monthly = 1 - table["retention_365d"] ** (30.4375 / 365)
    per_buyer = table["orders_per_add_365d"] / table["customers_per_add"]
    expected = (1 / (12 * monthly)) * table["aov_cny"] * per_buyer
    np.testing.assert_allclose(table["ltv_cny"], expected)
    assert (table["aov_cny"].between(75, 215)).all()  # segment means 80 and 200, sampled


def test_what_the_scenario_says_shows_in_the_table(table):
    total = table[table["segment"] == "all"].set_index("channel")
    # cards delete at twice the rate and bring mostly the mass segment
    assert total.loc["cards", "retention_90d"] < total.loc["calls", "retention_90d"]
    assert total.loc["cards", "members_per_add"] < total.loc["calls", "members_per_add"]
    mass = table[table["segment"] == "mass"].set_index("channel")
    assert mass.loc["cards", "aov_cny"] == pytest.approx(80, rel=0.05)


def test_members_per_add_agree_with_held_out_replications(simulated):
    result, panel = simulated
    check = value_check(result, panel, horizon_days=90)
    assert list(check["channel"]) == ["cards", "calls"]
    assert check["within_spread"].all(), check
    assert (check["realized_sd"] < 0.02).all()


def test_extrapolated_members_per_add_agree_with_a_longer_run(simulated):
    """Fit on the first 120 days of four replications, predict 200 days on: the tail
    carries the last observed rates forward. Compare with the other four replications'
    adds that were followed 200 days in full."""
    result, panel = simulated
    fitted = _subset(result, list(range(REPS // 2)))
    model = CohortModel().fit(Cohorts.of(fitted, until_day=120), panel[panel["rep"] < REPS // 2])
    per_add = model.per_add((200,)).set_index("cell")
    assert set(per_add["basis"]) == {"extrapolated"}
    cells = model.cells_.assign(members=per_add["members"].to_numpy(), adds=model.adds_)
    realized = realized_outcomes(result, 200)
    for channel, group in cells.groupby("channel"):
        predicted = np.average(group["members"], weights=group["adds"])
        values = realized[realized["channel"] == channel].set_index("rep")["members_per_add"]
        held_out = values[values.index >= REPS // 2]
        z = (predicted - held_out.mean()) / values.std(ddof=1)
        assert abs(z) <= 2, (channel, predicted, held_out.mean(), values.std(ddof=1))


def test_until_day_hides_the_future(simulated):
    result, _ = simulated
    cohorts = Cohorts.of(result, until_day=100)
    assert cohorts.join_day.max() <= 100
    for events in (cohorts.first_order, cohorts.member, cohorts.koc, cohorts.deletion):
        seen = events < 10**9
        assert (cohorts.join_day[seen] + events[seen] <= 100).all()
    with pytest.raises(ValueError, match="until_day"):
        Cohorts.of(result, until_day=HORIZON)
