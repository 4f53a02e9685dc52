"""Check a plan by simulating it, and buy confidence with margins on the targets.

:func:`verify` writes the plan into the scenario (each channel's ``monthly_spend_cny``
becomes the plan's monthly list; its staff accounts the plan's largest monthly number)
and simulates it. Each target is measured as the planner defines it: monthly adds and
the deletion rate as in ``simdomain run``; members on the cohort basis as the members a
month's adds (from every source) bring within the window, so the simulation runs on for
the window's months with no spend; members on the calendar basis as the month's new
members; the pool on its date; GMV up to its date.

:func:`plan_with_confidence` raises the goals the model plans for until the simulated
chance of meeting *every* target reaches the level asked for.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from simdomain.planner.planning import PlanResult, plan, with_goals
from simdomain.planner.problem import PlanOptions
from simdomain.scenario.io import validate_scenario
from simdomain.scenario.model import Scenario
from simdomain.sim.world import Calendar
from simdomain.simulation import simulate
from simdomain.workers import Cluster

OUTCOME_COLUMNS = ["rep", "target", "period", "value", "goal", "met"]
SUMMARY_COLUMNS = ["target", "period", "goal", "planned", "plan", "mean", "low", "high",
                   "probability_met"]


@dataclass(frozen=True)
class Verification:
    """Simulated outcomes of a plan.

    Attributes
    ----------
    outcomes
        One row per replication, target and period (``OUTCOME_COLUMNS``).
    summary
        Per target and period: the goal, the model's planned goal and value, the mean and
        the central ``level`` interval over replications, and the share that met the goal.
    joint_probability
        Share of replications that met every target in every period.
    """

    reps: int
    seed: int
    level: float
    outcomes: pd.DataFrame
    summary: pd.DataFrame
    joint_probability: float
    spend_cny: float


def plan_scenario(result: PlanResult, *, months_after: int = 0) -> Scenario:
    """The scenario with the plan's spend, simulated ``months_after`` past its horizon."""
    scenario = result.scenario
    raw = scenario.model_dump(mode="json")
    extra = [0.0] * months_after
    for c, name in enumerate(result.problem.channels):
        channel = raw["channels"][name]
        channel["monthly_spend_cny"] = [float(x) for x in result.evaluation.spend[c]] + extra
        if channel.get("staff") is not None:
            channel["staff"]["accounts"] = int(result.evaluation.staff[c].max())
    if months_after:
        last = scenario.end_date
        index = last.year * 12 + last.month + months_after
        end = dt.date(index // 12, index % 12 + 1, 1)
        raw["horizon_days"] = (end - scenario.start_date).days
        after = last + dt.timedelta(days=1)
        if after.day != 1:  # the last month is partial: no adds on its remaining days
            raw["campaigns"].append({"name": "after the plan", "start": str(after),
                                     "days": raw["horizon_days"] - scenario.horizon_days,
                                     "multipliers": {"adds": 0.0}})
    return validate_scenario(raw, f"<plan of {scenario.name}>")


def verify(result: PlanResult, *, reps: int = 20, seed: int = 0, level: float = 0.9,
           progress: bool | None = None, shards: int = 1,
           cluster: Cluster | None = None) -> Verification:
    """Simulate the plan ``reps`` times and measure every target on each replication.

    Replication ``r`` is simulated with the ``r``-th integer drawn from
    ``SeedSequence(seed)``, one at a time (so memory does not grow with ``reps``), split
    into ``shards`` run on ``cluster`` if given (see :func:`simdomain.simulation.simulate`).
    """
    if result.evaluation is None:
        raise ValueError("only an optimal plan can be verified")
    problem = result.problem
    cohort = (result.options.members_basis == "cohort"
              and any(t.name == "monthly_new_members" for t in problem.targets))
    window = result.options.member_window_months if cohort else 0
    scenario = plan_scenario(result, months_after=window)
    calendar = Calendar.of(scenario.start_date, scenario.horizon_days)
    seeds = np.random.SeedSequence(seed).generate_state(reps)
    rows: list[pd.DataFrame] = []
    spend = 0.0
    for rep in tqdm(range(reps), desc=f"verify {scenario.name}", unit="rep",
                    disable=None if progress is None else not progress, leave=False):
        run = simulate(scenario, seed=int(seeds[rep]), reps=1, keep_agents=cohort,
                       shards=shards, cluster=cluster)
        horizon = run.daily["day"] < result.scenario.horizon_days
        spend += float(run.daily.loc[horizon, "spend_cny"].sum())
        values = _measure(result, run, calendar, window)
        rows.append(pd.DataFrame([
            {"rep": rep, "target": t.name, "period": t.period, "value": values[t.key],
             "goal": t.goal, "met": t.met(values[t.key], rtol=0.0)}
            for t in problem.targets], columns=OUTCOME_COLUMNS))
    outcomes = pd.concat(rows, ignore_index=True)
    return Verification(reps, seed, level, outcomes, _summarize(result, outcomes, level),
                        _joint(outcomes), spend / reps)


def _measure(result: PlanResult, run: Any, calendar: Calendar, window: int) -> dict[str, float]:
    """Each target's simulated value in one replication (by target key)."""
    monthly = run.monthly[run.monthly["channel"] == "all"].pivot_table(
        index="month", columns="kpi", values="value", dropna=False)
    daily = run.daily
    members_by_cohort = None
    if run.agents is not None:
        agents = run.agents[(run.agents["join_day"] >= 0)]
        joined = calendar.month[agents["join_day"].to_numpy()]
        member_day = agents["member_day"].to_numpy()
        became = member_day >= 0
        member_month = np.where(became, calendar.month[np.maximum(member_day, 0)], -1)
        inside = became & (member_month <= joined + window)
        members_by_cohort = np.bincount(joined[inside], minlength=len(calendar.labels))
    values = {}
    for t in result.problem.targets:
        if t.name == "monthly_new_adds":
            values[t.key] = float(monthly.loc[t.period, "new_adds"])
        elif t.name == "max_monthly_deletion_rate":
            values[t.key] = float(monthly.loc[t.period, "deletion_rate"])
        elif t.name == "monthly_new_members":
            values[t.key] = (float(members_by_cohort[calendar.labels.index(t.period)])
                             if members_by_cohort is not None
                             else float(monthly.loc[t.period, "new_members"]))
        elif t.name == "pool_size":
            values[t.key] = float(daily.loc[daily["date"] == pd.Timestamp(t.period), "pool"].iloc[0])
        else:  # gmv up to its date
            values[t.key] = float(daily.loc[daily["date"] <= pd.Timestamp(t.period), "gmv_cny"].sum())
    return values


def _summarize(result: PlanResult, outcomes: pd.DataFrame, level: float) -> pd.DataFrame:
    tail = (1 - level) / 2
    rows = []
    for t in result.problem.targets:
        group = outcomes[(outcomes["target"] == t.name) & (outcomes["period"] == t.period)]
        value = group["value"]
        rows.append({"target": t.name, "period": t.period, "goal": t.goal, "planned": t.planned,
                     "plan": result.evaluation.values[t.key], "mean": float(value.mean()),
                     "low": float(value.quantile(tail)), "high": float(value.quantile(1 - tail)),
                     "probability_met": float(group["met"].mean())})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _joint(outcomes: pd.DataFrame) -> float:
    if outcomes.empty:
        return 1.0
    return float(outcomes.groupby("rep")["met"].all().mean())


@dataclass
class Confidence:
    """The outcome of :func:`plan_with_confidence`.

    Attributes
    ----------
    reached
        Whether the last plan's simulated chance of meeting every target reached the
        level.
    result, verification
        The last feasible plan and its verification.
    base
        The plan without margins (round 0).
    blocked
        The infeasible plan (with its diagnosis) if the margins made the targets
        impossible.
    rounds
        Per round: the joint probability, the plan's cost and objective, the margins.
    message
        What happened, in a sentence.
    """

    level: float
    reached: bool
    result: PlanResult
    verification: Verification | None
    base: PlanResult
    blocked: PlanResult | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""

    @property
    def extra_cost(self) -> float:
        """What the certainty costs: the last plan's cost less the plan without margins."""
        if self.result.evaluation is None or self.base.evaluation is None:
            return math.nan
        return self.result.evaluation.total_cost - self.base.evaluation.total_cost

    def report(self) -> dict[str, Any]:
        out = {"level": self.level, "reached": self.reached, "message": self.message,
               "extra_cost_cny": None if math.isnan(self.extra_cost) else self.extra_cost,
               "rounds": self.rounds}
        if self.blocked is not None:
            out["blocked"] = self.blocked.diagnostics().get("diagnosis")
        return out


def plan_with_confidence(scenario: Scenario, options: PlanOptions, level: float, *,
                         reps: int = 20, seed: int = 0, solver: str = "cbc",
                         max_rounds: int = 6, progress: bool | None = None, shards: int = 1,
                         cluster: Cluster | None = None) -> Confidence:
    """Plan, verify, and raise the planned goals until every target is met with
    probability ``level`` in simulation (or say why not).

    Each round, a target whose simulated mean less ``z`` standard deviations misses its
    goal gets its planned goal scaled by (goal + ``z`` sd) / mean, taken on the model's
    value for it; ``z`` is the normal quantile of ``1 - (1 - level) / k`` over the ``k``
    target periods (Bonferroni: every period at once). Ceilings are lowered likewise.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    base = plan(scenario, options, solver=solver, seed=seed)
    if not base.optimal:
        return Confidence(level, False, base, None, base, base, [],
                          "the targets are infeasible even without margins")
    current, goals = base, {}
    rounds: list[dict[str, Any]] = []
    for round_ in range(max_rounds):
        verification = verify(current, reps=reps, seed=seed, progress=progress,
                              shards=shards, cluster=cluster)
        rounds.append({"round": round_, "joint_probability": verification.joint_probability,
                       "total_cost_cny": current.evaluation.total_cost,
                       "objective": current.evaluation.objective,
                       "planned_goals": dict(goals)})
        if verification.joint_probability >= level:
            message = (f"every target met in {verification.joint_probability:.0%} of {reps} "
                       f"simulations (asked {level:.0%}) after {round_} rounds of margins")
            return Confidence(level, True, current, verification, base, None, rounds, message)
        if round_ == max_rounds - 1:
            break
        goals.update(_raised_goals(current, verification, level))
        following = plan(scenario, with_goals(options, goals), solver=solver, seed=seed)
        if not following.optimal:
            message = (f"cannot reach {level:.0%}: the margins of round {round_ + 1} make the "
                       f"targets infeasible; the last feasible plan meets every target in "
                       f"{verification.joint_probability:.0%} of the simulations")
            return Confidence(level, False, current, verification, base, following, rounds,
                              message)
        current = following
    message = (f"did not reach {level:.0%} in {max_rounds} rounds: last "
               f"{verification.joint_probability:.0%}")
    return Confidence(level, False, current, verification, base, None, rounds, message)


def _raised_goals(result: PlanResult, verification: Verification,
                  level: float) -> dict[str, float]:
    targets = result.problem.targets
    z = NormalDist().inv_cdf(1 - (1 - level) / max(len(targets), 1))
    out = {}
    for t in targets:
        values = verification.outcomes.loc[(verification.outcomes["target"] == t.name)
                                           & (verification.outcomes["period"] == t.period),
                                           "value"]
        mean, sd = float(values.mean()), float(values.std(ddof=1) if len(values) > 1 else 0.0)
        model = result.evaluation.values[t.key]
        if t.ceiling and mean + z * sd > t.goal:
            need = max(t.goal - z * sd, 1e-6)
            out[t.key] = min(t.planned, model * need / max(mean, 1e-12)) * (1 - 1e-3)
        elif not t.ceiling and mean - z * sd < t.goal:
            need = t.goal + z * sd
            out[t.key] = max(t.planned, model * need / max(mean, 1e-12)) * (1 + 1e-3)
    return out
