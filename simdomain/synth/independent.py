"""A bundle from an independent order process: the scenario's channels bring contacts,
an order process of :mod:`simdomain.synth.processes` makes their orders.

Contacts arrive per channel and month as Poisson counts around the scenario's expected
adds for the history's spend (uniform within the month), plus organic adds (the
referral's external rate times its market, per day) and referred adds (a share of the
channel adds; the referrer is a uniformly chosen earlier contact). A share of contacts
buys, the first order an exponential delay after the add (for some, before it: they
bought first and added later); marketplace buyers who never
add the brand appear in orders only. Order values follow the Gamma-Gamma model (Fader,
Hardie & Lee 2005): per person ``nu ~ Gamma(q, rate=gamma)``, per order ``z ~ Gamma(p,
rate=nu)``. Buyers among the contacts join the membership after an exponential delay;
contacts delete the brand at a constant daily hazard.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from simdomain.errors import InputError, Problem
from simdomain.scenario.model import Scenario
from simdomain.sim.world import stream
from simdomain.synth import people
from simdomain.synth.bundle import Bundle
from simdomain.synth.people import Window
from simdomain.synth.processes import Process, describe, draw_repeats


@dataclass(frozen=True)
class Behaviour:
    """Everything around the order process (days, shares and per-day hazards)."""

    first_order_share: float = 0.55
    first_order_mean_days: float = 21.0
    bought_before_add_share: float = 0.1
    """Of contacts who buy: the first order came before the add (a parcel card, say)."""
    marketplace_ratio: float = 0.4
    """Marketplace-only buyers per contact who buys."""
    referral_share: float = 0.08
    """Referred adds per channel add."""
    join_share: float = 0.45
    join_mean_days: float = 30.0
    deletion_per_day: float = 0.0008
    staff_deletion_share: float = 0.15
    gold_share: float = 0.2
    extra_items_mean: float = 0.4
    """Items per order are 1 plus a Poisson count with this mean."""
    contact_channels: tuple[tuple[str, float], ...] = (("mall", 0.7), ("tmall", 0.2),
                                                       ("pos", 0.1))
    marketplace_channels: tuple[tuple[str, float], ...] = (("tmall", 0.7), ("jd", 0.3))


@dataclass(frozen=True)
class OrderValue:
    """Gamma-Gamma order value; ``gamma=None`` sets the mean to the scenario's segments'."""

    p: float = 6.0
    q: float = 4.0
    gamma: float | None = None

    def resolved(self, scenario: Scenario) -> OrderValue:
        if self.gamma is not None:
            return self
        mean = sum(s.share * s.order_value_cny for s in scenario.segments.values())
        return OrderValue(self.p, self.q, mean * (self.q - 1) / self.p)


def synth_process(scenario: Scenario, process: Process, window: Window, *, seed: int = 0,
                  behaviour: Behaviour = Behaviour(),
                  value: OrderValue = OrderValue()) -> Bundle:
    """Generate a bundle over ``window`` whose orders follow ``process``."""
    root = np.random.SeedSequence(seed)
    rng = stream(root, "acquisition")
    end = float(window.days)
    b, value = behaviour, value.resolved(scenario)

    months = people.channel_months(scenario, window)
    counts = rng.poisson(months["expected_adds"].to_numpy())
    lo = np.repeat(months["lo"].to_numpy(), counts)
    hi = np.repeat(months["hi"].to_numpy(), counts)
    added = lo + rng.random(len(lo)) * (hi - lo)
    channel = np.repeat(months["channel"].to_numpy(dtype=object), counts)
    organic_rate = (scenario.referral.external_rate * scenario.referral.addressable_market
                    if scenario.referral else 0.0)
    organic = rng.random(rng.poisson(organic_rate * end)) * end
    referred = rng.random(rng.poisson(b.referral_share * len(added))) * end
    added = np.concatenate([added, organic, referred])
    channel = np.concatenate([channel, np.full(len(organic), "organic", dtype=object),
                              np.full(len(referred), "referral", dtype=object)])
    order = np.argsort(added, kind="stable")
    added, channel = added[order], channel[order]
    if len(channel) and channel[0] == "referral":  # the first contact has no one to refer them
        channel[0] = "organic"
    n_contacts = len(added)
    if n_contacts == 0:
        raise InputError([Problem(scenario.name, ("channels",), "brings no contacts over "
                                  "the history (no channel adds, no organic adds); the "
                                  "independent processes need some")])

    buys = rng.random(n_contacts) < b.first_order_share
    delay = rng.exponential(b.first_order_mean_days, n_contacts)
    before = (rng.random(n_contacts) < b.bought_before_add_share) & (added - delay >= 0)
    first = np.where(buys, np.where(before, added - delay, added + delay), np.nan)
    first[first >= end] = np.nan
    n_market = rng.poisson(b.marketplace_ratio * np.count_nonzero(np.isfinite(first)))
    market_first = rng.random(n_market) * end
    # everyone, sorted by first appearance, gets an id
    appear = np.concatenate([added, market_first])
    t0 = np.concatenate([first, market_first])
    is_contact = np.arange(n_contacts + n_market) < n_contacts
    order = np.argsort(appear, kind="stable")
    appear, t0, is_contact = appear[order], t0[order], is_contact[order]
    contact_slot = np.argsort(order)[:n_contacts]  # person of each contact (added order)
    ids = people.customer_ids(len(appear))

    referrals = _referrals(window, channel, contact_slot, ids, added, rng)

    orders_rng = stream(root, "orders")
    buyers = np.flatnonzero(np.isfinite(t0))
    repeats = draw_repeats(process, t0[buyers], end, window.start, orders_rng)
    owner = np.concatenate([buyers, buyers[repeats.buyer]])
    at = np.concatenate([t0[buyers], repeats.at])

    value_rng = stream(root, "value")
    nu = value_rng.gamma(value.q, 1.0 / value.gamma, size=len(buyers)) / repeats.value_scale
    nu_person = np.full(len(appear), np.nan)
    nu_person[buyers] = nu
    amount = np.maximum(value_rng.gamma(value.p, 1.0 / nu_person[owner]), 0.01)
    order_channel = np.where(
        is_contact[owner],
        people.pick(value_rng, *zip(*b.contact_channels), size=len(owner)),
        people.pick(value_rng, *zip(*b.marketplace_channels), size=len(owner)))
    items = 1 + value_rng.poisson(b.extra_items_mean, size=len(owner))
    orders = people.orders_frame(window.start, ids[owner], at, amount, order_channel, items)

    life_rng = stream(root, "lifecycle")
    contact_t0 = t0[contact_slot]
    joins = np.isfinite(contact_t0) & (life_rng.random(n_contacts) < b.join_share)
    joined = contact_t0 + life_rng.exponential(b.join_mean_days, n_contacts)
    joins &= joined < end
    tier = np.where(life_rng.random(n_contacts) < b.gold_share, "gold", "silver")
    members = people.members_frame(window.start, ids[contact_slot][joins], joined[joins],
                                   tier[joins])
    deleted = added + life_rng.exponential(1.0 / b.deletion_per_day, n_contacts)
    deleted[deleted >= end] = np.nan
    by_customer = life_rng.random(n_contacts) >= b.staff_deletion_share
    staff = people.staff_ids(scenario, channel, life_rng)
    contacts = people.contacts_frame(window.start, ids[contact_slot], added, channel, staff,
                                     deleted, by_customer)

    latent = pd.DataFrame({"customer_id": ids[buyers], "contact": is_contact[buyers],
                           "first_order_day": t0[buyers],
                           **repeats.latent,
                           "value_nu": nu})
    truth = {
        "process": process.name,
        "seed": seed,
        "scenario": scenario.name,
        "window": {"start": window.start, "end": window.as_of - dt.timedelta(days=1),
                   "as_of": window.as_of, "days": window.days},
        "time_unit": "days",
        "parameters": {"orders": describe(process), "order_value": asdict(value),
                       "behaviour": _behaviour(b), "channels": people.channel_curves(scenario)},
        "counts": {
            "contacts": n_contacts,
            "contacts_by_channel": {str(k): int(v) for k, v in
                                    zip(*np.unique(channel.astype(str), return_counts=True))},
            "marketplace_only_buyers": int(n_market),
            "buyers": len(buyers),
            "contact_buyers": int(np.count_nonzero(is_contact[buyers])),
            "first_orders_before_add": int(np.count_nonzero(buys & before)),
            "orders": len(orders),
            "repeat_orders": len(repeats.at),
            "members": len(members),
            "deletions": int(np.count_nonzero(np.isfinite(deleted))),
            "referrals": len(referrals),
            "orders_by_month": people.monthly_counts(window.start, at),
        },
        "notes": "orders = each buyer's first order plus the process's repeat orders; "
                 "truth/customers.parquet holds each buyer's drawn rates",
    }
    return Bundle(orders=orders, contacts=contacts, members=members, referrals=referrals,
                  spend=people.spend_frame(months), truth=truth, latent=latent)


def _referrals(window: Window, channel: np.ndarray, contact_slot: np.ndarray, ids: np.ndarray,
               added: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Each referred contact's referrer: a uniformly chosen contact added before them."""
    referred = np.flatnonzero(channel == "referral")
    referrer = np.floor(rng.random(len(referred)) * referred).astype(np.int64)
    return people.referrals_frame(window.start, ids[contact_slot[referrer]],
                                  ids[contact_slot[referred]], added[referred])


def _behaviour(b: Behaviour) -> dict[str, object]:
    out = asdict(b)
    out["contact_channels"] = dict(b.contact_channels)
    out["marketplace_channels"] = dict(b.marketplace_channels)
    return out
