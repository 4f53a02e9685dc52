"""The twin's channels: response curves from spend history, free adds without it.

A channel with spend gets the curve of :mod:`simdomain.twin.response`, fitted on every
month from its first month with spend to the as-of date, and written in the engine's
terms with the funnel's add rate fixed at :data:`ADD_RATE` (the data has adds, not the
contacts behind them)::

    cost_per_contact_cny = ADD_RATE / b      saturation_contacts = A / ADD_RATE
    carryover = lambda                       carried_contacts = e_last b / ADD_RATE
    free_adds_per_month = free

so that the engine's mean adds are the fitted curve (``e_last``: the spend at work in
the data's last month, which carries into the twin's first). A fixed cost per month is
fitted only where the spend file has contacts: spend regressed on contacts over the
months with spend, its intercept kept when its 90% interval is above zero (see
:func:`fixed_cost`). A channel without spend brings its last 3 months' adds free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from simdomain.errors import InputError, Problem
from simdomain.scenario.model import MAX_COUNT, MIN_COST_PER_CONTACT_CNY, RESERVED_SOURCES
from simdomain.twin.response import CurveData, CurveFit, fit_curve, spend_test_terms, working

if TYPE_CHECKING:
    from simdomain.twin.calibrate import _Builder
    from simdomain.twin.history import History

ADD_RATE = 0.1
"""Share of a channel's contacts who add, where the data has adds but not contacts."""
RECENT_MONTHS = 3
"""The twin's planned spend is the mean of the data's last this many whole months."""


@dataclass(frozen=True)
class FixedCost:
    """A fixed monthly cost: the intercept of spend on contacts (yuan)."""

    estimate: float
    low: float
    high: float
    months: int


def _month_end(end: pd.Timestamp) -> pd.Period:
    return (end - pd.Timedelta(days=1)).to_period("M")


def check_spend(spend: pd.DataFrame) -> None:
    """Refuse negative or unreadable spend, naming the file's row and column."""
    values = pd.to_numeric(spend["spend_cny"], errors="coerce")
    bad = values.isna() | (values < 0)
    if bad.any():
        rows = spend["_row"] if "_row" in spend else pd.Series(spend.index, index=spend.index)
        raise InputError([Problem("spend", (f"row {int(rows[i])}", "spend_cny"),
                                  f"{str(spend.at[i, 'spend_cny'])!r} is not a spend of 0 or more")
                          for i in spend.index[bad][:10]])


def curve_data(history: History, spend: pd.DataFrame, tests: pd.DataFrame | None,
               messages: list[str]) -> dict[str, CurveData]:
    """Each channel's months with spend (and after) as curve observations.

    A month of the data's first or last is observed in part (from the first order to the
    as-of date): its adds count for that share of the month, its spend is taken as that
    share of the full month's. A month with no spend row after the channel's first is
    taken as a month without spend. Spend for a channel with no contacts is left out,
    with a message.
    """
    check_spend(spend)
    people = history.people
    contacts = people[people["contact"]]
    end = pd.Timestamp(history.as_of) + pd.Timedelta(days=1)
    first_day = end + pd.Timedelta(days=float(np.floor(history.orders["day"].min())))
    months = (end + pd.to_timedelta(contacts["add_day"], unit="D")).dt.to_period("M")
    adds = contacts.groupby([contacts["source"].to_numpy(), months.to_numpy()]).size()
    sources = set(contacts["source"]) - set(RESERVED_SOURCES)
    rows = spend.assign(channel=spend["channel"].astype(str),
                        month=pd.PeriodIndex(spend["month"].astype(str), freq="M"))
    unknown = sorted(set(rows["channel"]) - sources)
    if unknown:
        count = int(rows["channel"].isin(unknown).sum())
        messages.append(f"spend: {count} row(s) for channels with no contacts ({', '.join(unknown)})"
                        ": not fitted")
    last = _month_end(end)
    out = {}
    for channel in sorted(sources):
        mine = rows[(rows["channel"] == channel) & (rows["month"] <= last)]
        mine = mine.groupby("month")["spend_cny"].sum()
        if mine.empty or mine.sum() <= 0:
            continue
        span = pd.period_range(mine[mine > 0].index.min(), last, freq="M")
        share = np.array([_covered(m, first_day, end) for m in span])
        recorded = mine.reindex(span, fill_value=0.0).to_numpy(float)
        full = np.where(share > 0, recorded / np.maximum(share, 1e-12), 0.0)
        counted = np.array([adds.get((channel, m), 0) for m in span], dtype=float)
        level, got, length = spend_test_terms(tests, channel)
        out[channel] = CurveData(spend=full, adds=counted, exposure=share,
                                 months=[str(m) for m in span], test_level=level,
                                 test_adds=got, test_months=length)
    if tests is not None and len(tests) and "lever" in tests:
        spend_tests = tests[tests["lever"].astype(str) == "channel_spend"]
        stray = sorted(set(spend_tests["kind"].astype(str)) - set(out))
        if stray:
            messages.append(f"tests: channel spend arms for channels without a fitted curve "
                            f"({', '.join(stray)}): left out")
    return out


def _covered(month: pd.Period, first: pd.Timestamp, end: pd.Timestamp) -> float:
    lo = max(month.start_time, first)
    hi = min(month.end_time.normalize() + pd.Timedelta(days=1), end)
    return max((hi - lo).days, 0) / month.days_in_month


def fixed_cost(spend: pd.DataFrame, channel: str, level: float = 0.9) -> FixedCost | None:
    """The intercept ``F`` of ``spend = F + cost * contacts`` over the months with spend
    and contacts, if the spend file has contacts that vary over 3 months or more and
    the intercept's ``level`` interval (t, least squares) is above zero; else None."""
    if "contacts" not in spend:
        return None
    rows = spend[(spend["channel"].astype(str) == channel)]
    rows = rows[(rows["spend_cny"] > 0) & rows["contacts"].notna() & (rows["contacts"] > 0)]
    x, y = rows["contacts"].to_numpy(float), rows["spend_cny"].to_numpy(float)
    if len(x) < 3 or np.ptp(x) <= 0.05 * x.mean():
        return None
    design = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = len(x) - 2
    sigma2 = float(resid @ resid) / dof if dof > 0 else 0.0
    se = np.sqrt(sigma2 * np.linalg.inv(design.T @ design)[0, 0])
    t = stats.t.ppf((1 + level) / 2, max(dof, 1))
    low, high = coef[0] - t * se, coef[0] + t * se
    if low <= 0 or coef[0] <= 0.01 * y.mean():
        return None
    return FixedCost(float(coef[0]), float(low), float(high), len(x))


def fit_channels(b: _Builder, history: History, spend: pd.DataFrame | None,
                 tests: pd.DataFrame | None, messages: list[str]) -> dict[str, CurveFit]:
    """Write every contact channel's acquisition into the builder; return the curves."""
    people = history.people
    contacts = people[people["contact"]]
    end = pd.Timestamp(history.as_of) + pd.Timedelta(days=1)
    sources = sorted(set(contacts["source"]) - set(RESERVED_SOURCES))
    data = curve_data(history, spend, tests, messages) if spend is not None else {}
    months = (end + pd.to_timedelta(contacts["add_day"], unit="D")).dt.to_period("M")
    whole = [m for m in pd.period_range(end=_month_end(end), periods=RECENT_MONTHS + 1, freq="M")
             if m.end_time.normalize() + pd.Timedelta(days=1) <= end][-RECENT_MONTHS:]
    curves = {}
    seeds = np.random.SeedSequence(int(b.rng.integers(2**32))).spawn(max(len(sources), 1))
    for channel, seed in zip(sources, seeds):
        loc = ("channels", channel)
        b.fixed((*loc, "funnel", "add"), ADD_RATE,
                f"not in the data: {ADD_RATE} makes a month's adds vary as Poisson counts "
                "(contacts are priced so that adds follow the fitted curve)")
        if channel not in data:
            recent = months[contacts["source"] == channel]
            count = float(recent.isin(whole).sum())
            b.fixed((*loc, "cost_per_contact_cny"), 1.0, "no spend recorded: adds are free")
            b.fixed((*loc, "monthly_spend_cny"), 0.0, "no spend recorded")
            b.fixed((*loc, "max_spend_cny"), 0.0, "no spend recorded: what spend would bring "
                    "is unknown, so a plan spends nothing here")
            b.fitted((*loc, "free_adds_per_month"), count / max(len(whole), 1),
                     b.rng.gamma(count + 0.5, 1.0, b.n) / max(len(whole), 1),
                     f"{count:,.0f} adds in the last {len(whole)} whole months")
            continue
        d = data[channel]
        fixed = fixed_cost(spend, channel)
        if fixed is not None:
            d = CurveData(np.maximum(d.spend - fixed.estimate * (d.spend > 0), 0.0), d.adds,
                          d.exposure, d.months, d.test_level, d.test_adds, d.test_months)
        fit = fit_curve(d, draws=b.n, seed=seed)
        curves[channel] = fit
        _write_curve(b, loc, channel, d, fit, fixed, messages)
    return curves


def _write_curve(b: _Builder, loc: tuple[str, ...], channel: str, d: CurveData, fit: CurveFit,
                 fixed: FixedCost | None, messages: list[str]) -> None:
    draws = fit.draws
    seen = int((d.exposure > 0).sum())
    basis = (f"curve free + A(1 - exp(-b e/A)) on {seen} months ({d.months[0]}..{d.months[-1]},"
             f" {d.adds.sum():,.0f} adds, {fit.levels} spend level(s))")
    if len(d.test_adds):
        basis += f" and {len(d.test_adds)} spend-test arm(s)"
    if fit.message:
        basis += f"; {fit.message}"
        messages.append(f"channels.{channel}: {fit.message}")
    per_cny = draws["adds_per_cny"].to_numpy()
    b.fitted((*loc, "cost_per_contact_cny"), max(ADD_RATE / fit.adds_per_cny,
                                                 MIN_COST_PER_CONTACT_CNY),
             np.maximum(ADD_RATE / per_cny, MIN_COST_PER_CONTACT_CNY),
             f"{ADD_RATE} / b, b = {fit.adds_per_cny:.4g} adds per yuan at zero spend; {basis}")
    b.fitted((*loc, "saturation_contacts"), min(fit.peak_adds / ADD_RATE, MAX_COUNT),
             np.minimum(draws["peak_adds"].to_numpy() / ADD_RATE, MAX_COUNT),
             f"A / {ADD_RATE}, A = {fit.peak_adds:,.4g} peak adds a month; {basis}")
    kept = fit.selection["kept"]
    gain = fit.selection["carryover"] - fit.selection["base"]
    if kept in ("carryover", "both"):
        b.fitted((*loc, "carryover"), fit.carryover, draws["carryover"].to_numpy(),
                 f"carry-over raised the log-likelihood by {gain:.1f} (kept above 1.92)")
        # into the twin's first month: the last month that ended by the as-of date
        upto = len(d.spend) - int(d.exposure[-1] < 1)
        at_work = working(d.spend[:upto], draws["carryover"].to_numpy())[:, -1]
        point = float(working(d.spend[:upto], fit.carryover)[0, -1])
        b.fitted((*loc, "carried_contacts"), min(point * fit.adds_per_cny / ADD_RATE, MAX_COUNT),
                 np.minimum(at_work * per_cny / ADD_RATE, MAX_COUNT),
                 f"spend at work in {d.months[upto - 1]}: {point:,.0f} yuan, times b / "
                 f"{ADD_RATE}")
    else:
        b.fixed((*loc, "carryover"), 0.0, f"fitted: none shown (carry-over raised the "
                f"log-likelihood by {max(gain, 0):.1f}, not above 1.92)")
    if kept in ("free", "both"):
        b.fitted((*loc, "free_adds_per_month"), fit.free, draws["free"].to_numpy(),
                 f"adds without spend, kept by the likelihood; {basis}")
    else:
        b.fixed((*loc, "free_adds_per_month"), 0.0,
                "fitted: none shown (adds without spend did not raise the log-likelihood by "
                "more than 1.92)")
    recent = [x for x, share in zip(d.spend, d.exposure) if share >= 1][-RECENT_MONTHS:]
    b.fixed((*loc, "monthly_spend_cny"), float(np.mean(recent)) if recent else 0.0,
            f"data: mean spend of the last {len(recent)} whole months"
            + (" less the fixed cost" if fixed else ""))
    if fixed is not None:
        b.fixed((*loc, "fixed_cost_cny"), round(fixed.estimate, 2),
                f"fitted: {fixed.estimate:,.0f} yuan (90% {fixed.low:,.0f}..{fixed.high:,.0f}), "
                f"intercept of spend on contacts over {fixed.months} months")


def curve_frame(curves: dict[str, CurveFit]) -> pd.DataFrame:
    """One row per channel: the fitted parameters, their 90% intervals and the message."""
    rows = []
    for channel, fit in curves.items():
        row: dict[str, Any] = {"channel": channel}
        for name in ("peak_adds", "adds_per_cny", "carryover", "free"):
            low, high = fit.interval(name)
            row |= {name: getattr(fit, name), f"{name}_low": low, f"{name}_high": high}
        row |= {"levels": fit.levels, "kept": fit.selection["kept"], "message": fit.message or ""}
        rows.append(row)
    return pd.DataFrame(rows)

