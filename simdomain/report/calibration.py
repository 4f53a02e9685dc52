"""The pages of a twin: its calibration (observed against fitted) and its backtest."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from simdomain.report.html import Figures, _page
from simdomain.twin import btyd


def _table(frame: pd.DataFrame, floats: str = "{:.4g}") -> str:
    return ('<div class="wide">' + frame.to_html(index=False, border=0, float_format=floats.format,
                                                 na_rep="") + "</div>")


def _save(figures: Figures, folder: Path) -> None:
    (folder / "figures").mkdir(exist_ok=True)
    for name, data in figures.files.items():
        (folder / "figures" / name).write_bytes(data)


def tracking(history: Any, params: btyd.ParetoNBDParams) -> pd.DataFrame:
    """Repeat orders per month: observed, and expected under the fitted Pareto/NBD.

    The expectation sums, over cohorts of customers by the day of their first order,
    each cohort's expected repeat orders to each month's end (the tracking plot of the
    customer-base literature), in sample.
    """
    customers = history.customers
    first = customers["first_order_day"].to_numpy(float)
    cohorts = pd.Series(first).value_counts()
    repeats = history.repeat_days()
    end = pd.Timestamp(history.as_of) + pd.Timedelta(days=1)
    months = pd.period_range((end + pd.to_timedelta(first.min(), unit="D")), history.as_of,
                             freq="M")
    rows = []
    previous = 0.0
    for month in months:
        stop = float(min((month.end_time.normalize() + pd.Timedelta(days=1) - end).days, 0))
        t = np.clip(stop - cohorts.index.to_numpy(float) - 1, 0.0, None)
        cumulative = float((btyd.expected_orders_new(params, t) * cohorts.to_numpy()).sum())
        start = float((month.start_time - end).days)
        observed = int(((repeats >= start) & (repeats < stop)).sum())
        rows.append({"month": str(month), "observed": observed,
                     "expected": cumulative - previous})
        previous = cumulative
    return pd.DataFrame(rows)


def _tracking_figure(frame: pd.DataFrame) -> tuple[Figure, Any]:
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(frame))
    ax.bar(x, frame["observed"], color="#9ecae1", label="observed")
    ax.plot(x, frame["expected"], color="#08519c", marker="o", label="fitted (Pareto/NBD)")
    ax.set_xticks(x[:: max(len(x) // 12, 1)], frame["month"].iloc[:: max(len(x) // 12, 1)],
                  rotation=45, ha="right")
    ax.set_ylabel("repeat orders (customer-days)")
    ax.legend(frameon=False)
    return fig, ax


def _curve_figure(name: str, fit: Any) -> tuple[Figure, Any]:
    """A channel's fitted curve, its 90% band and the observed months (and test arms)."""
    from simdomain.twin.response import working

    d = fit.data
    seen = d.exposure > 0
    at_work = working(d.spend, fit.carryover)[0][seen]
    per_month = d.adds[seen] / d.exposure[seen]
    top = max(float(np.max(at_work, initial=0.0)), float(np.max(d.test_level, initial=0.0)), 1.0)
    x = np.linspace(0.0, (3.0 if fit.message else 1.5) * top, 120)  # wide: show how wide
    band = np.quantile(fit.adds(x, draws=True), [0.05, 0.95], axis=0)
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.fill_between(x, band[0], band[1], color="#c6dbef", label="90% band")
    ax.plot(x, fit.adds(x), color="#08519c", label="fitted curve")
    ax.plot(at_work, per_month, "o", color="black", markersize=4, label="months")
    if len(d.test_level):
        ax.plot(d.test_level, d.test_adds / d.test_months, "s", color="#d94801",
                label="spend-test arms")
    ax.set_xlabel("spend at work e (yuan a month" + (", with carry-over)" if fit.carryover
                                                     else ")"))
    ax.set_ylabel("adds a month")
    ax.set_title(name)
    ax.legend(frameon=False, fontsize=8)
    return fig, ax


def _curves_section(twin: Any, figures: Figures) -> str:
    from simdomain.twin.acquisition import curve_frame

    if not twin.curves:
        return "<p>No channel with spend in the data: no curve fitted.</p>"
    parts = [f"<h3>{html.escape(name)}</h3>"
             + figures.embed(f"curve_{name}", _curve_figure(name, fit), f"curve of {name}")
             + (f"<p><b>{html.escape(fit.message)}</b></p>" if fit.message else "")
             for name, fit in twin.curves.items()]
    intro = ("<p>Monthly adds = free + A (1 - exp(-b e / A)), e = this month's spend + "
             "carry-over x last month's e. Points are months (adds scaled to a full month) at "
             "their spend at work; the band is the 90% band of the posterior draws.</p>")
    return intro + "".join(parts) + _table(curve_frame(twin.curves))


def _tests_section(twin: Any) -> tuple[str, str] | None:
    """Each touch test's arms and counts, observed and fitted, what each arm's level moved
    (with its 90% interval), the fitted effects and the lack-of-fit check."""
    arms = getattr(twin, "tests", None)
    observed = getattr(twin, "observational", None)
    if (arms is None or arms.empty) and observed is None:
        return None
    log = "" if observed is None else (
        "<h3>From the touch log (observational)</h3><p>Who is touched is chosen: staff "
        "message the people likely to act, so these are associations, not effects. They "
        "count only where no test covers an effect, and as a wide prior elsewhere.</p>"
        + _table(observed))
    if arms is None or arms.empty:
        return "Touch effects from the touch log", log
    from simdomain.twin.effects import lack_of_fit

    effects = twin.estimates[twin.estimates["parameter"].str.contains(
        r"touch_policy\.|^touch\.", regex=True)]
    shown = arms.rename(columns={"moved_pct": "moved %", "moved_low_pct": "low %",
                                 "moved_high_pct": "high %"})
    check = lack_of_fit(arms)
    text = ("<p>Each arm's expected count is its people times a base rate per test and "
            "outcome times the mean-field multiplier of its level; <em>moved</em> is the "
            "arm's rate over the lowest level's. A small p-value in the check says the "
            "arms do not follow the mean-field response (e.g. a response that "
            "saturates).</p>")
    return ("Touch tests: what each moved", text + _table(shown, "{:,.4g}")
            + "<h3>Fitted touch effects (90% intervals)</h3>" + _table(effects)
            + "<h3>Check: arms against the fitted split</h3>" + _table(check) + log)


def write_calibration_report(twin: Any, history: Any, folder: Path) -> str:
    """Write ``calibration.html`` (and its figures) into a twin's folder; return its name."""
    figures = Figures(folder)
    params = btyd.ParetoNBDParams(*(float(twin.parameters.loc[0, f"pnbd.{k}"])
                                    for k in ("r", "alpha", "s", "beta")))
    track = tracking(history, params)
    people = twin.population
    by_channel = people.groupby("source").agg(people=("customer_id", "size"),
                                              customers=("orders", lambda o: int((o > 0).sum())),
                                              orders=("orders", "sum")).reset_index()
    by_segment = people.groupby("segment").agg(people=("customer_id", "size"),
                                               mean_gmv_cny=("gmv_cny", "mean")).reset_index()
    by_stage = people["stage"].value_counts().rename_axis("stage").reset_index(name="people")
    notes = "".join(f"<li>{html.escape(m)}</li>" for m in twin.messages) or "<li>none</li>"
    sections = [
        ("Repeat orders: observed and fitted, by month",
         figures.embed("tracking", _tracking_figure(track), "repeat orders by month") +
         _table(track, "{:,.1f}")),
        ("Fitted parameters (90% intervals)", _table(twin.estimates)),
        ("Channel response: adds against spend", _curves_section(twin, figures)),
        ("What an add is worth, by channel (cohorts with full follow-up, 90% intervals)",
         _table(twin.channel_values) if twin.channel_values is not None
         and len(twin.channel_values) else "<p>No cohort with full follow-up yet.</p>"),
        ("People by stage", _table(by_stage)),
        ("People by source channel", _table(by_channel)),
        ("People by value tier", _table(by_segment, "{:,.1f}")),
        ("What could not be fitted", f"<ul>{notes}</ul>"),
    ]
    tests = _tests_section(twin)
    if tests is not None:
        sections.insert(2, tests)
    (folder / "calibration.html").write_text(
        _page(f"Calibration of {twin.scenario['name']} (data up to {history.as_of})", sections),
        encoding="utf-8")
    _save(figures, folder)
    return "calibration.html"


def _forecast_figure(monthly: pd.DataFrame, measure: str, label: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    m = monthly[(monthly["measure"] == measure) & (monthly["channel"] == "all")]
    x = np.arange(len(m))
    ax.fill_between(x, m["forecast_low"], m["forecast_high"], color="#c6dbef",
                    label="twin, 90% interval")
    ax.plot(x, m["forecast_mean"], color="#08519c", label="twin, mean")
    if m["baseline"].notna().any():
        ax.plot(x, m["baseline"], color="#d94801", linestyle="--", label="BG/NBD")
    ax.plot(x, m["actual"], color="black", marker="o", linestyle="none", label="actual")
    ax.set_xticks(x, m["month"], rotation=45, ha="right")
    ax.set_ylabel(label)
    ax.legend(frameon=False)
    return fig, ax


def write_backtest_report(test: Any, folder: Path) -> str:
    """Write ``report.html`` for one backtest origin; return its name."""
    figures = Figures(folder)
    m = test.metrics
    rows = [{"model": name, **{k: m[name][k] for k in ("mae", "rmse", "bias", "crps",
                                                        "total_forecast", "total_actual",
                                                        "total_error_pct")}}
            for name in ("twin", "baseline")]
    coverage = pd.DataFrame([{"measure": k, "share of months inside the 90% interval": v}
                             for k, v in m["monthly_coverage"].items()])
    c = test.customers
    deciles = pd.qcut(c["forecast_orders"].rank(method="first"), 10, labels=False)
    by_decile = c.groupby(deciles).agg(customers=("customer_id", "size"),
                                       forecast=("forecast_orders", "mean"),
                                       baseline=("baseline_orders", "mean"),
                                       actual=("actual_orders", "mean")).reset_index(names="decile")
    sections = [
        ("Orders by known customers, by month",
         figures.embed("known_orders", _forecast_figure(test.monthly, "orders_known_customers",
                                                        "orders (customer-days)"), "orders")),
        ("All orders, by month (known and new customers)",
         figures.embed("orders", _forecast_figure(test.monthly, "orders", "orders"), "orders")),
        ("Per customer: twin and BG/NBD (" + html.escape(str(m.get("baseline_method"))) + ")",
         _table(pd.DataFrame(rows))),
        ("Per customer, by decile of the twin's forecast", _table(by_decile)),
        ("Interval coverage", _table(coverage)),
    ]
    (folder / "report.html").write_text(
        _page(f"Backtest from {m['cutoff']} to {m['end']}", sections), encoding="utf-8")
    _save(figures, folder)
    return "report.html"
