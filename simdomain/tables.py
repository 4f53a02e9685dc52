"""Plain-text tables of a simulation for the terminal."""

from __future__ import annotations

import math
from typing import Any

from simdomain.kpi import ALL

SHOWN = [
    ("new_adds", "new adds", "monthly_new_adds"),
    ("new_members", "new members", "monthly_new_members"),
    ("new_kocs", "new KOCs", None),
    ("deletion_rate", "deletion rate", "max_monthly_deletion_rate"),
    ("pool_size", "pool", None),
    ("gmv_cny", "GMV (yuan)", None),
    ("cost_per_member_cny", "yuan/member", None),
    ("k_factor", "K-factor", None),
]


def number(x: float | None, kind: str = "") -> str:
    """Short human form: ``12.3k``, ``4.56M``, ``3.2%``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if kind == "rate":
        return f"{100 * x:.1f}%"
    if kind == "ratio":
        return f"{x:.3f}"
    size = abs(x)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{x / limit:.3g}{suffix}"
    return f"{x:.0f}" if size >= 10 else f"{x:.3g}"


def _kind(kpi: str) -> str:
    return "rate" if kpi == "deletion_rate" else "ratio" if kpi == "k_factor" else ""


def monthly_table(summary: dict[str, Any]) -> str:
    """Months by KPI: the mean, and under it the interval; ``*`` marks a month whose
    target is more likely missed than met."""
    cells: dict[tuple[str, str], dict[str, Any]] = {
        (k["month"], k["kpi"]): k for k in summary["kpis"] if k["channel"] == ALL
    }
    missed = {(t["period"], t["target"]) for t in summary["targets"] if t["probability_met"] < 0.5}
    level = f"{100 * summary['interval']:.0f}%"
    rows = [["month"] + [label for _, label, _ in SHOWN]]
    for month in sorted({m for m, _ in cells}):
        means, spans = [month], [f"  {level}"]
        for kpi, _, target in SHOWN:
            cell = cells.get((month, kpi), {"mean": None, "low": None, "high": None})
            kind = _kind(kpi)
            flag = "*" if (month, target) in missed else ""
            means.append(number(cell["mean"], kind) + flag)
            spans.append(f"{number(cell['low'], kind)}-{number(cell['high'], kind)}")
        rows += [means, spans]
    return layout(rows)


def targets_table(summary: dict[str, Any]) -> str:
    """One row per target: point targets with their interval and chance of being met;
    monthly targets with the months they are met in (more often than not) and the
    month least likely to be met."""
    rows = [["target", "goal", "when", "mean [interval]", "P(met)", ""]]
    by_target: dict[str, list[dict[str, Any]]] = {}
    for t in summary["targets"]:
        by_target.setdefault(t["target"], []).append(t)
    for name, periods in by_target.items():
        kind = "rate" if "rate" in name else ""
        worst = min(periods, key=lambda t: t["probability_met"])
        met = sum(t["probability_met"] >= 0.5 for t in periods)
        when = worst["period"] if len(periods) == 1 else f"{met}/{len(periods)} months met; worst {worst['period']}"
        rows.append([
            name, number(worst["goal"], kind), when,
            f"{number(worst['mean'], kind)} [{number(worst['low'], kind)}, {number(worst['high'], kind)}]",
            f"{100 * worst['probability_met']:.0f}%", "met" if met == len(periods) else "MISSED",
        ])
    return layout(rows) if len(rows) > 1 else "(no targets)"


COMPARED = ["new_adds", "new_members", "new_kocs", "deletions", "deletion_rate", "pool_size",
            "orders", "gmv_cny", "spend_cny", "cost_per_member_cny", "k_factor"]


def comparison_table(table: Any, month: str = "total") -> str:
    """KPIs by variant for one month (or the horizon): mean [interval], and for each
    variant after the base, the paired difference to the base [its interval]."""
    rows = [["KPI"]]
    variants = list(dict.fromkeys(table["variant"]))
    for i, variant in enumerate(variants):
        rows[0].append(variant)
        if i:
            rows[0].append(f"change vs {variants[0]}")
    shown = table[table["month"] == month].set_index(["kpi", "variant"])
    for kpi in COMPARED:
        if (kpi, variants[0]) not in shown.index:
            continue
        kind = _kind(kpi)
        row = [kpi]
        for i, variant in enumerate(variants):
            r = shown.loc[(kpi, variant)]
            row.append(f"{number(r['mean'], kind)} [{number(r['low'], kind)}, {number(r['high'], kind)}]")
            if i:
                sign = "+" if r["diff_mean"] >= 0 else ""
                row.append(f"{sign}{number(r['diff_mean'], kind)} "
                           f"[{number(r['diff_low'], kind)}, {number(r['diff_high'], kind)}]")
        rows.append(row)
    return layout(rows)


def layout(rows: list[list[str]], left: int = 1) -> str:
    """Rows of cells as a text table: a header row, a rule under it, the first ``left``
    columns aligned left and the others right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < left else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
