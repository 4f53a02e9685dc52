"""``plan``: from a scenario to the cheapest (or best) monthly channel plan, explained."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from simdomain.planner import milp
from simdomain.planner.cohorts import Cohorts
from simdomain.planner.cohorts import cohorts as compute_cohorts
from simdomain.planner.curves import ResponseCurve, measure_curves, scenario_curves
from simdomain.planner.problem import (
    Evaluation,
    PlanOptions,
    Problem,
    build_problem,
    current_spend,
    current_staff,
    evaluate,
)
from simdomain.scenario.model import Scenario

PLAN_COLUMNS = ["channel", "month", "spend_cny", "cost_cny", "adds", "members",
                "staff_accounts", "on"]
TARGET_COLUMNS = ["target", "period", "goal", "planned", "plan", "met", "current",
                  "marginal_cost", "unit"]


@dataclass
class PlanResult:
    """A plan with everything needed to explain, verify and export it.

    Attributes
    ----------
    status
        ``optimal`` or ``infeasible``.
    evaluation
        The plan evaluated with the exact curves (``None`` when infeasible).
    current
        The scenario's own spend plan evaluated the same way.
    prices
        Marginal objective per unit of each target and budget (see
        :func:`simdomain.planner.milp.shadow_prices`).
    diagnosis
        For an infeasible plan: shortfalls, the budget that would do, exhausted capacity.
    """

    scenario: Scenario
    options: PlanOptions
    problem: Problem
    solver: str
    status: str
    solution: milp.Solution | None
    evaluation: Evaluation | None
    current: Evaluation
    binding: list[dict[str, Any]] = field(default_factory=list)
    prices: dict[str, float] = field(default_factory=dict)
    diagnosis: milp.Diagnosis | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    def frame(self) -> pd.DataFrame:
        """The plan, tidy: one row per channel and month (``PLAN_COLUMNS``)."""
        if self.evaluation is None:
            return pd.DataFrame(columns=PLAN_COLUMNS)
        ev, p = self.evaluation, self.problem
        n_ch, n_mo = ev.spend.shape
        return pd.DataFrame({
            "channel": np.repeat(p.channels, n_mo),
            "month": np.tile(p.months, n_ch),
            "spend_cny": ev.spend.ravel(),
            "cost_cny": ev.channel_cost.ravel(),
            "adds": ev.adds.ravel(),
            "members": (ev.adds * p.member_value).ravel(),
            "staff_accounts": ev.staff.ravel().astype(int),
            "on": (ev.spend > 0).ravel(),
        })[PLAN_COLUMNS]

    def targets_frame(self) -> pd.DataFrame:
        """Each target: goal, what the model planned for, the plan's and the current
        plan's value, whether met, and its marginal cost."""
        rows = []
        for t in self.problem.targets:
            value = self.evaluation.values[t.key] if self.evaluation else np.nan
            rows.append({"target": t.name, "period": t.period, "goal": t.goal,
                         "planned": t.planned, "plan": value,
                         "met": bool(self.evaluation and t.met(value)),
                         "current": self.current.values[t.key],
                         "marginal_cost": self.prices.get(t.key, np.nan), "unit": t.unit})
        return pd.DataFrame(rows, columns=TARGET_COLUMNS)

    def curve_report(self) -> list[dict[str, Any]]:
        """Per channel: the curve, its breakpoints and the approximation's error bound."""
        out = []
        for curve, pwl in zip(self.problem.curves, self.problem.pwl):
            top = float(curve.adds(pwl.spend[-1]))
            out.append({
                "channel": curve.channel, "source": curve.source,
                "peak_adds": None if np.isinf(curve.peak_adds) else curve.peak_adds,
                "adds_per_cny_at_zero": curve.adds_per_cny,
                "capacity_spend_cny": curve.capacity_spend,
                "max_spend_cny": float(pwl.spend[-1]), "breakpoints": len(pwl.spend),
                "max_error_adds": pwl.max_error,
                "max_error_share": pwl.max_error / top if top > 0 else 0.0,
                **({"fit": curve.fit} if curve.fit else {}),
            })
        return out

    def diagnostics(self) -> dict[str, Any]:
        """Everything about how the plan was found, as JSON-ready data."""
        p, ev = self.problem, self.evaluation
        out: dict[str, Any] = {
            "scenario": self.scenario.name, "status": self.status,
            "objective": p.objective, "objective_unit": p.objective_unit,
            "solver": self.solver, "timings_s": self.timings,
            "options": {"members_basis": self.options.members_basis,
                        "member_window_months": self.options.member_window_months,
                        "curves": self.options.curves,
                        "staff_headroom": self.options.staff_headroom,
                        "locks": self.options.locks},
            "budget": {"total_cny": p.total_budget, "monthly_cny": p.monthly_budget,
                       "campaign_costs_cny": dict(zip(p.months, p.other_costs.tolist()))},
            "curves": self.curve_report(),
            "current_plan": _summary(self.current, p),
        }
        if ev is not None:
            out["plan"] = _summary(ev, p)
            out["binding"] = self.binding
            out["marginal_costs"] = self.prices
            if p.objective == "min-cost" and not self.current.shortfalls(p):
                out["saving_vs_current_cny"] = self.current.total_cost - ev.total_cost
        if self.diagnosis is not None:
            d = self.diagnosis
            out["diagnosis"] = {"within_budget_shortfall": d.within_budget,
                                "budget_needed_cny": d.budget_needed,
                                "unreachable_shortfall": d.unreachable,
                                "exhausted": d.exhausted}
        return out


def _summary(ev: Evaluation, p: Problem) -> dict[str, Any]:
    return {"total_cost_cny": ev.total_cost, "objective": ev.objective,
            "adds": float(ev.adds.sum()), "shortfalls": ev.shortfalls(p)}


def prepare(scenario: Scenario, options: PlanOptions, *, seed: int = 0,
            curves: dict[str, ResponseCurve] | None = None,
            cohort_table: Cohorts | None = None) -> Problem:
    """The planning problem of a scenario: curves (given, from the scenario, or measured
    by simulation with ``seed``), outcomes per add, then the arrays."""
    if curves is None:
        curves = (measure_curves(scenario, seed=seed) if options.curves == "simulated"
                  else scenario_curves(scenario))
    if cohort_table is None:
        cohort_table = compute_cohorts(scenario, months_after=options.member_window_months)
    return build_problem(scenario, options, curves, cohort_table)


def plan(scenario: Scenario, options: PlanOptions | None = None, *, solver: str = "cbc",
         seed: int = 0, problem: Problem | None = None) -> PlanResult:
    """The best monthly channel plan for ``scenario``, explained.

    Parameters
    ----------
    scenario
        Channels, targets and budget (its current spend plan is the comparison).
    options
        Objective, budgets, locks, curves and modelling choices.
    solver
        ``cbc`` (default) or ``highs``; the solver stops within a relative gap of 1e-3,
        and the scenario's own plan is returned instead if it is feasible and better.
    seed
        Seed of the simulations that measure curves (``curves="simulated"``).
    problem
        A prepared problem (see :func:`prepare`), to skip preparing it again.
    """
    options = PlanOptions() if options is None else options
    started = time.perf_counter()
    if problem is None:
        problem = prepare(scenario, options, seed=seed)
    prepared = time.perf_counter() - started
    backend = milp.make_solver(solver)
    model = milp.build(problem)
    solution = milp.solve(model, problem, backend)
    current = evaluate(problem, current_spend(scenario), current_staff(scenario))
    timings = {"prepare": prepared, "build": solution.build_seconds,
               "solve": solution.solve_seconds}
    result = PlanResult(scenario, options, problem, backend.name, "optimal", solution, None,
                        current, timings=timings)
    if not solution.optimal:
        result.status, result.solution = "infeasible", None
        result.diagnosis = milp.diagnose(problem, backend)
        return result
    result.evaluation = evaluate(problem, solution.spend, solution.staff)
    if _feasible(problem, current) and _better(problem, current, result.evaluation):
        result.evaluation = current  # within the gap, the scenario's own plan was the best
    result.binding = milp.binding(model, problem)
    result.prices = milp.shadow_prices(problem, solution, backend)
    return result


def with_goals(options: PlanOptions, goals: dict[str, float]) -> PlanOptions:
    """``options`` asking the model for ``goals`` (by target key) instead."""
    return replace(options, planned_goals={**options.planned_goals, **goals})


def _better(problem: Problem, a: Evaluation, b: Evaluation) -> bool:
    return a.objective < b.objective if problem.objective == "min-cost" else a.objective > b.objective


def _feasible(problem: Problem, ev: Evaluation, rtol: float = 1e-9) -> bool:
    """Whether a plan meets the model's planned goals, budgets, bounds and locks."""
    if any(not t.met(ev.values[t.key], t.planned, rtol) for t in problem.targets):
        return False
    total, monthly = problem.total_budget, problem.monthly_budget
    if total is not None and ev.total_cost > total * (1 + rtol):
        return False
    if monthly is not None and ev.month_cost.max() > monthly * (1 + rtol):
        return False
    on = ev.spend > 0
    locked = ~np.isnan(problem.locks)
    return bool(np.all(ev.spend <= problem.upper[:, None] * (1 + rtol))
                and np.all(~on | (ev.spend >= problem.min_spend[:, None] * (1 - rtol)))
                and np.allclose(ev.spend[locked], problem.locks[locked]))
