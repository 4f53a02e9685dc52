"""Calibrate a twin: a complete scenario, the real population and parameter draws.

What the data shows is fitted (each number annotated with its estimate, its 90%
interval and what it rests on); what it cannot show comes from a base scenario and is
marked *assumed, not fitted*; without a base nothing beyond the data is assumed (no
spend, no touches, no campaigns, no targets).

The order process is a Pareto/NBD (:mod:`simdomain.twin.btyd`) carried by the engine as
per-person gamma multipliers on repeat orders and on going dormant for good (no waking);
deletion has a gamma frailty by stage and channel (:mod:`simdomain.twin.deletion`); the
other steps are constant hazards by channel (:mod:`simdomain.twin.rates`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from simdomain.scenario.model import RESERVED_SOURCES, STAGES, Scenario
from simdomain.twin import btyd
from simdomain.twin.acquisition import fit_channels
from simdomain.twin.deletion import DeletionFit, fit_deletion
from simdomain.twin.history import NOT_A_CONTACT, History
from simdomain.twin.rates import (
    Hazard,
    StepFit,
    active_days,
    fit_first_order,
    fit_join,
    fit_koc,
    fit_word_of_mouth,
)
from simdomain.twin.response import CurveFit
from simdomain.twin.season import MIN_DAYS, fit_season
from simdomain.twin.selfcheck import order_model_error
from simdomain.twin.value import Tier, fit_value_tiers, tier_of
from simdomain.twin.yields import channel_values

Loc = tuple[str | int, ...]
ASSUMED = "assumed, not fitted (from the base scenario)"
NOT_IN_DATA = "not in the data; none assumed"
LEVEL = 0.9
MARKET_PER_PERSON = 20
"""Addressable market of referral, as a multiple of the pool, when no base gives one."""


@dataclass
class Twin:
    """A calibrated twin, ready to write (see :func:`simdomain.twin.write.write_twin`).

    Attributes
    ----------
    scenario
        The scenario as a mapping that validates (point estimates).
    notes
        Where each number came from, by its path in ``scenario``.
    population
        One row per person known at the as-of date (see :func:`population_frame`).
    parameters
        One row per parameter draw: scenario paths (``lifecycle.join``,
        ``channels.sms.propensity.first_order``, ...) and latent parameters
        (``pnbd.r``, ``pnbd.alpha``, ``pnbd.s``, ``pnbd.beta``, ``deletion.shape``).
    estimates
        One row per fitted parameter: ``parameter, estimate, low, high, basis``.
    tests
        One row per arm and outcome of the touch tests, observed against fitted
        (:mod:`simdomain.twin.effects`), or None.
    observational
        Touch effects read off the touch log, with how each was used
        (:mod:`simdomain.twin.touchfit`), or None.
    messages
        What was assumed or could not be fitted, in words.
    curves
        Each channel's fitted adds-versus-spend curve (:mod:`simdomain.twin.response`).
    channel_values
        Members, orders, GMV and deletions per add by channel
        (:func:`simdomain.twin.yields.channel_values`).
    """

    scenario: dict[str, Any]
    notes: dict[Loc, str]
    population: pd.DataFrame
    parameters: pd.DataFrame
    estimates: pd.DataFrame
    messages: list[str] = field(default_factory=list)
    tests: pd.DataFrame | None = None
    observational: pd.DataFrame | None = None
    curves: dict[str, CurveFit] = field(default_factory=dict)
    channel_values: pd.DataFrame | None = None


def _interval_note(estimate: float, low: float, high: float, basis: str) -> str:
    return f"fitted: {estimate:.6g} (90% {low:.4g}..{high:.4g}), {basis}"


class _Builder:
    """Collects scenario values, their notes, draws and the estimates table."""

    def __init__(self, draws: int, rng: np.random.Generator) -> None:
        self.values: dict[Loc, Any] = {}
        self.notes: dict[Loc, str] = {}
        self.columns: dict[str, np.ndarray] = {}
        self.rows: list[dict[str, Any]] = []
        self.n = draws
        self.rng = rng

    def fitted(self, loc: Loc, point: float, draws: np.ndarray, basis: str) -> None:
        low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]) if len(draws) else (
            point, point)
        self.values[loc] = float(point)
        self.notes[loc] = _interval_note(point, float(low), float(high), basis)
        self.columns[".".join(map(str, loc))] = np.asarray(draws, dtype=float)
        self.rows.append({"parameter": ".".join(map(str, loc)), "estimate": float(point),
                          "low": float(low), "high": float(high), "basis": basis})

    def latent(self, name: str, point: float, draws: np.ndarray, basis: str) -> None:
        low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        self.columns[name] = np.asarray(draws, dtype=float)
        self.rows.append({"parameter": name, "estimate": float(point), "low": float(low),
                          "high": float(high), "basis": basis})

    def fixed(self, loc: Loc, value: Any, note: str) -> None:
        self.values[loc] = value
        self.notes[loc] = note


def _hazard_draws(h: Hazard, n: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """A daily probability's estimate and ``n`` posterior draws (capped at 1)."""
    return h.rate, np.minimum(h.draws(n, rng), 1.0)


def _basis(h: Hazard, what: str) -> str:
    return f"{h.events:,.0f} {what} in {h.exposure:,.0f} person-days"


def calibrate(
    history: History,
    *,
    spend: pd.DataFrame | None = None,
    referrals: pd.DataFrame | None = None,
    base: Scenario | None = None,
    name: str = "twin",
    horizon_days: int = 365,
    draws: int = 200,
    seed: int = 0,
    seasons: bool = True,
    holdout_days: int = 90,
    tests: pd.DataFrame | None = None,
    touches: pd.DataFrame | None = None,
) -> Twin:
    """Fit every process the data shows and assemble the twin.

    Parameters
    ----------
    history
        Every known person's timeline (:func:`simdomain.twin.history.build_history`).
    spend
        Monthly spend per channel (``month, channel, spend_cny``), if known.
    referrals
        ``referrer_id, referred_id, at``, if known.
    base
        A scenario for what the data cannot show (touches, campaigns, targets, budget,
        channels with no history); its numbers are marked as assumed.
    name, horizon_days
        Of the twin's scenario; it starts the day after the as-of date.
    draws, seed
        Parameter draws to write, and the seed they are drawn with.
    seasons
        Fit a month index and sale spikes (:mod:`simdomain.twin.season`) and carry them
        into the horizon as campaigns.
    holdout_days
        Measure the order model's error on this many last days of the data
        (:mod:`simdomain.twin.selfcheck`) and carry it in the draws; 0 to skip.
    tests, touches
        The bundle's tests and touch log: touch effects are fitted from the touch tests,
        the log only where no test informs an effect (:mod:`simdomain.twin.touchfit`);
        ``channel_spend`` arms inform the channels' curves (:mod:`simdomain.twin.response`).
    """
    rng = np.random.default_rng(seed)
    people = history.people
    customers = history.customers
    if len(customers) < 2:
        from simdomain.errors import InputError, Problem

        raise InputError([Problem("orders", (), f"too little data to fit: {len(customers)} "
                                  f"customer(s) with orders up to {history.as_of}")])
    b = _Builder(draws, rng)
    messages: list[str] = []
    start = history.as_of + dt.timedelta(days=1)

    tiers = fit_value_tiers(people, history.orders)
    for tname, tier in tiers.items():
        b.fixed(("segments", tname, "share"), round(tier.share, 12),
                f"fitted: share of {tier.customers:,} customers by mean order value")
        b.fitted(("segments", tname, "order_value_cny"), tier.mean_cny,
                 tier.mean_cny + tier.mean_se * rng.standard_normal(draws),
                 f"mean of {tier.orders:,} orders")
        b.fixed(("segments", tname, "order_value_cv"), round(tier.cv, 6),
                f"fitted: spread of {tier.orders:,} orders")

    order_fit = btyd.fit_pareto_nbd(customers["x"].to_numpy(float),
                                    customers["t_x"].to_numpy(float),
                                    customers["T"].to_numpy(float))
    pnbd_draws = order_fit.draws(draws, rng)
    basis = f"Pareto/NBD on {order_fit.n:,} customers"
    if order_fit.subsample:
        basis += f" (a sample of {order_fit.n_total:,})"
    r, alpha, s, beta = order_fit.params
    for key in ("r", "alpha", "s", "beta"):
        b.latent(f"pnbd.{key}", getattr(order_fit.params, key), pnbd_draws[key].to_numpy(), basis)
    b.fitted(("lifecycle", "repeat_order"), r / alpha,
             (pnbd_draws["r"] / pnbd_draws["alpha"]).to_numpy(),
             basis + ": mean order rate r/alpha")
    b.fitted(("lifecycle", "heterogeneity", "order_shape"), r, pnbd_draws["r"].to_numpy(), basis)
    b.fitted(("lifecycle", "dormancy"), s / beta,
             (pnbd_draws["s"] / pnbd_draws["beta"]).to_numpy(),
             basis + ": mean dropout s/beta (dormant for good)")
    b.fitted(("lifecycle", "heterogeneity", "dormancy_shape"), s, pnbd_draws["s"].to_numpy(),
             basis)
    b.fixed(("lifecycle", "dormancy_stages"), ["customer", "member", "koc"],
            "fitted model: the Pareto/NBD dropout clock starts at the first order")
    b.fixed(("lifecycle", "wake"), 0.0, "fitted model: Pareto/NBD dropout is for good")
    b.fixed(("lifecycle", "dormant_multiplier"), 0.0, "fitted model: people who left do nothing")
    b.fixed(("lifecycle", "member_order_multiplier"), 1.0,
            "fitted model: each person's own order rate covers membership")
    season = fit_season(history, order_fit.params) if seasons else None
    if seasons and season is None:
        messages.append(f"seasons: less than {MIN_DAYS} days of orders; none fitted")
    elif season is not None:
        unseen = [m for m, days in season.months_seen.items() if days == 0]
        if unseen:
            messages.append(f"seasons: months {unseen} are not in the data; index 1 assumed")
        for month, index in season.month_index.items():
            b.rows.append({"parameter": f"season.month_{month:02d}", "estimate": index,
                           "low": np.nan, "high": np.nan,
                           "basis": f"{season.months_seen[month]} days of repeat orders"})
        for spike in season.spikes:
            b.rows.append({"parameter": f"season.spike_{spike.month:02d}-{spike.day:02d}",
                           "estimate": spike.multiplier, "low": np.nan, "high": np.nan,
                           "basis": f"{spike.days} days from {spike.first_seen}"})

    error = order_model_error(history, season) if holdout_days else None
    if error is not None:
        b.latent("model.order_level", 1.0, error.level_draws(draws, rng),
                 f"model error on the last {holdout_days} days: log sd {error.sigma:.3f} "
                 f"beyond Poisson noise ({len(error.blocks)} blocks)")
        messages.append(f"model error: a level error of log sd {error.sigma:.3f} on repeat "
                        f"orders, from the twin's own last {holdout_days} days, is in every "
                        "parameter draw")
    elif holdout_days:
        messages.append("model error: too little data to hold out; intervals carry "
                        "parameter uncertainty and chance only")
    first = fit_first_order(people)
    _step(b, ("lifecycle", "first_order"), first.late, "first orders after the new-user days",
          base, messages, channels_loc="first_order")
    if first.early.pooled.exposure > 0 and first.expected_early() > 0:
        expected = first.expected_early()  # its own uncertainty is the later rates', smaller
        ratio = rng.gamma(first.early.pooled.events + 0.5, 1.0, draws) / expected
        b.fitted(("lifecycle", "new_user_multiplier"), first.new_user_multiplier, ratio,
                 _basis(first.early.pooled, f"first orders in the {first.new_user_days} days "
                                              "after the add"))
        b.fixed(("lifecycle", "new_user_days"), first.new_user_days, "the seeds' 3-day push "
                "(003_36df5733e1860a92.txt)")
    for step, table, fit, what in (("join", "members", fit_join, "joins"),
                                   ("koc", "referrals", fit_koc, "first referrals by members")):
        if table in history.tables:
            _step(b, ("lifecycle", step), fit(people, active_days(order_fit.params)), what,
                  base, messages,
                  channels_loc=step if step == "join" else None)
        else:
            b.fixed(("lifecycle", step), getattr(base.lifecycle, step) if base else 0.0,
                    ASSUMED if base else f"no {table} in the data; none assumed")
            messages.append(f"lifecycle.{step}: no {table} file; "
                            + ("assumed from the base" if base else "none assumed"))

    deletion = fit_deletion(people)
    _deletion(b, deletion, base, messages)
    curves = _channels(b, history, spend, tests, base, messages)
    scenario = _assemble(b, name, start, horizon_days, base, history, referrals, messages)
    if season is not None:
        end = start + dt.timedelta(days=horizon_days - 1)
        scenario["campaigns"] = [*scenario.get("campaigns", []), *season.campaigns(start, end)]
        b.notes[("campaigns",)] = ("fitted: month index and sale spikes of the repeat orders "
                                   "(see estimates.csv), repeated on the same calendar days"
                                   + ("; the base's campaigns kept" if base else ""))
    arms = observed = None
    if (tests is not None and len(tests)) or (touches is not None and len(touches)):
        from simdomain.twin.touchfit import calibrate_effects

        fit, observed = calibrate_effects(b, scenario, messages, tests=tests, history=history,
                                          touches=touches)
        arms = None if fit is None else fit.arms
    population = population_frame(history, tiers, deletion, order_fit.params)
    counts = population["stage"].value_counts()
    scenario["initial_pool"] = {stage: int(counts.get(stage, 0)) for stage in STAGES}
    b.notes[("initial_pool",)] = ("data: the people known on the as-of date; simulations "
                                  "start from population.parquet, the planner's cohort "
                                  "model from these counts")
    Scenario.model_validate(scenario)  # a twin that does not validate is a bug here
    parameters = pd.DataFrame(b.columns)
    parameters.insert(0, "draw", np.arange(1, draws + 1))
    point = {k: _point(k, b, order_fit, deletion) for k in parameters.columns if k != "draw"}
    parameters = pd.concat([pd.DataFrame([{"draw": 0, **point}]), parameters],
                           ignore_index=True)
    return Twin(scenario=scenario, notes=b.notes, population=population,
                parameters=parameters, estimates=pd.DataFrame(b.rows), messages=messages,
                tests=arms, observational=observed, curves=curves,
                channel_values=channel_values(history))


def _point(column: str, b: _Builder, fit: btyd.ParetoNBDFit, deletion: DeletionFit | None) -> float:
    if column.startswith("model."):
        return 1.0
    if column.startswith("pnbd."):
        return float(getattr(fit.params, column.removeprefix("pnbd.")))
    if column == "deletion.shape":
        return float(deletion.shape) if deletion else 0.0
    loc = tuple(int(p) if p.isdigit() else p for p in column.split("."))
    return float(b.values[loc])


def _step(b: _Builder, loc: Loc, fit: StepFit, what: str, base: Scenario | None,
          messages: list[str], channels_loc: str | None = None) -> None:
    if fit.pooled.exposure <= 0:
        if base is not None:
            b.fixed(loc, getattr(base.lifecycle, str(loc[-1])), ASSUMED)
        else:
            b.fixed(loc, 0.0, NOT_IN_DATA)
            messages.append(f"{'.'.join(map(str, loc))}: {NOT_IN_DATA}")
        return
    point, draws = _hazard_draws(fit.pooled, b.n, b.rng)
    b.fitted(loc, point, draws, _basis(fit.pooled, what))
    if channels_loc is None:
        return
    pooled = fit.pooled.draws(b.n, b.rng)
    for channel, hazard in fit.by_channel.items():
        if channel in RESERVED_SOURCES or hazard.exposure <= 0:
            continue
        ratio = hazard.draws(b.n, b.rng) / np.maximum(pooled, 1e-300)
        b.fitted(("channels", channel, "propensity", channels_loc),
                 fit.multipliers()[channel], ratio, _basis(hazard, what))


def _deletion(b: _Builder, fit: DeletionFit | None, base: Scenario | None,
              messages: list[str]) -> None:
    if fit is None:
        for stage in STAGES:
            if base is not None:
                b.fixed(("lifecycle", "deletion", stage), base.lifecycle.deletion[stage], ASSUMED)
            else:
                b.fixed(("lifecycle", "deletion", stage), 0.0, NOT_IN_DATA)
        messages.append("deletion: no contacts in the data; " + (ASSUMED if base else NOT_IN_DATA))
        return
    draws = fit.draws(b.n, b.rng)
    for stage, hazard in fit.stage.items():
        b.fitted(("lifecycle", "deletion", stage), hazard.rate,
                 np.minimum(draws[f"stage.{stage}"].to_numpy(), 1.0),
                 _basis(hazard, f"deletions by {stage}s") + " (frailty-weighted)")
    b.fitted(("lifecycle", "heterogeneity", "deletion_shape"), fit.shape,
             draws["shape"].to_numpy(), "gamma frailty: deletion hazard falling with tenure")
    b.latent("deletion.shape", fit.shape, draws["shape"].to_numpy(), "gamma frailty shape")
    for channel, hazard in fit.channel.items():
        if channel in RESERVED_SOURCES:
            continue
        b.fitted(("channels", channel, "propensity", "deletion"), hazard.rate,
                 draws[f"channel.{channel}"].to_numpy(),
                 f"{hazard.events:,.0f} deletions against {hazard.exposure:,.1f} expected")


def _complete_months(as_of: dt.date, count: int) -> list[pd.Period]:
    """The last ``count`` calendar months wholly in the data (ending on or before as_of)."""
    last = pd.Timestamp(as_of).to_period("M")
    if pd.Timestamp(as_of) < last.end_time.normalize():
        last -= 1
    return [last - i for i in range(count)]


def _channels(b: _Builder, history: History, spend: pd.DataFrame | None,
              tests: pd.DataFrame | None, base: Scenario | None,
              messages: list[str]) -> dict[str, CurveFit]:
    """Buyers who are not contacts keep arriving as in the last 3 whole months; each
    contact channel gets its curve (:func:`simdomain.twin.acquisition.fit_channels`)."""
    people = history.people
    recent = _complete_months(history.as_of, 3)
    end = pd.Timestamp(history.as_of) + pd.Timedelta(days=1)
    others = people[~people["contact"]]
    if len(others):
        loc = ("channels", NOT_A_CONTACT)
        b.fixed((*loc, "description"), "buyers who are not contacts (marketplaces, stores)",
                "data")
        b.fixed((*loc, "funnel", "add"), 1.0, "a new buyer of this kind is an add")
        b.fixed((*loc, "cost_per_contact_cny"), 1.0, "no spend")
        b.fixed((*loc, "monthly_spend_cny"), 0.0, "no spend")
        b.fixed((*loc, "max_spend_cny"), 0.0, "no spend: a plan cannot buy these buyers")
        arrived = (end + pd.to_timedelta(others["first_order_day"], unit="D")).dt.to_period("M")
        count = float(arrived.isin(recent).sum())
        b.fitted((*loc, "free_adds_per_month"), count / 3, b.rng.gamma(count + 0.5, 1.0, b.n) / 3,
                 f"{count:,.0f} new buyers who are not contacts in {recent[-1]}..{recent[0]}")
        base_rate = b.values.get(("lifecycle", "first_order"), 0.0)
        b.fixed((*loc, "propensity", "first_order"), 1.0 / base_rate if base_rate > 0 else 1.0,
                "they arrive with their first order (its probability on the first day is 1)")
        b.fixed((*loc, "propensity", "deletion"), 0.0, "not contacts: they cannot delete the "
                "brand")
    curves = fit_channels(b, history, spend, tests, messages)
    sources = set(people.loc[people["contact"], "source"]) - set(RESERVED_SOURCES)
    if base is not None:
        for channel in sorted(set(base.channels) - sources):
            messages.append(f"channels.{channel}: {ASSUMED}")
    return curves


def _set(tree: dict[str, Any], loc: Loc, value: Any) -> None:
    node = tree
    for key in loc[:-1]:
        node = node.setdefault(key, {})
    node[loc[-1]] = value


def _assemble(b: _Builder, name: str, start: dt.date, horizon_days: int,
              base: Scenario | None, history: History, referrals: pd.DataFrame | None,
              messages: list[str]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": name,
        "description": f"twin calibrated on data up to {history.as_of}",
        "start_date": start.isoformat(),
        "horizon_days": horizon_days,
        "population": {"people": "population.parquet", "parameters": "parameters.parquet"},
    }
    for loc, value in b.values.items():
        _set(raw, loc, value)
    if base is not None:
        dumped = base.model_dump(mode="json", exclude_none=True)
        for channel, spec in dumped.get("channels", {}).items():
            spec.pop("audience", None)
            if channel not in raw.get("channels", {}):
                raw.setdefault("channels", {})[channel] = spec
                b.notes[("channels", channel)] = ASSUMED
        for key in ("touch_policy", "targets", "budget"):
            if key in dumped:
                raw[key] = dumped[key]
                b.notes[(key,)] = ASSUMED
        end = start + dt.timedelta(days=horizon_days - 1)
        raw["campaigns"] = [
            {**c, "channels": [x for x in c.get("channels") or [] if x in raw["channels"]]
             or None} for c in dumped.get("campaigns", [])
            if start <= dt.date.fromisoformat(c["start"]) <= end]
        for c in raw["campaigns"]:
            if c["channels"] is None:
                c.pop("channels")
        if raw["campaigns"]:
            b.notes[("campaigns",)] = ASSUMED
        raw["targets"] = _targets_within(raw.get("targets", {}), start, end)
    else:
        raw["touch_policy"] = {"one_to_one": {"per_week": 0}}
        b.notes[("touch_policy",)] = NOT_IN_DATA
    raw["touch_policy"].setdefault("group", {})["share_in_groups"] = raw["touch_policy"].get(
        "group", {}).get("share_in_groups", 0.0)
    wom = fit_word_of_mouth(history.people, referrals,
                            pd.Timestamp(history.as_of) + pd.Timedelta(days=1))
    if referrals is not None and sum(h.events for h in wom.values()) > 0:
        pool = int((history.people["deletion_day"].isna()).sum())
        market = (base.referral.addressable_market if base is not None and base.referral
                  else MARKET_PER_PERSON * pool)
        raw["referral"] = {"addressable_market": market}
        b.notes[("referral", "addressable_market")] = (
            ASSUMED if base is not None and base.referral else
            f"assumed: {MARKET_PER_PERSON} x the pool, so referral is nearly linear in word of mouth")
        for stage, hazard in wom.items():
            point, draws = _hazard_draws(hazard, b.n, b.rng)
            b.fitted(("referral", "word_of_mouth", stage), point, draws,
                     _basis(hazard, f"referrals by {stage}s"))
            _set(raw, ("referral", "word_of_mouth", stage), point)
    raw.setdefault("lifecycle", {})
    return raw


def _targets_within(targets: dict[str, Any], start: dt.date, end: dt.date) -> dict[str, Any]:
    """The base's targets that fall within the twin's horizon."""
    out = dict(targets)
    out["pool_size"] = [p for p in targets.get("pool_size", [])
                        if start <= dt.date.fromisoformat(p["date"]) <= end]
    gmv = targets.get("gmv")
    if gmv and not start <= dt.date.fromisoformat(gmv["by"]) <= end:
        out.pop("gmv")
    return out


def population_frame(history: History, tiers: dict[str, Tier], deletion: DeletionFit | None,
                     params: btyd.ParetoNBDParams) -> pd.DataFrame:
    """The people known at the as-of date who have not deleted the brand.

    Columns: ``customer_id, stage, segment`` (value tier, empty for people with no order:
    drawn by the tiers' shares each replication), ``source, join_day, orders, gmv_cny,
    first_order_day, last_order_day, member_day, koc_day`` (days from the twin's start,
    negative; NaN if never), the order summaries ``x, t_x, T`` (days), ``p_alive`` and
    the order and dropout posteriors at the point estimate (``lambda_shape``,
    ``lambda_rate``, ``mu_shape``, ``mu_rate``), and ``deletion_hazard`` (cumulative
    deletion hazard to date before frailty; NaN for people not in the contacts).
    """
    people = history.people
    alive = people[people["deletion_day"].isna()].copy()
    stage = np.zeros(len(alive), dtype=np.int8)
    for s, column in enumerate(("first_order_day", "member_day", "koc_day"), start=1):
        stage = np.where(alive[column].notna() & (stage == s - 1), s, stage)
    # Membership without an order and KOC without membership: the stage the data shows
    # that the engine's ladder allows (member needs a first order, KOC a membership).
    names = list(tiers)
    tier = tier_of(alive, tiers)
    frame = pd.DataFrame({
        "customer_id": alive.index.astype(str),
        "stage": np.asarray(STAGES, dtype=object)[stage],
        "segment": np.where(tier >= 0, np.asarray(names, dtype=object)[np.maximum(tier, 0)], ""),
        "source": alive["source"].astype(str).to_numpy(),
        "join_day": np.minimum(alive["add_day"].to_numpy(float), -1.0),
        "orders": alive["orders"].to_numpy(np.int64),
        "gmv_cny": alive["gmv_cny"].to_numpy(float),
    })
    for column in ("first_order_day", "last_order_day", "member_day", "koc_day"):
        frame[column] = alive[column].to_numpy(float)
    frame.loc[stage < 2, "member_day"] = np.nan
    frame.loc[stage < 3, "koc_day"] = np.nan
    buyers = alive["orders"].to_numpy() > 0
    for column in ("x", "t_x", "T"):
        frame[column] = np.where(buyers, alive[column].to_numpy(float), np.nan)
    latent = btyd.posterior_latent(params, frame.loc[buyers, "x"], frame.loc[buyers, "t_x"],
                                   frame.loc[buyers, "T"])
    for key, value in latent.items():
        frame[key] = np.nan
        frame.loc[buyers, key] = value
    hazard = deletion.cumulative if deletion is not None else pd.Series(dtype=float)
    frame["deletion_hazard"] = hazard.reindex(alive.index).to_numpy(float)
    return frame
