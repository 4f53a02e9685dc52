"""A bundle from one seeded replication of the engine over the history before the plan.

The history scenario is the scenario moved back in time: it starts on the window's first
day and runs the window's days; campaigns repeat every year at their calendar dates,
monthly spend lists repeat by calendar month (see :func:`people.plan_month`), and the
targets (dated in the plan) are dropped. Every simulated person becomes a contact (their
add day, source channel and a staff account of it), their member day a membership, their
referrer a referral, and every order in the engine's log an order row; spend and
contacts reached come from the channels frame. Times within a day are uniform (after
the add on the add day). The scenario's initial pool was added before the window: they
are written as ``organic`` contacts (their rates are the base rates, as organic adds'
are) added in the year before it; initial members joined between their add and the
window's start; their orders before the window are not in the log. The engine does not
say who deleted whom: ``deleted_by`` is drawn. Marketplace buyers who never add the
brand are not simulated by the engine: they are drawn from a plain Pareto/NBD with the
engine's repeat order rates where those translate (see :func:`pareto_nbd_terms`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from simdomain.scenario.io import validate_scenario
from simdomain.scenario.model import STAGES, Scenario
from simdomain.sim.engine import run_replication
from simdomain.sim.population import NEVER
from simdomain.sim.world import stream
from simdomain.synth import people
from simdomain.synth.bundle import Bundle, month_labels
from simdomain.synth.independent import Behaviour, OrderValue
from simdomain.synth.people import Window
from simdomain.synth.processes import PROCESSES, ParetoNBD, draw_repeats

INITIAL_ADDED_DAYS = 365
"""The initial pool was added uniformly over this many days before the window."""
STAFF_DELETION_SHARE = 0.15
MARKETPLACE_RATIO = 0.25
"""Marketplace-only buyers per contact who orders in the window."""


def history_scenario(scenario: Scenario, window: Window) -> Scenario:
    """The scenario moved back to cover ``window`` (see the module's notes)."""
    raw = scenario.model_dump(mode="json")
    raw["start_date"] = window.start.isoformat()
    raw["horizon_days"] = window.days
    labels = [label for label, _, _ in window.months()]
    for name, channel in scenario.channels.items():
        if isinstance(channel.monthly_spend_cny, list):
            raw["channels"][name]["monthly_spend_cny"] = [
                channel.monthly_spend_cny[people.plan_month(scenario, m)] for m in labels]
    campaigns = []
    last = window.as_of - dt.timedelta(days=1)
    for campaign, spec in zip(scenario.campaigns, raw["campaigns"]):
        for year in range(window.start.year, last.year + 1):
            start = _same_day(campaign.start, year)
            if window.start <= start <= last:
                campaigns.append({**spec, "name": f"{campaign.name} {year}",
                                  "start": start.isoformat()})
    raw["campaigns"] = sorted(campaigns, key=lambda c: c["start"])
    raw["targets"] = {}
    return validate_scenario(raw, f"{scenario.name} (history)")


def _same_day(date: dt.date, year: int) -> dt.date:
    try:
        return date.replace(year=year)
    except ValueError:  # February 29
        return date.replace(year=year, day=28)


def pareto_nbd_terms(scenario: Scenario) -> dict[str, Any] | None:
    """The scenario's repeat orders in Pareto/NBD terms (days), per segment, where they map.

    With per-person gamma multipliers on repeat orders (shape ``order_shape``) and on
    dormancy (``dormancy_shape``), no waking and nothing ordered while dormant, a
    segment's customers order at ``lambda ~ Gamma(r, rate=alpha)`` and fall dormant for
    good at ``mu ~ Gamma(s, rate=beta)`` with ``r = order_shape``, ``alpha = r /
    repeat_order``, ``s = dormancy_shape``, ``beta = s / dormancy`` (the segment's rates).
    Members order at ``member_order_multiplier`` times the rate, touches and campaigns
    lift it, and the engine draws per day (a daily probability read as a daily rate, a gap
    of order rate squared per day): the terms hold for the base of each segment. Fans fall
    dormant too, so those who ever buy lean to low dropout (a fan with rate ``mu`` buys
    before falling dormant with probability ``f / (f + mu)``, ``f`` the first-order rate).
    None if the scenario does not map.
    """
    life = scenario.lifecycle
    spec = life.heterogeneity
    if (spec is None or spec.order_shape is None or spec.dormancy_shape is None
            or life.wake != 0 or life.dormant_multiplier != 0 or life.dormancy <= 0
            or life.repeat_order <= 0):
        return None
    terms = {}
    for name, segment in scenario.segments.items():
        order = life.repeat_order * segment.propensity.repeat_order
        dormancy = life.dormancy * segment.propensity.dormancy
        terms[name] = {"r": spec.order_shape, "alpha": spec.order_shape / order,
                       "s": spec.dormancy_shape, "beta": spec.dormancy_shape / dormancy}
    return terms


def deletion_terms(scenario: Scenario) -> dict[str, Any]:
    """Deletion as the twin fits it: a daily hazard by stage, a multiplier per source
    channel (``deletion_multiplier`` times the channel's deletion propensity; 1 for
    organic and referral adds) and the gamma shape of the per-person frailty (None: no
    frailty)."""
    life = scenario.lifecycle
    spec = life.heterogeneity
    return {
        "by_stage": dict(life.deletion),
        "channel_multipliers": {name: c.deletion_multiplier * c.propensity.deletion
                                for name, c in scenario.channels.items()},
        "shape": None if spec is None else spec.deletion_shape,
    }


def synth_engine(scenario: Scenario, window: Window, *, seed: int = 0,
                 progress: bool | None = False) -> Bundle:
    """Simulate the history once (replication 0 of ``seed``) and write it as a bundle."""
    history = history_scenario(scenario, window)
    root = np.random.SeedSequence(seed)
    with tqdm(total=window.days, unit="day", desc=f"synth {scenario.name}",
              disable=None if progress is None else not progress, leave=False) as bar:
        run = run_replication(history, root.spawn(1)[0], keep_agents=True, keep_orders=True,
                              on_day=bar.update)
    agents, log = run.agents, run.orders
    rng = stream(root, "synth.engine")
    n = len(agents)
    source = agents["source"].astype(str).to_numpy(dtype=object)
    initial = source == "initial"
    join_day = agents["join_day"].to_numpy().astype(np.float64)
    join_day[initial] = -rng.uniform(0, INITIAL_ADDED_DAYS, np.count_nonzero(initial))
    added = np.where(initial, join_day, join_day + rng.random(n))
    channel = np.where(initial, "organic", source)
    ids = people.customer_ids(n)  # agents are in order of joining

    def after_add(day: np.ndarray, who: np.ndarray) -> np.ndarray:
        """A time on ``day`` (uniform), after the add if that was the same day."""
        floor = np.where(np.floor(added[who]) == day, added[who] - day, 0.0)
        return day + floor + rng.random(len(day)) * (1 - floor)

    deletion = agents["deletion_day"].to_numpy()
    deleted = np.full(n, np.nan)
    gone = np.flatnonzero(deletion >= 0)
    deleted[gone] = after_add(deletion[gone].astype(np.float64), gone)
    by_customer = rng.random(n) >= STAFF_DELETION_SHARE
    staff = people.staff_ids(scenario, channel, rng)
    contacts = people.contacts_frame(window.start, ids, added, channel, staff, deleted,
                                     by_customer)

    member_day = agents["member_day"].to_numpy()
    joined_in = np.flatnonzero(member_day >= 0)
    joined = after_add(member_day[joined_in].astype(np.float64), joined_in)
    start_stage = _initial_stage(history, n)
    before = np.flatnonzero(start_stage >= STAGES.index("member"))
    joined_before = added[before] + rng.random(len(before)) * -added[before]
    members_at = np.concatenate([joined_in, before])
    koc = (agents["koc_day"].to_numpy() != NEVER) | (start_stage == STAGES.index("koc"))
    members = people.members_frame(
        window.start, ids[members_at], np.concatenate([joined, joined_before]),
        np.where(koc[members_at], "koc", "standard").astype(object))

    referrer = agents["referrer"].to_numpy()
    referred = np.flatnonzero(referrer >= 0)
    referrals = people.referrals_frame(window.start, ids[referrer[referred]], ids[referred],
                                       added[referred])

    who = log["agent"].to_numpy()
    at = after_add(log["day"].to_numpy().astype(np.float64), who)
    behaviour = Behaviour()
    order_channel = people.pick(rng, *zip(*behaviour.contact_channels), size=len(who))
    items = 1 + rng.poisson(behaviour.extra_items_mean, size=len(who))
    terms = pareto_nbd_terms(scenario)
    market = _marketplace(scenario, window, len(np.unique(who)), terms, stream(root, "market"))
    orders = people.orders_frame(
        window.start,
        np.concatenate([ids[who], people.customer_ids(n + market["count"])[n:][market["who"]]]),
        np.concatenate([at, market["at"]]), np.concatenate([log["amount_cny"], market["amount"]]),
        np.concatenate([order_channel, market["channel"]]),
        np.concatenate([items, market["items"]]))

    daily = run.daily
    truth = {
        "process": "engine",
        "seed": seed,
        "scenario": scenario.name,
        "window": {"start": window.start, "end": window.as_of - dt.timedelta(days=1),
                   "as_of": window.as_of, "days": window.days},
        "time_unit": "days",
        "parameters": {
            "pareto_nbd": terms,
            "deletion": deletion_terms(scenario),
            "lifecycle": scenario.lifecycle.model_dump(mode="json"),
            "segments": {k: s.model_dump(mode="json") for k, s in scenario.segments.items()},
            "marketplace_only": {"process": "pareto", "ratio": MARKETPLACE_RATIO,
                                 **market["parameters"]},
            "staff_deletion_share": STAFF_DELETION_SHARE,
            "channels": people.channel_curves(history),
        },
        "history_scenario": history.model_dump(mode="json"),
        "counts": {
            "contacts": n,
            "initial_pool": int(initial.sum()),
            "contacts_by_channel": {str(k): int(v) for k, v in
                                    zip(*np.unique(channel.astype(str), return_counts=True))},
            "marketplace_only_buyers": market["count"],
            "buyers": int(len(np.unique(who)) + market["count"]),
            "orders": len(orders),
            "engine_orders": len(log),
            "members": len(members),
            "deletions": len(gone),
            "referrals": len(referrals),
            "orders_by_month": people.monthly_counts(window.start,
                                                     np.concatenate([at, market["at"]])),
            "engine_orders_by_month": people.monthly_counts(window.start, at),
            "adds_by_month": _by_month(window, daily, "new_adds"),
        },
        "notes": "the initial pool is written as organic contacts added before the window; "
                 "deleted_by is drawn; marketplace-only buyers come from a plain Pareto/NBD",
    }
    return Bundle(orders=orders, contacts=contacts, members=members, referrals=referrals,
                  spend=_spend(run.channels, window, scenario), truth=truth)


def _initial_stage(history: Scenario, n: int) -> np.ndarray:
    """Stage code at the start of each agent (the initial pool is placed first, by stage);
    -1 for people added in the window."""
    pool = history.initial_pool
    counts = [getattr(pool, s) for s in STAGES]
    stage = np.full(n, -1)
    stage[: sum(counts)] = np.repeat(np.arange(len(STAGES)), counts)
    return stage


def _by_month(window: Window, daily: pd.DataFrame, column: str) -> dict[str, int]:
    labels = month_labels(window.start, daily["day"].to_numpy())
    sums = daily.groupby(labels, sort=True)[column].sum()
    return {str(k): int(v) for k, v in sums.items()}


def _spend(channels: pd.DataFrame, window: Window, scenario: Scenario) -> pd.DataFrame:
    """The ``spend`` file from the channels frame (scenario channels only)."""
    frame = channels[channels["channel"].isin(list(scenario.channels))]
    labels = month_labels(window.start, frame["day"].to_numpy())
    sums = (frame.assign(month=labels, channel=frame["channel"].astype(str))
            .groupby(["month", "channel"], sort=False)[["spend_cny", "contacts"]].sum()
            .reset_index())
    order = {name: i for i, name in enumerate(scenario.channels)}
    sums = sums.sort_values(["month", "channel"], key=lambda s: s.map(order) if s.name ==
                            "channel" else s, kind="stable").reset_index(drop=True)
    return people.spend_frame(sums)


def _marketplace(scenario: Scenario, window: Window, contact_buyers: int,
                 terms: dict[str, Any] | None, rng: np.random.Generator) -> dict[str, Any]:
    """Marketplace-only buyers: first order uniform in the window, then Pareto/NBD repeats
    with the engine's terms averaged over segments (or the default Pareto/NBD)."""
    process = PROCESSES["pareto"]
    if terms:
        shares = {k: s.share for k, s in scenario.segments.items()}
        mean = {key: sum(shares[k] * t[key] for k, t in terms.items())
                for key in ("r", "alpha", "s", "beta")}
        process = ParetoNBD(**mean, amplitude=0.0, spike=1.0, name="pareto")
    count = int(rng.poisson(MARKETPLACE_RATIO * contact_buyers))
    end = float(window.days)
    t0 = rng.random(count) * end
    repeats = draw_repeats(process, t0, end, window.start, rng)
    who = np.concatenate([np.arange(count), repeats.buyer])
    value = OrderValue().resolved(scenario)
    nu = rng.gamma(value.q, 1.0 / value.gamma, size=count)
    channels = Behaviour().marketplace_channels
    return {
        "count": count, "who": who, "at": np.concatenate([t0, repeats.at]),
        "amount": np.maximum(rng.gamma(value.p, 1.0 / nu[who]), 0.01),
        "channel": people.pick(rng, *zip(*channels), size=len(who)),
        "items": 1 + rng.poisson(Behaviour().extra_items_mean, size=len(who)),
        "parameters": {"r": process.r, "alpha": process.alpha, "s": process.s,
                       "beta": process.beta, "order_value": asdict(value)},
    }
