"""The channel plan as a mixed-integer program (PuLP), and what its solution says.

Per channel ``c`` and month ``m``: planned spend ``x`` (continuous), realized adds
``y`` (continuous), an on/off switch ``on`` (binary, only for channels with a fixed
cost or a minimum spend) and staff accounts ``n`` (integer, only for staffed
channels). Constraint families, each row named ``family__channel__month``:

- ``segments__c__m`` and ``curve__c__m``: ``x = sum_j d_j`` and
  ``y <= f_cm (Y_0 + sum_j s_j d_j)`` with ``0 <= d_j <= w_j`` over the segments of the
  concave piecewise-linear curve (no binaries needed: the slopes fall, so the segments
  fill in order); for a switched channel ``d_j <= w_j on`` (``segment__c__m__j``). The
  original form, a row ``curve__c__m__j`` per chord, is kept (``curves="chords"``);
- ``envelope__c__m__k``: the channel-month's cost is at least each facet of the convex
  envelope of its least cost with whole staff accounts and its switch (valid cuts, see
  :mod:`simdomain.planner.envelope`);
- ``max_spend__c__m`` / ``min_spend__c__m``: ``L_c on <= x <= U_c on``;
- ``lock__c__m``: ``x`` fixed;
- ``staff__c__m``: ``y + F_cm <= capacity_cm n`` (the free adds ``F`` take capacity first);
- one row per target (``monthly_new_members__2027-03``...), linear in ``y``; a ceiling on
  the deletion rate is linearized as ``deletions <= rate (pool at start + adds)``;
- ``budget_total`` and ``budget__m``: spend (the charged share of ``x``), fixed costs,
  staff and campaign costs within the budget.

:func:`solve` rounds the linear relaxation first and branches only if that plan is not
within the gap (see :mod:`simdomain.planner.rounding`). Explanations: binding rows of
the solution, and shadow prices from the LP with the
switches fixed at their optimal values and staff accounts taken as divisible (so a
target's marginal cost includes its pro-rata share of an account). Infeasibility is
diagnosed by elastic re-solves (see :func:`diagnose`).
"""

from __future__ import annotations

import copy
import math
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pulp

from simdomain.planner.envelope import cost_envelope
from simdomain.planner.problem import Problem
from simdomain.planner.rounding import relax_and_round, solver_gap, warm

SOLVERS = ("cbc", "highs")
CURVES = ("segments", "chords")
_TOL = 1e-6
DIAGNOSIS_GAP = 1e-6
"""Relative gap of the diagnosis's stages: each holds the one before at its optimum, so
a loose gap there would let the answer depend on which near-optimal plan came back."""


def available_solvers() -> list[str]:
    """Solvers PuLP can run here, by our names."""
    found = set(pulp.listSolvers(onlyAvailable=True))
    names = [name for name, pulp_names in (("cbc", {"COIN_CMD", "PULP_CBC_CMD"}),
                                           ("highs", {"HiGHS"})) if pulp_names & found]
    return names


def make_solver(name: str = "cbc", *, gap: float = 1e-3,
                time_limit: float | None = 120.0) -> pulp.LpSolver:
    """``cbc`` (bundled with PuLP, the default) or ``highs`` (HiGHS, when highspy is
    installed).

    A plan is optimal once its objective is proved within ``gap`` (relative) of the best
    possible; past ``time_limit`` seconds the best plan found is returned.
    """
    if name not in SOLVERS:
        raise ValueError(f"solver must be one of {list(SOLVERS)}, got {name!r}")
    if name not in available_solvers():
        raise ValueError(f"solver {name!r} is not installed here; available: "
                         f"{available_solvers()}")
    if name == "highs":
        return pulp.HiGHS(msg=False, timeLimit=time_limit, gapRel=gap)
    cbc = pulp.COIN_CMD if "COIN_CMD" in pulp.listSolvers(onlyAvailable=True) else pulp.PULP_CBC_CMD
    with warnings.catch_warnings():  # PuLP 3 deprecates its bundled CBC for COIN_CMD
        warnings.simplefilter("ignore", DeprecationWarning)
        return cbc(msg=False, timeLimit=time_limit, gapRel=gap)


@dataclass
class Model:
    """A built PuLP model with its variables and named rows (readable names)."""

    lp: pulp.LpProblem
    spend: dict[tuple[int, int], pulp.LpVariable]
    adds: dict[tuple[int, int], pulp.LpVariable]
    on: dict[tuple[int, int], pulp.LpVariable]
    staff: dict[tuple[int, int], pulp.LpVariable]
    segments: dict[tuple[int, int], list[pulp.LpVariable]] = field(default_factory=dict)
    rows: dict[str, pulp.LpConstraint] = field(default_factory=dict)
    shortfall: dict[str, pulp.LpVariable] = field(default_factory=dict)
    overrun: dict[str, pulp.LpVariable] = field(default_factory=dict)
    cost: pulp.LpAffineExpression | None = None
    build_seconds: float = 0.0

    def add(self, name: str, expression: pulp.LpAffineExpression, sense: int,
            rhs: float) -> pulp.LpConstraint:
        row = pulp.LpConstraint(expression, sense=sense, rhs=rhs,
                                name=re.sub(r"[^A-Za-z0-9_]", "_", name))
        self.lp.addConstraint(row)
        self.rows[name] = row
        return row


@dataclass(frozen=True)
class Solution:
    """A solved model: status and the values of the decisions, as ``(C, M)`` arrays."""

    status: str
    objective: float
    spend: np.ndarray
    adds: np.ndarray
    on: np.ndarray
    staff: np.ndarray
    build_seconds: float
    solve_seconds: float

    @property
    def optimal(self) -> bool:
        return self.status == "Optimal"


def build(problem: Problem, *, switches: np.ndarray | None = None, integer_staff: bool = True,
          elastic_targets: bool = False, budgets: str = "hard", curves: str = "segments",
          envelope: bool = True) -> Model:
    """Build the model of ``problem``.

    Parameters
    ----------
    switches
        Fix the on/off decisions (``(C, M)`` of 0/1) instead of optimizing them.
    integer_staff
        Staff accounts are integers (else divisible, for shadow prices).
    elastic_targets
        Each target row gets a shortfall variable (``shortfall[key]``), penalized by the
        caller's objective.
    budgets
        ``hard``, ``elastic`` (an overrun variable per budget row) or ``none``.
    curves
        ``segments`` (one variable per segment of each curve, a row per curve) or
        ``chords`` (a row per chord); the same feasible plans, the first solves faster.
    envelope
        Add the ``envelope__c__m__k`` rows: each channel-month's cost is at least the
        convex envelope of its least cost with whole staff accounts and the switch
        (see :mod:`simdomain.planner.envelope`). They remove no plan and bring the
        relaxation close to the integer plan; only with integer staff.
    """
    if curves not in CURVES:
        raise ValueError(f"curves must be one of {list(CURVES)}, got {curves!r}")
    if curves == "chords" and problem.lag.any():
        raise ValueError("carry-over needs curves='segments' (the chords see one month only)")
    started = time.perf_counter()
    n_ch, n_mo = len(problem.channels), len(problem.months)
    sense = pulp.LpMinimize if problem.objective == "min-cost" else pulp.LpMaximize
    lp = pulp.LpProblem("channel_plan", sense)
    upper = problem.upper
    spend, adds, on, staff = {}, {}, {}, {}
    for c in range(n_ch):
        for m in range(n_mo):
            spend[c, m] = _variable(lp, f"x_{c}_{m}", 0, upper[c])
            adds[c, m] = _variable(lp, f"y_{c}_{m}", 0)
            if problem.switched[c] and switches is None:
                on[c, m] = _variable(lp, f"on_{c}_{m}", 0, 1, pulp.LpBinary)
            if not math.isnan(problem.staff_capacity[c, m]):
                staff[c, m] = _variable(lp, f"n_{c}_{m}", 0, None,
                                        pulp.LpInteger if integer_staff else pulp.LpContinuous)
    model = Model(lp, spend, adds, on, staff)

    def switch(c: int, m: int) -> pulp.LpVariable | float:
        if (c, m) in on:
            return on[c, m]
        return float(switches[c, m]) if switches is not None and problem.switched[c] else 1.0

    month_cost = []
    for m in range(n_mo):
        terms = []
        for c in range(n_ch):
            terms.append((spend[c, m], problem.spend_share[m]))
            if (c, m) in on:
                terms.append((on[c, m], problem.fixed_cost[c]))
            if (c, m) in staff:
                terms.append((staff[c, m], problem.staff_cost[c]))
        fixed = sum(problem.fixed_cost[c] * switch(c, m) for c in range(n_ch)
                    if (c, m) not in on and problem.switched[c])
        month_cost.append(pulp.LpAffineExpression(terms, constant=fixed + problem.other_costs[m]))
    model.cost = pulp.lpSum(month_cost)
    _channel_rows(problem, model, switch, curves)
    if envelope and integer_staff:
        _envelope_rows(problem, model, switch)
    _target_rows(problem, model, elastic_targets)
    _budget_rows(problem, model, month_cost, budgets)
    if problem.objective == "min-cost":
        lp.setObjective(model.cost)
    else:
        lp.setObjective(pulp.LpAffineExpression(
            [(adds[c, m], problem.objective_coef[c, m]) for c in range(n_ch) for m in range(n_mo)
             if problem.objective_coef[c, m]], constant=problem.objective_constant))
    model.build_seconds = time.perf_counter() - started
    return model


def _variable(lp: pulp.LpProblem, name: str, low: float | None, up: float | None = None,
              cat: str = pulp.LpContinuous) -> pulp.LpVariable:
    """A variable of ``lp`` (PuLP 3 attaches variables to their problem)."""
    if hasattr(lp, "add_variable"):
        return lp.add_variable(name, low, up, cat=cat)
    return pulp.LpVariable(name, low, up, cat=cat)  # pragma: no cover - PuLP 2


def _channel_rows(problem: Problem, model: Model,
                  switch: Callable[[int, int], pulp.LpVariable | float], curves: str) -> None:
    spend, adds = model.spend, model.adds
    upper = problem.upper
    for c, name in enumerate(problem.channels):
        pwl = problem.pwl[c]
        for m, month in enumerate(problem.months):
            where = f"{name}__{month}"
            f = problem.adds_factor[c, m]
            x, y = spend[c, m], adds[c, m]
            on = switch(c, m)
            if len(pwl.spend) < 2 or f == 0:
                model.add(f"curve__{where}__0", pulp.LpAffineExpression([(y, 1.0)]),
                          pulp.LpConstraintLE, 0.0)
            elif curves == "segments":
                _segment_rows(model, c, m, where, f * pwl.adds[0], f * pwl.slopes,
                              np.diff(pwl.spend), on, float(problem.lag[c]),
                              float(problem.carried_in[c]))
            else:
                _chord_rows(model, c, m, where, f * pwl.adds[:-1], f * pwl.slopes,
                            pwl.spend[:-1], on)
            lock = problem.locks[c, m]
            if not math.isnan(lock):
                model.add(f"lock__{where}", pulp.LpAffineExpression([(x, 1.0)]),
                          pulp.LpConstraintEQ, lock)
                if isinstance(on, pulp.LpVariable):
                    on.lowBound = on.upBound = 1.0 if lock > 0 else 0.0
            elif problem.switched[c]:
                terms = [(x, 1.0)]
                if isinstance(on, pulp.LpVariable):
                    model.add(f"max_spend__{where}",
                              pulp.LpAffineExpression([*terms, (on, -upper[c])]),
                              pulp.LpConstraintLE, 0.0)
                    if problem.min_spend[c] > 0:
                        model.add(f"min_spend__{where}",
                                  pulp.LpAffineExpression([*terms, (on, -problem.min_spend[c])]),
                                  pulp.LpConstraintGE, 0.0)
                else:
                    x.upBound = upper[c] * on
                    x.lowBound = problem.min_spend[c] * on
            if (c, m) in model.staff:
                model.add(f"staff__{where}",
                          pulp.LpAffineExpression([(y, 1.0), (model.staff[c, m],
                                                               -problem.staff_capacity[c, m])]),
                          pulp.LpConstraintLE, -float(problem.free_adds[c, m]))


def _segment_rows(model: Model, c: int, m: int, where: str, start: float, slopes: np.ndarray,
                  widths: np.ndarray, on: pulp.LpVariable | float, lag: float = 0.0,
                  carried: float = 0.0) -> None:
    """The curve by its segments: ``x = sum d_j``, ``y <= Y_0 + sum s_j d_j`` with
    ``0 <= d_j <= w_j`` (``<= w_j on`` for a switched channel, the perspective).

    The slopes fall (the curve is concave), so the most adds for a spend fill the
    segments in order: ``y``'s bound is the curve, as with the chords, in one row.
    With carry-over the segments split the effective spend, ``sum_j d_j = e_m = x_m +
    lag e_(m-1)``, and a month that spends nothing still has adds (no perspective).
    """
    x, y = model.spend[c, m], model.adds[c, m]
    switched = isinstance(on, pulp.LpVariable) and lag == 0
    pieces = [_variable(model.lp, f"d_{c}_{m}_{j}", 0, None if switched else float(w))
              for j, w in enumerate(widths)]
    model.segments[c, m] = pieces
    terms = [(x, 1.0), *((d, -1.0) for d in pieces)]
    rhs = 0.0
    if lag > 0:  # x_m = e_m - lag e_(m-1)
        if m == 0:
            rhs = -lag * carried
        else:
            terms.extend((d, lag) for d in model.segments[c, m - 1])
    model.add(f"segments__{where}", pulp.LpAffineExpression(terms), pulp.LpConstraintEQ, rhs)
    terms = [(y, 1.0), *((d, -float(s)) for d, s in zip(pieces, slopes) if s)]
    rhs = float(start) if not switched else 0.0
    if switched and start:
        terms.append((on, -float(start)))
    model.add(f"curve__{where}", pulp.LpAffineExpression(terms), pulp.LpConstraintLE, rhs)
    if switched:
        for j, (d, w) in enumerate(zip(pieces, widths)):
            model.add(f"segment__{where}__{j}", pulp.LpAffineExpression([(d, 1.0), (on, -float(w))]),
                      pulp.LpConstraintLE, 0.0)


def _chord_rows(model: Model, c: int, m: int, where: str, ys: np.ndarray, slopes: np.ndarray,
                xs: np.ndarray, on: pulp.LpVariable | float) -> None:
    """The curve by its chords: ``y <= Y_j + s_j (x - X_j)`` for every chord ``j`` (the
    chords' minimum *is* the curve); ``(Y_j - s_j X_j) on`` for a switched channel."""
    x, y = model.spend[c, m], model.adds[c, m]
    for j, (s, x0, y0) in enumerate(zip(slopes, xs, ys)):
        terms, rhs = [(y, 1.0), (x, -float(s))], float(y0 - s * x0)
        if isinstance(on, pulp.LpVariable):  # perspective: no adds when off
            terms, rhs = [*terms, (on, -rhs)], 0.0
        model.add(f"curve__{where}__{j}", pulp.LpAffineExpression(terms),
                  pulp.LpConstraintLE, rhs)


def _envelope_rows(problem: Problem, model: Model,
                   switch: Callable[[int, int], pulp.LpVariable | float]) -> None:
    for c, name in enumerate(problem.channels):
        if problem.lag[c] > 0:  # adds come from earlier months' spend too: no such bound
            continue
        for m, month in enumerate(problem.months):
            on, n = switch(c, m), model.staff.get((c, m))
            switched = bool(problem.switched[c])
            intercepts, slopes = cost_envelope(
                problem.pwl[c], float(problem.adds_factor[c, m]),
                share=float(problem.spend_share[m]),
                min_spend=float(problem.min_spend[c]) if switched else 0.0,
                fixed_cost=float(problem.fixed_cost[c]) if switched else 0.0,
                capacity=float(problem.staff_capacity[c, m]),
                staff_cost=float(problem.staff_cost[c]))
            cost = [(model.spend[c, m], float(problem.spend_share[m]))]
            constant = 0.0
            if isinstance(on, pulp.LpVariable):
                cost.append((on, float(problem.fixed_cost[c])))
            elif switched:
                constant = float(problem.fixed_cost[c]) * on
            if n is not None:
                cost.append((n, float(problem.staff_cost[c])))
            for k, (a, b) in enumerate(zip(intercepts, slopes)):
                # a hair below the facet: the curve's inverse is recomputed here
                model.add(f"envelope__{name}__{month}__{k}",
                          pulp.LpAffineExpression([*cost, (model.adds[c, m], -float(b))]),
                          pulp.LpConstraintGE, float(a) - constant - 1e-9 * abs(a) - 1e-6)


def _target_rows(problem: Problem, model: Model, elastic: bool) -> None:
    adds = model.adds
    for t in problem.targets:
        coef = t.coef
        rhs = t.planned - t.constant
        sense = pulp.LpConstraintGE
        if t.ceiling:
            den_coef, den_constant = t.denominator
            coef = coef - t.planned * den_coef
            rhs = t.planned * den_constant - t.constant
            sense = pulp.LpConstraintLE
        nonzero = np.argwhere(coef != 0)
        terms = [(adds[c, m], float(coef[c, m])) for c, m in nonzero]
        if elastic:
            slack = _variable(model.lp, f"short_{len(model.shortfall)}", 0)
            model.shortfall[t.key] = slack
            terms.append((slack, -1.0 if t.ceiling else 1.0))
        model.add(t.key, pulp.LpAffineExpression(terms), sense, rhs)


def _budget_rows(problem: Problem, model: Model, month_cost: list[pulp.LpAffineExpression],
                 budgets: str) -> None:
    if budgets == "none":
        return
    rows = []
    if problem.total_budget is not None:
        rows.append(("budget_total", pulp.lpSum(month_cost), problem.total_budget))
    if problem.monthly_budget is not None:
        rows.extend((f"budget__{month}", month_cost[m], problem.monthly_budget)
                    for m, month in enumerate(problem.months))
    for name, cost, limit in rows:
        expression = cost.copy()
        if budgets == "elastic":
            overrun = _variable(model.lp, f"over_{len(model.overrun)}", 0)
            model.overrun[name] = overrun
            expression.addterm(overrun, -1.0)
        model.add(name, expression, pulp.LpConstraintLE, limit)


def solve(model: Model, problem: Problem, solver: pulp.LpSolver) -> Solution:
    """Solve ``model`` and read the decisions back as arrays.

    The relaxation comes first: rounded up, it is the plan if it is within the
    solver's gap, else the branch and bound starts from it (see
    :mod:`simdomain.planner.rounding`).
    """
    started = time.perf_counter()
    if not relax_and_round(model, solver_gap(solver)):
        model.lp.solve(warm(solver) if model.on or model.staff else solver)
    seconds = time.perf_counter() - started
    status = pulp.LpStatus[model.lp.status]
    if status == "Optimal" and model.lp.sol_status not in (
            pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        status = "Infeasible"
    shape = (len(problem.channels), len(problem.months))

    def read(variables: dict[tuple[int, int], pulp.LpVariable], default: float) -> np.ndarray:
        out = np.full(shape, default)
        for key, var in variables.items():
            out[key] = var.varValue if var.varValue is not None else np.nan
        return out

    spend = read(model.spend, 0.0)
    on = read(model.on, np.nan)
    on = np.where(np.isnan(on), spend > _TOL, on)
    return Solution(
        status=status, objective=float(pulp.value(model.lp.objective) or 0.0),
        spend=np.maximum(spend, 0.0), adds=np.maximum(read(model.adds, 0.0), 0.0),
        on=np.round(on), staff=np.round(read(model.staff, 0.0)),
        build_seconds=model.build_seconds, solve_seconds=seconds)


def optimize(problem: Problem, solver: pulp.LpSolver) -> Solution:
    """Build and solve the planning model."""
    return solve(build(problem), problem, solver)


def binding(model: Model, problem: Problem) -> list[dict[str, object]]:
    """Rows of the solved model that hold with equality (or a variable at its bound)."""
    out = []
    for name, row in model.rows.items():
        if name.startswith("curve__"):
            continue
        value = row.value()
        scale = max(1.0, abs(row.constant))
        if value is not None and abs(value) <= 1e-6 * scale and row.sense != pulp.LpConstraintEQ:
            out.append({"constraint": name, "family": name.split("__")[0]})
    for (c, m), var in model.spend.items():
        at_cap = var.varValue is not None and var.varValue >= problem.upper[c] * (1 - 1e-7) > 0
        if at_cap and f"max_spend__{problem.channels[c]}__{problem.months[m]}" not in model.rows:
            out.append({"constraint": f"max_spend__{problem.channels[c]}__{problem.months[m]}",
                        "family": "max_spend"})
    return out


def shadow_prices(problem: Problem, solution: Solution,
                  solver: pulp.LpSolver) -> dict[str, float]:
    """Marginal objective per unit of each target and budget row, at the plan's switches.

    The LP is re-solved with the on/off switches fixed and staff divisible. For a
    minimum-cost plan, a target's price is the yuan one more unit costs (a deletion-rate
    ceiling: yuan saved per percentage point it is loosened); for a maximizing plan, a
    budget's price is the objective gained per extra yuan.
    """
    model = build(problem, switches=solution.on, integer_staff=False)
    model.lp.solve(solver)
    if pulp.LpStatus[model.lp.status] != "Optimal":
        return {}
    prices = {}
    for t in problem.targets:
        pi = model.rows[t.key].pi or 0.0
        if t.ceiling:
            den_coef, den_constant = t.denominator
            adds = np.array([[model.adds[c, m].varValue or 0.0 for m in range(len(problem.months))]
                             for c in range(len(problem.channels))])
            pi *= (den_constant + float((den_coef * adds).sum())) / 100
        prices[t.key] = abs(pi)
    for name, row in model.rows.items():
        if name.startswith("budget"):
            prices[name] = abs(row.pi or 0.0)
    return prices


@dataclass(frozen=True)
class Diagnosis:
    """Why no plan meets every target, and what it would take.

    Attributes
    ----------
    within_budget
        Per target key, the most the budget can reach (where it falls short).
    budget_needed
        Per budget row, the budget that would make every target reachable (``None`` if
        no budget can: a capacity runs out).
    unreachable
        Per target key, the shortfall that remains with no budget limit at all.
    exhausted
        Channels and months at their spend capacity (or locked) in that unlimited plan:
        more spend would buy less than a millionth of their adds at capacity.
    """

    within_budget: dict[str, float]
    budget_needed: dict[str, float] | None
    unreachable: dict[str, float]
    exhausted: list[dict[str, object]]


def diagnose(problem: Problem, solver: pulp.LpSolver) -> Diagnosis:
    """Elastic re-solves of an infeasible plan, lexicographically.

    1. Within the budget (overrun only if locks force it), the smallest total relative
       shortfall: how far each target falls short.
    2. With no budget limit, the smallest relative shortfall: what no budget can buy;
       holding it, the least cost, whose plan says which channels run out (so the
       channels listed do not depend on which of the equally short plans a solver
       returns).
    3. Holding that, the smallest budget overruns: the budget that would do.

    Each stage is solved to a relative gap of :data:`DIAGNOSIS_GAP` (the next holds
    its optimum); a shortfall within ``1e-6`` of its goal is none.
    """
    solver = _tight(solver)
    reached = _elastic(problem, solver, budgets="elastic", first="overrun")
    goals = {t.key: abs(t.planned) for t in problem.targets}

    def short(shortfalls: dict[str, float]) -> dict[str, float]:
        """The shortfalls beyond the solver's tolerance (relative to the goal)."""
        return {key: value for key, value in shortfalls.items()
                if value > _TOL * max(goals[key], 1.0)}

    within = short(reached[0])
    unlimited, _, free_model = _elastic(problem, solver, budgets="none", first="shortfall")
    unreachable = short(unlimited)
    needed = None
    if not unreachable and (problem.total_budget is not None or problem.monthly_budget is not None):
        _, overrun, _ = _elastic(problem, solver, budgets="elastic", first="shortfall")
        needed = {}
        if problem.total_budget is not None:
            needed["budget_total"] = problem.total_budget + overrun.get("budget_total", 0.0)
        if problem.monthly_budget is not None:
            needed.update({key: problem.monthly_budget + value for key, value in overrun.items()
                           if key.startswith("budget__") and value > _TOL})
    exhausted = []
    for (c, m), var in free_model.spend.items():
        value = var.varValue or 0.0
        locked = not math.isnan(problem.locks[c, m])
        pwl = problem.pwl[c]
        left = float(pwl.adds[-1] - pwl(min(value, problem.upper[c])))  # adds more spend buys
        if locked or (problem.upper[c] > 0 and left <= 1e-6 * max(float(pwl.adds[-1]), 1.0)):
            exhausted.append({"channel": problem.channels[c], "month": problem.months[m],
                              "spend_cny": value, "locked": locked,
                              "bound": "locked" if locked else problem.upper_reason[c]})
    return Diagnosis(within, needed, unreachable, exhausted)


def _tight(solver: pulp.LpSolver) -> pulp.LpSolver:
    """``solver`` with its relative gap at most :data:`DIAGNOSIS_GAP`."""
    tight = copy.copy(solver)
    tight.optionsDict = {**solver.optionsDict,
                         "gapRel": min(solver.optionsDict.get("gapRel") or 1.0, DIAGNOSIS_GAP)}
    if getattr(solver, "gapRel", None) is not None or isinstance(solver, pulp.HiGHS):
        tight.gapRel = min(getattr(solver, "gapRel", None) or 1.0, DIAGNOSIS_GAP)
    return tight


def _elastic(problem: Problem, solver: pulp.LpSolver, *, budgets: str,
             first: str) -> tuple[dict[str, float], dict[str, float], Model]:
    """Minimize the ``first`` kind of slack, then the other kind holding the first (or
    the cost, if the model has none of the other kind).

    Shortfalls are weighed relative to their goals, overruns relative to their budgets.
    Returns the shortfall per target (in its unit; a ceiling's as a rate) and the
    overrun per budget row, and the solved model.
    """
    model = build(problem, elastic_targets=True, budgets=budgets)
    targets = {t.key: t for t in problem.targets}

    def scale(key: str) -> float:
        t = targets.get(key)
        if t is None:
            limit = problem.total_budget if key == "budget_total" else problem.monthly_budget
            return max(limit or 0.0, 1.0)
        return max(abs(t.planned * (t.denominator[1] if t.ceiling else 1.0)), 1.0)

    # Weighed in units of the largest goal or budget, so that a yuan's worth of adds on
    # a flat stretch of a curve still counts above the solver's tolerances.
    unit = max((scale(k) for k in [*model.shortfall, *model.overrun]), default=1.0)
    sums = {
        "shortfall": pulp.lpSum(v * (unit / scale(k)) for k, v in model.shortfall.items()),
        "overrun": pulp.lpSum(v * (unit / scale(k)) for k, v in model.overrun.items()),
    }
    second = "overrun" if first == "shortfall" else "shortfall"
    model.lp.sense = pulp.LpMinimize
    model.lp.setObjective(sums[first])
    model.lp.solve(solver)
    best = pulp.value(sums[first]) or 0.0
    model.lp.addConstraint(sums[first] <= best * (1 + 1e-7) + 1e-7, name="hold_first")
    nothing_second = not (model.overrun if second == "overrun" else model.shortfall)
    model.lp.setObjective(model.cost if nothing_second else sums[second])
    model.lp.solve(solver)

    adds = np.array([[model.adds[c, m].varValue or 0.0 for m in range(len(problem.months))]
                     for c in range(len(problem.channels))])
    shortfall = {}
    for key, var in model.shortfall.items():
        value, t = float(var.varValue or 0.0), targets[key]
        if t.ceiling:  # excess deletions as a rate
            den_coef, den_constant = t.denominator
            value /= max(den_constant + float((den_coef * adds).sum()), 1.0)
        shortfall[key] = value
    overrun = {key: float(var.varValue or 0.0) for key, var in model.overrun.items()}
    return shortfall, overrun, model
