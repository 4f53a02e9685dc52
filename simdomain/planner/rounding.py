"""The relaxation first: a plan rounded from the linear relaxation, proved or handed on.

With the cost-envelope rows (:mod:`simdomain.planner.envelope`) the relaxation's optimum
is nearly whole: most channel-months sit at a whole number of staff accounts. Its
accounts and switches are rounded up (more accounts never cut adds; a switch turned on
gets its minimum spend), then the spend and adds are optimized again with them fixed.
When that plan is within the solver's gap of the relaxation's bound, it is optimal in
the solver's own sense and no branch and bound is needed; otherwise it is the branch
and bound's starting plan (a warm start, where the solver takes one).

Both relaxations are linear programs over the PuLP model's rows, solved in this process
by scipy's HiGHS (no model file to write and read back, which is most of the time PuLP
takes on a large model).
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import numpy as np
import pulp
from scipy import sparse
from scipy.optimize import linprog

if TYPE_CHECKING:
    from simdomain.planner.milp import Model

_TOL = 1e-6


class Relaxation:
    """The PuLP model's rows and columns as sparse arrays, for :func:`linprog`."""

    def __init__(self, model: Model) -> None:
        lp = model.lp
        self.columns = [*model.spend.values(), *model.adds.values(), *model.on.values(),
                        *model.staff.values(), *model.shortfall.values(),
                        *model.overrun.values(),
                        *(d for pieces in model.segments.values() for d in pieces)]
        index = {id(var): j for j, var in enumerate(self.columns)}
        rows = list(model.rows.values())
        lengths, cols, vals = [], [], []
        for row in rows:  # C-level maps: this loop is most of the time
            cols.extend(map(index.__getitem__, map(id, row.keys())))
            vals.extend(row.values())
            lengths.append(len(row))
        sign = np.array([-1.0 if row.sense == pulp.LpConstraintGE else 1.0 for row in rows])
        equal = np.array([row.sense == pulp.LpConstraintEQ for row in rows], dtype=bool)
        rhs = -sign * np.array([row.constant for row in rows], dtype=float)
        which = np.repeat(np.arange(len(rows)), lengths)
        matrix = sparse.csr_matrix((np.array(vals, dtype=float) * sign[which], (which, cols)),
                                   shape=(len(rows), len(self.columns)))
        self.a_ub, self.b_ub = matrix[~equal], rhs[~equal]
        self.a_eq, self.b_eq = matrix[equal], rhs[equal]
        self.cost = np.zeros(len(self.columns))
        for var, coef in lp.objective.items():
            self.cost[index[id(var)]] += coef
        self.maximize = lp.sense == pulp.LpMaximize
        self.constant = float(lp.objective.constant)
        self.low = np.array([-np.inf if v.lowBound is None else v.lowBound for v in self.columns])
        self.up = np.array([np.inf if v.upBound is None else v.upBound for v in self.columns])

    def solve(self, fixed: dict[int, float] | None = None) -> tuple[np.ndarray, float] | None:
        """The optimum (values, objective) with the ``fixed`` columns at their values;
        ``None`` if there is none."""
        low, up = self.low.copy(), self.up.copy()
        for j, value in (fixed or {}).items():
            low[j] = up[j] = value
        sign = -1.0 if self.maximize else 1.0
        result = linprog(sign * self.cost, A_ub=self.a_ub, b_ub=self.b_ub, A_eq=self.a_eq,
                         b_eq=self.b_eq, bounds=np.column_stack([low, up]), method="highs")
        if result.status != 0:
            return None
        return result.x, sign * result.fun + self.constant


def relax_and_round(model: Model, gap: float) -> bool:
    """Round the relaxation of ``model`` (see the module); leave the rounded plan in its
    variables. ``True`` if that plan is proved within the relative ``gap``."""
    integers = [v for v in (*model.on.values(), *model.staff.values())
                if v.cat != pulp.LpContinuous]
    if not integers:
        return False
    try:
        relaxation = Relaxation(model)
    except KeyError:  # a row uses a variable the model does not list: branch instead
        return False
    first = relaxation.solve()
    if first is None:
        return False
    values, bound = first
    where = {id(v): j for j, v in enumerate(relaxation.columns)}
    fixed = {}
    for var in integers:
        j = where.get(id(var))
        if j is not None:
            fixed[j] = float(np.clip(math.ceil(values[j] - _TOL), relaxation.low[j],
                                     relaxation.up[j]))
    second = relaxation.solve(fixed)
    if second is None:
        return False
    values, value = second
    for var, x in zip(relaxation.columns, values):
        var.varValue = float(x)
    for j, x in fixed.items():
        relaxation.columns[j].varValue = x
    worse = bound - value if relaxation.maximize else value - bound
    if worse > gap * max(abs(value), 1e-9) + _TOL:
        return False
    model.lp.status, model.lp.sol_status = pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible
    return True


def solver_gap(solver: pulp.LpSolver) -> float:
    """The relative gap ``solver`` was made with (0 if none)."""
    gap = solver.optionsDict.get("gapRel", getattr(solver, "gapRel", None))
    return float(gap) if gap is not None else 0.0


def warm(solver: pulp.LpSolver) -> pulp.LpSolver:
    """``solver`` starting from the variables' values, if it can."""
    if "warmStart" not in solver.optionsDict:
        return solver
    started = copy.copy(solver)
    started.optionsDict = {**solver.optionsDict, "warmStart": True}
    return started
