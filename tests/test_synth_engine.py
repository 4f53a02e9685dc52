"""Engine bundles hold exactly what the simulation did, month by month."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import FIXTURES

from simdomain.scenario import read_yaml, validate_scenario
from simdomain.sim.engine import run_replication
from simdomain.synth import synthesize, write_bundle
from simdomain.synth.engine import history_scenario, pareto_nbd_terms
from simdomain.synth.people import history_window

TIME = "%Y-%m-%d %H:%M:%S"


def monthly(column: pd.Series, start: pd.Timestamp) -> pd.Series:
    at = pd.to_datetime(column.replace("", None), format=TIME)
    return at[at >= start].dt.strftime("%Y-%m").value_counts().sort_index()


def test_counts_match_the_simulation_month_by_month(tmp_path: Path, minimal) -> None:
    seed, days = 4, 150
    out = tmp_path / "engine"
    write_bundle(synthesize(minimal, seed=seed, history_days=days), out)
    window = history_window(minimal, history_days=days)
    history = history_scenario(minimal, window)
    run = run_replication(history, np.random.SeedSequence(seed).spawn(1)[0])
    daily = run.daily.assign(month=run.daily["date"].dt.strftime("%Y-%m"))
    truth = json.loads((out / "truth.json").read_text())
    start = pd.Timestamp(truth["window"]["start"])
    read = {name: pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
            for name in ("orders", "contacts", "members", "referrals", "spend")}
    contacts = read["contacts"]
    orders = read["orders"][read["orders"]["customer_id"].isin(set(contacts["customer_id"]))]
    expected = daily.groupby("month")[["orders", "new_adds", "new_members", "deletions",
                                       "referral_adds", "gmv_cny"]].sum()
    checks = {
        "orders": monthly(orders["ordered_at"], start),
        "new_adds": monthly(contacts["added_at"], start),
        "new_members": monthly(read["members"]["joined_at"], start),
        "deletions": monthly(contacts["deleted_at"], start),
        "referral_adds": monthly(read["referrals"]["at"], start),
    }
    for column, got in checks.items():
        want = expected[column][expected[column] > 0]
        assert got.to_dict() == want.astype(int).to_dict(), column
    at = pd.to_datetime(orders["ordered_at"], format=TIME).dt.strftime("%Y-%m")
    gmv = pd.to_numeric(orders["amount"]).groupby(at).sum()
    np.testing.assert_allclose(gmv, expected["gmv_cny"].loc[gmv.index],
                               atol=0.005 * orders.shape[0])  # cents rounded per order
    spend = read["spend"].astype({"spend_cny": float}).groupby("month")["spend_cny"].sum()
    channels = run.channels.assign(month=[str(m) for m in pd.to_datetime(
        [window.start + dt.timedelta(days=int(d)) for d in run.channels["day"]]).strftime("%Y-%m")])
    np.testing.assert_allclose(spend, channels.groupby("month")["spend_cny"].sum().loc[spend.index],
                               atol=0.01)
    # everyone simulated is a contact, the initial pool added before the window
    assert len(contacts) == len(run.agents)
    early = pd.to_datetime(contacts["added_at"], format=TIME) < start
    assert early.sum() == minimal.initial_pool.total == truth["counts"]["initial_pool"]
    assert truth["counts"]["engine_orders"] == int(daily["orders"].sum())


def test_history_repeats_the_plan_by_calendar() -> None:
    raw = read_yaml(FIXTURES / "minimal.yaml")
    raw["channels"]["sms"]["monthly_spend_cny"] = [1000, 2000]
    raw["horizon_days"] = 59  # January and February
    scenario = validate_scenario(raw)
    window = history_window(scenario, history_days=365)
    history = history_scenario(scenario, window)
    assert history.start_date == dt.date(2025, 1, 1) and history.horizon_days == 365
    spend = history.channels["sms"].monthly_spend_cny
    assert spend == [1000, 2000] * 6  # January reads the plan's January, and so on
    assert [c.start for c in history.campaigns] == [dt.date(2025, 1, 20)]
    assert history.targets.pool_size == [] and history.targets.gmv is None


def test_pareto_nbd_terms_where_the_engine_maps() -> None:
    raw = read_yaml(FIXTURES / "minimal.yaml")
    assert pareto_nbd_terms(validate_scenario(raw)) is None  # waking and dormant orders
    raw["lifecycle"].update(wake=0.0, dormant_multiplier=0.0, repeat_order=0.01, dormancy=0.002,
                            heterogeneity={"order_shape": 0.8, "dormancy_shape": 1.5})
    raw["segments"]["premium"]["propensity"]["repeat_order"] = 2.0
    terms = pareto_nbd_terms(validate_scenario(raw))
    assert terms["mass"] == {"r": 0.8, "alpha": 80.0, "s": 1.5, "beta": 750.0}
    assert terms["premium"]["alpha"] == 40.0
    bundle = synthesize(validate_scenario(raw), history_days=60)
    assert bundle.truth["parameters"]["pareto_nbd"] == terms
    deletion = bundle.truth["parameters"]["deletion"]
    assert deletion["by_stage"]["fan"] == 0.003 and deletion["shape"] is None
    assert deletion["channel_multipliers"] == {"sms": 1.0}


def test_pareto_nbd_terms_predict_the_bundles_repeat_orders(tmp_path: Path) -> None:
    """The truth's Pareto/NBD terms, read back with the files, give each buyer's expected
    repeat orders (E[X(T)] in closed form). Everyone buys on their add day (first_order
    1), so buyers are not selected on their dropout rate; the engine's days put T in whole
    days after the first-order day; the daily-step gap is O(mu^2 T) (< 1% here). Tolerance:
    4 standard errors of the mean gap over buyers, estimated from the data."""
    from simdomain.synth.processes import ParetoNBD

    raw = read_yaml(FIXTURES / "minimal.yaml")
    raw.update(initial_pool={}, campaigns=[], targets={}, referral=None,
               touch_policy={"one_to_one": {"per_week": 0}, "group": {"posts_per_day": 0},
                             "moments": {"posts_per_day": 0}})
    raw["segments"] = {"mass": {"share": 1.0, "order_value_cny": 80}}
    raw["channels"]["sms"]["staff"] = {"accounts": 20}
    raw["lifecycle"] = {"first_order": 1.0, "repeat_order": 0.02, "join": 0.0, "koc": 0.0,
                        "dormancy": 0.004, "wake": 0.0, "dormant_multiplier": 0.0,
                        "deletion": dict.fromkeys(("fan", "customer", "member", "koc"), 0.0),
                        "heterogeneity": {"order_shape": 0.6, "dormancy_shape": 1.2}}
    scenario = validate_scenario(raw)
    write_bundle(synthesize(scenario, seed=8, history_days=365), tmp_path / "b")
    truth = json.loads((tmp_path / "b" / "truth.json").read_text())
    terms = truth["parameters"]["pareto_nbd"]["mass"]
    contacts = pd.read_csv(tmp_path / "b" / "contacts.csv", dtype=str)
    orders = pd.read_csv(tmp_path / "b" / "orders.csv", dtype={"customer_id": str})
    orders = orders[orders["customer_id"].isin(set(contacts["customer_id"]))]
    days = (pd.to_datetime(orders["ordered_at"]) - pd.Timestamp(truth["window"]["start"]))
    per = orders.assign(day=days.dt.days).groupby("customer_id")["day"].agg(["count", "min"])
    assert len(per) > 10_000
    T = truth["window"]["days"] - 1 - per["min"].to_numpy()
    model = ParetoNBD(r=terms["r"], alpha=terms["alpha"], s=terms["s"], beta=terms["beta"])
    gap = (per["count"].to_numpy() - 1) - model.expected_repeats(T)
    z = gap.mean() / (gap.std(ddof=1) / np.sqrt(len(gap)))
    assert abs(z) < 4, (gap.mean(), z)
