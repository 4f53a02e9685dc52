"""The planning model is optimal: against brute force, against scipy's HiGHS on random
LPs, on the worked example of the domain, with locks; its shadow prices are the
finite-difference marginal costs; infeasibility is diagnosed; and no plan is worse than
the scenario's own."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from simdomain.planner import milp
from simdomain.planner.cohorts import cohorts
from simdomain.planner.curves import ResponseCurve, approximate
from simdomain.planner.planning import plan, prepare
from simdomain.planner.problem import (
    PlanOptions,
    Problem,
    Target,
    current_spend,
    current_staff,
    evaluate,
)
from simdomain.planner.synthetic import random_problem
from simdomain.scenario import load_scenario, validate_scenario

SOLVERS = milp.available_solvers()
SCENARIOS = sorted(Path("scenarios").glob("*.yaml"))
STABLE = ("package_card", "store_poster_qr", "marketplace_service")


def exact(name: str):
    return milp.make_solver(name, gap=1e-9)


def tiny(seed: int) -> Problem:
    """Two channels, one month: a fixed cost and minimum spend on one, staff on the other."""
    rng = np.random.default_rng(seed)
    curves = [ResponseCurve(f"c{c}", rng.uniform(800, 3000), rng.uniform(0.05, 0.3),
                            rng.uniform(5_000, 20_000)) for c in range(2)]
    pwl = [approximate(c, c.capacity_spend, points=5) for c in curves]
    factor = np.array([[1.0], [rng.uniform(0.7, 1.0)]])
    reach = np.array([p.adds[-1] for p in pwl]) * factor[:, 0]
    rate = rng.uniform(0.2, 0.6, size=(2, 1))
    goal = rng.uniform(0.3, 0.7) * reach.sum()
    targets = [Target("monthly_new_adds", "2030-01", goal, goal, np.ones((2, 1)), 0.0, "adds"),
               Target("monthly_new_members", "2030-01", 0.8 * goal * rate.mean(),
                      0.8 * goal * rate.mean(), rate, 0.0, "members")]
    return Problem(
        channels=["c0", "c1"], months=["2030-01"], spend_share=np.ones(1), curves=curves,
        pwl=pwl, upper_reason=["contact capacity"] * 2, adds_factor=factor,
        min_spend=np.array([rng.uniform(0.1, 0.4) * pwl[0].spend[-1], 0.0]),
        fixed_cost=np.array([rng.uniform(200, 2000), 0.0]),
        staff_capacity=np.array([[np.nan], [rng.uniform(200, 600)]]),
        staff_cost=np.array([0.0, rng.uniform(100, 800)]), locks=np.full((2, 1), np.nan),
        targets=targets, total_budget=None, monthly_budget=None, other_costs=np.zeros(1),
        objective="min-cost", objective_coef=np.zeros((2, 1)), objective_constant=0.0,
        objective_unit="cny", member_value=rate)


def brute_force(p: Problem, steps: int = 800) -> tuple[float, float]:
    """The cheapest plan on a spend grid (every breakpoint and minimum spend included),
    with every staff count; the best adds for given spend and staff are the smaller of
    the curve and the capacity. Returns the cost and the grid step's cost bound."""
    options, step = [], 0.0
    for c in range(2):
        upper = p.pwl[c].spend[-1]
        grid = np.unique(np.concatenate([np.linspace(0, upper, steps + 1), p.pwl[c].spend,
                                         [p.min_spend[c]]]))
        grid = grid[(grid == 0) | (grid >= p.min_spend[c])]
        step = max(step, upper / steps)
        curve = p.adds_factor[c, 0] * p.pwl[c](grid)
        if np.isnan(p.staff_capacity[c, 0]):
            staff, adds = np.zeros_like(grid), curve
        else:
            counts = np.arange(int(curve.max() / p.staff_capacity[c, 0]) + 2)
            grid, staff = (a.ravel() for a in np.meshgrid(grid, counts))
            adds = np.minimum(p.adds_factor[c, 0] * p.pwl[c](grid), staff * p.staff_capacity[c, 0])
        cost = grid + p.fixed_cost[c] * (grid > 0) + p.staff_cost[c] * staff
        options.append((cost, adds))
    (cost0, adds0), (cost1, adds1) = options
    cost = cost0[:, None] + cost1[None, :]
    ok = np.ones_like(cost, dtype=bool)
    for t in p.targets:
        value = t.coef[0, 0] * adds0[:, None] + t.coef[1, 0] * adds1[None, :]
        ok &= value >= t.planned - 1e-9
    return float(cost[ok].min()), 2 * step


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("seed", range(6))
def test_small_instances_match_brute_force(solver, seed):
    p = tiny(seed)
    solution = milp.optimize(p, exact(solver))
    best, resolution = brute_force(p)
    assert solution.optimal
    assert solution.objective <= best + 1e-6 * best  # nothing on the grid beats the model
    assert best <= solution.objective + resolution  # and the grid gets within one step


def scipy_lp(p: Problem) -> float:
    """The same plan as an LP in the convex-combination form, solved by scipy's HiGHS."""
    n_ch, n_mo = len(p.channels), len(p.months)
    n_bp = len(p.pwl[0].spend)
    n_lam = n_ch * n_mo * n_bp
    lam = lambda c, m, j: (c * n_mo + m) * n_bp + j
    y = lambda c, m: n_lam + c * n_mo + m
    size = n_lam + n_ch * n_mo
    spend_cost = np.zeros(size)
    a_ub, b_ub, a_eq, b_eq = [], [], [], []
    for c, m in itertools.product(range(n_ch), range(n_mo)):
        row, eq = np.zeros(size), np.zeros(size)
        row[y(c, m)] = 1.0
        for j in range(n_bp):
            row[lam(c, m, j)] = -p.adds_factor[c, m] * p.pwl[c].adds[j]
            eq[lam(c, m, j)] = 1.0
            spend_cost[lam(c, m, j)] = p.spend_share[m] * p.pwl[c].spend[j]
        a_ub.append(row), b_ub.append(0.0), a_eq.append(eq), b_eq.append(1.0)
    for t in p.targets:
        row = np.zeros(size)
        for c, m in itertools.product(range(n_ch), range(n_mo)):
            row[y(c, m)] = -t.coef[c, m]
        a_ub.append(row), b_ub.append(t.constant - t.planned)
    if p.total_budget is not None:
        a_ub.append(spend_cost), b_ub.append(p.total_budget)
    objective = spend_cost if p.objective == "min-cost" else np.concatenate(
        [np.zeros(n_lam), -p.objective_coef.ravel()])
    result = linprog(objective, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.array(a_eq),
                     b_eq=b_eq, bounds=(0, None), method="highs")
    assert result.status == 0
    return result.fun if p.objective == "min-cost" else -result.fun


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("objective", ["min-cost", "max-adds"])
def test_random_lps_match_scipy_highs(solver, seed, objective):
    budget = None if objective == "min-cost" else 2e5 * (seed + 1)
    p = random_problem(5, 3, 6, seed=seed, switches=0, staff=0, objective=objective,
                       budget=budget, demand=0.3)
    if objective == "max-adds":
        p = dataclasses.replace(p, targets=[])
    solution = milp.optimize(p, exact(solver))
    assert solution.optimal
    assert solution.objective == pytest.approx(scipy_lp(p), rel=1e-7)


def with_goal(p: Problem, key: str, goal: float) -> Problem:
    return dataclasses.replace(p, targets=[dataclasses.replace(t, planned=goal) if t.key == key
                                           else t for t in p.targets])


@pytest.mark.parametrize("solver", SOLVERS)
def test_shadow_prices_are_marginal_costs(solver):
    p = random_problem(5, 2, 8, seed=4, switches=0, staff=0, demand=0.4)
    base = milp.optimize(p, exact(solver))
    prices = milp.shadow_prices(p, base, exact(solver))
    checked = 0
    for t in p.targets:
        delta = 1e-4 * t.planned
        up = milp.optimize(with_goal(p, t.key, t.planned + delta), exact(solver))
        assert prices[t.key] == pytest.approx((up.objective - base.objective) / delta,
                                              rel=2e-3, abs=1e-6)
        checked += prices[t.key] > 0
    assert checked >= 2  # some targets bind


@pytest.mark.parametrize("solver", SOLVERS)
def test_budget_price_is_the_marginal_gain(solver):
    p = random_problem(5, 2, 8, seed=2, switches=0, staff=0, objective="max-adds", budget=4e5)
    p = dataclasses.replace(p, targets=[])
    base = milp.optimize(p, exact(solver))
    more = milp.optimize(dataclasses.replace(p, total_budget=4e5 + 100), exact(solver))
    prices = milp.shadow_prices(p, base, exact(solver))
    assert prices["budget_total"] == pytest.approx((more.objective - base.objective) / 100,
                                                   rel=2e-3)


@pytest.fixture(scope="module")
def social():
    scenario = load_scenario("scenarios/social_ecommerce.yaml")
    return scenario, cohorts(scenario, months_after=6)


def run(scenario, table, **options):
    opts = PlanOptions(**options)
    return plan(scenario, opts, problem=prepare(scenario, opts, cohort_table=table))


def test_worked_example(social):
    """domain.md: 10,000 members a month at a 40% join rate needs 25,000 adds; about
    7,000 come from the stable low-cost channels, the paid channels cover the rest."""
    scenario, table = social
    scenario = load_scenario("scenarios/social_ecommerce.yaml",
                             ["targets.monthly_new_adds=20000"])
    result = run(scenario, table, members_per_add={c: 0.4 for c in scenario.channels})
    assert result.optimal
    frame = result.frame()
    campaign_months = {"2027-06", "2027-10", "2027-11"}  # the stable channels' adds rise
    for month, group in frame.groupby("month"):
        adds, members = group["adds"].sum(), group["members"].sum()
        stable = group.loc[group["channel"].isin(STABLE), "adds"].sum()
        assert members >= 10_000 - 1e-6 and adds >= 25_000 - 1e-6
        if month not in campaign_months:
            assert adds == pytest.approx(25_000, rel=2e-3)
            assert stable == pytest.approx(7_000, rel=0.03)  # stable channels at capacity
            assert adds - stable == pytest.approx(18_000, rel=0.02)
    members = result.targets_frame().query("target == 'monthly_new_members'")
    assert (members["marginal_cost"] > 0).all()  # the members target is what binds
    assert not any(b["constraint"].startswith("monthly_new_adds") for b in result.binding)


def test_locked_channel(social):
    scenario, table = social
    free = run(scenario, table)
    locked = run(scenario, table, locks={"sms_short_link": 50_000.0})
    assert locked.optimal
    sms = locked.frame().query("channel == 'sms_short_link'")
    assert np.allclose(sms["spend_cny"], 50_000.0)
    assert locked.evaluation.total_cost >= free.evaluation.total_cost * (1 - 1e-4)
    assert not locked.evaluation.shortfalls(locked.problem)
    at_optimum = free.frame().query("channel == 'ai_call_sms'")["spend_cny"].tolist()
    same = run(scenario, table, locks={"ai_call_sms": at_optimum})
    assert same.evaluation.total_cost == pytest.approx(free.evaluation.total_cost, rel=1e-4)


def test_infeasible_budget_is_diagnosed(social):
    scenario, table = social
    free = run(scenario, table)
    tight = run(scenario, table, total_budget_cny=5_000_000.0)
    assert tight.status == "infeasible" and tight.evaluation is None
    d = tight.diagnosis
    names = {key.split("__")[0] for key in d.within_budget}
    assert names == {"monthly_new_adds", "monthly_new_members"}
    assert not d.unreachable
    assert d.budget_needed["budget_total"] == pytest.approx(free.evaluation.total_cost, rel=1e-3)


def test_infeasible_capacity_is_diagnosed(social):
    scenario, table = social
    scenario = load_scenario("scenarios/social_ecommerce.yaml", ["targets.monthly_new_adds=60000"])
    result = run(scenario, table)
    d = result.diagnosis
    assert result.status == "infeasible" and d.budget_needed is None
    ceiling = sum(c.peak_adds if c.capacity_spend is None else float(c.adds(c.capacity_spend))
                  for c in result.problem.curves)  # every channel at capacity or saturated
    assert d.unreachable["monthly_new_adds__2027-01"] == pytest.approx(60_000 - ceiling, rel=0.01)
    assert d.unreachable["monthly_new_adds__2027-06"] < d.unreachable["monthly_new_adds__2027-05"]
    bounds = {(e["channel"], e["bound"]) for e in d.exhausted}
    assert {("ai_call_sms", "contact capacity"), ("paid_feeds", "saturation")} <= bounds


def _relaxed_to_current(scenario, options: PlanOptions):
    """Goals no higher than what the scenario's own plan reaches (so it is feasible)."""
    p = prepare(scenario, options)
    current = evaluate(p, current_spend(scenario), current_staff(scenario))
    goals = {t.key: (max(t.goal, current.values[t.key]) if t.ceiling
                     else min(t.goal, current.values[t.key])) for t in p.targets}
    return dataclasses.replace(options, planned_goals=goals), current


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_never_worse_than_the_current_plan(path):
    raw = load_scenario(path).model_dump(mode="json")
    raw["budget"] = {}
    scenario = validate_scenario(raw, str(path))
    options, current = _relaxed_to_current(scenario, PlanOptions())
    cheapest = plan(scenario, options)
    assert cheapest.optimal
    assert cheapest.evaluation.total_cost <= current.total_cost * (1 + 1e-6)
    budget = PlanOptions(objective="max-members", total_budget_cny=current.total_cost,
                         monthly_budget_cny=float(current.month_cost.max()))
    options, current = _relaxed_to_current(scenario, budget)
    most = plan(scenario, options)
    assert most.optimal
    assert most.evaluation.objective >= current.objective * (1 - 1e-6)
