"""The training panel: features know only the past, labels only the window after it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from models_support import busy

from simdomain.models.panel import (
    FEATURES,
    LABELS,
    build_panel,
    default_days,
    required_days,
    simulate_panel,
)
from simdomain.simulation import simulate

DAYS = [40, 60, 80]
SEED = 12


@pytest.fixture(scope="module")
def base():
    return simulate_panel(busy(), seed=SEED, reps=2, days=DAYS)


def test_no_feature_uses_information_from_after_the_snapshot(base):
    """Two worlds identical up to the last observation day and wildly different after
    it (a campaign multiplying deletions, joins, orders and adds from the next day on):
    with common random numbers every feature of every row must be equal, while the
    labels, which look ahead, change."""
    _, panel = base
    later = busy().model_dump(mode="json")
    later["campaigns"].append({
        "name": "after the snapshot", "start": str(busy().start_date + pd.Timedelta(days=81).to_pytimedelta()),
        "days": 60, "multipliers": {"adds": 3, "deletion": 8, "join": 5, "first_order": 4,
                                    "repeat_order": 4, "koc": 10, "wake": 5, "referral": 3},
    })
    _, other = simulate_panel(busy(campaigns=later["campaigns"]), seed=SEED, reps=2,
                                         days=DAYS)
    assert len(other) == len(panel)
    pd.testing.assert_frame_equal(panel[list(FEATURES)], other[list(FEATURES)])
    last_day = other[other["day"] == 80]
    mine = panel[panel["day"] == 80]
    assert (last_day["churn_30d"] != mine["churn_30d"]).any()
    assert last_day["churn_30d"].mean() > 2 * mine["churn_30d"].mean()


def test_features_do_not_read_the_final_state_or_later_snapshots(base):
    """Scrub everything after day 40 (later events, later snapshots, the final state):
    the features of day 40 stay the same."""
    _, panel = base
    scrubbed = simulate(busy(), seed=SEED, reps=2, observe_days=required_days(DAYS, 150))
    agents = scrubbed.agents.copy()
    for column in ("first_order_day", "member_day", "koc_day", "deletion_day", "last_order_day"):
        agents.loc[agents[column] > 40, column] = -1
    for column in ("orders", "gmv_cny", "touches_one_to_one", "fatigue", "stage"):
        agents[column] = agents[column].sample(frac=1, random_state=0).to_numpy()
    scrubbed.agents = agents
    snaps = scrubbed.snapshots
    keep = snaps["day"] <= 40
    scrubbed.snapshots = pd.concat([snaps[keep], snaps[snaps["day"] == 70]], ignore_index=True)
    features = build_panel(scrubbed, [40])[list(FEATURES)]
    expected = panel[panel["day"] == 40][list(FEATURES)].reset_index(drop=True)
    pd.testing.assert_frame_equal(features, expected)


def test_labels_are_the_events_in_the_window_after_the_day(base):
    result, panel = base
    agents = result.agents.set_index(["rep", "agent"])
    rows = panel.set_index(["rep", "agent"])
    events = agents.loc[rows.index]
    day = rows["day"].to_numpy()
    deleted = events["deletion_day"].to_numpy()
    churn = ((deleted > day) & (deleted <= day + 30)).astype(float)
    np.testing.assert_array_equal(rows["churn_30d"].to_numpy(), churn)
    joined = events["member_day"].to_numpy()
    at_risk = rows["stage"].isin(["fan", "customer"]).to_numpy()
    expected = np.where(at_risk, (joined > day) & (joined <= day + 30), np.nan)
    np.testing.assert_array_equal(rows["join_30d"].to_numpy(), expected)
    koc = rows["koc_90d"].to_numpy()
    assert np.isnan(koc[(day + 90 > 149) | (rows["stage"] == "koc").to_numpy()]).all()
    assert (rows["stage"] != "deleted").all()
    assert set(LABELS) <= set(panel.columns)


def test_touch_windows_are_differences_of_the_counters(base):
    result, panel = base
    snaps = result.snapshots.set_index(["rep", "day", "agent"])["touches_one_to_one"]
    row = panel[(panel["day"] == 60) & (panel["rep"] == 1)].iloc[::97]
    now = snaps.loc[[(1, 60, a) for a in row["agent"]]].to_numpy()
    week = snaps.reindex([(1, 53, a) for a in row["agent"]]).fillna(0).to_numpy()
    month = snaps.reindex([(1, 30, a) for a in row["agent"]]).fillna(0).to_numpy()
    np.testing.assert_array_equal(row["touches_one_to_one_7d"], now - week)
    np.testing.assert_array_equal(row["touches_one_to_one_30d"], now - month)


def test_initial_pool_tenure_is_a_lower_bound(base):
    _, panel = base
    initial = panel[panel["source"] == "initial"]
    assert (initial["tenure_known"] == 0).all()
    assert (initial["tenure_days"] == initial["day"] + 1).all()
    added = panel[panel["source"] != "initial"]
    assert (added["tenure_known"] == 1).all() and (added["tenure_days"] <= added["day"]).all()


def test_fake_accounts_read_as_unknown_segment(base):
    result, panel = base
    assert "fraud" not in set(panel["segment"].astype(str))
    fakes = result.agents[result.agents["segment"] == "fraud"]
    assert len(fakes) > 0
    assert (panel["segment"] == "unknown").sum() > 0


def test_missing_snapshots_are_named():
    result = simulate(busy(), seed=1, observe_days=[60])
    with pytest.raises(ValueError, match=r"snapshots at days \[30, 53, 90\]"):
        build_panel(result, [60])


def test_default_days_leave_room_for_the_label_windows():
    assert default_days(365) == [30, 111, 193, 274]
    assert max(default_days(150)) + 30 <= 149
    assert default_days(60) == [29]
