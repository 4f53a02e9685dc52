"""``plan --chance``: the plan over parameter draws beside the mean-curve plan.

:func:`plan_over_draws` plans against ``K`` draws of a twin (:mod:`simdomain.planner.robust`),
plans on the point estimates as the deterministic planner does (the *mean-curve plan*),
and measures both on the same draws and on fresh draws (draws not planned on): each
target's chance, and the cost of certainty (what the chance plan costs more).
:func:`verify_fresh` simulates a plan over fresh draws only.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simdomain.planner.planning import PlanResult, plan
from simdomain.planner.problem import PlanOptions, current_spend, current_staff, evaluate
from simdomain.planner.robust import DrawSet, RobustPlan, draw_set, evaluate_draws, solve_chance
from simdomain.planner.verify import Verification, verify
from simdomain.scenario.io import validate_scenario
from simdomain.scenario.model import Scenario

CHANCE_COLUMNS = ["target", "period", "goal", "unit", "chance_plan", "mean_plan",
                  "chance_plan_fresh", "mean_plan_fresh"]


@dataclass
class ChancePlan:
    """A chance-constrained plan and the mean-curve plan, measured on the draws.

    Attributes
    ----------
    result
        The chance plan as a :class:`PlanResult` (evaluated on the point estimates), for
        the exports.
    mean
        The mean-curve plan (the deterministic planner on the point estimates).
    robust
        The solver's answer (:class:`~simdomain.planner.robust.RobustPlan`).
    table
        Per target: its chance under each plan, on the planning draws and on fresh ones
        (``CHANCE_COLUMNS``).
    """

    level: float
    draws: DrawSet
    fresh: DrawSet | None
    robust: RobustPlan
    result: PlanResult
    mean: PlanResult
    table: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def cost_of_certainty(self) -> float:
        """The chance plan's cost less the mean-curve plan's (yuan)."""
        if self.result.evaluation is None or self.mean.evaluation is None:
            return float("nan")
        return self.result.evaluation.total_cost - self.mean.evaluation.total_cost

    def report(self) -> dict[str, Any]:
        """JSON-ready summary for ``diagnostics.json``."""
        return {
            "level": self.level, "method": self.robust.method, "status": self.robust.status,
            "draws": [int(d) for d in self.draws.draws],
            "fresh_draws": None if self.fresh is None else len(self.fresh.draws),
            "noise_sd": dict(zip([t.key for t in self.draws.targets],
                                 self.draws.noise_sd.tolist())),
            "chance_plan_cost_cny": (self.result.evaluation.total_cost
                                     if self.result.evaluation else None),
            "mean_plan_cost_cny": self.mean.evaluation.total_cost if self.mean.evaluation else None,
            "cost_of_certainty_cny": self.cost_of_certainty,
            "max_chord_error_adds": dict(zip(self.draws.base.channels,
                                             self.draws.max_error.tolist())),
            "timings_s": self.timings,
            "targets": self.table.to_dict(orient="records"),
        }


def plan_over_draws(scenario: Scenario, options: PlanOptions, level: float, *,
                    draws: int = 100, seed: int = 0, method: str = "sets",
                    fresh: int | None = None, time_limit: float = 60.0,
                    progress: bool | None = False) -> ChancePlan:
    """Plan so that each target is met with probability ``level`` across ``draws``
    parameter draws and chance; compare with the mean-curve plan.

    ``fresh`` draws not planned on (default: up to ``draws`` of the rest) measure both
    plans out of sample; the twin needs more draws than ``draws`` for that.
    """
    started = time.perf_counter()
    planning = draw_set(scenario, options, draws, seed, progress=progress)
    built = time.perf_counter() - started
    robust = solve_chance(planning, level, method=method, time_limit=time_limit)
    solved = time.perf_counter() - started - built
    mean = plan(scenario, options, seed=seed)
    left = 0
    if planning.draws.any():  # a twin with draws: the rest are fresh
        from simdomain.twin.people import TwinPeople

        left = TwinPeople.of(scenario).draws - draws
    count = min(left, draws if fresh is None else fresh)
    fresh_set = (draw_set(scenario, options, count, seed + 1, exclude=planning.draws,
                          progress=progress) if count > 0 else None)
    problem = planning.base
    current = evaluate(problem, current_spend(scenario), current_staff(scenario))
    result = PlanResult(scenario, options, problem, "highs", "infeasible", None, None, current)
    if robust.optimal:
        result.status = "optimal"
        result.evaluation = evaluate(problem, robust.spend, robust.staff)
    rows = []
    measured = {"chance_plan": robust, "mean_plan": mean}
    chances: dict[str, dict[str, float]] = {}
    for name, which in measured.items():
        spend, staff = _plan_arrays(which)
        for suffix, drawn in (("", planning), ("_fresh", fresh_set)):
            if spend is None or drawn is None:
                continue
            chances[name + suffix] = evaluate_draws(drawn, spend, staff)["chance"]
    for t in problem.targets:
        rows.append({"target": t.name, "period": t.period, "goal": t.goal, "unit": t.unit,
                     **{column: chances.get(column, {}).get(t.key, np.nan)
                        for column in CHANCE_COLUMNS[4:]}})
    timings = {"draws": built, "solve": solved, "total": time.perf_counter() - started}
    return ChancePlan(level, planning, fresh_set, robust, result, mean,
                      pd.DataFrame(rows, columns=CHANCE_COLUMNS), timings)


def _plan_arrays(which: RobustPlan | PlanResult) -> tuple[np.ndarray | None, np.ndarray | None]:
    if isinstance(which, RobustPlan):
        return (which.spend, which.staff) if which.optimal else (None, None)
    if which.evaluation is None:
        return None, None
    return which.evaluation.spend, which.evaluation.staff


def verify_fresh(result: PlanResult, exclude: np.ndarray, *, reps: int = 20, seed: int = 0,
                 progress: bool | None = None, **sharding: Any) -> Verification:
    """Simulate a plan of a twin over parameter draws it was not planned on.

    The twin's ``parameters.parquet`` less the draws ``exclude`` (and the point
    estimates, kept as draw 0) is written to a scratch folder and the scenario pointed at
    it with one replication per draw, so each replication draws fresh parameters.
    ``sharding`` (``shards``, ``cluster``) goes to :func:`verify`; the scratch file is
    local, so workers on other machines cannot read it.
    """
    scenario = result.scenario
    if scenario.population is None or scenario.population.parameters is None:
        return verify(result, reps=reps, seed=seed, progress=progress, **sharding)
    table = pd.read_parquet(scenario.population.parameters)
    kept = table[~table["draw"].isin(np.asarray(exclude))].copy()
    fresh = kept["draw"] > 0
    kept.loc[fresh, "draw"] = np.arange(1, int(fresh.sum()) + 1)
    with tempfile.TemporaryDirectory(prefix="simdomain-fresh-") as scratch:
        path = Path(scratch) / "parameters.parquet"
        kept.to_parquet(path, index=False)
        raw = scenario.model_dump(mode="json")
        raw["population"].update(parameters=str(path), reps_per_draw=1,
                                 people=str(Path(scenario.population.people).resolve()))
        moved = validate_scenario(raw, f"{scenario.name} (fresh draws)")
        shadow = PlanResult(moved, result.options, result.problem, result.solver, result.status,
                            result.solution, result.evaluation, result.current)
        return verify(shadow, reps=reps, seed=seed, progress=progress, **sharding)
