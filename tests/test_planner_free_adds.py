"""Adds that come without spend (``free_adds_per_month``) in the planner.

The planner counts them as a known constant with their own outcomes per add; the engine
draws them as Poisson each day. Tolerances: a simulated mean over ``R`` replications
strays from the true mean by ``se = sd / sqrt(R)`` (sd estimated from the replications);
the model is the exact expectation of the same chain (touches at their mean, which the
cohort tests bound at a few percent), so ``|model - mean| <= 4.5 se + 1%`` fails by
chance with probability about 3e-4 per target (Student t, 19 degrees of freedom).
"""

from __future__ import annotations

import numpy as np
from planner_cases import small_dict

from simdomain.planner.cohorts import free_adds
from simdomain.planner.planning import plan
from simdomain.planner.problem import PlanOptions
from simdomain.planner.verify import verify
from simdomain.scenario import validate_scenario

REPS = 20


def _close(model: float, values: np.ndarray) -> bool:
    se = values.std(ddof=1) / np.sqrt(len(values))
    return abs(model - values.mean()) <= 4.5 * se + 0.01 * abs(values.mean())


def _values(verification, target) -> np.ndarray:
    o = verification.outcomes
    return o[(o.target == target.name) & (o.period == target.period)]["value"].to_numpy()


def test_a_pool_fed_only_by_free_adds_matches_the_simulation():
    raw = small_dict(horizon_days=120)
    for channel in raw["channels"].values():
        channel["monthly_spend_cny"] = 0
    raw["channels"]["cards"]["free_adds_per_month"] = 900  # staffed: takes an account
    raw["channels"]["feeds"]["free_adds_per_month"] = 1500  # audience 90% mass
    raw["targets"] = {"monthly_new_adds": 100, "monthly_new_members": 10,
                      "max_monthly_deletion_rate": 0.5,
                      "pool_size": [{"date": "2026-04-30", "size": 100}],
                      "gmv": {"total_cny": 1000, "by": "2026-04-30"}}
    scenario = validate_scenario(raw, "<free adds only>")
    result = plan(scenario, PlanOptions(locks={n: 0.0 for n in scenario.channels},
                                        members_basis="calendar"))
    assert result.evaluation.spend.sum() == 0
    # the accounts must take the free adds: one on cards in every month
    assert result.evaluation.staff[0].tolist() == [1, 1, 1, 1]
    np.testing.assert_allclose(free_adds(scenario).sum(axis=0), 2400.0)
    verification = verify(result, reps=REPS, seed=5)
    for target in result.problem.targets:
        model = result.evaluation.values[target.key]
        values = _values(verification, target)
        assert _close(model, values), (target.key, model, values.mean())


def test_free_adds_make_a_min_cost_plan_cheaper_and_the_model_still_holds():
    def scenario(free: float):
        raw = small_dict()
        raw["channels"]["feeds"]["free_adds_per_month"] = free
        return validate_scenario(raw, "<free adds>")

    options = PlanOptions()
    without = plan(scenario(0.0), options)
    result = plan(scenario(1000.0), options)
    assert result.evaluation.total_cost < 0.8 * without.evaluation.total_cost
    verification = verify(result, reps=REPS, seed=5)
    binding = [t for t in result.problem.targets
               if abs(result.evaluation.values[t.key] - t.goal) <= 0.01 * t.goal]
    assert binding  # a min-cost plan meets some target just so
    for target in result.problem.targets:
        values = _values(verification, target)
        assert _close(result.evaluation.values[target.key], values), target.key
    # on the binding targets the model's chance is about one half: the simulation must
    # miss some of them (all met would mean the plan still overspends), 20 reps x 3
    met = np.concatenate([_values(verification, t) >= t.goal for t in binding])
    assert 0.2 <= met.mean() <= 0.8, met.mean()


def test_the_plan_over_draws_counts_free_adds_and_staffs_for_them():
    """Without parameter draws every draw is the point estimate: its constants are the
    deterministic problem's, and the accounts of the staffed channel take its free adds
    in every month, spend or not."""
    from simdomain.planner.robust import draw_set, evaluate_draws, solve_chance

    raw = small_dict()
    raw["channels"]["cards"]["free_adds_per_month"] = 2000  # > one account's capacity
    raw["channels"]["feeds"]["free_adds_per_month"] = 1000
    scenario = validate_scenario(raw, "<free adds>")
    draws = draw_set(scenario, PlanOptions(member_window_months=1), 8, seed=1)
    base = draws.base
    np.testing.assert_allclose(draws.constant, np.broadcast_to(
        [t.constant for t in base.targets], draws.constant.shape))
    plan = solve_chance(draws, 0.8)
    assert plan.optimal
    cards = base.channels.index("cards")
    capacity = base.staff_capacity[cards]
    assert np.all(plan.staff[cards] * capacity >= base.free_adds[cards] - 1e-9)
    assert np.all(plan.staff[cards] >= 2)
    chance = evaluate_draws(draws, plan.spend, plan.staff)["chance"]
    assert min(chance.values()) >= 0.8 - 2e-3
