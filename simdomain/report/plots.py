"""Stateless plots of result frames; each returns ``(Figure, Axes)``.

Bands are the central 90% of replications; targets are dashed lines. Figures are made
without pyplot, so nothing depends on a display or on global state. Make and save them
inside :func:`cjk_text` so Chinese names (channels, variants, segments) are drawn.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
             "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Microsoft YaHei",
             "SimHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Droid Sans Fallback",
             "AR PL UMing CN")
"""Fonts with Chinese characters, in order of preference."""
_CJK_FILE = re.compile(r"cjk|wqy|wenquanyi|droidsansfallback|sourcehan|yahei|msyh|simhei|"
                       r"pingfang|hiragino|uming", re.IGNORECASE)
_MISSING_GLYPH = r"Glyph \d+ .*missing from (current )?font"
STAGE_COLORS = {"fan": "#9ecae1", "customer": "#4292c6", "member": "#08519c", "koc": "#f16913"}
BAND = 0.9


@functools.cache
def cjk_font() -> str | None:
    """The name of an installed font with Chinese characters, or ``None``.

    Looks in matplotlib's font list, then (as that list is cached from when matplotlib
    was first used) among the system's font files for one installed since.
    """
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    found = next((n for n in CJK_FONTS if n in names), None)
    if found is None:
        for path in font_manager.findSystemFonts():
            if _CJK_FILE.search(path):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        names = {f.name for f in font_manager.fontManager.ttflist}
        found = next((n for n in CJK_FONTS if n in names), None)
    return found


@contextmanager
def cjk_text() -> Iterator[str | None]:
    """Make and save figures in this block with Chinese text drawn; yield the font used.

    Latin text keeps the default font; characters it lacks come from :func:`cjk_font`.
    Without one, text is drawn with boxes and one :class:`SimdomainWarning` says how
    to install a font (instead of matplotlib's warning per missing character).
    """
    from simdomain.errors import SimdomainWarning

    font = cjk_font()
    families = [*matplotlib.rcParams["font.sans-serif"][:1], *([font] if font else [])]
    # font.family as a list: matplotlib falls back glyph by glyph
    with matplotlib.rc_context({"font.family": families}), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield font
    missing = False
    for item in caught:
        if re.match(_MISSING_GLYPH, str(item.message)):
            missing = True
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    if missing:
        warnings.warn(SimdomainWarning(
            "no font with Chinese characters is installed, so Chinese names show as boxes in "
            "the figures; install one (Debian/Ubuntu: apt install fonts-noto-cjk) and rerun "
            "the report"), stacklevel=2)


def _figure(width: float = 8, height: float = 4) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")  # no pyplot state
    ax = fig.subplots()
    ax.grid(alpha=0.3)
    return fig, ax


def _dates(ax: Axes) -> None:
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _thousands(ax: Axes) -> None:
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))


def stage_funnel(daily: pd.DataFrame) -> tuple[Figure, Axes]:
    """People per stage over time (mean over replications), stacked."""
    mean = daily.groupby("date")[list(STAGE_COLORS)].mean()
    fig, ax = _figure()
    ax.stackplot(mean.index, mean.T.to_numpy(), labels=list(STAGE_COLORS),
                 colors=list(STAGE_COLORS.values()), alpha=0.9)
    ax.set(title="People in the pool by stage", xlabel="date", ylabel="people")
    _thousands(ax)
    _dates(ax)
    ax.legend(loc="upper left")
    return fig, ax


def monthly_kpi(frames: dict[str, pd.DataFrame], kpi: str, label: str,
                goal: float | None = None) -> tuple[Figure, Axes]:
    """A KPI per month: mean line with the 90% band of replications, and its target.

    ``frames`` maps names (``""`` for a single run) to monthly frames drawn on one axis.
    """
    fig, ax = _figure()
    for name, frame in frames.items():
        values = frame[(frame["kpi"] == kpi) & (frame["channel"] == "all")]
        stats = values.groupby("month")["value"].agg(
            mean="mean", low=lambda v: v.quantile((1 - BAND) / 2),
            high=lambda v: v.quantile(1 - (1 - BAND) / 2))
        x = list(stats.index)
        (line,) = ax.plot(x, stats["mean"], marker="o", label=name or "mean")
        ax.fill_between(x, stats["low"], stats["high"], color=line.get_color(), alpha=0.2,
                        label=f"{name} 90% of replications".strip())
    if goal is not None:
        ax.axhline(goal, color="black", linestyle="--", linewidth=1, label="target")
    ax.set(title=label, xlabel="month", ylabel=label)
    ax.tick_params(axis="x", rotation=45)
    if "rate" in kpi or "share" in kpi:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    else:
        _thousands(ax)
    ax.legend(fontsize="small")
    return fig, ax


def daily_with_band(daily: pd.DataFrame, column: str, label: str, *, cumulative: bool = False,
                    goals: list[tuple[pd.Timestamp, float]] = ()) -> tuple[Figure, Axes]:
    """A daily series (optionally cumulative) with its band, and point targets."""
    frame = daily[["rep", "date", column]].copy()
    if cumulative:
        frame[column] = frame.groupby("rep")[column].cumsum()
    wide = frame.pivot(index="date", columns="rep", values=column)
    fig, ax = _figure()
    ax.plot(wide.index, wide.mean(axis=1), label="mean")
    ax.fill_between(wide.index, wide.quantile((1 - BAND) / 2, axis=1),
                    wide.quantile(1 - (1 - BAND) / 2, axis=1), alpha=0.2,
                    label="90% of replications")
    for date, goal in goals:
        ax.plot([date], [goal], marker="*", markersize=14, color="black", linestyle="none",
                label=f"target {goal:,.0f}")
    ax.set(title=label, xlabel="date", ylabel=label)
    _thousands(ax)
    _dates(ax)
    ax.legend(fontsize="small")
    return fig, ax


def channel_adds(monthly: pd.DataFrame) -> tuple[Figure, Axes]:
    """Adds per channel per month (mean over replications), stacked bars."""
    rows = monthly[(monthly["kpi"] == "new_adds") & (monthly["channel"] != "all")]
    table = rows.groupby(["month", "channel"])["value"].mean().unstack(fill_value=0)
    fig, ax = _figure()
    bottom = np.zeros(len(table))
    for channel in table.columns:
        ax.bar(table.index, table[channel], bottom=bottom, label=channel)
        bottom += table[channel].to_numpy()
    ax.set(title="Adds by channel", xlabel="month", ylabel="adds per month")
    ax.tick_params(axis="x", rotation=45)
    _thousands(ax)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig, ax


def cost_per_member(monthly: pd.DataFrame) -> tuple[Figure, Axes]:
    """Spend over the horizon divided by the members each channel brought."""
    rows = monthly[monthly["channel"] != "all"]
    totals = rows[rows["kpi"].isin(["spend_cny", "new_members"])].groupby(
        ["channel", "kpi"])["value"].sum().unstack()
    cost = (totals["spend_cny"] / totals["new_members"].where(totals["new_members"] > 0)).dropna()
    fig, ax = _figure(8, 3.5)
    ax.barh(cost.index, cost.to_numpy(), color="#4292c6")
    ax.set(title="Cost per member by channel (spend / members it brought)",
           xlabel="yuan per member", ylabel="channel")
    return fig, ax


def differences(table: pd.DataFrame, month: str = "total") -> tuple[Figure, Axes]:
    """Each variant's change vs the base, in percent of the base, with confidence intervals."""
    rows = table[(table["month"] == month)]
    base = rows.groupby("kpi")["mean"].first()
    kpis = ["new_adds", "new_members", "deletions", "pool_size", "gmv_cny", "spend_cny"]
    variants = list(dict.fromkeys(rows["variant"]))[1:]
    fig, ax = _figure(8, 4)
    height = 0.8 / max(len(variants), 1)
    for i, variant in enumerate(variants):
        part = rows[rows["variant"] == variant].set_index("kpi").reindex(kpis)
        scale = 100 / base.reindex(kpis).where(base.reindex(kpis) != 0)
        y = np.arange(len(kpis)) + i * height
        mean = part["diff_mean"] * scale
        err = np.vstack([mean - part["diff_low"] * scale, part["diff_high"] * scale - mean])
        ax.barh(y, mean, height=height, xerr=np.abs(err), capsize=3, label=variant)
    ax.set_yticks(np.arange(len(kpis)) + 0.4 - height / 2, kpis)
    ax.axvline(0, color="black", linewidth=1)
    ax.set(title="Change vs the base over the horizon (90% confidence)",
           xlabel="% of the base", ylabel="KPI")
    ax.legend(fontsize="small")
    return fig, ax


def response(summary: pd.DataFrame, factor: str, outcome: str) -> tuple[Figure, Axes]:
    """An outcome's mean per design point against one factor, with 95% confidence
    intervals, and the factor's main effect (the average over the other factors)."""
    rows = summary[summary["outcome"] == outcome]
    fig, ax = _figure(6, 3.5)
    ax.errorbar(rows[factor], rows["mean"],
                yerr=[rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]],
                fmt="o", markersize=7, alpha=0.8, capsize=3, label="design point (95% CI)")
    if rows[factor].nunique() <= 12:
        effect = rows.groupby(factor)["mean"].mean()
        ax.plot(effect.index, effect.to_numpy(), color="#f16913", marker="s", linewidth=2.5,
                label="mean over the other factors")
    ax.set(title=f"{outcome} by {factor}", xlabel=factor, ylabel=outcome)
    if rows["mean"].abs().max() >= 1000:
        _thousands(ax)
    ax.legend(fontsize="small")
    return fig, ax


def sensitivity(indices: pd.DataFrame, outcome: str) -> tuple[Figure, Axes]:
    """Sensitivity indices of one outcome per factor (Sobol S1 and ST, or Morris mu*),
    with their 95% bootstrap half-widths."""
    rows = indices[indices["outcome"] == outcome]
    shown = [i for i in ("S1", "ST", "mu_star") if i in set(rows["index"])]
    table = rows[rows["index"].isin(shown)].pivot(index="factor", columns="index",
                                                 values=["value", "conf"])
    factors = list(table.index)
    fig, ax = _figure(6, 0.6 * len(factors) + 1.5)
    height = 0.8 / len(shown)
    for i, name in enumerate(shown):
        y = np.arange(len(factors)) + i * height
        ax.barh(y, table[("value", name)], height=height, xerr=table[("conf", name)],
                capsize=3, label=name)
    ax.set_yticks(np.arange(len(factors)) + 0.4 - height / 2, factors)
    ax.axvline(0, color="black", linewidth=1)
    ax.set(title=f"Sensitivity of {outcome}", xlabel="index (share of variance for Sobol)",
           ylabel="factor")
    ax.legend(fontsize="small")
    return fig, ax


def plan_by_channel(plan: pd.DataFrame, column: str, label: str) -> tuple[Figure, Axes]:
    """A plan's ``column`` (spend or adds) per month, stacked by channel."""
    table = plan.pivot_table(index="month", columns="channel", values=column, aggfunc="sum",
                             fill_value=0)
    fig, ax = _figure()
    bottom = np.zeros(len(table))
    for channel in table.columns:
        ax.bar(table.index, table[channel], bottom=bottom, label=channel)
        bottom += table[channel].to_numpy()
    ax.set(title=f"Planned {label} by channel", xlabel="month", ylabel=label)
    ax.tick_params(axis="x", rotation=45)
    _thousands(ax)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig, ax
