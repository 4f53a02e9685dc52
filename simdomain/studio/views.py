"""A run's folder as what the page shows: headline numbers, tables and Plotly figures.

Figures are plain Plotly JSON (``{"data": [...], "layout": {...}}``) built from the
files the CLI writes, so a past run reopens exactly as it first showed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from simdomain.kpi import ALL, horizon_kpis, interval
from simdomain.planner.export import json_ready
from simdomain.studio.workspace import META

KPIS = {  # KPI: (label, monthly target that bounds it, unit)
    "new_adds": ("new adds", "monthly_new_adds", ""),
    "new_members": ("new members", "monthly_new_members", ""),
    "deletion_rate": ("deletion rate", "max_monthly_deletion_rate", "%"),
    "pool_size": ("pool size", None, ""),
    "gmv_cny": ("GMV (yuan)", None, "¥"),
    "cost_per_member_cny": ("cost per member (yuan)", None, "¥"),
}
HEADLINE = {"new_adds": "new adds", "new_members": "new members", "deletions": "deletions",
            "gmv_cny": "GMV (yuan)", "spend_cny": "spend (yuan)",
            "cost_per_member_cny": "cost per member (yuan)", "deletion_rate": "deletion rate"}
"""KPIs over the horizon shown as numbers, with their labels."""
STAGE_COLORS = {"fan": "#9ecae1", "customer": "#4292c6", "member": "#08519c", "koc": "#f16913"}
DOWNLOADS = {"plan.csv", "plan.xlsx", "plan.json", "diagnostics.json", "comparison.csv",
             "monthly.csv", "targets.csv", "summary.json", "scenario.resolved.yaml"}
"""Files of a run folder the page may download."""


def kind_of(folder: Path) -> str | None:
    if (folder / "plan.json").is_file():
        return "plan"
    if (folder / "comparison.csv").is_file():
        return "compare"
    if (folder / "summary.json").is_file():
        return "run"
    return None


def view(folder: Path, ident: str) -> dict[str, Any]:
    """Everything the page shows of a run folder (``ident``: its id for the page)."""
    kind = kind_of(folder)
    meta = _meta(folder)
    meta.setdefault("source", str(folder))
    out: dict[str, Any] = {"id": ident, "kind": kind, "meta": meta,
                           "downloads": sorted(p.name for p in folder.iterdir()
                                               if p.name in DOWNLOADS)}
    if kind == "run":
        out.update(run_view(folder))
    elif kind == "compare":
        out.update(compare_view(folder))
    elif kind == "plan":
        out.update(plan_view(folder))
    return json_ready(out)


def past_runs(folders: list[tuple[str, Path]], limit: int = 50) -> list[dict[str, Any]]:
    """Rows of the past runs table, for (id, folder) pairs."""
    rows = []
    for ident, folder in folders[:limit]:
        kind = kind_of(folder)
        if kind is None:
            continue
        meta = _meta(folder)
        rows.append({"id": ident, "kind": kind, "source": meta.get("source", str(folder)),
                     "finished": meta.get("finished", ""),
                     "overrides": len(meta.get("overrides") or [])})
    return rows


def run_view(folder: Path) -> dict[str, Any]:
    monthly = pd.read_csv(folder / "monthly.csv")
    summary = json.loads((folder / "summary.json").read_text())
    daily = pd.read_csv(folder / "daily.csv", usecols=lambda c: c in (
        "rep", "day", "date", "fan", "customer", "member", "koc"))
    return {"headline": headline(monthly, summary.get("interval", 0.9)),
            "reps": summary["reps"], "seed": summary["seed"],
            "figures": {"kpis": [kpi_figure(summary, k) for k in KPIS],
                        "funnel": funnel_figure(daily),
                        "channels": channel_figure(monthly),
                        "targets": targets_figure(summary)},
            "targets": summary["targets"]}


def headline(monthly: pd.DataFrame, level: float = 0.9) -> list[dict[str, Any]]:
    """Each headline KPI over the horizon: the mean and central interval over reps."""
    totals = horizon_kpis(monthly)
    rows = []
    for name in HEADLINE:
        values = totals.loc[totals["kpi"] == name, "value"].dropna()
        if values.empty:
            continue
        mean, low, high = interval(values, level)
        rows.append({"kpi": name, "mean": mean, "low": low, "high": high})
    return rows


def kpi_figure(summary: dict[str, Any], name: str) -> dict[str, Any]:
    label, target, unit = KPIS[name]
    rows = [k for k in summary["kpis"] if k["kpi"] == name and k["channel"] == ALL]
    months = [r["month"] for r in rows]
    scale = 100.0 if unit == "%" else 1.0

    def col(key: str) -> list[float | None]:
        return [None if r[key] is None else r[key] * scale for r in rows]

    data = [
        {"x": months, "y": col("high"), "type": "scatter", "mode": "lines",
         "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip", "name": "high"},
        {"x": months, "y": col("low"), "type": "scatter", "mode": "lines", "fill": "tonexty",
         "fillcolor": "rgba(66,146,198,0.25)", "line": {"width": 0},
         "name": f"{round(100 * summary['interval'])}% of replications"},
        {"x": months, "y": col("mean"), "type": "scatter", "mode": "lines+markers",
         "line": {"color": "#08519c"}, "name": "mean"},
    ]
    goals = [t for t in summary["targets"] if t["target"] == target]
    if goals:
        data.append({"x": [g["period"] for g in goals], "y": [g["goal"] * scale for g in goals],
                     "type": "scatter", "mode": "lines", "name": "target",
                     "line": {"color": "#d94801", "dash": "dash"}})
    return {"data": data, "layout": _layout(label + (" (%)" if unit == "%" else ""))}


def funnel_figure(daily: pd.DataFrame) -> dict[str, Any]:
    mean = daily.groupby("day", sort=True)[list(STAGE_COLORS)].mean()
    dates = daily.drop_duplicates("day").set_index("day")["date"].reindex(mean.index)
    data = [{"x": dates.tolist(), "y": mean[stage].round(1).tolist(), "type": "scatter",
             "mode": "lines", "stackgroup": "one", "name": stage,
             "line": {"color": color, "width": 0.5}}
            for stage, color in STAGE_COLORS.items()]
    return {"data": data, "layout": _layout("people by stage (mean of replications)")}


def channel_figure(monthly: pd.DataFrame) -> dict[str, Any]:
    per = monthly[monthly["channel"] != ALL]
    totals = per[per["kpi"].isin(["new_adds", "new_members", "spend_cny"])].groupby(
        ["channel", "kpi", "rep"])["value"].sum().unstack("kpi").groupby("channel").mean()
    if totals.empty:
        return {"data": [], "layout": _layout("adds and cost per member by channel")}
    totals = totals.sort_values("new_adds", ascending=False)
    cost = (totals["spend_cny"] / totals["new_members"].where(totals["new_members"] > 0))
    names = totals.index.tolist()
    data = [{"x": names, "y": totals["new_adds"].round(0).tolist(), "type": "bar",
             "name": "adds", "marker": {"color": "#4292c6"}},
            {"x": names, "y": cost.round(2).tolist(), "type": "scatter", "mode": "markers",
             "name": "cost per member (yuan)", "yaxis": "y2",
             "marker": {"color": "#d94801", "size": 10}}]
    layout = _layout("adds over the horizon and cost per member, by channel")
    layout["yaxis2"] = {"overlaying": "y", "side": "right", "title": {"text": "yuan"},
                        "rangemode": "tozero", "showgrid": False}
    layout["yaxis"]["title"] = {"text": "adds"}
    return {"data": data, "layout": layout}


def targets_figure(summary: dict[str, Any]) -> dict[str, Any]:
    rows = summary["targets"]
    labels = [f"{t['target']} {t['period']}" for t in rows]
    chances = [t["probability_met"] for t in rows]
    colors = ["#238b45" if c >= 0.8 else "#fd8d3c" if c >= 0.5 else "#cb181d" for c in chances]
    data = [{"y": labels, "x": chances, "type": "bar", "orientation": "h", "name": "chance met",
             "marker": {"color": colors},
             "hovertemplate": "%{y}: %{x:.0%}<extra></extra>"}]
    layout = _layout("chance each target is met")
    layout["xaxis"] = {"range": [0, 1], "tickformat": ".0%"}
    layout["yaxis"] = {"automargin": True, "autorange": "reversed"}
    layout["height"] = max(260, 22 * len(rows) + 80)
    return {"data": data, "layout": layout}


def compare_view(folder: Path) -> dict[str, Any]:
    table = pd.read_csv(folder / "comparison.csv")
    total = table[table["month"] == "total"]
    base = total["variant"].iloc[0] if len(total) else "base"
    figures = []
    for name in [k for k in HEADLINE if k in set(total["kpi"])]:
        rows = total[(total["kpi"] == name) & (total["variant"] != base)]
        if rows.empty:
            continue
        data = [{"y": rows["variant"].tolist(), "x": rows["diff_mean"].tolist(), "type": "scatter",
                 "mode": "markers", "orientation": "h", "name": "change vs base",
                 "marker": {"size": 11, "color": "#08519c"},
                 "error_x": {"type": "data", "symmetric": False,
                             "array": (rows["diff_high"] - rows["diff_mean"]).tolist(),
                             "arrayminus": (rows["diff_mean"] - rows["diff_low"]).tolist()}}]
        layout = _layout(f"{HEADLINE[name]}: change vs {base} (90% confidence interval)")
        layout["shapes"] = [{"type": "line", "x0": 0, "x1": 0, "yref": "paper", "y0": 0, "y1": 1,
                             "line": {"color": "#888", "dash": "dot"}}]
        layout["yaxis"] = {"automargin": True}
        layout["height"] = 120 + 40 * len(rows)
        figures.append(figures_entry(name, data, layout))
    order = {name: i for i, name in enumerate(HEADLINE)}
    shown = total[total["kpi"].isin(list(HEADLINE))]
    shown = shown.iloc[sorted(range(len(shown)), key=lambda i: order[shown["kpi"].iloc[i]])]
    rows = shown.to_dict(orient="records")  # by KPI, the variants in their order
    return {"base": base, "table": rows, "figures": {"diffs": figures}}


def figures_entry(name: str, data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    return {"kpi": name, "data": data, "layout": layout}


def plan_view(folder: Path) -> dict[str, Any]:
    document = json.loads((folder / "plan.json").read_text())
    diagnostics = json.loads((folder / "diagnostics.json").read_text())
    plan = pd.DataFrame(document["plan"])
    data = []
    if not plan.empty:
        for channel, rows in plan.groupby("channel", sort=False):
            data.append({"x": rows["month"].tolist(), "y": rows["spend_cny"].round(0).tolist(),
                         "type": "bar", "name": channel,
                         "customdata": rows["adds"].round(0).tolist(),
                         "hovertemplate": f"{channel} %{{x}}: ¥%{{y:,.0f}}, "
                                          "%{customdata:,.0f} adds<extra></extra>"})
    layout = _layout("planned spend by channel and month (yuan)")
    layout["barmode"] = "stack"
    prices = diagnostics.get("marginal_costs") or {}
    return {"status": document["status"], "total_cost_cny": document["total_cost_cny"],
            "plan": document["plan"], "targets": document["targets"],
            "binding": diagnostics.get("binding") or [],
            "marginal_costs": [{"constraint": k, "value": v} for k, v in prices.items()
                               if v not in (None, 0)],
            "diagnosis": diagnostics.get("diagnosis"),
            "figures": {"plan": {"data": data, "layout": layout}}}


def _layout(title: str) -> dict[str, Any]:
    return {"title": {"text": title, "font": {"size": 14}}, "height": 280,
            "margin": {"l": 60, "r": 50, "t": 40, "b": 40}, "hovermode": "x unified",
            "legend": {"orientation": "h", "y": -0.2}, "yaxis": {"rangemode": "tozero"},
            "paper_bgcolor": "white", "plot_bgcolor": "#fafafa"}


def _meta(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return {}


