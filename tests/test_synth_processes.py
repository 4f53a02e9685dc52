"""The independent order processes draw what their closed forms say, read back from the
files (so the bundle carries the process, not just the arrays).

Tolerances: each check compares a sum of independent per-customer counts with its
expectation and allows 4 standard errors (estimated from the data, or Poisson given the
drawn rates), a false alarm about once in 16,000 runs; the seeds are fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import scenario_dict

from simdomain.scenario import validate_scenario
from simdomain.synth import synthesize, write_bundle
from simdomain.synth.processes import PROCESSES, seasonal_integral

Z = 4.0


@pytest.fixture(scope="module")
def brand():
    """One channel bringing ~1,500 contacts a month, 2 years of history."""
    return validate_scenario(scenario_dict(
        start_date="2027-01-01",
        channels={"ads": {"monthly_spend_cny": 30000, "cost_per_contact_cny": 1.0,
                          "funnel": {"add": 0.05}, "staff": {"accounts": 4}}}))


def history(bundle_dir: Path) -> tuple[pd.DataFrame, dict]:
    """Per customer: repeat orders x, first order t0 and the window end, in days."""
    truth = json.loads((bundle_dir / "truth.json").read_text())
    orders = pd.read_csv(bundle_dir / "orders.csv", dtype={"customer_id": str})
    start = pd.Timestamp(truth["window"]["start"])
    orders["t"] = (pd.to_datetime(orders["ordered_at"]) - start).dt.total_seconds() / 86_400
    per = orders.groupby("customer_id")["t"].agg(["count", "min"])
    per = per.rename(columns={"count": "orders", "min": "t0"})
    per["x"] = per["orders"] - 1
    per["T"] = truth["window"]["days"] - per["t0"]
    return per, truth


def write(tmp_path: Path, brand, process: str, seed: int) -> Path:
    out = tmp_path / process
    write_bundle(synthesize(brand, process=process, seed=seed, history_days=730), out)
    return out


@pytest.mark.parametrize("process", ["bgnbd", "pareto"])
def test_repeat_orders_match_the_closed_form(tmp_path: Path, brand, process: str) -> None:
    per, truth = history(write(tmp_path, brand, process, seed=11))
    params = PROCESSES[process]
    assert truth["parameters"]["orders"]["r"] == params.r
    assert len(per) > 20_000
    gap = per["x"].to_numpy() - params.expected_repeats(per["T"].to_numpy())
    z = gap.mean() / (gap.std(ddof=1) / np.sqrt(len(gap)))
    assert abs(z) < Z, (per["x"].mean(), z)
    # and by tenure: the newest and the oldest halves each match
    for half in np.array_split(np.argsort(per["T"].to_numpy()), 2):
        z = gap[half].mean() / (gap[half].std(ddof=1) / np.sqrt(len(half)))
        assert abs(z) < Z


def test_seasonal_orders_track_the_intensity(tmp_path: Path, brand) -> None:
    folder = write(tmp_path, brand, "pareto-seasonal", seed=12)
    _per, truth = history(folder)
    latent = pd.read_parquet(folder / "truth" / "customers.parquet").set_index("customer_id")
    params = PROCESSES["pareto-seasonal"]
    start = pd.Timestamp(truth["window"]["start"]).date()
    end = float(truth["window"]["days"])
    t0 = latent["first_order_day"].to_numpy()
    stop = np.fmin(latent["dropout_day"].to_numpy(), end)
    lam = latent["lambda"].to_numpy()
    orders = pd.read_csv(folder / "orders.csv", dtype={"customer_id": str})
    at = pd.to_datetime(orders["ordered_at"])
    repeat = orders.assign(at=at).sort_values("at").duplicated("customer_id")  # not the first
    observed = at[repeat].dt.strftime("%Y-%m").value_counts()
    expected = {}
    for month in pd.period_range(start, periods=24, freq="M"):
        lo = float((month.start_time - pd.Timestamp(start)).days)
        hi = float((month.end_time.normalize() - pd.Timestamp(start)).days) + 1
        integral = seasonal_integral(params, start, np.maximum(t0, lo), np.minimum(stop, hi))
        expected[str(month)] = float((lam * integral).sum())
    # given the drawn rates, a month's repeat orders are Poisson with that mean
    for month, mean in expected.items():
        assert abs(observed.get(month, 0) - mean) < Z * np.sqrt(mean), month
    # the intensity does vary: November (the campaign week) stands out from October
    for year in ("2025", "2026"):
        lift = observed[f"{year}-11"] / observed[f"{year}-10"]
        assert lift > 1.3, lift


def test_tenure_decay_and_value_tied_to_frequency(tmp_path: Path, brand) -> None:
    folder = write(tmp_path, brand, "pareto-decay", seed=13)
    per, _ = history(folder)
    latent = pd.read_parquet(folder / "truth" / "customers.parquet").set_index("customer_id")
    params = PROCESSES["pareto-decay"]
    latent = latent.join(per)
    end = latent["t0"] + latent["T"]
    span = np.fmin(latent["dropout_day"], end) - latent["first_order_day"]
    theta = params.decay_days
    mean = (latent["lambda"] * theta * (1 - np.exp(-span / theta))).sum()
    assert abs(latent["x"].sum() - mean) < Z * np.sqrt(mean)
    orders = pd.read_csv(folder / "orders.csv", dtype={"customer_id": str})
    value = orders.groupby("customer_id")["amount"].mean()
    rho = np.corrcoef(np.log(latent["lambda"]), np.log(value.reindex(latent.index)))[0, 1]
    assert rho < -0.1, rho
