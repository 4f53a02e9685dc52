"""``advise``: every candidate test on every uncertain lever, valued and ranked.

The decision now is the chance-constrained plan over ``K`` parameter draws of a twin
(:func:`simdomain.planner.robust.solve_chance`); each candidate test
(:mod:`simdomain.advise.levers`) is valued by the preposterior analysis
(:mod:`simdomain.advise.preposterior`) with the plan made again after each imagined
outcome (:mod:`simdomain.advise.replan`). Tests are ranked by net value (expected saving
minus the test's cost); two tests whose values are within two standard errors of the
difference are marked as tied with the one above.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simdomain.advise import levers as lv
from simdomain.advise.preposterior import (
    MODES,
    CachedReplan,
    Draws,
    perfect_information,
    preposterior,
)
from simdomain.advise.replan import ChanceReplan, decision
from simdomain.errors import InputError, Problem
from simdomain.planner.problem import PlanOptions
from simdomain.planner.robust import DrawSet, RobustPlan, draw_set, solve_chance
from simdomain.scenario.model import STAGES, Scenario

COLUMNS = ["rank", "lever", "design", "arms", "people_per_arm", "days", "cost_cny",
           "evsi_cny", "evsi_se_cny", "chance_gain", "chance_gain_se", "net_value_cny",
           "tied_with_above", "median_ess", "infeasible_share", "measure"]


@dataclass(frozen=True)
class AdviseOptions:
    """How to advise.

    Attributes
    ----------
    level
        ``P``: the chance every target must be met with across the draws.
    draws
        ``K``: parameter draws planned on (the prior).
    outer
        ``J``: imagined test outcomes per design (the Monte Carlo error falls as
        ``1 / sqrt(J)``).
    seed
        Which draws, truths and outcomes (common to every design).
    method
        The chance-constrained solve (:func:`~simdomain.planner.robust.solve_chance`):
        ``cvar`` (the default: a linear program, conservative, whose cost moves smoothly
        with the draws, so a test's value is not drowned by the jumps of a plan made on a
        few draws), ``sets`` (the planner's default: the exact program's plan on the
        draw sets the CVaR plan fixes) or ``milp`` (exact, slow).
    dispersion
        Negative binomial size of a spend test's adds (variance ``mu + mu^2 / size``).
    setup_cny, budget_per_test
        A fixed cost added to every test, and the most one test may cost.
    mode, min_ess, leave_out
        How the posterior is carried, and whether an imagined truth's own draw is left
        out of its posterior (see :mod:`simdomain.advise.preposterior`).
    screen
        A lever whose perfect information is worth less than this share of the plan's
        cost (its value plus two standard errors) gets no test valued: no test of it
        can be worth more.
    """

    level: float = 0.8
    draws: int = 40
    outer: int = 16
    seed: int = 0
    method: str = "cvar"
    dispersion: float = 100.0
    setup_cny: float = 0.0
    budget_per_test: float | None = None
    mode: str = "swap"
    min_ess: float = 10.0
    leave_out: bool = True
    screen: float = 0.001


@dataclass
class Advice:
    """Ranked tests (``table``, :data:`COLUMNS`) and how they were found."""

    options: AdviseOptions
    now: RobustPlan
    table: pd.DataFrame
    levers: list[dict[str, object]]
    solves: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """JSON-ready: the decision now, the levers and the run."""
        o = self.options
        return {"level": o.level, "draws": o.draws, "outer": o.outer, "seed": o.seed,
                "method": o.method, "mode": o.mode, "leave_out": o.leave_out,
                "dispersion": o.dispersion,
                "plan_cost_cny": self.now.cost, "plan_chance": self.now.chance,
                "levers": self.levers, "solves": self.solves, "seconds": self.seconds,
                "notes": self.notes}


class Infeasible(Exception):
    """No plan meets the targets at the chance asked, so no test can make it cheaper."""


def check_twin(scenario: Scenario, source: str) -> None:
    """Refuse a scenario without parameter draws: advice needs a twin."""
    files = scenario.population
    if files is None or files.parameters is None:
        raise InputError([Problem(source, ("population", "parameters"), (
            "advise needs a twin with parameter draws (simdomain calibrate DATA --out TWIN, "
            "then simdomain advise TWIN/scenario.yaml); this scenario has none"))])


def advise(scenario: Scenario, options: AdviseOptions | None = None,
           plan_options: PlanOptions | None = None, *, source: str = "scenario",
           progress: bool | None = False) -> Advice:
    """Value and rank the candidate tests of a twin scenario (see the module's notes).

    Raises
    ------
    InputError
        The scenario has no parameter draws, or an option is out of range.
    Infeasible
        No plan meets the targets with chance ``level`` now.
    """
    from tqdm.auto import tqdm

    from simdomain.twin.people import TwinPeople

    options = AdviseOptions() if options is None else options
    if options.mode not in MODES:
        raise InputError([Problem("--mode", (), f"expected one of {list(MODES)}, "
                                                f"got {options.mode!r}")])
    check_twin(scenario, source)
    started = time.perf_counter()
    twin = TwinPeople.of(scenario)
    if twin.draws < options.draws:
        raise InputError([Problem(source, ("population", "parameters"), (
            f"asked for {options.draws} draws; the twin has {twin.draws}"))])
    draws = draw_set(scenario, plan_options, options.draws, options.seed, progress=progress)
    now_plan = solve_chance(draws, options.level, method=options.method)
    if not now_plan.optimal:
        raise Infeasible(f"no plan meets every target with chance {options.level:.0%} "
                         "across the draws: a test cannot make it cheaper")
    now = decision(draws, now_plan)
    designs, lever_rows, outcomes = _candidates(scenario, twin, draws, now_plan, options)
    prior = np.full(draws.size, 1.0 / draws.size)
    slots = max((o.means.shape[1] for o in outcomes), default=1)
    common = Draws.of(prior, options.outer, slots, options.seed)
    replans: dict[str, CachedReplan] = {}
    for lever in lever_rows:
        replan = CachedReplan(ChanceReplan(draws, lever["block"], options.level,
                                           method=options.method))
        replan.cache[_key(prior)] = now
        replans[lever["block"]] = replan
        evpi, se = perfect_information(prior, now, replan, common)
        lever.update(evpi_cny=evpi, evpi_se_cny=se,
                     screened=evpi + 2 * se < options.screen * now.cost)
    screened = {lev["lever"] for lev in lever_rows if lev["screened"]}
    kept = [(d, o) for d, o in zip(designs, outcomes) if d.lever not in screened]
    rows = []
    for design, outcome in tqdm(kept, desc="tests", unit="test", leave=False,
                                disable=None if progress is None else not progress):
        value = preposterior(outcome, prior, now, replans[design.block], common,
                             mode=options.mode, min_ess=options.min_ess,
                             leave_out=options.leave_out)
        rows.append({"lever": design.lever, "design": design.label,
                     "arms": " | ".join(f"{a:g}" for a in design.arms),
                     "people_per_arm": design.people, "days": design.days,
                     "cost_cny": design.cost, "evsi_cny": value.evsi,
                     "evsi_se_cny": value.evsi_se, "chance_gain": value.chance_gain,
                     "chance_gain_se": value.chance_gain_se,
                     "net_value_cny": value.evsi - design.cost, "median_ess": value.ess,
                     "infeasible_share": value.infeasible,
                     "measure": lv.MEASURES[design.kind], "_savings": value.savings})
    table = _rank(rows)
    solves = sum(r.solves for r in replans.values())
    notes = []
    if not lever_rows:
        notes.append("no lever varies across the draws: every test is worth nothing")
    if screened:
        notes.append(f"not valued, as even perfect information on them is worth under "
                     f"{options.screen:.1%} of the plan: {', '.join(sorted(screened))}")
    return Advice(options, now_plan, table, lever_rows, solves,
                  time.perf_counter() - started, notes)


def _key(prior: np.ndarray) -> bytes:
    return np.round(prior, 7).tobytes()


def _candidates(scenario: Scenario, twin, draws: DrawSet, now: RobustPlan,
                options: AdviseOptions) -> tuple[list, list[dict[str, object]], list]:
    """Every design on every uncertain lever, with its outcome model."""
    base = draws.base
    designs, levers, outcomes = [], [], []
    budget = options.budget_per_test
    adds = _planned_adds(draws, now)
    per_add = now.cost / adds if adds > 0 else 0.0
    used = np.nanmean(now.spend, axis=1)
    typical = float(np.median(used[used > 0])) if (used > 0).any() else 0.0
    for c, name in enumerate(base.channels):
        channel = scenario.channels[name]
        planned = float(np.nanmean(now.spend[c]))
        scale = planned or typical  # a channel the plan leaves out: at a typical budget
        if scale <= 0:
            continue
        spread = lv.relative_spread(lv.channel_means(draws.curves, c, np.array([scale]), 28))
        if spread < 1e-3:
            continue
        found = [d for d in lv.spend_designs(name, c, draws.curves, planned, scale,
                                             float(base.upper[c]), channel.cost_per_contact_cny,
                                             per_add, options.setup_cny)
                 if budget is None or d.cost <= budget]
        levers.append({"lever": f"channel:{name}", "block": lv.curve_block(name),
                       "spread": spread, "designs": len(found)})
        for d in found:
            designs.append(d)
            outcomes.append(lv.spend_outcome(d, draws.curves, c, options.dispersion))
    touched = [col for col in (twin.parameters.columns if twin.parameters is not None else [])
               if col.startswith("touch_policy.")]
    if not touched:
        return designs, levers, outcomes
    scenarios = [twin.scenario_for(scenario, int(d)) for d in draws.draws]
    stages = twin.people["stage"].astype(str).to_numpy()
    pool = float(np.isin(stages, STAGES).sum()) or float(scenario.initial_pool.total)
    for kind in lv.TOUCH_KINDS:
        now_f = lv.touch_frequency(scenario, kind)
        mix = lv.stage_mix(scenario, kind, stages)

        def means(arms: tuple[float, ...], people: int, days: int,
                  kind: str = kind, mix: np.ndarray = mix) -> np.ndarray:
            return np.array([lv.touch_means(s, kind, arms, people, days, mix) for s in scenarios])

        probe = means((now_f, now_f + 1), 1000, 28)
        ratio = probe[:, 3:] / np.maximum(probe[:, :3], 1e-300)
        spread = lv.relative_spread(ratio)
        if spread < 1e-3:
            continue

        def extra(arms: tuple[float, ...], people: int, days: int, m=means) -> float:
            mean = m(arms, people, days).mean(axis=0)
            return mean[5] - mean[2]

        found = [d for d in lv.frequency_designs(scenario, kind, pool, per_add, extra,
                                                 options.setup_cny)
                 if budget is None or d.cost <= budget]
        levers.append({"lever": f"touch:{kind}", "block": "value", "spread": spread,
                       "designs": len(found)})
        for d in found:
            designs.append(d)
            outcomes.append(lv.Outcome.poisson(means(d.arms, d.people, d.days)))
    return designs, levers, outcomes


def _planned_adds(draws: DrawSet, plan: RobustPlan) -> float:
    from simdomain.planner.robust import draw_adds

    return float(draw_adds(draws, plan.spend, plan.staff).sum(axis=(1, 2)).mean())


def _rank(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Rows by net value; ``tied_with_above``: within two standard errors of the paired
    difference of savings (common random numbers) of the test ranked above."""
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    order = sorted(rows, key=lambda r: -float(r["net_value_cny"]))
    for i, row in enumerate(order):
        row["rank"] = i + 1
        row["tied_with_above"] = False
        if i:
            above = order[i - 1]
            diff = np.asarray(above["_savings"]) - np.asarray(row["_savings"])
            se = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else 0.0
            gap = float(above["net_value_cny"]) - float(row["net_value_cny"])
            row["tied_with_above"] = bool(gap <= 2 * se)
    return pd.DataFrame(order)[COLUMNS]
