"""The planning problem in numbers: curves, costs, capacities and linear targets.

Everything the optimizer needs is here as arrays over channels ``c`` and months ``m``,
so the model (:mod:`simdomain.planner.milp`) never looks at a scenario. The decision
per channel and month is the *planned monthly spend* ``x`` (what a scenario's
``monthly_spend_cny`` holds); it buys ``curve(x)`` adds in a full month without
campaigns, and ``adds_factor * curve(x)`` *realized* adds in the month as the horizon
and its campaigns shape it. Every target is linear in the realized adds, with the
coefficients of :mod:`simdomain.planner.cohorts`.

Adds that come without spend (``free_adds_per_month``, :func:`~simdomain.planner.cohorts.
free_adds`) are a known constant ``F`` (``(C, M)``): a target's constant holds what they
bring, ``sum(coef_free * F)``, with their own outcomes per add (their segments follow the
channel's audience, see :mod:`simdomain.planner.cohorts`). On a staffed channel they take the staff accounts' capacity first:
the accounts planned for a month must take its free adds *and* its bought ones
(``y + F <= capacity n``), also in a month without spend (the engine caps all of a
channel's adds at its accounts; the cost of accounts in such a month is counted, which
the engine would not charge: on the safe side).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from simdomain.errors import InputError
from simdomain.errors import Problem as InputProblem
from simdomain.planner.cohorts import Cohorts, adds_multipliers, free_adds
from simdomain.planner.curves import Pwl, ResponseCurve, approximate, effective_curve
from simdomain.scenario.model import Scenario
from simdomain.sim.world import Calendar

OBJECTIVES = ("min-cost", "max-members", "max-adds", "max-gmv")
BASES = ("cohort", "calendar")


@dataclass(frozen=True)
class PlanOptions:
    """How to plan. Budgets left ``None`` come from the scenario's ``budget``.

    Attributes
    ----------
    objective
        ``min-cost`` (the cheapest plan that meets every target) or ``max-members``,
        ``max-adds``, ``max-gmv`` (the most over the horizon within the budget; the
        targets still hold).
    total_budget_cny, monthly_budget_cny
        Override the scenario's budget (all spend: channels, staff, campaigns).
    locks
        Channels whose planned monthly spend is fixed: one amount, or one per month.
    curves
        ``scenario`` (from the channel parameters) or ``simulated`` (measured).
    members_basis
        ``cohort``: a month's member target counts the members that month's adds bring
        within ``member_window_months`` months (the join-rate view of planning);
        ``calendar``: the members who join in the month, the initial pool's included.
    members_per_add
        A channel value table: members per add by channel, replacing the rate the
        lifecycle gives (timing kept from the lifecycle).
    planned_goals
        Goals the model must reach instead of the scenario's, by target key
        (``monthly_new_members__2027-03``): margins for confidence.
    tolerance, max_breakpoints
        Piecewise-linear approximation of the curves (see :func:`approximate`).
    staff_headroom
        Staff accounts are planned for the peak day's adds times this.
    """

    objective: str = "min-cost"
    total_budget_cny: float | None = None
    monthly_budget_cny: float | None = None
    locks: dict[str, float | list[float]] = field(default_factory=dict)
    curves: str = "scenario"
    members_basis: str = "cohort"
    member_window_months: int = 6
    members_per_add: dict[str, float] = field(default_factory=dict)
    planned_goals: dict[str, float] = field(default_factory=dict)
    tolerance: float = 0.002
    max_breakpoints: int = 24
    staff_headroom: float = 1.1


@dataclass(frozen=True)
class Target:
    """A target as a linear function of the realized adds ``A`` (``(C, M)``).

    ``value = constant + sum(coef * A)``; a ceiling (``denominator`` set) is a ratio
    ``value / (den_constant + sum(den_coef * A)) <= planned``.
    """

    name: str
    period: str
    goal: float
    planned: float
    coef: np.ndarray
    constant: float
    unit: str
    denominator: tuple[np.ndarray, float] | None = None

    @property
    def key(self) -> str:
        return f"{self.name}__{self.period}"

    @property
    def ceiling(self) -> bool:
        return self.denominator is not None

    def value(self, adds: np.ndarray) -> float:
        """The target's measure for realized adds ``adds``."""
        value = self.constant + float((self.coef * adds).sum())
        if self.denominator is None:
            return value
        den_coef, den_constant = self.denominator
        den = den_constant + float((den_coef * adds).sum())
        return value / den if den > 0 else 0.0

    def met(self, value: float, goal: float | None = None, rtol: float = 1e-6) -> bool:
        goal = self.goal if goal is None else goal
        slack = rtol * max(abs(goal), 1.0)
        return value <= goal + slack if self.ceiling else value >= goal - slack


@dataclass(frozen=True)
class Problem:
    """A planning problem as arrays; ``C`` channels by ``M`` months."""

    channels: list[str]
    months: list[str]
    spend_share: np.ndarray
    """(M,) share of a planned month's spend charged (simulated days / month length)."""
    curves: list[ResponseCurve]
    pwl: list[Pwl]
    upper_reason: list[str]
    """Per channel, what bounds its spend: ``contact capacity``, ``saturation``,
    ``max_spend_cny`` or ``targets and budget``."""
    adds_factor: np.ndarray
    """(C, M) realized adds per curve add (horizon share x mean campaign multiplier)."""
    min_spend: np.ndarray
    fixed_cost: np.ndarray
    staff_capacity: np.ndarray
    """(C, M) realized adds one staff account takes in the month; NaN: no staff."""
    staff_cost: np.ndarray
    locks: np.ndarray
    """(C, M) locked planned spend; NaN: free."""
    targets: list[Target]
    total_budget: float | None
    monthly_budget: float | None
    other_costs: np.ndarray
    """(M,) spend outside the channels (campaigns), counted in the budgets."""
    objective: str
    objective_coef: np.ndarray
    objective_constant: float
    objective_unit: str
    member_value: np.ndarray
    """(C, M) members the realized adds of a channel-month bring (cohort view)."""
    carryover: np.ndarray | None = None
    """(C,) share of a month's effective spend still working the next month (``None``:
    none). The curve applies to the effective spend ``e_m = x_m + carryover e_(m-1)``."""
    carried: np.ndarray | None = None
    """(C,) effective spend ``e_(-1)`` carried into the first month (yuan)."""
    spend_upper: np.ndarray | None = None
    """(C,) largest planned monthly spend when it differs from the curves' last breakpoint
    (with carry-over the breakpoints are in effective spend)."""
    free: np.ndarray | None = None
    """(C, M) expected adds without spend (``None``: none); the targets' constants hold
    what they bring, and on a staffed channel they take capacity first."""

    @property
    def free_adds(self) -> np.ndarray:
        """(C, M) expected adds without spend (zeros when none)."""
        if self.free is None:
            return np.zeros((len(self.channels), len(self.months)))
        return self.free

    @property
    def upper(self) -> np.ndarray:
        """(C,) largest planned monthly spend per channel."""
        if self.spend_upper is not None:
            return self.spend_upper
        return np.array([p.spend[-1] for p in self.pwl])

    @property
    def switched(self) -> np.ndarray:
        """(C,) channels that need an on/off decision (a fixed cost or a minimum spend)."""
        return (self.fixed_cost > 0) | (self.min_spend > 0)

    @property
    def lag(self) -> np.ndarray:
        """(C,) the carry-over share (zeros when there is none)."""
        return np.zeros(len(self.channels)) if self.carryover is None else self.carryover

    @property
    def carried_in(self) -> np.ndarray:
        """(C,) effective spend carried into the first month (zeros when none)."""
        return np.zeros(len(self.channels)) if self.carried is None else self.carried

    def effective(self, spend: np.ndarray) -> np.ndarray:
        """(C, M) effective spend of a plan: ``e_m = x_m + carryover e_(m-1)``."""
        return effective_spend(spend, self.lag, self.carried_in)


def effective_spend(spend: np.ndarray, carryover: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """``e_m = x_m + carryover e_(m-1)`` with ``e_(-1) = carried``; ``spend`` is ``(C, M)``
    (or ``(..., C, M)`` with ``carryover`` and ``carried`` broadcasting over ``(..., C)``)."""
    spend = np.asarray(spend, dtype=float)
    out = np.empty_like(spend)
    previous = np.broadcast_to(np.asarray(carried, dtype=float), spend.shape[:-1])
    lag = np.asarray(carryover, dtype=float)
    for m in range(spend.shape[-1]):
        previous = spend[..., m] + lag * previous
        out[..., m] = previous
    return out



@dataclass(frozen=True)
class Evaluation:
    """A spend plan's adds, costs and target values in the planner's model."""

    spend: np.ndarray
    staff: np.ndarray
    adds: np.ndarray
    channel_cost: np.ndarray
    """(C, M) charged spend + fixed cost + staff cost."""
    month_cost: np.ndarray
    """(M,) channel costs plus the other costs."""
    total_cost: float
    values: dict[str, float]
    objective: float

    def shortfalls(self, problem: Problem) -> dict[str, float]:
        """Targets (by key) the plan misses, with how far."""
        out = {}
        for t in problem.targets:
            if not t.met(self.values[t.key]):
                out[t.key] = self.values[t.key] - t.goal
        return out


def evaluate(problem: Problem, spend: np.ndarray, staff: np.ndarray | None = None) -> Evaluation:
    """Evaluate a plan with the exact curves; ``staff=None`` takes the fewest accounts.

    ``adds`` are the bought adds (the free ones are in the targets' constants). Free adds
    take the staff accounts' capacity first; bought adds above what is left are lost, and
    free adds above the whole capacity too (the targets' values count them out, at the
    bought adds' outcomes per add).
    """
    spend = np.asarray(spend, dtype=float)
    curve = curve_adds(problem.curves, spend, problem.lag, problem.carried_in)
    adds = problem.adds_factor * curve
    free = problem.free_adds
    capacity = np.nan_to_num(problem.staff_capacity, nan=np.inf)
    on = spend > 0
    if staff is None:  # with carry-over, a month without spend still brings adds
        staff = np.where(np.isfinite(capacity) & (on | (curve > 0) | (free > 0)),
                         np.ceil((adds + free) / np.where(capacity > 0, capacity, 1.0) - 1e-9),
                         0.0)
    staffed = np.isfinite(capacity)
    staff = np.where(staffed, staff, 0.0)
    room = np.where(staffed, staff * np.where(staffed, capacity, 0.0), np.inf)
    adds = np.minimum(adds, np.maximum(room - free, 0.0))
    # free adds the accounts cannot take, counted out at the bought adds' coefficients
    # (close: only the segment mix differs); plans from the model never lose any
    lost = np.maximum(free - room, 0.0)
    channel_cost = (spend * problem.spend_share + problem.fixed_cost[:, None] * on
                    + problem.staff_cost[:, None] * staff)
    month_cost = channel_cost.sum(axis=0) + problem.other_costs
    values = {t.key: t.value(adds - lost) for t in problem.targets}
    total = float(month_cost.sum())
    objective = total if problem.objective == "min-cost" else (
        problem.objective_constant + float((problem.objective_coef * adds).sum()))
    objective -= 0.0 if problem.objective == "min-cost" else float(
        (problem.objective_coef * lost).sum())
    return Evaluation(spend, staff, adds, channel_cost, month_cost, total, values, objective)


def curve_adds(curves: list[ResponseCurve], spend: np.ndarray, carryover: np.ndarray,
               carried: np.ndarray) -> np.ndarray:
    """(C, M) each channel's curve adds of a plan, before campaigns and staff.

    With carry-over, a month's purchases are capped at the contact capacity, then the
    curve applies to the effective spend (:func:`effective_spend`).
    """
    spend = np.asarray(spend, dtype=float)
    if not np.any(carryover):
        return np.array([c.adds(spend[i]) for i, c in enumerate(curves)]).reshape(spend.shape)
    cap = np.array([np.inf if c.capacity_spend is None else c.capacity_spend for c in curves])
    moving = effective_spend(np.minimum(spend, cap[:, None]), carryover, carried)
    return np.array([effective_curve(c, lag).adds(moving[i])
                     for i, (c, lag) in enumerate(zip(curves, carryover))]).reshape(spend.shape)


def current_spend(scenario: Scenario) -> np.ndarray:
    """(C, M) the scenario's own spend plan."""
    return np.array([[ch.spend_in_month(m) for m in range(scenario.months)]
                     for ch in scenario.channels.values()]).reshape(len(scenario.channels), -1)


def current_staff(scenario: Scenario) -> np.ndarray:
    """(C, M) the scenario's staff accounts in the months its channels spend or have adds
    without spend."""
    busy = current_spend(scenario) > 0
    free = np.array([ch.free_adds_per_month for ch in scenario.channels.values()])
    accounts = np.array([ch.staff.accounts if ch.staff else 0 for ch in scenario.channels.values()])
    return np.where(busy | (free[:, None] > 0), accounts[:, None], 0).astype(float)


def parse_locks(scenario: Scenario, locks: dict[str, float | list[float]]) -> np.ndarray:
    """(C, M) locked spends, NaN where free; unknown channels are an input error."""
    known = list(scenario.channels)
    out = np.full((len(known), scenario.months), np.nan)
    problems = []
    for name, value in locks.items():
        if name not in scenario.channels:
            problems.append(InputProblem("--lock", (), f"unknown channel {name!r}; known: {known}"))
            continue
        values = value if isinstance(value, list) else [value] * scenario.months
        if len(values) != scenario.months or any(v < 0 or not math.isfinite(v) for v in values):
            problems.append(InputProblem("--lock", (name,), "expected a spend >= 0, or one per "
                                         f"month of the {scenario.months}, got {value!r}"))
            continue
        out[known.index(name)] = values
    if problems:
        raise InputError(problems)
    return out


def build_problem(scenario: Scenario, options: PlanOptions, curves: dict[str, ResponseCurve],
                  cohorts: Cohorts) -> Problem:
    """The planning problem of ``scenario`` under ``options``.

    Parameters
    ----------
    curves
        Response curve per channel (see :mod:`simdomain.planner.curves`).
    cohorts
        Outcomes per add, followed at least ``member_window_months`` past the horizon.
    """
    _check_options(scenario, options)
    names = list(scenario.channels)
    n_ch, n_mo = len(names), scenario.months
    calendar = Calendar.of(scenario.start_date, scenario.horizon_days)
    days_in = np.bincount(calendar.month, minlength=n_mo).astype(float)
    share = days_in / calendar.month_length
    multiplier = adds_multipliers(scenario, scenario.horizon_days)
    mean_mult = np.array([np.bincount(calendar.month, weights=row, minlength=n_mo)
                          for row in multiplier]).reshape(n_ch, n_mo) / days_in
    peak = np.array([[row[calendar.month == m].max() for m in range(n_mo)]
                     for row in multiplier]).reshape(n_ch, n_mo)
    adds_factor = share * mean_mult
    staff_capacity = np.full((n_ch, n_mo), np.nan)
    for c, ch in enumerate(scenario.channels.values()):
        if ch.staff is not None:
            staff_capacity[c] = (ch.staff.adds_per_account_per_day * days_in * mean_mult[c]
                                 / np.maximum(peak[c], 1e-12) / options.staff_headroom)
    locks = parse_locks(scenario, options.locks)
    total_budget = _first(options.total_budget_cny, scenario.budget.total_cny)
    monthly_budget = _first(options.monthly_budget_cny, scenario.budget.monthly_cny)
    other = np.zeros(n_mo)
    for campaign in scenario.campaigns:
        other[calendar.month[calendar.day_of(campaign.start)]] += campaign.cost_cny

    members_cohort, _ = _member_rates(scenario, options, cohorts)
    targets, objective_coef, constant = linear_parts(scenario, options, cohorts)
    unit = {"min-cost": "cny", "max-adds": "adds", "max-members": "members",
            "max-gmv": "cny"}[options.objective]

    baseline = current_spend(scenario)
    lag = np.array([ch.carryover for ch in scenario.channels.values()])
    carried = np.array([ch.carried_contacts * ch.cost_per_contact_cny
                        for ch in scenario.channels.values()])
    pwl, reasons, uppers = [], [], []
    for c, name in enumerate(names):
        ch = scenario.channels[name]
        must = [*baseline[c], *np.nan_to_num(locks[c]), ch.min_spend_cny]
        upper, reason = _spend_bound(curves[name], ch.max_spend_cny, total_budget,
                                     monthly_budget, share, adds_factor[c], targets, max(must))
        reasons.append(reason)
        uppers.append(upper)
        if lag[c] > 0:  # breakpoints in effective spend, up to its largest value
            reach = upper * (1 - lag[c] ** n_mo) / (1 - lag[c]) + lag[c] * carried[c]
            must = effective_spend(baseline[c][None], lag[c:c + 1], carried[c:c + 1])[0]
            pwl.append(approximate(effective_curve(curves[name], lag[c]), reach,
                                   tolerance=options.tolerance,
                                   max_points=options.max_breakpoints, include=must))
        else:
            pwl.append(approximate(curves[name], upper, tolerance=options.tolerance,
                                   max_points=options.max_breakpoints, include=must))
    carry = bool(lag.any())
    return Problem(
        channels=names, months=calendar.labels, spend_share=share,
        curves=[curves[n] for n in names], pwl=pwl, upper_reason=reasons,
        adds_factor=adds_factor,
        min_spend=np.array([ch.min_spend_cny for ch in scenario.channels.values()]),
        fixed_cost=np.array([ch.fixed_cost_cny for ch in scenario.channels.values()]),
        staff_capacity=staff_capacity,
        staff_cost=np.array([ch.staff.monthly_cost_per_account_cny if ch.staff else 0.0
                             for ch in scenario.channels.values()]),
        locks=locks, targets=targets, total_budget=total_budget, monthly_budget=monthly_budget,
        other_costs=other, objective=options.objective, objective_coef=objective_coef,
        objective_constant=constant, objective_unit=unit, member_value=members_cohort,
        carryover=lag if carry else None, carried=carried if carry else None,
        spend_upper=np.array(uppers) if carry else None,
        free=free_adds(scenario) if any(ch.free_adds_per_month > 0
                                        for ch in scenario.channels.values()) else None,
    )


def linear_parts(scenario: Scenario, options: PlanOptions,
                 cohorts: Cohorts) -> tuple[list[Target], np.ndarray, float]:
    """The targets, and the objective's ``(C, M)`` coefficients on the realized adds and
    its constant: everything in the problem that outcomes per add decide.

    The constants include what the adds without spend bring (:func:`free_adds`, with
    their own outcomes per add: :meth:`Cohorts.free_view`).
    """
    targets, objective_coef, constant = _linear(scenario, options, cohorts)
    free = free_adds(scenario)
    if free.any():
        per_free, free_coef, _ = _linear(scenario, options, cohorts.free_view())
        targets = [_with_free(t, f, free) for t, f in zip(targets, per_free)]
        constant += float((free_coef * free).sum())
    return targets, objective_coef, constant


def _with_free(target: Target, per_free: Target, free: np.ndarray) -> Target:
    """``target`` with what the adds without spend ``free`` (``(C, M)``) bring, at the
    coefficients per free add ``per_free``, in its constants."""
    denominator = target.denominator
    if denominator is not None:
        denominator = (denominator[0],
                       denominator[1] + float((per_free.denominator[0] * free).sum()))
    return replace(target, constant=target.constant + float((per_free.coef * free).sum()),
                   denominator=denominator)


def _linear(scenario: Scenario, options: PlanOptions,
            cohorts: Cohorts) -> tuple[list[Target], np.ndarray, float]:
    """:func:`linear_parts` per add of ``cohorts``, the adds without spend left out."""
    n_ch, n_mo = len(scenario.channels), scenario.months
    calendar = Calendar.of(scenario.start_date, scenario.horizon_days)
    members_cohort, members_calendar = _member_rates(scenario, options, cohorts)
    targets = _targets(scenario, options, cohorts, calendar, members_cohort, members_calendar)
    members_total = (members_cohort if options.members_basis == "cohort"
                     else members_calendar[:, :, :n_mo].sum(axis=2))
    gmv_day = (calendar.day_of(scenario.targets.gmv.by) if scenario.targets.gmv
               else scenario.horizon_days - 1)
    objective_coef, constant = {
        "min-cost": (np.zeros((n_ch, n_mo)), 0.0),
        "max-adds": (np.ones((n_ch, n_mo)), 0.0),
        "max-members": (members_total, float(cohorts.base_members[:n_mo].sum())
                        if options.members_basis == "calendar" else 0.0),
        "max-gmv": (cohorts.gmv[:, :, gmv_day], float(cohorts.base_gmv[gmv_day])),
    }[options.objective]
    return targets, objective_coef, constant


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def _check_options(scenario: Scenario, options: PlanOptions) -> None:
    problems = []
    if options.objective not in OBJECTIVES:
        problems.append(f"objective must be one of {list(OBJECTIVES)}, got {options.objective!r}")
    if options.members_basis not in BASES:
        problems.append(f"members basis must be one of {list(BASES)}, "
                        f"got {options.members_basis!r}")
    unknown = sorted(set(options.members_per_add) - set(scenario.channels))
    if unknown:
        problems.append(f"channel values name unknown channels {unknown}; "
                        f"known: {list(scenario.channels)}")
    if options.objective != "min-cost" and not scenario.channels:
        problems.append("the scenario has no channels to plan")
    if problems:
        raise InputError([InputProblem("plan", (), p) for p in problems])


def _member_rates(scenario: Scenario, options: PlanOptions,
                  cohorts: Cohorts) -> tuple[np.ndarray, np.ndarray]:
    """Members per add ``(C, K)`` within the window, and by calendar month ``(C, K, months)``,
    after the channel value table's overrides."""
    within = cohorts.members_within(options.member_window_months)
    by_month = cohorts.members.copy()
    for c, name in enumerate(cohorts.channels):
        if name in options.members_per_add:
            value = options.members_per_add[name]
            scale = np.divide(value, within[c], out=np.zeros_like(within[c]),
                              where=within[c] > 0)
            by_month[c] *= scale[:, None]
            within[c] = value
    return within, by_month


def _targets(scenario: Scenario, options: PlanOptions, cohorts: Cohorts, calendar: Calendar,
             members_cohort: np.ndarray, members_calendar: np.ndarray) -> list[Target]:
    goals = scenario.targets
    n_ch, n_mo = len(scenario.channels), scenario.months
    full = [m for m in range(n_mo)
            if np.count_nonzero(calendar.month == m) == calendar.month_length[m]]
    out: list[Target] = []

    def add(name: str, period: str, goal: float, coef: np.ndarray, constant: float, unit: str,
            denominator: tuple[np.ndarray, float] | None = None) -> None:
        key = f"{name}__{period}"
        out.append(Target(name, period, float(goal), float(options.planned_goals.get(key, goal)),
                          coef, constant, unit, denominator))

    def month_only(m: int, values: np.ndarray | float = 1.0) -> np.ndarray:
        coef = np.zeros((n_ch, n_mo))
        coef[:, m] = values
        return coef

    pool_per_add, pool_base = cohorts.pool_start()
    for m in full:
        label = calendar.labels[m]
        if goals.monthly_new_adds is not None:
            add("monthly_new_adds", label, goals.monthly_new_adds, month_only(m), 0.0, "adds")
        if goals.monthly_new_members is not None:
            if options.members_basis == "cohort":
                coef, constant = month_only(m, members_cohort[:, m]), 0.0
            else:
                coef, constant = members_calendar[:, :, m], float(cohorts.base_members[m])
            add("monthly_new_members", label, goals.monthly_new_members, coef, constant,
                "members")
        if goals.max_monthly_deletion_rate is not None:
            den = pool_per_add[:, :, m] + month_only(m)
            add("max_monthly_deletion_rate", label, goals.max_monthly_deletion_rate,
                cohorts.deletions[:, :, m], float(cohorts.base_deletions[m]), "rate",
                (den, float(pool_base[m])))
    for pool in goals.pool_size:
        day = calendar.day_of(pool.date)
        add("pool_size", str(pool.date), pool.size, cohorts.alive[:, :, day],
            float(cohorts.base_alive[day]), "people")
    if goals.gmv is not None:
        day = calendar.day_of(goals.gmv.by)
        add("gmv", str(goals.gmv.by), goals.gmv.total_cny, cohorts.gmv[:, :, day],
            float(cohorts.base_gmv[day]), "cny")
    return out


def _spend_bound(curve: ResponseCurve, max_spend: float | None, total: float | None,
                 monthly: float | None, share: np.ndarray, factor: np.ndarray,
                 targets: list[Target], at_least: float) -> tuple[float, str]:
    """The largest planned monthly spend worth modelling for one channel, and why.

    The contact capacity, else where the curve has all but 0.1% of its adds, else
    (a straight line) enough to reach the largest target alone three times over or to
    spend the whole budget; ``max_spend_cny`` caps it.
    """
    bound, reason = curve.saturation_spend(), (
        "contact capacity" if curve.capacity_spend is not None else "saturation")
    if math.isinf(bound):
        people = max([t.planned for t in targets if t.unit in ("adds", "members", "people")],
                     default=0.0)
        per_cny = curve.adds_per_cny * max(float(factor.min()), 1e-3)
        budgets = [b / share.min() for b in (total, monthly) if b is not None]
        bound, reason = max([3 * people / max(per_cny, 1e-12), *budgets]), "targets and budget"
    if max_spend is not None and max_spend <= max(bound, at_least):
        return max_spend, "max_spend_cny"
    return max(bound, at_least), reason
