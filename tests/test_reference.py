"""The vectorized engine against the naive reference simulator (one process per person).

Both simulate ``fixtures/every_mechanism.yaml`` (every mechanism switched on) with
independent seeds; each outcome's mean over replications is compared with a Welch
two-sample t statistic. The same machinery must flag a deliberately perturbed scenario,
so a pass means something.

Tolerance: under the null (both implement the same rules) each outcome's Welch ``t``
is approximately Student-t with the Welch-Satterthwaite degrees of freedom (every
outcome is a sum of many small random events, so it is close to normal across
replications). For a family-wise false-alarm rate of ``FAMILY_ALPHA`` over ``K``
outcomes, Bonferroni gives the per-outcome two-sided level ``FAMILY_ALPHA / K``, so an
outcome fails when ``|t| > t_{1 - FAMILY_ALPHA / (2K)}(df)`` (about 4.8 here, with
K ~ 80 and df ~ 45). Bonferroni ignores the correlation between outcomes, so it is
conservative. The seeds are fixed, so the test is deterministic; ``FAMILY_ALPHA`` is
the chance that a correct engine would have been unlucky with them. Outcomes without
chance in them (each channel's monthly spend) must agree exactly.
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simdomain.scenario import Scenario, load_scenario
from simdomain.sim.engine import run_replication
from simdomain.sim.reference import run_reference_replication, simulate_reference
from simdomain.simulation import SimulationResult, simulate

pytestmark = pytest.mark.slow

SCENARIO = Path(__file__).parent / "fixtures" / "every_mechanism.yaml"
REFERENCE_REPS, ENGINE_REPS = 24, 60
REFERENCE_SEED, ENGINE_SEED = 20260220, 7
FAMILY_ALPHA = 1e-3

STOCKS = ["fan", "customer", "member", "koc", "deleted", "pool", "dormant"]
FLOWS = ["new_adds", "organic_adds", "referral_adds", "new_customers", "new_members",
         "new_kocs", "deletions", "orders", "member_orders", "gmv_cny", "spend_cny"]
MONTHLY = ["new_adds", "referral_adds", "new_customers", "new_members", "new_kocs",
           "deletions", "deletion_rate", "pool_size", "orders", "gmv_cny",
           "member_order_share", "spend_cny", "k_factor"]
BY_CHANNEL = ["new_adds", "new_members", "spend_cny"]


def outcomes(result: SimulationResult) -> pd.DataFrame:
    """One row per replication: stocks at the end, flows over the horizon and monthly
    KPIs (overall and per channel)."""
    daily = result.daily
    end = daily.groupby("rep")[STOCKS].last().add_prefix("end_")
    total = daily.groupby("rep")[FLOWS].sum().add_prefix("total_")
    monthly = result.monthly
    wanted = (((monthly["channel"] == "all") & monthly["kpi"].isin(MONTHLY))
              | ((monthly["channel"] != "all") & monthly["kpi"].isin(BY_CHANNEL)))
    wide = monthly[wanted].pivot(index="rep", columns=["kpi", "channel", "month"],
                                 values="value")
    wide.columns = ["/".join(c) for c in wide.columns]
    return pd.concat([end, total, wide], axis=1)


def welch(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Welch t statistic, its degrees of freedom and the Bonferroni threshold for each
    outcome that varies between replications; ``failed`` where ``|t|`` exceeds it."""
    assert list(a.columns) == list(b.columns), "the two runs have different outcomes"
    spread = a.std() + b.std()
    columns = list(a.columns[spread > 1e-9 * (a.mean().abs() + 1)])  # not rounding noise
    a, b = a[columns], b[columns]
    va, vb = a.var() / a.count(), b.var() / b.count()
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.count() - 1) + vb**2 / (b.count() - 1))
    threshold = stats.t.ppf(1 - FAMILY_ALPHA / (2 * len(columns)), df)
    return pd.DataFrame({"reference": a.mean(), "engine": b.mean(), "t": t, "df": df,
                         "threshold": threshold, "failed": t.abs() > threshold})


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(SCENARIO)


@pytest.fixture(scope="module")
def reference(scenario: Scenario) -> pd.DataFrame:
    result = simulate_reference(scenario, REFERENCE_SEED, REFERENCE_REPS, keep_agents=False,
                                workers=2)
    return outcomes(result)


def engine(scenario: Scenario) -> pd.DataFrame:
    return outcomes(simulate(scenario, seed=ENGINE_SEED, reps=ENGINE_REPS, keep_agents=False))


def test_frames_have_the_engines_shape(scenario: Scenario) -> None:
    seed = np.random.SeedSequence(1)
    ours = run_reference_replication(scenario, seed)
    theirs = run_replication(scenario, seed)
    for name in ["daily", "channels", "channel_members", "agents"]:
        mine, want = getattr(ours, name), getattr(theirs, name)
        assert list(mine.columns) == list(want.columns), name
        assert mine.dtypes.to_dict() == want.dtypes.to_dict(), name
    assert len(ours.daily) == len(theirs.daily) == scenario.horizon_days
    # channel spend and contacts per day do not depend on chance beyond the rounding
    pd.testing.assert_series_equal(ours.channels["spend_cny"], theirs.channels["spend_cny"])
    assert (ours.channels["contacts"] - theirs.channels["contacts"]).abs().max() <= 1


def test_engine_agrees_with_the_reference(scenario: Scenario, reference: pd.DataFrame) -> None:
    theirs = engine(scenario)
    table = welch(reference, theirs)
    assert len(table) > 50, "too few outcomes compared"
    constant = reference.columns.difference(table.index)  # channel spend: no chance in it
    np.testing.assert_allclose(reference[constant].mean(), theirs[constant].mean())
    failed = table[table["failed"]]
    assert failed.empty, f"engine and reference differ:\n{failed.to_string()}"


@pytest.mark.parametrize("path, factor, detected", [
    (("lifecycle", "deletion"), 2.0, "total_deletions"),  # every stage's rate doubled
    (("lifecycle", "join"), 1.25, "total_new_members"),  # a subtler change: +25 %
])
def test_a_perturbed_engine_is_detected(scenario: Scenario, reference: pd.DataFrame,
                                        path: tuple[str, ...], factor: float,
                                        detected: str) -> None:
    raw = scenario.model_dump()
    parent = functools.reduce(operator.getitem, path[:-1], raw)
    value = parent[path[-1]]
    parent[path[-1]] = ({k: v * factor for k, v in value.items()} if isinstance(value, dict)
                        else value * factor)
    table = welch(reference, engine(Scenario.model_validate(raw)))
    assert table.loc[detected, "failed"], table.loc[detected].to_string()
