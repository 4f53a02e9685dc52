"""The relaxation first: a plan rounded from the linear relaxation, proved or handed on.

With the cost-envelope rows (:mod:`simdomain.planner.envelope`) the relaxation's optimum
is nearly whole: most channel-months sit at a whole number of staff accounts. Rounding
its accounts and switches up keeps every row but the budgets (more accounts never cut
adds; a switch turned on gets at least its minimum spend; both only raise the cost) and
costs little more; the budget rows and the rows of any spend raised are checked. When
that plan is within the solver's gap of the relaxation's bound, it is optimal in the
solver's own sense and no branch and bound is needed; otherwise it is the branch and
bound's starting plan (a warm start, where the solver takes one).
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import pulp

from simdomain.planner.problem import Problem

if TYPE_CHECKING:
    from simdomain.planner.milp import Model

_TOL = 1e-6


def relax_and_round(model: Model, problem: Problem, solver: pulp.LpSolver) -> bool:
    """Solve the relaxation of ``model`` and round it; leave the rounded plan in its
    variables. ``True`` if that plan is proved within ``solver``'s relative gap."""
    integers = [v for v in (*model.on.values(), *model.staff.values())
                if v.cat != pulp.LpContinuous]
    if not integers:
        return False
    categories = [v.cat for v in integers]
    for var in integers:
        var.cat = pulp.LpContinuous
    try:
        model.lp.solve(solver)
    finally:
        for var, category in zip(integers, categories):
            var.cat = category
    if model.lp.status != pulp.LpStatusOptimal:
        return False
    bound = pulp.value(model.lp.objective) or 0.0
    for var in integers:
        low = var.lowBound if var.lowBound is not None else -math.inf
        up = var.upBound if var.upBound is not None else math.inf
        var.varValue = min(max(math.ceil((var.varValue or 0.0) - _TOL), low), up)
    changed = _minimum_spends(model, problem)
    # The relaxation holds every row; rounding up only loosens the others.
    touched = [name for name in model.rows if name.startswith("budget")]
    for c, m in changed:
        where = f"{problem.channels[c]}__{problem.months[m]}"
        touched += [f"{family}__{where}" for family in ("segments", "min_spend", "max_spend")]
    if not all(_holds(model.rows[name]) for name in touched if name in model.rows):
        return False
    value = pulp.value(model.lp.objective) or 0.0
    gap = _gap(solver)
    worse = value - bound if model.lp.sense == pulp.LpMinimize else bound - value
    if worse > gap * max(abs(value), 1e-9) + _TOL:
        return False
    model.lp.status, model.lp.sol_status = pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible
    return True


def warm(solver: pulp.LpSolver) -> pulp.LpSolver:
    """``solver`` starting from the variables' values, if it can."""
    if "warmStart" not in solver.optionsDict:
        return solver
    started = copy.copy(solver)
    started.optionsDict = {**solver.optionsDict, "warmStart": True}
    return started


def _minimum_spends(model: Model, problem: Problem) -> list[tuple[int, int]]:
    """A switch rounded up to on gets at least its minimum spend (the extra spend fills
    the curve's segments in order, so the adds allowed only grow); the channel-months
    whose spend changed."""
    changed = []
    for (c, m), on in model.on.items():
        x = model.spend[c, m]
        short = problem.min_spend[c] * (on.varValue or 0.0) - (x.varValue or 0.0)
        if short <= _TOL or not math.isnan(problem.locks[c, m]):
            continue
        x.varValue = (x.varValue or 0.0) + short
        changed.append((c, m))
        for piece, width in zip(model.segments.get((c, m), []),
                                 problem.pwl[c].spend[1:] - problem.pwl[c].spend[:-1]):
            add = min(short, width - (piece.varValue or 0.0))
            if add > 0:
                piece.varValue = (piece.varValue or 0.0) + add
                short -= add
    return changed


def _holds(row: pulp.LpConstraint) -> bool:
    value = row.value()
    if value is None:
        return False
    size = max((abs(a * (v.varValue or 0.0)) for v, a in row.items()), default=0.0)
    slack = _TOL * max(1.0, abs(row.constant), size)  # the solvers' tolerances are relative
    if row.sense == pulp.LpConstraintLE:
        return value <= slack
    if row.sense == pulp.LpConstraintGE:
        return value >= -slack
    return abs(value) <= slack


def _gap(solver: pulp.LpSolver) -> float:
    gap = solver.optionsDict.get("gapRel", getattr(solver, "gapRel", None))
    return float(gap) if gap is not None else 0.0
