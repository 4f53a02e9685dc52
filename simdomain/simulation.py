"""``simulate``: replications of a scenario, as tidy frames with KPIs and targets."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from simdomain import kpi
from simdomain.scenario.model import Scenario
from simdomain.sim.engine import run_replication
from simdomain.sim.policy import NO_POLICIES, Policies
from simdomain.sim.population import InitialPeople
from simdomain.sim.world import stream
from simdomain.twin.people import Mode, TwinPeople


@dataclass
class SimulationResult:
    """What :func:`simulate` returns; every frame has a ``rep`` column.

    Attributes
    ----------
    daily
        Per replication and day: people per stage (``pool`` = not deleted), dormant,
        and the day's flows (adds, new customers/members/KOCs, deletions, orders, GMV,
        spend).
    channels
        Per replication, day and channel: spend, contacts and adds.
    monthly
        Tidy monthly KPIs (see :mod:`simdomain.kpi`): ``rep, month, kpi, channel, value``.
    targets
        Each north-star target per replication and period: ``value, goal, met``.
    agents
        One row per person and replication with their history, if kept.
    snapshots
        Every person's state at the end of each observed day (``day`` column), if asked.
    orders
        One row per order booked (``rep, agent, day, amount_cny``), if asked.
    """

    scenario: Scenario
    seed: int
    reps: int
    daily: pd.DataFrame
    channels: pd.DataFrame
    monthly: pd.DataFrame
    targets: pd.DataFrame
    agents: pd.DataFrame | None = field(default=None, repr=False)
    snapshots: pd.DataFrame | None = field(default=None, repr=False)
    orders: pd.DataFrame | None = field(default=None, repr=False)
    draws: list[int] | None = None
    """For a twin: the parameter draw of each replication (0 = the point estimates)."""

    def summary(self, level: float = 0.9) -> dict[str, Any]:
        """Mean and central ``level`` interval of each KPI per month, and each target's
        chance of being met over the replications."""
        kpis = []
        for (month, name, channel), values in self.monthly.groupby(
                ["month", "kpi", "channel"], sort=True)["value"]:
            mean, low, high = kpi.interval(values.dropna(), level)
            kpis.append({"month": month, "kpi": name, "channel": channel,
                         "mean": _finite(mean), "low": _finite(low), "high": _finite(high)})
        targets = []
        for (name, period), group in self.targets.groupby(["target", "period"], sort=False):
            mean, low, high = kpi.interval(group["value"], level)
            targets.append({"target": name, "period": period, "goal": float(group["goal"].iloc[0]),
                            "mean": _finite(mean), "low": _finite(low), "high": _finite(high),
                            "probability_met": float(group["met"].mean())})
        out = {"scenario": self.scenario.name, "seed": self.seed, "reps": self.reps,
               "interval": level, "kpis": kpis, "targets": targets}
        if self.draws is not None:
            out["parameter_draws"] = self.draws
            out["spread"] = self.spread().to_dict(orient="records")
        return out

    def spread(self) -> pd.DataFrame:
        """For a twin: per KPI over the horizon, the share of the spread between
        replications that parameter uncertainty explains (the rest is chance)."""
        if self.draws is None:
            raise ValueError("only a twin's replications carry parameter draws")
        totals = kpi.horizon_kpis(self.monthly)
        draw_of = np.asarray(self.draws)
        rows = []
        for name, group in totals.groupby("kpi", sort=True):
            share = kpi.parameter_share(group["value"].to_numpy(float),
                                        draw_of[group["rep"].to_numpy()])
            rows.append({"kpi": name, "std": float(group["value"].std(ddof=1)),
                         "parameter_share": share})
        return pd.DataFrame(rows)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def simulate(
    scenario: Scenario,
    *,
    seed: int = 0,
    reps: int = 1,
    keep_agents: bool = True,
    observe_days: Collection[int] = (),
    progress: bool | None = False,
    initial: InitialPeople | Callable[[int], InitialPeople] | None = None,
    keep_orders: bool = False,
    parameters: Mode = "posterior",
    policies: Policies | None = None,
) -> SimulationResult:
    """Simulate ``reps`` independent replications of ``scenario``.

    Parameters
    ----------
    scenario
        A validated scenario (see :func:`simdomain.load_scenario`).
    seed
        Root seed; replication ``r`` uses the ``r``-th stream spawned from it, so the
        same seed gives identical frames and replication ``r`` does not depend on how
        many others run.
    reps
        Number of replications.
    keep_agents
        Keep the per-person table (memory grows with people x replications).
    observe_days
        Days at whose end every person's state is copied into ``snapshots``.
    progress
        Show a progress bar over days x replications; ``None`` shows it on a terminal.
    initial
        People known at the start, replacing the scenario's ``initial_pool``: the same
        in every replication, or a function of the replication number (to draw each
        replication's latent state).
    keep_orders
        Keep the order log (one row per order).
    parameters
        For a twin (a scenario with ``population``): ``posterior`` draws a parameter set
        per replication (``population.reps_per_draw`` replications share one), ``point``
        uses the point estimates in every replication.
    policies
        Touch policies for the engine (see :mod:`simdomain.sim.policy`); by default the
        ones the scenario asks for, built by :func:`simdomain.models.targeting.policies_for`.
    """
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    if policies is None:
        policies = NO_POLICIES
        if scenario.touch_policy.one_to_one.targeting is not None:
            from simdomain.models.targeting import policies_for  # the models load only if asked
            policies = policies_for(scenario)
    children = np.random.SeedSequence(seed).spawn(reps)
    twin = TwinPeople.of(scenario) if scenario.population is not None else None
    runs, draws = [], []
    with tqdm(total=reps * scenario.horizon_days, unit="day", desc=scenario.name,
              disable=None if progress is None else not progress, leave=False) as bar:
        for rep, child in enumerate(children):
            bar.set_postfix(rep=f"{rep + 1}/{reps}")
            run_scenario, known = scenario, initial(rep) if callable(initial) else initial
            if twin is not None and known is None:
                draw = twin.draw_for(rep, seed, parameters)
                run_scenario = twin.scenario_for(scenario, draw)
                known = InitialPeople(**twin.initial(run_scenario, draw, stream(child, "twin")))
                draws.append(draw)
            runs.append(run_replication(run_scenario, child, keep_agents=keep_agents,
                                        observe_days=frozenset(observe_days),
                                        on_day=bar.update, initial=known,
                                        keep_orders=keep_orders,
                                        policies=policies))

    def stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat([f.assign(rep=r)[["rep", *f.columns]] for r, f in enumerate(frames)],
                         ignore_index=True)

    daily = stack([r.daily for r in runs])
    channels = stack([r.channels for r in runs])
    monthly = kpi.monthly_kpis(daily, channels, stack([r.channel_members for r in runs]))
    return SimulationResult(
        scenario=scenario, seed=seed, reps=reps, daily=daily, channels=channels,
        monthly=monthly, targets=kpi.check_targets(scenario, daily, monthly),
        agents=stack([r.agents for r in runs]) if keep_agents else None,
        snapshots=stack([r.snapshots for r in runs]) if observe_days else None,
        orders=stack([r.orders for r in runs]) if keep_orders else None,
        draws=draws or None,
    )
