"""Daily hazards of the lifecycle's steps fitted from people's timelines.

Each step (first order after the add, joining after the first order, becoming KOC after
joining, referring) is a constant daily probability while a person is exposed to it, as
the engine draws it: estimated as events over days at risk (the maximum-likelihood
estimate for daily Bernoulli draws), with a gamma posterior (Jeffreys prior: shape
events + 1/2, rate days at risk; close to the beta posterior for small probabilities)
from which parameter draws come. Channel differences are ratios of
each channel's hazard to the pooled one. Deletion, whose hazard falls with tenure, is
in :mod:`simdomain.twin.deletion`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simdomain.scenario.model import STAGES

LEVEL = 0.9


@dataclass(frozen=True)
class Hazard:
    """A constant daily hazard: ``events`` over ``exposure`` person-days."""

    events: float
    exposure: float

    @property
    def rate(self) -> float:
        return self.events / self.exposure if self.exposure > 0 else 0.0

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Posterior draws of the rate (Jeffreys prior)."""
        if self.exposure <= 0:
            return np.zeros(n)
        return rng.gamma(self.events + 0.5, 1.0 / self.exposure, size=n)

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        from scipy.stats import gamma

        if self.exposure <= 0:
            return (0.0, 0.0)
        tail = (1 - level) / 2
        dist = gamma(self.events + 0.5, scale=1.0 / self.exposure)
        return float(dist.ppf(tail)), float(dist.ppf(1 - tail))


@dataclass(frozen=True)
class StepFit:
    """A step's pooled hazard and each channel's hazard."""

    pooled: Hazard
    by_channel: dict[str, Hazard]

    def multipliers(self) -> dict[str, float]:
        """Each channel's hazard over the pooled one (1 where it has no exposure)."""
        base = self.pooled.rate
        return {c: (h.rate / base if base > 0 and h.exposure > 0 else 1.0)
                for c, h in self.by_channel.items()}


def _exposure(start: pd.Series, event: pd.Series, stop: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Days at risk from day ``start`` up to the event's day (inclusive) or the day before
    ``stop`` (the first day not at risk), and whether the event happened in that time.

    Days are whole: the engine draws a step once a day, the first time on the day the
    person becomes at risk, so the maximum-likelihood daily probability is events over
    days at risk counted this way.
    """
    start, event, stop = (np.asarray(a, dtype=float) for a in (start, event, stop))
    happened = (event >= start) & (event < stop)
    days = np.where(happened, event - start + 1, np.where(event < start, 0.0, stop - start))
    days = np.where(np.isnan(start), 0.0, np.clip(np.nan_to_num(days), 0.0, None))
    return days, happened


def _stop(people: pd.DataFrame) -> pd.Series:
    """The first day a person is no longer at risk: after their deletion, or day 0."""
    return (people["deletion_day"] + 1).fillna(0.0).clip(upper=0.0)


Activity = Callable[[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""Expected active days of each person between two days, given a daily step rate each
that they did not take (see :func:`active_days`)."""


def active_days(params: tuple[float, float, float, float], nodes: int = 16) -> Activity:
    """Days a customer was active between ``start`` and ``stop`` (days from the as-of
    date) without taking a step (joining, becoming KOC) that only active people take.

    Under the fitted Pareto/NBD a customer with ``x`` repeat orders, the last ``t_x``
    days after the first, is still active at the end ``b`` or stopped at some ``w`` in
    ``(t_x, b)``, with weights ``(alpha+b)^-(r+x) (beta/(beta+b))^s`` and
    ``(alpha+w)^-(r+x) s beta^s (beta+w)^-(s+1)``. Not having taken a step of daily rate
    ``j`` while active multiplies them by ``exp(-j * active days)``, which is evidence of
    having stopped: the expectation is over this posterior (Gauss-Legendre in ``w``).
    """
    r, alpha, s, beta = (float(v) for v in params)
    u, weights = np.polynomial.legendre.leggauss(nodes)

    def days(people: pd.DataFrame, start: np.ndarray, stop: np.ndarray,
             rate: np.ndarray) -> np.ndarray:
        first = people["first_order_day"].to_numpy(float)
        x, t_x = people["x"].to_numpy(float), people["t_x"].to_numpy(float)
        a, b = start - first, stop - first
        b = np.maximum(b, t_x)
        # log weights relative to the alive branch, for stability
        alive = -(r + x) * np.log(alpha + b) + s * (np.log(beta) - np.log(beta + b))
        log_alive = alive - rate * np.clip(b - a, 0.0, None)
        w = t_x[None, :] + (b - t_x)[None, :] * (u[:, None] + 1) / 2  # nodes x people
        dead = (-(r + x) * np.log(alpha + w) + np.log(s) + s * np.log(beta)
                - (s + 1) * np.log(beta + w) - rate * np.clip(w - a, 0.0, None))
        scale = np.maximum(log_alive, dead.max(axis=0))
        half = (b - t_x) / 2
        mass_alive = np.exp(log_alive - scale)
        mass_dead = (weights[:, None] * np.exp(dead - scale)).sum(axis=0) * half
        days_dead = (weights[:, None] * np.exp(dead - scale)
                     * np.clip(w - a, 0.0, None)).sum(axis=0) * half
        expected = (mass_alive * np.clip(b - a, 0.0, None) + days_dead) / (mass_alive + mass_dead)
        return np.where(np.isnan(first), stop - start, expected)

    return days


def _step(people: pd.DataFrame, start: pd.Series, event: pd.Series,
          stop: pd.Series | None = None, active: Activity | None = None,
          iterations: int = 8) -> StepFit:
    stop = _stop(people) if stop is None else stop
    days, happened = _exposure(start, event, stop)
    if active is not None:
        # People who never took the step count only their expected active days, which
        # depend on the step's rate (not taking it is evidence of having stopped): a
        # fixed point, from the naive rate of each channel.
        waiting = ~happened & (days > 0)
        source = people["source"].to_numpy()
        naive = days.copy()
        who, first, last = people[waiting], np.asarray(start, float)[waiting], np.asarray(
            stop, float)[waiting]
        for _ in range(iterations):
            sums = pd.DataFrame({"s": source, "d": days, "e": happened}).groupby("s").sum()
            rate = (sums["e"] / sums["d"].where(sums["d"] > 0)).fillna(0.0)
            days = naive.copy()
            days[waiting] = active(who, first, last, rate.reindex(source[waiting]).to_numpy())
    frame = pd.DataFrame({"source": people["source"].to_numpy(), "days": days,
                          "events": happened.astype(float)})
    sums = frame.groupby("source", sort=True)[["events", "days"]].sum()
    return StepFit(
        pooled=Hazard(float(frame["events"].sum()), float(frame["days"].sum())),
        by_channel={str(c): Hazard(float(r.events), float(r.days)) for c, r in sums.iterrows()},
    )


@dataclass(frozen=True)
class FirstOrderFit:
    """Fan -> customer: a hazard in the new-user days after the add and one after."""

    early: StepFit
    late: StepFit
    new_user_days: int

    def expected_early(self) -> float:
        """First orders the new-user days would bring at each channel's later rate.

        Comparing with this, not with the pooled later rate, keeps the channel mix out:
        slow channels' fans stay fans longer, so they weigh more in the later days.
        """
        return sum(h.exposure * self.late.by_channel[c].rate
                   for c, h in self.early.by_channel.items() if c in self.late.by_channel)

    @property
    def new_user_multiplier(self) -> float:
        expected = self.expected_early()
        return self.early.pooled.events / expected if expected > 0 else 1.0


def fit_first_order(people: pd.DataFrame, new_user_days: int = 3) -> FirstOrderFit:
    """Time from the add to the first order, for people who were fans when added.

    People whose first order came before their add (marketplace buyers who added the
    brand later) were never fans in the private domain and are left out.
    """
    fans = people[people["contact"] & ~(people["first_order_day"] < people["add_day"])]
    add, first = fans["add_day"], fans["first_order_day"].fillna(np.inf)
    switch = add + new_user_days
    early = _step(fans, add, first, stop=np.fmin(_stop(fans), switch))
    late = _step(fans, switch, first)
    return FirstOrderFit(early=early, late=late, new_user_days=new_user_days)


def fit_join(people: pd.DataFrame, active: Activity | None = None) -> StepFit:
    """Customer -> member: from the first order (or the add, if later) to joining.

    People who joined before their first order were never customers at risk of joining
    and are left out. With ``active``, people who did not join count only their active
    days (:func:`active_days`).
    """
    customers = people[people["orders"] > 0]
    start = np.fmax(customers["first_order_day"], customers["add_day"])
    at_risk = ~(customers["member_day"] < start)
    customers = customers[at_risk]
    return _step(customers, start[at_risk], customers["member_day"].fillna(np.inf),
                 active=active)


def fit_koc(people: pd.DataFrame, active: Activity | None = None) -> StepFit:
    """Member -> KOC: from joining to the first referral (active days, as for joining)."""
    members = people[people["member_day"].notna()]
    keep = ~(members["koc_day"] < members["member_day"])
    members = members[keep]
    return _step(members, members["member_day"], members["koc_day"].fillna(np.inf),
                 active=active if active is not None and (members["orders"] > 0).all()
                 else None)


def stage_days(people: pd.DataFrame) -> pd.DataFrame:
    """Person-days each person spent in each stage up to their deletion or the as-of date."""
    stop = _stop(people).to_numpy(float)
    add = people["add_day"].to_numpy(float)
    bounds = [add]
    for column in ("first_order_day", "member_day", "koc_day"):
        bounds.append(np.fmax(np.nan_to_num(people[column].to_numpy(float), nan=np.inf),
                              bounds[-1]))
    bounds.append(np.full_like(add, np.inf))
    out = {}
    for s, stage in enumerate(STAGES):
        out[stage] = np.clip(np.fmin(bounds[s + 1], stop) - bounds[s], 0.0, None)
    return pd.DataFrame(out, index=people.index)


def stage_at(people: pd.DataFrame, day: pd.Series | np.ndarray) -> np.ndarray:
    """Each person's stage index (0 fan .. 3 KOC) on ``day``."""
    day = np.asarray(day, dtype=float)
    stage = np.zeros(len(people), dtype=np.int8)
    for s, column in enumerate(("first_order_day", "member_day", "koc_day"), start=1):
        reached = people[column].to_numpy(float) <= day
        stage = np.where(reached & (stage == s - 1), s, stage)
    return stage


def fit_word_of_mouth(people: pd.DataFrame, referrals: pd.DataFrame | None,
                      as_of_end: pd.Timestamp) -> dict[str, Hazard]:
    """Referred adds per person-day by the referrer's stage at the referral."""
    exposure = stage_days(people).sum()
    events = pd.Series(0.0, index=list(STAGES))
    if referrals is not None and len(referrals):
        r = referrals.loc[pd.to_datetime(referrals["at"]) < as_of_end]
        who = r["referrer_id"].astype(str)
        known = who.isin(people.index).to_numpy()
        day = np.floor((pd.to_datetime(r["at"]) - as_of_end) / pd.Timedelta(days=1)).to_numpy()
        stages = stage_at(people.loc[who[known]], day[known])
        events = pd.Series(np.bincount(stages, minlength=4)[:4].astype(float), index=list(STAGES))
    return {s: Hazard(float(events[s]), float(exposure[s])) for s in STAGES}
