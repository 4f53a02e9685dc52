"""Verification by simulation and margins for confidence, on a small scenario (seeded)."""

from __future__ import annotations

import numpy as np
import pytest
from planner_cases import small

from simdomain.planner import PlanOptions, plan, plan_with_confidence, verify
from simdomain.planner.verify import SUMMARY_COLUMNS, plan_scenario

OPTIONS = PlanOptions(member_window_months=1)


@pytest.fixture(scope="module")
def result():
    found = plan(small(), OPTIONS)
    assert found.optimal
    return found


def test_the_verified_scenario_spends_the_plan(result):
    scenario = plan_scenario(result, months_after=1)
    assert scenario.months == result.scenario.months + 1
    for c, name in enumerate(result.problem.channels):
        spend = scenario.channels[name].monthly_spend_cny
        assert spend[:-1] == pytest.approx(result.evaluation.spend[c].tolist())
        assert spend[-1] == 0.0


def test_verification_reports_every_target_and_is_reproducible(result):
    first = verify(result, reps=4, seed=7, progress=False)
    again = verify(result, reps=4, seed=7, progress=False)
    assert list(first.summary.columns) == SUMMARY_COLUMNS
    assert len(first.summary) == len(result.problem.targets)
    assert first.outcomes.equals(again.outcomes)
    summary = first.summary
    assert ((summary["probability_met"] >= 0) & (summary["probability_met"] <= 1)).all()
    assert (summary["low"] <= summary["mean"]).all() and (summary["mean"] <= summary["high"]).all()
    assert first.joint_probability <= summary["probability_met"].min()
    # the model's forecast is close to the simulated mean (referral adds come on top)
    adds = summary[summary["target"] == "monthly_new_adds"]
    assert np.all(adds["mean"] >= 0.97 * adds["plan"])
    assert np.all(adds["mean"] <= 1.10 * adds["plan"])
    members = summary[summary["target"] == "monthly_new_members"]
    assert np.allclose(members["mean"], members["plan"], rtol=0.08)


def test_confidence_raises_the_goals_until_reached():
    outcome = plan_with_confidence(small(), OPTIONS, 0.9, reps=6, seed=3)
    assert outcome.reached, outcome.message
    assert outcome.verification.joint_probability >= 0.9
    assert outcome.extra_cost >= -1e-6
    for key, goal in outcome.rounds[-1]["planned_goals"].items():
        target = next(t for t in outcome.result.problem.targets if t.key == key)
        assert goal <= target.goal if target.ceiling else goal >= target.goal
    assert outcome.report()["extra_cost_cny"] == pytest.approx(outcome.extra_cost)


def test_confidence_says_when_it_cannot():
    cost = plan(small(), OPTIONS).evaluation.total_cost
    scenario = small(budget={"total_cny": cost * 1.0001})  # enough for the plan, no margin
    outcome = plan_with_confidence(scenario, OPTIONS, 0.95, reps=4, seed=1, max_rounds=3)
    assert not outcome.reached
    assert outcome.blocked is not None and outcome.blocked.diagnosis is not None
    assert "cannot reach 95%" in outcome.message
    assert outcome.result.optimal  # the last feasible plan is kept for export
    assert outcome.report()["blocked"]["within_budget_shortfall"]
