"""The planner's tighter formulation (segments, cost-envelope cuts) is the same plan
space as the chords: same optimal cost on random instances, cuts that remove no plan."""

from __future__ import annotations

import numpy as np
import pytest

from simdomain.planner import milp, rounding
from simdomain.planner.curves import ResponseCurve, approximate
from simdomain.planner.envelope import cost_envelope, least_cost
from simdomain.planner.synthetic import random_problem

SOLVERS = milp.available_solvers()


def exact(name: str):
    return milp.make_solver(name, gap=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(("seed", "objective"), [
    (0, "min-cost"), (1, "min-cost"), (2, "min-cost"), (3, "max-members"), (4, "max-adds"),
])
def test_new_formulation_has_the_old_optimum(solver, seed, objective):
    """Chords without cuts (the original model) and segments with envelope cuts reach the
    same optimum; both solved to a 1e-9 gap, so they agree to the solvers' tolerance."""
    shape = {"seed": seed, "switches": 0.4, "staff": 0.7, "demand": 0.3}
    budget = None
    if objective != "min-cost":  # a fifth more than the targets' least cost
        cheapest = random_problem(8, 4, 8, **shape)
        budget = 1.2 * milp.optimize(cheapest, exact(solver)).objective
    p = random_problem(8, 4, 8, objective=objective, budget=budget, **shape)
    old = milp.solve(milp.build(p, curves="chords", envelope=False), p, exact(solver))
    new = milp.solve(milp.build(p), p, exact(solver))
    assert old.status == new.status == "Optimal"
    assert new.objective == pytest.approx(old.objective, rel=1e-6)
    for t in p.targets:  # the new plan meets every target too
        assert t.met(t.value(new.adds), t.planned, rtol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_the_envelope_is_below_the_least_cost_and_touches_it(seed):
    """The facets lie below ``phi`` everywhere (checked on a fine grid and against a
    brute-force least cost) and the envelope meets ``phi`` at its vertices."""
    rng = np.random.default_rng(seed)
    curve = ResponseCurve("c", rng.uniform(2e3, 2e4), rng.uniform(0.02, 0.2), None)
    pwl = approximate(curve, float(curve.peak_adds / curve.adds_per_cny * 2), points=10)
    spec = {"share": rng.uniform(0.5, 1), "min_spend": float(pwl.spend[-1] * rng.uniform(0, 0.2)),
            "fixed_cost": rng.uniform(0, 5e3), "capacity": rng.uniform(500, 3000),
            "staff_cost": rng.uniform(500, 4000)}
    factor = rng.uniform(0.8, 1.2)
    a, b = cost_envelope(pwl, factor, **spec)
    y = np.linspace(0, factor * pwl.adds[-1], 4001)
    phi = least_cost(y, pwl, factor, **spec)
    envelope = np.max(a[:, None] + b[:, None] * y, axis=0)
    assert (envelope <= phi + 1e-6 * phi.max()).all()
    # brute force: every spend on a fine grid with whole accounts
    x = np.linspace(0, pwl.spend[-1], 20001)
    reach = factor * pwl(x)
    for target in y[::200][1:]:
        ok = reach >= target - 1e-9
        cost = (spec["share"] * np.maximum(x[ok], spec["min_spend"]) + spec["fixed_cost"]
                + spec["staff_cost"] * np.ceil(target / spec["capacity"] - 1e-9))
        assert least_cost(np.array([target]), pwl, factor, **spec)[0] <= cost.min() + 1e-6
        assert least_cost(np.array([target]), pwl, factor, **spec)[0] >= cost.min() - (
            spec["share"] * (x[1] - x[0]) + 1e-6)
    # the envelope meets phi at each facet's ends (vertices of the hull)
    kinks = np.concatenate([[0.0], -np.diff(a) / np.diff(b), [factor * pwl.adds[-1]]])
    at = least_cost(kinks, pwl, factor, **spec)
    env_at = np.max(a[:, None] + b[:, None] * kinks, axis=0)
    np.testing.assert_allclose(env_at, at, rtol=1e-9, atol=1e-6)
    assert np.isfinite(a).all() and np.isfinite(b).all()


def test_the_envelope_tightens_the_relaxation():
    """The point of the cuts: the LP bound with them is much closer to the integer plan
    (the original model's relaxation is about 1% below it on this instance)."""
    p = random_problem(20, 3, 10, seed=5, switches=0.1, staff=1.0)
    integer = milp.solve(milp.build(p), p, exact(SOLVERS[0])).objective

    def relaxation(envelope: bool) -> float:
        model = milp.build(p, envelope=envelope)
        for var in model.lp.variables():
            var.cat = "Continuous"
        model.lp.solve(exact(SOLVERS[0]))
        return float(model.lp.objective.value())

    loose, tight = relaxation(False), relaxation(True)
    assert loose < tight <= integer * (1 + 1e-7)
    assert (integer - tight) < 0.25 * (integer - loose)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_rounded_relaxation_is_a_plan_within_the_gap(seed):
    """The rounded relaxation (no branch and bound) satisfies every row of the model
    with whole accounts and switches, and its cost is within the gap of the optimum."""
    p = random_problem(30, 3, 12, seed=seed, switches=0.2, staff=1.0)
    model = milp.build(p)
    assert rounding.relax_and_round(model, 1e-3)
    for name, row in model.rows.items():
        size = max(1.0, abs(row.constant), *(abs(a * v.varValue) for v, a in row.items()))
        slack = {-1: -row.value(), 1: row.value(), 0: -abs(row.value())}[row.sense]
        assert slack >= -1e-6 * size, name
    for var in [*model.staff.values(), *model.on.values()]:
        assert var.varValue == round(var.varValue)
    rounded = float(model.lp.objective.value())
    best = milp.optimize(p, exact(SOLVERS[0])).objective
    assert best <= rounded * (1 + 1e-9) and rounded <= best * (1 + 1e-3)


def test_the_diagnosis_does_not_depend_on_the_formulation(monkeypatch):
    """An infeasible plan (a capacity runs out) diagnosed with the original chords and
    with the segments and cuts: the same shortfalls and the same exhausted channels (the
    diagnosis solves its stages tight and lists the channels of the least-cost plan)."""
    from simdomain.planner.cohorts import cohorts
    from simdomain.planner.planning import prepare
    from simdomain.planner.problem import PlanOptions
    from simdomain.scenario import load_scenario

    scenario = load_scenario("scenarios/social_ecommerce.yaml",
                             ["targets.monthly_new_adds=60000"])
    p = prepare(scenario, PlanOptions(), cohort_table=cohorts(scenario, months_after=6))
    build = milp.build
    found = []
    for form in ({"curves": "chords", "envelope": False}, {}):
        monkeypatch.setattr(milp, "build", lambda *a, form=form, **k: build(*a, **form, **k))
        found.append(milp.diagnose(p, milp.make_solver(SOLVERS[0])))
    old, new = found
    assert old.unreachable.keys() == new.unreachable.keys() and old.unreachable
    for key, value in old.unreachable.items():
        assert new.unreachable[key] == pytest.approx(value, rel=1e-4)
    assert ({(e["channel"], e["month"], e["bound"]) for e in old.exhausted}
            == {(e["channel"], e["month"], e["bound"]) for e in new.exhausted})
