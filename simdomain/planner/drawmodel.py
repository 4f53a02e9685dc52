"""The chance-constrained program of a draw set as sparse arrays, solved by scipy's HiGHS.

See :mod:`simdomain.planner.robust` for the formulation. :class:`ChanceModel` builds
the rows once per draw set and method; the chance rows, whose coefficients are the
draws' weights, and the levels are set at each solve. :func:`by_sets` is the default
method: the CVaR plan, then fixed draw sets.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from simdomain.planner.problem import effective_spend

if TYPE_CHECKING:
    from simdomain.planner.robust import DrawSet

METHODS = ("sets", "milp", "cvar")
_TOL = 1e-7


def _rows(draws: DrawSet) -> tuple[np.ndarray, ...]:
    """Each target's row in each draw as ``G_tk . adds_k >= h_tk``: ``(K, T, C, M)`` and
    ``(K, T)``; the goal moved by the draw's noise sample."""
    shift = draws.noise_sd[None, :] * draws.noise
    planned = np.array([t.planned for t in draws.targets])
    ceiling = np.array([t.ceiling for t in draws.targets], dtype=bool)
    goal = planned[None, :] - shift
    # floors: coef . a >= goal - constant
    g = draws.coef.copy()
    h = goal - draws.constant
    if ceiling.any():  # ceilings: (goal den_coef - coef) . a >= constant - goal den_constant
        rate = planned[None, :] + shift  # a lower simulated rate is the good side
        g[:, ceiling] = (rate[:, ceiling, None, None] * draws.den_coef[:, ceiling]
                         - draws.coef[:, ceiling])
        h[:, ceiling] = draws.constant[:, ceiling] - rate[:, ceiling] * draws.den_constant[:, ceiling]
    return g, h


class ChanceModel:
    """The chance-constrained program of a :class:`DrawSet` as sparse arrays.

    Columns: spend ``x[c, m]``, segments ``d[c, m, j]``, switches ``on[c, m]``, staff
    ``n[c, m]``, per-draw adds ``a[k, c, m]``, then per target and draw ``z[t, k]``
    (``milp``) or the CVaR's ``eta[t]`` and ``u[t, k]`` (``cvar``). Rows: the segments,
    the curves per draw, staff, switches, budgets and the target rows; the chance rows
    (whose coefficients are the weights) are added at each solve.

    ``live`` ``(K, T)`` keeps only those target rows (constraint generation): a draw's
    adds of a channel-month are columns only where a live row (or the objective) needs
    them, so a monthly target's draws cost one month of adds each.
    """

    def __init__(self, draws: DrawSet, method: str = "milp",
                 live: np.ndarray | None = None) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
        started = time.perf_counter()
        self.draws, self.method = draws, method
        p = draws.base
        n_ch, n_mo, n_k, n_t = len(p.channels), len(p.months), draws.size, len(p.targets)
        self.shape = (n_ch, n_mo)
        lag = draws.carryover.mean(axis=0)
        cols = _Columns()
        upper = p.upper
        locked = ~np.isnan(p.locks)
        x_low = np.where(locked, np.nan_to_num(p.locks), 0.0)
        x_up = np.where(locked, np.nan_to_num(p.locks), upper[:, None])
        self.x = cols.add(n_ch * n_mo, x_low.ravel(), x_up.ravel()).reshape(n_ch, n_mo)
        switched = p.switched
        widths = [np.diff(g) for g in draws.grid]
        self.d: list[np.ndarray] = []  # per channel (M, J)
        perspective = switched & (lag == 0)
        for c in range(n_ch):
            w = np.tile(widths[c], n_mo)
            self.d.append(cols.add(w.size, 0.0, np.where(perspective[c], np.inf, w))
                          .reshape(n_mo, len(widths[c])))
        self.on = np.full((n_ch, n_mo), -1)
        for c in np.flatnonzero(switched):
            low = np.where(locked[c], (np.nan_to_num(p.locks[c]) > 0).astype(float), 0.0)
            up = np.where(locked[c], low, 1.0)
            self.on[c] = cols.add(n_mo, low, up, integer=True)
        staffed = ~np.isnan(p.staff_capacity)
        self.n = np.full((n_ch, n_mo), -1)
        # staff accounts divisible here, rounded up in the plan (more accounts never
        # cut adds): whole accounts in every draw's rows would make each solve a search
        self.n[staffed] = cols.add(int(staffed.sum()), 0.0, np.inf)
        g, h = _rows(draws)
        live = np.ones((n_k, n_t), dtype=bool) if live is None else np.asarray(live, bool)
        needed = np.einsum("kt,ktcm->kcm", live.astype(float), (g != 0).astype(float)) > 0
        if p.objective != "min-cost":
            needed |= draws.objective_coef != 0
        self.a = np.full((n_k, n_ch, n_mo), -1)
        self.a[needed] = cols.add(int(needed.sum()), 0.0, np.inf)
        rows = _Rows()
        for c in range(n_ch):  # x_m = e_m - lag e_(m-1), e_m = sum_j d_mj
            for m in range(n_mo):
                idx = [self.x[c, m], *self.d[c][m]]
                val = [1.0, *([-1.0] * self.d[c].shape[1])]
                rhs = 0.0
                if lag[c] > 0:
                    if m:
                        idx += list(self.d[c][m - 1])
                        val += [lag[c]] * self.d[c].shape[1]
                    else:
                        rhs = -lag[c] * p.carried_in[c]
                rows.add(idx, val, rhs, rhs)
        # the curves: a_kcm <= f_cm sum_j s_kcj d_cmj
        for c in range(n_ch):
            slopes = np.diff(draws.grid_adds[c], axis=1) / np.maximum(widths[c], 1e-300)
            j_count = slopes.shape[1]
            for m in range(n_mo):
                ks = np.flatnonzero(needed[:, c, m])
                if not ks.size:
                    continue
                f = p.adds_factor[c, m]
                if j_count == 0 or f == 0:
                    rows.add_block(self.a[ks, c, m, None], np.ones((ks.size, 1)), -np.inf, 0.0)
                    continue
                idx = np.concatenate([self.a[ks, c, m, None],
                                      np.broadcast_to(self.d[c][m], (ks.size, j_count))], axis=1)
                val = np.concatenate([np.ones((ks.size, 1)), -f * slopes[ks]], axis=1)
                rows.add_block(idx, val, -np.inf, 0.0)
        free = p.free_adds
        for c, m in zip(*np.nonzero(staffed)):  # a_kcm + F_cm <= capacity n_cm
            ks = np.flatnonzero(needed[:, c, m])
            if not ks.size:
                if free[c, m] > 0:  # the accounts must still take the free adds
                    rows.add([self.n[c, m]], [-p.staff_capacity[c, m]], -np.inf, -free[c, m])
                continue
            idx = np.stack([self.a[ks, c, m], np.full(ks.size, self.n[c, m])], axis=1)
            val = np.tile([1.0, -p.staff_capacity[c, m]], (ks.size, 1))
            rows.add_block(idx, val, -np.inf, -free[c, m])
        for c in np.flatnonzero(switched):
            for m in range(n_mo):
                if locked[c, m]:
                    continue
                rows.add([self.x[c, m], self.on[c, m]], [1.0, -upper[c]], -np.inf, 0.0)
                if p.min_spend[c] > 0:
                    rows.add([self.x[c, m], self.on[c, m]], [1.0, -p.min_spend[c]], 0.0, np.inf)
                if perspective[c]:
                    for j, w in enumerate(widths[c]):
                        rows.add([self.d[c][m, j], self.on[c, m]], [1.0, -w], -np.inf, 0.0)
        # costs
        cost = np.zeros(cols.count)
        month_cost: list[tuple[list[int], list[float]]] = []
        for m in range(n_mo):
            idx, val = list(self.x[:, m]), list(np.full(n_ch, p.spend_share[m]))
            for c in np.flatnonzero(switched):
                idx.append(self.on[c, m])
                val.append(p.fixed_cost[c])
            for c in np.flatnonzero(staffed[:, m]):
                idx.append(self.n[c, m])
                val.append(p.staff_cost[c])
            month_cost.append((idx, val))
            np.add.at(cost, idx, val)
        self.cost_constant = float(p.other_costs.sum())
        if p.total_budget is not None:
            idx = [i for ids, _ in month_cost for i in ids]
            val = [v for _, vals in month_cost for v in vals]
            rows.add(idx, val, -np.inf, p.total_budget - self.cost_constant)
        if p.monthly_budget is not None:
            for m, (idx, val) in enumerate(month_cost):
                rows.add(idx, val, -np.inf, p.monthly_budget - p.other_costs[m])
        self.cost = cost
        # targets per draw: G_tk . a_k >= h_tk, switched off by z (or measured by u)
        a_max = np.stack([p.adds_factor * np.array(
            [draws.grid_adds[c][k, -1] for c in range(n_ch)])[:, None] for k in range(n_k)])
        low = np.einsum("ktcm,kcm->kt", np.minimum(g, 0.0), a_max)
        high = np.einsum("ktcm,kcm->kt", np.maximum(g, 0.0), a_max)
        scale = np.maximum(np.abs(h), 1.0)
        self.always = h <= low + _TOL * scale  # met whatever the plan
        self.never = h > high + _TOL * scale  # no plan meets it
        nz_t, nz_c, nz_m = np.nonzero(np.any(g != 0, axis=0))
        self.z = np.full((n_t, n_k), -1)
        self.target_rows: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        """Per target: its rows, their draws, and one noise sd in the rows' units."""
        self.eta = np.full(n_t, -1)
        self.u = np.full((n_t, n_k), -1)
        flat_a = self.a.reshape(n_k, -1)
        for t in range(n_t):
            pick = nz_t == t
            where = nz_c[pick] * n_mo + nz_m[pick]
            g_t = g[:, t, nz_c[pick], nz_m[pick]] / scale[:, t, None]
            h_t = h[:, t] / scale[:, t]
            if method == "milp":
                rows_t = live[:, t] & ~self.always[:, t] & ~self.never[:, t]
                self.z[t] = cols.add(n_k, 0.0, np.where(self.never[:, t], 0.0, 1.0),
                                     integer=True)
                ks = np.flatnonzero(rows_t)
                if ks.size:  # G a - M z >= h - M, M = h - min G a
                    big = h_t[ks] - low[ks, t] / scale[ks, t]
                    idx = np.concatenate([flat_a[ks][:, where], self.z[t, ks, None]], axis=1)
                    val = np.concatenate([g_t[ks], -big[:, None]], axis=1)
                    self.target_rows[t] = (rows.add_block(idx, val, h_t[ks] - big, np.inf),
                                           ks, draws.noise_sd[t] / scale[ks, t])
            else:  # u_tk >= h_tk - G a - eta_t, u >= 0
                self.eta[t] = cols.add(1, -np.inf, np.inf)[0]
                self.u[t] = cols.add(n_k, 0.0, np.inf)
                idx = np.concatenate([flat_a[:, where], np.full((n_k, 1), self.eta[t]),
                                      self.u[t, :, None]], axis=1)
                val = np.concatenate([g_t, np.ones((n_k, 2))], axis=1)
                rows.add_block(idx, val, h_t, np.inf)
        self.columns = cols
        self.matrix = rows.matrix(cols.count)
        self.row_low, self.row_up = rows.low(), rows.up()
        self.cost = np.concatenate([self.cost, np.zeros(cols.count - self.cost.size)])
        self.maximize = p.objective != "min-cost"
        self.build_seconds = time.perf_counter() - started

    def objective(self, weights: np.ndarray) -> tuple[np.ndarray, float]:
        """The objective vector (minimized) and its constant."""
        if not self.maximize:
            return self.cost, self.cost_constant
        draws = self.draws
        vector = np.zeros(self.columns.count)
        per_draw = weights[:, None, None] * draws.objective_coef
        there = self.a >= 0
        vector[self.a[there]] = -per_draw[there]
        return vector, -float(weights @ draws.objective_constant)

    def solve(self, level: float | np.ndarray, weights: np.ndarray, *,
              time_limit: float = 60.0, gap: float = 1e-4, sets: np.ndarray | None = None,
              shift: np.ndarray | None = None) -> dict[str, Any]:
        """Solve at ``level`` (one, or one per target) with normalized ``weights``;
        ``sets`` ``(T, K)`` fixes which draws must meet each target (``milp`` only), and
        ``shift`` ``(T,)`` asks those draws for that many noise sds past the goal."""
        draws = self.draws
        n_t = len(draws.targets)
        levels = np.broadcast_to(np.asarray(level, dtype=float), (n_t,))
        idx, val, low, up = [], [], [], []
        for t in range(n_t):
            if self.method == "milp":  # sum_k w_k z_tk >= level
                idx.append(self.z[t])
                val.append(weights)
                low.append(levels[t] - 1e-9)
            else:  # eta + sum_k w_k u_k / (1 - level) <= 0
                idx.append(np.append(self.u[t], self.eta[t]))
                val.append(np.append(weights / max(1 - levels[t], 1e-9), 1.0))
                low.append(-np.inf)
            up.append(np.inf if self.method == "milp" else 0.0)
        if sets is not None:  # the sets decide: no chance rows
            low = [-np.inf] * n_t
            up = [np.inf] * n_t
        chance = sparse.csr_matrix(
            (np.concatenate(val) if val else np.zeros(0),
             (np.repeat(np.arange(n_t), [len(i) for i in idx]),
              np.concatenate(idx) if idx else np.zeros(0, dtype=int))),
            shape=(n_t, self.columns.count))
        matrix = sparse.vstack([self.matrix, chance], format="csr")
        row_low = self.row_low
        if sets is not None and shift is not None and np.any(shift):
            row_low = row_low.copy()
            for t, (where, ks, unit) in self.target_rows.items():
                fixed = sets[t, ks] > 0
                row_low[where[fixed]] += shift[t] * unit[fixed]
        lower = np.concatenate([row_low, low])
        upper = np.concatenate([self.row_up, up])
        vector, constant = self.objective(weights)
        started = time.perf_counter()
        low_bound, up_bound = self.columns.low(), self.columns.up()
        if sets is not None:
            live = self.z >= 0
            up_bound[self.z[live]] = np.minimum(up_bound[self.z[live]], sets[live])
            low_bound[self.z[live]] = np.minimum(sets[live], up_bound[self.z[live]])
        result = milp(vector, integrality=self.columns.integrality(),
                      bounds=Bounds(low_bound, up_bound),
                      constraints=LinearConstraint(matrix, lower, upper),
                      options={"time_limit": time_limit, "mip_rel_gap": gap, "presolve": True})
        seconds = time.perf_counter() - started
        status = {0: "optimal", 1: "time limit"}.get(result.status, "infeasible")
        if result.x is None:
            status = "infeasible"
        return {"status": status, "x": result.x, "seconds": seconds,
                "objective": (result.fun + constant) if result.x is not None else math.nan,
                "gap": float(getattr(result, "mip_gap", 0.0) or 0.0)}


class _Columns:
    """Column bookkeeping: bounds and integrality, appended in blocks."""

    def __init__(self) -> None:
        self.count = 0
        self._low: list[np.ndarray] = []
        self._up: list[np.ndarray] = []
        self._int: list[np.ndarray] = []

    def add(self, n: int, low: Any, up: Any, integer: bool = False) -> np.ndarray:
        index = np.arange(self.count, self.count + n)
        self.count += n
        self._low.append(np.broadcast_to(np.asarray(low, dtype=float), (n,)).copy())
        self._up.append(np.broadcast_to(np.asarray(up, dtype=float), (n,)).copy())
        self._int.append(np.full(n, 1 if integer else 0))
        return index

    def low(self) -> np.ndarray:
        return np.concatenate(self._low)

    def up(self) -> np.ndarray:
        return np.concatenate(self._up)

    def integrality(self) -> np.ndarray:
        return np.concatenate(self._int)


class _Rows:
    """Row bookkeeping as COO triplets."""

    def __init__(self) -> None:
        self.count = 0
        self._r: list[np.ndarray] = []
        self._c: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self._low: list[np.ndarray] = []
        self._up: list[np.ndarray] = []

    def add(self, idx: Any, val: Any, low: float, up: float) -> None:
        self.add_block(np.asarray(idx)[None], np.asarray(val, dtype=float)[None], low, up)

    def add_block(self, idx: np.ndarray, val: np.ndarray, low: Any, up: Any) -> np.ndarray:
        """Rows ``low <= val[i] . columns[idx[i]] <= up`` for each ``i``."""
        n = idx.shape[0]
        rows = self.count + np.repeat(np.arange(n), idx.shape[1])
        self._r.append(rows)
        self._c.append(np.asarray(idx).ravel())
        self._v.append(np.asarray(val, dtype=float).ravel())
        self._low.append(np.broadcast_to(np.asarray(low, dtype=float), (n,)).copy())
        self._up.append(np.broadcast_to(np.asarray(up, dtype=float), (n,)).copy())
        self.count += n
        return np.arange(self.count - n, self.count)

    def matrix(self, columns: int) -> sparse.csr_matrix:
        if not self._r:
            return sparse.csr_matrix((0, columns))
        return sparse.csr_matrix((np.concatenate(self._v),
                                  (np.concatenate(self._r), np.concatenate(self._c))),
                                 shape=(self.count, columns))

    def low(self) -> np.ndarray:
        return np.concatenate(self._low) if self._low else np.zeros(0)

    def up(self) -> np.ndarray:
        return np.concatenate(self._up) if self._up else np.zeros(0)


def by_sets(draws: DrawSet, level: float | np.ndarray, weights: np.ndarray, *,
            time_limit: float, gap: float, rounds: int = 8, gain: float = 1e-3,
            start: tuple[np.ndarray, np.ndarray] | None = None, calibrate: Any = None,
            ) -> tuple[dict[str, Any], ChanceModel]:
    """The sample average approximation by fixed draw sets (see :func:`solve_chance`).

    Each round keeps, per target, the draws where a reference plan is furthest past the
    goal (in the model's chords), up to weight ``level``, and finds the cheapest plan that
    meets the target in all of them. From round 1 the reference is the last plan, which
    meets all of its set, so the next plan costs no more; the rounds stop when the cost
    falls by less than ``gain`` (relative). Round 0's reference is ``start`` (a plan's
    spend and staff) if given, else the CVaR plan on small models (then the first set's
    plan is no dearer than it), else (or when the CVaR has no plan) every channel at its
    largest spend (draws ranked by what they can reach). ``calibrate``, a function of a plan giving each target's
    exact chance (or, with ``slope=True``, its rate of change per noise sd), then moves
    the sets' goals until each chance reaches its level (:func:`_calibrate`).

    A set's plan is found by constraint generation: the model holds the draws of each
    set that were hardest for the reference, the plan is checked in every draw of the
    sets, and the draws it misses are added until it misses none (minimum-cost plans on
    large models; the others hold every draw).
    """
    started = time.perf_counter()
    n_t, base = len(draws.targets), draws.base
    levels = np.broadcast_to(np.asarray(level, dtype=float), (n_t,))
    g, h = _rows(draws)
    scale = np.maximum(np.abs(h), 1.0)
    size = draws.size * len(base.channels) * len(base.months)
    whole = size <= _SMALL or base.objective != "min-cost"

    def margins(spend: np.ndarray, staff: np.ndarray) -> np.ndarray:
        adds = _chord_adds(draws, spend, staff)
        return (np.einsum("ktcm,kcm->kt", g, adds) - h) / scale  # (K, T)

    best: dict[str, Any] | None = None
    model = draws.model("milp") if whole else None
    full = np.broadcast_to(base.upper[:, None], base.adds_factor.shape)
    if start is not None:
        reference = margins(*start)
    elif whole:
        cvar = draws.model("cvar")
        out = cvar.solve(levels, weights, time_limit=time_limit, gap=gap)
        if out["status"] == "infeasible":  # conservative: hopeless draws can sink it
            reference = margins(full, np.full(full.shape, np.inf))
        else:
            best = _translate(out, cvar, model)
            reference = margins(best["spend"], best["staff"])
    else:
        reference = margins(full, np.full(full.shape, np.inf))
    def solve_sets(sets: np.ndarray, reference: np.ndarray,
                   shift: np.ndarray | None = None) -> tuple[dict[str, Any], ChanceModel]:
        left = max(time_limit - (time.perf_counter() - started), 1.0)
        if not whole:
            return _generate(draws, sets, reference, margins, weights, left, gap, shift)
        out = model.solve(levels, weights, time_limit=left, gap=gap, sets=sets, shift=shift)
        if out["x"] is not None:
            out["spend"], out["staff"] = out["x"][model.x], whole_staff(model, out["x"])
        return out, model

    sets = None
    for _ in range(rounds):
        order = np.argsort(-reference, axis=0, kind="stable")
        chosen = np.zeros((n_t, draws.size))
        for t in range(n_t):
            ranked = order[:, t]
            take = np.searchsorted(np.cumsum(weights[ranked]), levels[t] - 1e-9) + 1
            chosen[t, ranked[:take]] = 1.0
        trial, used = solve_sets(chosen, reference)
        if trial["status"] == "infeasible":
            break
        if best is not None and trial["objective"] >= best["objective"]:
            break
        settled = best is not None and trial["objective"] >= best["objective"] - (
            gain * max(abs(best["objective"]), 1.0))
        best, model, sets = trial, used, chosen
        if settled:
            break
        reference = margins(best["spend"], best["staff"])
    if best is None:
        return trial, model
    if calibrate is not None and sets is not None:
        best, model = _calibrate(draws, best, model, sets, levels, weights, margins,
                                 solve_sets, calibrate)
    best["seconds"] = time.perf_counter() - started
    return best, model


def _calibrate(draws: DrawSet, best: dict[str, Any], model: ChanceModel, sets: np.ndarray,
               levels: np.ndarray, weights: np.ndarray, margins: Any, solve_sets: Any,
               chance: Any, passes: int = 8) -> tuple[dict[str, Any], ChanceModel]:
    """Ask each target's set for ``shift`` noise sds past the goal until the target's
    exact chance (``chance(spend, staff)``, ``(T,)``) reaches its level: Newton steps
    on the shift, the slope being the weighted normal density at the margins of the
    set's draws (the ones the shift moves)."""
    shift = np.zeros(len(levels))
    current = chance(best["spend"], best["staff"])
    for _ in range(passes):
        short = current < levels - 1e-3
        if not short.any():
            break
        density = (chance(best["spend"], best["staff"], slope=True) * sets.T).sum(axis=0)
        step = (levels + 1e-3 - current) / np.maximum(density, 0.02)
        shift = np.where(short, shift + step, shift)
        trial, used = solve_sets(sets, margins(best["spend"], best["staff"]), shift)
        if trial["status"] == "infeasible" or trial["x"] is None:
            break
        best, model = trial, used
        current = chance(best["spend"], best["staff"])
    return best, model


_SMALL = 20_000
"""Draws x channels x months up to which the draw-set plan starts from the CVaR plan
and holds every draw in its model."""


def _generate(draws: DrawSet, sets: np.ndarray, reference: np.ndarray, margins: Any,
              weights: np.ndarray, time_limit: float, gap: float,
              shift: np.ndarray | None = None, start: int = 3,
              add: int = 5) -> tuple[dict[str, Any], ChanceModel]:
    """The cheapest plan meeting each target in every draw of its set, by constraint
    generation over the (draw, target) rows (see :func:`by_sets`): the rows start with
    each set's ``start`` hardest draws for the reference plan; each pass adds up to
    ``add`` draws per target that the plan misses."""
    started = time.perf_counter()
    in_set = sets.T > 0  # (K, T)
    unit = draws.noise_sd[None, :] / np.maximum(np.abs(_rows(draws)[1]), 1.0)
    live = np.zeros_like(in_set)
    for t in range(sets.shape[0]):
        members = np.flatnonzero(in_set[:, t])
        live[members[np.argsort(reference[members, t])[:start]], t] = True
    while True:
        model = ChanceModel(draws, "milp", live)
        left = max(time_limit - (time.perf_counter() - started), 1.0)
        out = model.solve(1.0, weights, time_limit=left, gap=gap, sets=sets, shift=shift)
        if out["x"] is None or out["status"] == "infeasible":
            return out, model
        out["spend"], out["staff"] = out["x"][model.x], whole_staff(model, out["x"])
        margin = margins(out["spend"], out["staff"])
        if shift is not None:  # the shifted goal, in the margins' units
            margin = margin - shift[None, :] * unit
        missed = in_set & ~live & (margin < -1e-7)
        if not missed.any() or time.perf_counter() - started > time_limit:
            return out, model
        for t in np.flatnonzero(missed.any(axis=0)):
            worst = np.flatnonzero(missed[:, t])
            live[worst[np.argsort(margin[worst, t])[:add]], t] = True


def whole_staff(model: ChanceModel, x: np.ndarray) -> np.ndarray:
    """Whole staff accounts: the model's divisible ones rounded up."""
    return np.where(model.n >= 0, np.ceil(x[np.maximum(model.n, 0)] - 1e-6), 0.0)


def _translate(out: dict[str, Any], source: ChanceModel, target: ChanceModel) -> dict[str, Any]:
    """A solution of one model as the plan's columns of another (same draws)."""
    x = out["x"]
    values = np.zeros(target.columns.count)
    values[target.x] = x[source.x]
    for c in range(len(source.d)):
        values[target.d[c]] = x[source.d[c]]
    live = source.on >= 0
    values[target.on[live]] = x[source.on[live]]
    live = source.n >= 0
    values[target.n[live]] = x[source.n[live]]
    there = (source.a >= 0) & (target.a >= 0)
    values[target.a[there]] = x[source.a[there]]
    return {**out, "x": values, "spend": x[source.x], "staff": whole_staff(source, x)}


def _chord_adds(draws: DrawSet, spend: np.ndarray, staff: np.ndarray) -> np.ndarray:
    """``(K, C, M)`` realized adds of a plan in each draw as the model sees them: the
    chords of the shared grid, at the effective spend with the mean carry-over."""
    base = draws.base
    lag = draws.carryover.mean(axis=0)
    moving = effective_spend(np.maximum(spend, 0.0), lag, base.carried_in)
    out = np.empty((draws.size, *spend.shape))
    for c, grid in enumerate(draws.grid):
        for k in range(draws.size):
            out[k, c] = np.interp(moving[c], grid, draws.grid_adds[c][k])
    out *= base.adds_factor[None]
    cap = np.where(np.isnan(base.staff_capacity), np.inf, np.maximum(
        staff * np.nan_to_num(base.staff_capacity, nan=1.0) - base.free_adds, 0.0))
    return np.minimum(out, cap[None])

