"""Plans that carry the uncertainty: one spend plan against many parameter draws.

A twin's ``parameters.parquet`` holds draws of its fitted parameters. For ``K`` of them
(:func:`draw_set`) each channel's response curve and each target's coefficients (members,
deletions, pool and GMV per add) are computed from the draw's scenario, so a target's
value in draw ``k`` is ``g_tk(x)``, linear in that draw's adds, and the adds are the
draw's concave curve of the shared spend plan ``x``.

The chance-constrained plan (:func:`solve_chance`) is the sample average approximation

    min cost(x)  s.t.  g_tk(x) >= h_tk - M_tk (1 - z_tk),   sum_k w_k z_tk >= P  (each t)

with ``z_tk`` binary: target ``t`` met in draw ``k``. Chance (the Poisson noise of a
simulation around a draw's mean) enters as one normal sample per draw and target:
``h_tk = goal - sd_t eps_tk``, so ``sum_k w_k z_tk`` estimates the chance over parameters
*and* chance, as the simulation measures it (:func:`noise_sd` says how ``sd_t`` is set).

**One set of segments for every draw.** Every channel has one grid of spend breakpoints
for all draws (:func:`common_grid`); the spend of a channel-month is split into segment
variables ``d_j`` (``sum_j d_j = x``, ``0 <= d_j <= w_j``) shared by all draws, and draw
``k``'s adds are ``f sum_j s_kj d_j`` with its own chord slopes ``s_kj``. Each draw's
curve is concave, so its slopes fall along the grid, and filling the segments in order
gives, for the same ``x``, the most adds in *every* draw at once; any other filling gives
fewer adds in each draw at the same cost. For targets that rise with adds the optimum
may therefore be taken filled in order, where ``f sum_j s_kj d_j`` is exactly draw
``k``'s chords at ``x``; the plan's chances are computed afterwards from ``x`` alone with
the exact curves (:func:`evaluate_draws`), so no out-of-order filling is ever counted.

Staff accounts, on/off switches, locks, budgets and carry-over are as in the
deterministic model (:mod:`simdomain.planner.milp`); the carry-over share is the draws'
mean for all draws (a draw's own share enters only the evaluation). The model is built
once as sparse arrays (:class:`ChanceModel`) and solved by scipy's HiGHS; new weights
or levels change only the chance rows, so re-solving costs the solve alone.

``method="cvar"`` is the convex, conservative alternative (a linear program): the
conditional value at risk of each target's relative shortfall at level ``P`` must be
at most zero (Rockafellar and Uryasev 2000; Nemirovski and Shapiro 2006), which implies
the chance constraint. It is the fast path when the mixed-integer program is too slow.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from simdomain.errors import InputError
from simdomain.errors import Problem as InputProblem
from simdomain.planner.cohorts import Cohorts
from simdomain.planner.cohorts import cohorts as compute_cohorts
from simdomain.planner.curves import (
    ResponseCurve,
    common_grid,
    effective_curve,
    scenario_curves,
)
from simdomain.planner.drawmodel import METHODS, ChanceModel, by_sets, whole_staff
from simdomain.planner.problem import (
    PlanOptions,
    Problem,
    Target,
    build_problem,
    curve_adds,
    linear_parts,
)
from simdomain.scenario.model import Scenario

_TOL = 1e-7


@dataclass(frozen=True)
class DrawSet:
    """Per-draw planning problems over the same channels, months and targets.

    Attributes
    ----------
    base
        The problem of the point estimates (draw 0): costs, budgets, locks, staff,
        switches, targets' goals; its curves are the point curves.
    draws
        ``(K,)`` parameter draw numbers (0: the point estimates).
    curves
        ``[k][c]``: each draw's response curve per channel.
    carryover, carried
        ``(K, C)`` each draw's carry-over share and spend carried into the first month
        (``carried_contacts`` times the cost per contact); the model uses their means
        over the draws, the evaluation each draw's own.
    grid
        Per channel, the spend breakpoints shared by all draws (effective spend when the
        channel carries over).
    grid_adds
        Per channel, ``(K, J + 1)``: each draw's curve adds at the breakpoints.
    max_error
        ``(C,)`` the largest gap, over draws, between a curve and its chords (adds).
    coef, constant
        ``(K, T, C, M)`` and ``(K, T)``: target ``t``'s value in draw ``k`` is
        ``constant + sum(coef * adds)``.
    den_coef, den_constant
        The same for a ceiling's denominator (zeros for the other targets).
    objective_coef, objective_constant
        ``(K, C, M)`` and ``(K,)``: the objective of a maximizing plan per draw.
    noise_sd
        ``(T,)`` the standard deviation of a simulated target around its mean, at the goal.
    noise
        ``(K, T)`` standard normal samples: the chance drawn with each draw (zeros: none).
    seconds
        Time spent building (curves, cohorts, grid).
    """

    base: Problem
    draws: np.ndarray
    curves: list[list[ResponseCurve]]
    carryover: np.ndarray
    carried: np.ndarray
    grid: list[np.ndarray]
    grid_adds: list[np.ndarray]
    max_error: np.ndarray
    coef: np.ndarray
    constant: np.ndarray
    den_coef: np.ndarray
    den_constant: np.ndarray
    objective_coef: np.ndarray
    objective_constant: np.ndarray
    noise_sd: np.ndarray
    noise: np.ndarray
    seconds: float = 0.0
    _models: dict[tuple[Any, ...], ChanceModel] = field(default_factory=dict, compare=False,
                                                        repr=False)

    @property
    def size(self) -> int:
        """``K``: the number of draws."""
        return len(self.draws)

    @property
    def targets(self) -> list[Target]:
        return self.base.targets

    def subset(self, keep: np.ndarray) -> DrawSet:
        """The draws ``keep`` (indices or a boolean mask) only."""
        keep = np.arange(self.size)[keep]
        return replace(
            self, draws=self.draws[keep], curves=[self.curves[k] for k in keep],
            carryover=self.carryover[keep], carried=self.carried[keep], grid_adds=[a[keep] for a in self.grid_adds],
            coef=self.coef[keep], constant=self.constant[keep], den_coef=self.den_coef[keep],
            den_constant=self.den_constant[keep], objective_coef=self.objective_coef[keep],
            objective_constant=self.objective_constant[keep], noise=self.noise[keep],
            _models={})

    def model(self, method: str = "milp") -> ChanceModel:
        """The (cached) sparse model of these draws."""
        if method not in self._models:
            self._models[method] = ChanceModel(self, method)
        return self._models[method]


@dataclass(frozen=True)
class RobustPlan:
    """A plan solved against the draws.

    Attributes
    ----------
    status
        ``optimal``, ``time limit`` (the best plan found, within ``gap``), or
        ``infeasible``.
    spend, staff, on
        ``(C, M)`` the plan (NaN when infeasible).
    cost
        Its total cost (yuan), all spend included.
    objective
        The model's objective (cost, or the weighted mean of a maximizing objective).
    chance
        Per target key: the weighted chance across the draws of meeting it, with the
        simulation's noise as a normal around each draw's mean (:func:`evaluate_draws`).
    met
        ``(K, T)`` the model's indicator: target met in draw ``k`` with its noise sample.
    gap
        The solver's relative gap at the end.
    """

    status: str
    method: str
    level: float
    spend: np.ndarray
    staff: np.ndarray
    on: np.ndarray
    cost: float
    objective: float
    chance: dict[str, float]
    met: np.ndarray
    gap: float
    solve_seconds: float
    levels: dict[str, float] = field(default_factory=dict)
    """Per target key, the share of (draw, sample) pairs the last solve asked for (above
    ``level`` where calibration raised it)."""

    @property
    def optimal(self) -> bool:
        return self.status in ("optimal", "time limit")


def draw_set(scenario: Scenario, options: PlanOptions | None = None, draws: int = 100,
             seed: int = 0, *, noise: bool = True, exclude: np.ndarray | None = None,
             workers: int | None = 1, progress: bool | None = False) -> DrawSet:
    """``draws`` parameter draws of a twin scenario, as planning problems.

    Parameters
    ----------
    scenario
        A twin scenario (``population.parameters`` holds the draws). A scenario with no
        draws gives ``draws`` copies of its own parameters (chance alone).
    options
        As for :func:`simdomain.planner.planning.plan` (``curves="scenario"`` only: each
        draw's curves come from its parameters).
    draws
        ``K``: how many draws, taken without replacement in an order fixed by ``seed``.
    seed
        Which draws, and the chance samples.
    noise
        Add the simulation's chance to each draw (one normal sample per target).
    exclude
        Draw numbers not to take (e.g. the ones another set planned on).
    workers
        Local processes computing the draws' outcomes per add (the cohorts, 0.3 to 0.5 s
        a draw): 1 (default) in this process, ``None`` the cores available (from a
        script, under ``if __name__ == "__main__":``). The result does not depend on it.
    """
    from simdomain.twin.people import TwinPeople  # the twin only when asked

    started = time.perf_counter()
    options = PlanOptions() if options is None else options
    if options.curves != "scenario":
        raise InputError([InputProblem("--curves", (), "a plan over parameter draws takes "
                                       "each draw's curves from its parameters: use "
                                       "curves='scenario'")])
    if draws < 1:
        raise InputError([InputProblem("--draws", (), f"expected at least 1, got {draws}")])
    twin = TwinPeople.of(scenario) if scenario.population is not None else None
    available = (np.arange(1, twin.draws + 1) if twin is not None and twin.draws
                 else np.zeros(0, dtype=int))
    if exclude is not None:
        available = np.setdiff1d(available, exclude)
    rng = np.random.default_rng([seed, 0x40B5])
    if available.size:
        if draws > available.size:
            raise InputError([InputProblem("--draws", (), (
                f"asked for {draws} parameter draws; the twin has {available.size} to "
                "plan on"))])
        chosen = np.sort(rng.choice(available, size=draws, replace=False))
    else:
        chosen = np.zeros(draws, dtype=int)
    window = options.member_window_months
    base_cohorts = compute_cohorts(scenario, months_after=window)
    base_curves = scenario_curves(scenario)
    base = build_problem(scenario, options, base_curves, base_cohorts)
    names = base.channels
    n_k, n_t = len(chosen), len(base.targets)
    shape = (n_k, n_t, len(names), len(base.months))
    coef, den_coef = np.zeros(shape), np.zeros(shape)
    constant, den_constant = np.zeros((n_k, n_t)), np.zeros((n_k, n_t))
    objective_coef = np.zeros((n_k, *shape[2:]))
    objective_constant = np.zeros(n_k)
    curves, lags, carried = [], np.zeros((n_k, len(names))), np.zeros((n_k, len(names)))
    distinct = [int(d) for d in dict.fromkeys(chosen.tolist()) if d != 0]
    parts: dict[int, tuple[Any, ...]] = {}
    if 0 in chosen:
        parts[0] = _draw_parts(scenario, options, names, base_cohorts)
    from simdomain.workers import open_cluster  # worker processes only when asked

    with open_cluster(workers=workers, tasks=max(len(distinct), 1)) as cluster, \
            tqdm(total=len(distinct), desc="parameter draws", unit="draw", leave=False,
                 disable=None if progress is None else not progress) as bar:
        futures = {cluster.submit(_draw_parts, twin.scenario_for(scenario, draw), options,
                                  names): draw for draw in distinct}
        try:
            for future in cluster.as_completed(list(futures)):
                parts[futures[future]] = future.result()
                bar.update()
        except BaseException:
            cluster.cancel(list(futures))
            raise
    for k, draw in enumerate(chosen):
        found, targets, obj, obj_constant, lag = parts[int(draw)]
        curves.append(found)
        lags[k], carried[k] = lag
        for t, target in enumerate(targets):
            coef[k, t], constant[k, t] = target.coef, target.constant
            if target.denominator is not None:
                den_coef[k, t], den_constant[k, t] = target.denominator
        objective_coef[k], objective_constant[k] = obj, obj_constant
    base = _widened(base, scenario, curves)
    sd = noise_sd(scenario, base) if noise else np.zeros(n_t)
    out = assemble(base, chosen, curves, coef, constant, carryover=lags, carried=carried,
                   den_coef=den_coef,
                   den_constant=den_constant, objective_coef=objective_coef,
                   objective_constant=objective_constant, noise_sd=sd, seed=seed,
                   tolerance=options.tolerance, max_points=options.max_breakpoints)
    return replace(out, seconds=time.perf_counter() - started)


def _widened(base: Problem, scenario: Scenario, curves: list[list[ResponseCurve]]) -> Problem:
    """The point problem with each channel's largest spend widened to where the draw with
    the latest saturation stops paying (the point curve's own bound would cut the draws
    that saturate later); ``max_spend_cny`` still caps it."""
    upper = base.upper.copy()
    for c, name in enumerate(base.channels):
        if base.upper_reason[c] not in ("saturation", "contact capacity"):
            continue
        latest = max(draw[c].saturation_spend() for draw in curves)
        cap = scenario.channels[name].max_spend_cny
        upper[c] = max(upper[c], min(latest, math.inf if cap is None else cap))
    if np.array_equal(upper, base.upper):
        return base
    return replace(base, spend_upper=upper)


def _draw_parts(drawn: Scenario, options: PlanOptions, names: list[str],
                table: Cohorts | None = None) -> tuple[Any, ...]:
    """One draw's curves, targets, objective, and carry-over shares and carried spend
    (``(2, C)``) (a worker's task)."""
    if table is None:
        table = compute_cohorts(drawn, months_after=options.member_window_months)
    found = scenario_curves(drawn)
    targets, obj, obj_constant = linear_parts(drawn, options, table)
    lag = np.array([[drawn.channels[n].carryover for n in names],
                    [drawn.channels[n].carried_contacts * drawn.channels[n].cost_per_contact_cny
                     for n in names]])
    return [found[n] for n in names], targets, obj, obj_constant, lag


def assemble(base: Problem, draws: np.ndarray, curves: list[list[ResponseCurve]],
             coef: np.ndarray, constant: np.ndarray, *, carryover: np.ndarray | None = None,
             carried: np.ndarray | None = None,
             den_coef: np.ndarray | None = None, den_constant: np.ndarray | None = None,
             objective_coef: np.ndarray | None = None,
             objective_constant: np.ndarray | None = None, noise_sd: np.ndarray | None = None,
             seed: int = 0, tolerance: float = 0.002, max_points: int = 24) -> DrawSet:
    """A :class:`DrawSet` from its arrays (see its attributes): the shared breakpoints
    are placed here (:func:`common_grid`). Missing arrays default to the base problem's
    (objective, carried spend) or zeros (denominators, carry-over, noise)."""
    n_k, n_t = len(draws), len(base.targets)
    n_ch = len(base.channels)
    lags = np.zeros((n_k, n_ch)) if carryover is None else np.asarray(carryover, dtype=float)
    den_coef = np.zeros_like(coef) if den_coef is None else den_coef
    den_constant = np.zeros_like(constant) if den_constant is None else den_constant
    if objective_coef is None:
        objective_coef = np.broadcast_to(base.objective_coef, (n_k, *coef.shape[2:])).copy()
    if objective_constant is None:
        objective_constant = np.full(n_k, base.objective_constant)
    sd = np.zeros(n_t) if noise_sd is None else np.asarray(noise_sd, dtype=float)
    samples = (np.random.default_rng([seed, 0x5A3E]).standard_normal((n_k, n_t))
               if sd.any() else np.zeros((n_k, n_t)))
    carried = (np.broadcast_to(base.carried_in, (n_k, n_ch)).copy() if carried is None
               else np.asarray(carried, dtype=float))
    carry = lags.mean(axis=0)
    if carry.any():  # the model plans with the draws' mean carry-over and carried spend
        base = replace(base, carryover=carry, carried=carried.mean(axis=0),
                       spend_upper=base.upper)
    grid, grid_adds, errors = [], [], np.zeros(n_ch)
    upper = base.upper
    for c in range(n_ch):
        reach = _reach(float(upper[c]), float(carry[c]), float(base.carried_in[c]),
                       len(base.months))
        spend = [effective_curve(curves[k][c], carry[c]) for k in range(n_k)]
        include = base.pwl[c].spend if not carry[c] else ()
        xs, adds, err = common_grid(spend, reach, tolerance=tolerance, max_points=max_points,
                                    include=include)
        grid.append(xs)
        grid_adds.append(adds)
        errors[c] = err
    return DrawSet(base, np.asarray(draws), curves, lags, carried, grid, grid_adds, errors,
                   np.asarray(coef, dtype=float), np.asarray(constant, dtype=float),
                   den_coef, den_constant, objective_coef, objective_constant, sd, samples)


def _reach(upper: float, lag: float, carried: float, months: int) -> float:
    """The largest effective spend of a channel: ``upper`` itself without carry-over."""
    if lag <= 0:
        return upper
    return upper * (1 - lag**months) / (1 - lag) + lag * carried


def noise_sd(scenario: Scenario, problem: Problem) -> np.ndarray:
    """``(T,)`` how far a simulated target strays from its mean, at its goal.

    Counts (adds, members, people) as Poisson: ``sqrt(goal)`` (every person counted,
    the adds without spend among them: they are Poisson in the engine). GMV as compound
    Poisson orders of the segments' mean order value ``v`` and spread ``cv``:
    ``sqrt(goal v (1 + cv^2))``. A deletion rate as Poisson deletions over the month's
    starting pool without the month's bought adds (the adds without spend, the month's
    own included, are in it; the smallest pool, so the largest spread):
    ``sqrt(rate / pool)``. An approximation where adds are Poisson and people act
    independently; verification by simulation measures the real spread.
    """
    segments = scenario.segments.values()
    shares = np.array([s.share for s in segments])
    value = float(np.dot(shares, [s.order_value_cny for s in segments]) / shares.sum())
    spread = float(np.dot(shares, [s.order_value_cv for s in segments]) / shares.sum())
    out = np.zeros(len(problem.targets))
    for t, target in enumerate(problem.targets):
        goal = max(abs(target.planned), 1.0)
        if target.ceiling:
            pool = max(target.denominator[1], 1.0)
            out[t] = math.sqrt(abs(target.planned) / pool)
        elif target.unit == "cny":
            out[t] = math.sqrt(goal * value * (1 + spread**2))
        else:
            out[t] = math.sqrt(goal)
    return out


def draw_adds(draws: DrawSet, spend: np.ndarray, staff: np.ndarray | None = None) -> np.ndarray:
    """``(K, C, M)`` realized adds of a plan in each draw, with the exact curves (staff
    accounts cap them when given)."""
    base = draws.base
    out = np.empty((draws.size, *spend.shape))
    for k in range(draws.size):
        out[k] = base.adds_factor * curve_adds(draws.curves[k], spend, draws.carryover[k],
                                               draws.carried[k])
    if staff is not None:  # the free adds take the accounts' capacity first
        cap = np.where(np.isnan(base.staff_capacity), np.inf, np.maximum(
            np.asarray(staff) * np.nan_to_num(base.staff_capacity, nan=1.0)
            - base.free_adds, 0.0))
        out = np.minimum(out, cap[None])
    return out


def evaluate_draws(draws: DrawSet, spend: np.ndarray, staff: np.ndarray | None = None,
                   weights: np.ndarray | None = None) -> dict[str, Any]:
    """A plan's targets in every draw, with the exact curves.

    Returns ``values`` ``(K, T)`` (the model's mean per draw), ``margin`` ``(K, T)`` (how
    far past the goal, in noise sds; positive is met), ``chance`` per target key (the
    weighted mean over draws of the normal probability of being met, or of the indicator
    when there is no noise) and ``met`` ``(K, T)`` (met with the draw's noise sample).
    """
    weights = _weights(draws, weights)
    adds = draw_adds(draws, spend, staff)
    values = draws.constant + np.einsum("ktcm,kcm->kt", draws.coef, adds)
    ceiling = np.array([t.ceiling for t in draws.targets], dtype=bool)
    if ceiling.any():
        den = draws.den_constant + np.einsum("ktcm,kcm->kt", draws.den_coef, adds)
        values[:, ceiling] = np.where(den[:, ceiling] > 0,
                                      values[:, ceiling] / np.maximum(den[:, ceiling], 1e-300),
                                      0.0)
    planned = np.array([t.goal for t in draws.targets])
    excess = np.where(ceiling, planned - values, values - planned)
    sd = draws.noise_sd
    slack = 1e-6 * np.maximum(np.abs(planned), 1.0)
    if sd.any():
        margin = excess / np.where(sd > 0, sd, 1.0)
        z = NormalDist()
        probability = np.vectorize(z.cdf)(np.where(sd > 0, margin, np.sign(excess + slack) * 40))
    else:
        margin = excess
        probability = (excess >= -slack).astype(float)
    met = excess + sd * draws.noise >= -slack
    chance = {t.key: float(weights @ probability[:, i]) for i, t in enumerate(draws.targets)}
    return {"values": values, "margin": margin, "chance": chance, "met": met, "adds": adds}


def _weights(draws: DrawSet, weights: np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.full(draws.size, 1.0 / draws.size)
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (draws.size,) or (weights < 0).any() or not weights.sum() > 0:
        raise ValueError(f"weights must be {draws.size} numbers >= 0 with a positive sum")
    return weights / weights.sum()


def solve_chance(draws: DrawSet, level: float, weights: np.ndarray | None = None,
                 solver: str | None = None, *, method: str = "sets",
                 time_limit: float = 60.0, gap: float = 1e-4,
                 calibrate: bool = True) -> RobustPlan:
    """The plan that meets each target with probability ``level`` across the draws.

    Parameters
    ----------
    draws
        From :func:`draw_set`.
    level
        ``P`` in ``(0, 1]``: each target's weighted share of draws (with their chance
        samples) in which it must be met.
    weights
        ``(K,)`` weights of the draws (default equal); normalized to sum to one. Only the
        chance rows change with them: the model is built once per draw set and method.
    solver
        ``None`` or ``"highs"`` (scipy's HiGHS, the only one this model uses).
    method
        ``sets`` (default: the CVaR plan, then the draws each target must meet chosen by
        the plan's margins and re-solved with them fixed, until the cost stops falling;
        feasible for the sample average approximation, not proved optimal), ``milp``
        (the sample average approximation solved exactly, to ``gap``) or ``cvar`` (a
        linear program, conservative).
    time_limit, gap
        The solver stops after ``time_limit`` seconds with the best plan found, or when
        proved within the relative ``gap``.
    calibrate
        With chance samples (``noise_sd > 0``), the plan fits its samples: a target met in
        a share ``P`` of the (draw, sample) pairs may have a smaller exact chance (the
        normal integrated over each draw's noise, :func:`evaluate_draws`). ``sets`` then
        asks the draws of each short target's set for a margin past the goal, moved by
        Newton steps until the exact chance reaches ``P``; ``milp`` raises the target's
        share of pairs by its shortfall, up to three more solves; ``cvar`` is
        conservative and left as it is.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if solver not in (None, "highs"):
        raise ValueError(f"the plan over draws is solved by scipy's HiGHS; got solver {solver!r}")
    if not 0 < level <= 1:
        raise ValueError(f"level must be in (0, 1], got {level}")
    w = _weights(draws, weights)
    levels = np.full(len(draws.targets), float(level))
    if method == "sets":
        exact = _exact_chance(draws, w) if calibrate and draws.noise_sd.any() else None
        return _solve_once(draws, level, levels, w, method, time_limit, gap, exact=exact)
    rounds = 4 if calibrate and draws.noise_sd.any() and method == "milp" else 1
    best: RobustPlan | None = None
    for _ in range(rounds):
        found = _solve_once(draws, level, levels, w, method, time_limit, gap)
        if not found.optimal:
            break
        best = found
        chance = np.array([found.chance[t.key] for t in draws.targets])
        short = (chance < level - 1e-3) & (levels < 1)
        if not short.any():
            break
        levels = np.where(short, np.minimum(levels + level - chance, 1.0), levels)
    return found if best is None else best


def _exact_chance(draws: DrawSet, weights: np.ndarray) -> Any:
    """A plan's exact chance per target ``(T,)``, or, with ``slope=True``, ``(K, T)`` each
    draw's share of its rate of change when the draw's mean moves by one noise sd."""
    def chance(spend: np.ndarray, staff: np.ndarray, slope: bool = False) -> np.ndarray:
        check = evaluate_draws(draws, spend, staff, weights)
        if slope:
            density = np.exp(-0.5 * check["margin"] ** 2) / math.sqrt(2 * math.pi)
            return weights[:, None] * density
        return np.array([check["chance"][t.key] for t in draws.targets])
    return chance


def _solve_once(draws: DrawSet, level: float, levels: np.ndarray, w: np.ndarray, method: str,
                time_limit: float, gap: float, exact: Any = None) -> RobustPlan:
    if method == "sets":
        out, model = by_sets(draws, levels, w, time_limit=time_limit, gap=gap, calibrate=exact)
    else:
        model = draws.model(method)
        out = model.solve(levels, w, time_limit=time_limit, gap=gap)
    shape = model.shape
    asked = {t.key: float(v) for t, v in zip(draws.targets, levels)}
    if out["status"] == "infeasible":
        nan = np.full(shape, np.nan)
        return RobustPlan("infeasible", method, level, nan, nan, nan, math.nan, math.nan, {},
                          np.zeros((draws.size, len(draws.targets)), dtype=bool), math.nan,
                          out["seconds"], asked)
    x = out["x"]
    spend = np.maximum(x[model.x], 0.0)
    staff = whole_staff(model, x)
    on = np.where(model.on >= 0, np.round(x[np.maximum(model.on, 0)]), spend > _TOL)
    spend = np.where(on > 0, spend, 0.0)
    base = draws.base
    cost = float((spend * base.spend_share).sum() + (base.fixed_cost[:, None] * on).sum()
                 + (base.staff_cost[:, None] * staff).sum() + base.other_costs.sum())
    check = evaluate_draws(draws, spend, staff, w)
    if method == "sets" and np.any(w @ check["met"] < levels - 1e-6):
        out = {**out, "status": "infeasible"}  # a set held a draw no plan can meet
    return RobustPlan(out["status"], method, level, spend, staff, on.astype(float), cost,
                      out["objective"], check["chance"], check["met"], out["gap"],
                      out["seconds"], asked)
