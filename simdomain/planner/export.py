"""Plans for finance and ops: CSV, Excel, JSON, and the tables printed by ``simdomain plan``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simdomain.outfolder import open_folder
from simdomain.planner.chance import ChancePlan
from simdomain.planner.planning import PlanResult
from simdomain.planner.verify import Confidence, Verification

UNITS = {"adds": "adds", "members": "members", "people": "people", "cny": "yuan", "rate": ""}


def write_plan(result: PlanResult, out_dir: str | Path, *,
               verification: Verification | None = None,
               confidence: Confidence | None = None,
               chance: ChancePlan | None = None) -> list[str]:
    """Write ``plan.csv``, ``plan.xlsx``, ``plan.json`` and ``diagnostics.json``.

    ``plan.csv`` is tidy (channel, month, spend, cost, adds, members, staff accounts);
    the workbook has a sheet for the plan, one for targets against the plan (and the
    simulated outcome, if verified) and one for the diagnostics. Files appear together
    or not at all, and ``out_dir`` holds nothing else (see :mod:`simdomain.outfolder`).

    When no plan meets the targets, only ``diagnostics.json`` and ``diagnosis.txt``
    (what falls short, and why) are written, so nothing that looks like a plan is
    handed on.
    """
    if not result.optimal:
        diagnostics = result.diagnostics()
        if chance is not None:
            diagnostics["chance"] = chance.report()
        with open_folder(out_dir, "plan") as folder, folder.stage() as scratch:
            (scratch / "diagnostics.json").write_text(_dumps(diagnostics))
            (scratch / "diagnosis.txt").write_text(diagnosis_text(result) + "\n",
                                                   encoding="utf-8")
        return ["diagnostics.json", "diagnosis.txt"]
    plan = result.frame()
    targets = result.targets_frame()
    if verification is not None:
        simulated = verification.summary[["target", "period", "mean", "low", "high",
                                          "probability_met"]]
        targets = targets.merge(simulated.rename(columns={
            "mean": "simulated_mean", "low": "simulated_low", "high": "simulated_high"}),
            on=["target", "period"], how="left")
    diagnostics = result.diagnostics()
    if verification is not None:
        diagnostics["verification"] = {
            "reps": verification.reps, "seed": verification.seed,
            "interval": verification.level,
            "joint_probability": verification.joint_probability,
            "simulated_spend_cny": verification.spend_cny,
            "targets": verification.summary.to_dict(orient="records")}
    if confidence is not None:
        diagnostics["confidence"] = confidence.report()
    if chance is not None:
        diagnostics["chance"] = chance.report()
        targets = targets.merge(chance.table.drop(columns=["goal", "unit"]),
                                on=["target", "period"], how="left")
    document = {"scenario": result.scenario.name, "status": result.status,
                "objective": result.problem.objective,
                "total_cost_cny": result.evaluation.total_cost if result.evaluation else None,
                "plan": plan.to_dict(orient="records"),
                "targets": targets.to_dict(orient="records")}
    with open_folder(out_dir, "plan") as folder, folder.stage() as scratch:
        plan.to_csv(scratch / "plan.csv", index=False)
        with pd.ExcelWriter(scratch / "plan.xlsx", engine="openpyxl") as book:
            plan.to_excel(book, sheet_name="plan", index=False)
            targets.to_excel(book, sheet_name="targets vs plan", index=False)
            flatten(diagnostics).to_excel(book, sheet_name="diagnostics", index=False)
        (scratch / "plan.json").write_text(_dumps(document))
        (scratch / "diagnostics.json").write_text(_dumps(diagnostics))
        if chance is not None:
            chance.mean.frame().to_csv(scratch / "mean_plan.csv", index=False)
            chance.table.to_csv(scratch / "chance.csv", index=False)
    extra = ["mean_plan.csv", "chance.csv"] if chance is not None else []
    return ["plan.csv", "plan.xlsx", "plan.json", "diagnostics.json", *extra]


def _dumps(value: Any) -> str:
    return json.dumps(json_ready(value), indent=2, ensure_ascii=False) + "\n"


def json_ready(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN and infinity to ``None``."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def flatten(data: Any, prefix: str = "") -> pd.DataFrame:
    """Nested diagnostics as ``item, value`` rows (``a.b.0.c``), for a spreadsheet."""
    rows: list[tuple[str, Any]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict) and node:
            for key, child in node.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(node, (list, tuple)) and node:
            for i, child in enumerate(node):
                walk(child, f"{path}.{i}")
        else:
            rows.append((path, json.dumps(json_ready(node)) if isinstance(node, (dict, list))
                         else json_ready(node)))

    walk(data, prefix)
    return pd.DataFrame(rows, columns=["item", "value"])


def _money(x: float) -> str:
    return f"¥{x:,.0f}"


def _price(x: float) -> str:
    return f"¥{x:,.2f}" if abs(x) < 10 else _money(x)


def _amount(x: float, unit: str) -> str:
    if unit == "rate":
        return f"{x:.2%}"
    return _money(x) if unit == "cny" else f"{x:,.0f}"


def plan_text(result: PlanResult) -> str:
    """The plan as readable tables: by channel, by month, and each target's margin."""
    frame = result.frame()
    months = len(result.problem.months)
    by_channel = frame.groupby("channel", sort=False).agg(
        spend_per_month=("spend_cny", "mean"), adds_per_month=("adds", "mean"),
        members_per_month=("members", "mean"), staff_accounts=("staff_accounts", "max"),
        months_on=("on", "sum"))
    lines = [(f"{result.scenario.name}: {result.problem.objective} plan, "
              f"{months} months, solver {result.solver}"), ""]
    header = (f"{'channel':<22}{'spend/month':>14}{'adds/month':>12}{'members/month':>15}"
              f"{'staff':>7}{'months on':>11}")
    lines += [header, "-" * len(header)]
    for name, row in by_channel.iterrows():
        lines.append(f"{name:<22}{_money(row.spend_per_month):>14}{row.adds_per_month:>12,.0f}"
                     f"{row.members_per_month:>15,.0f}{int(row.staff_accounts):>7}"
                     f"{int(row.months_on):>11}")
    ev = result.evaluation
    lines += ["", f"{'month':<10}{'cost':>14}{'adds':>10}{'members':>10}", "-" * 44]
    for m, month in enumerate(result.problem.months):
        lines.append(f"{month:<10}{_money(ev.month_cost[m]):>14}{ev.adds[:, m].sum():>10,.0f}"
                     f"{(ev.adds[:, m] * result.problem.member_value[:, m]).sum():>10,.0f}")
    lines.append(f"{'total':<10}{_money(ev.total_cost):>14}{ev.adds.sum():>10,.0f}")
    if result.problem.objective == "min-cost" and not result.current.shortfalls(result.problem):
        lines.append(f"the scenario's own plan costs {_money(result.current.total_cost)}: "
                     f"this one saves {_money(result.current.total_cost - ev.total_cost)}")
    elif result.current.shortfalls(result.problem):
        missed = len(result.current.shortfalls(result.problem))
        lines.append(f"the scenario's own plan ({_money(result.current.total_cost)}) misses "
                     f"{missed} target periods")
    lines += ["", *targets_text(result)]
    return "\n".join(lines)


def targets_text(result: PlanResult) -> list[str]:
    """One line per target: the goal, the plan's tightest period and the marginal cost."""
    table = result.targets_frame()
    if table.empty:
        return ["no targets"]
    per = "¥ per unit" if result.problem.objective == "min-cost" else "per ¥"
    lines = [f"{'target':<28}{'goal':>14}{'plan (tightest)':>28}  marginal cost ({per})"]
    for name, group in table.groupby("target", sort=False):
        unit = group["unit"].iloc[0]
        ceiling = unit == "rate"
        tight = group.loc[group["plan"].idxmax() if ceiling else group["plan"].idxmin()]
        prices = group["marginal_cost"].fillna(0)
        paid = group[prices > 1e-9]
        price = ("not computed" if group["marginal_cost"].isna().all()
                 else "not binding" if paid.empty else
                 f"{_price(paid['marginal_cost'].min())}..{_price(prices.max())} in "
                 f"{len(paid)} of {len(group)} periods"
                 + (" (per percentage point)" if ceiling else ""))
        lines.append(f"{name:<28}{_amount(tight['goal'], unit):>14}"
                     f"{_amount(tight['plan'], unit) + ' in ' + str(tight['period']):>28}  {price}")
    return lines


def diagnosis_text(result: PlanResult) -> str:
    """Why the targets cannot all be met: shortfalls, the budget needed, capacity used up."""
    d = result.diagnosis
    targets = {t.key: t for t in result.problem.targets}
    lines = [f"{result.scenario.name}: no plan meets every target ({result.problem.objective})."]

    def shortfalls(values: dict[str, float]) -> list[str]:
        out = []
        for key, short in values.items():
            if key not in targets:
                continue
            t = targets[key]
            if t.ceiling:
                out.append(f"  {t.name} {t.period}: at best {t.planned + short:.2%}, "
                           f"above the ceiling {t.planned:.2%}")
            else:
                out.append(f"  {t.name} {t.period}: goal {_amount(t.planned, t.unit)}, "
                           f"reachable {_amount(t.planned - short, t.unit)} "
                           f"(short by {_amount(short, t.unit)})")
        return out

    budget = result.problem
    limits = ", ".join(x for x in (
        f"total {_money(budget.total_budget)}" if budget.total_budget is not None else "",
        f"monthly {_money(budget.monthly_budget)}" if budget.monthly_budget is not None else "")
        if x) or "no budget limit"
    if d.within_budget:
        lines += [f"Within the budget ({limits}):", *shortfalls(d.within_budget)]
    if d.unreachable:
        lines += ["Even with no budget limit:", *shortfalls(d.unreachable)]
        used = pd.DataFrame(d.exhausted)
        if not used.empty:
            lines.append("capacity that runs out (spend at its maximum, or locked):")
            for name, group in used.groupby("channel", sort=False):
                kind = "locked" if group["locked"].all() else f"at its {group['bound'].iloc[0]}"
                lines.append(f"  {name}: {kind} in {len(group)} months "
                             f"({group['month'].iloc[0]}..{group['month'].iloc[-1]}), "
                             f"{_money(group['spend_cny'].max())} a month")
    elif d.budget_needed:
        lines.append("Every target can be met with a larger budget:")
        for key, value in d.budget_needed.items():
            what = "total budget" if key == "budget_total" else f"budget for {key[8:]}"
            lines.append(f"  {what}: {_money(value)}")
    return "\n".join(lines)


def verification_text(verification: Verification) -> str:
    """Per target and period: the simulated chance the goal is met and the interval."""
    lines = [(f"verified by {verification.reps} simulations (seed {verification.seed}): "
              f"every target met in {verification.joint_probability:.0%} of them; mean "
              f"[{verification.level:.0%} interval]"), ""]
    header = f"{'target':<28}{'period':>11}{'goal':>12}  {'simulated':<34}{'P(met)':>7}"
    lines += [header, "-" * len(header)]
    for row in verification.summary.itertuples():
        unit = "rate" if row.target == "max_monthly_deletion_rate" else (
            "cny" if row.target == "gmv" else "people")
        outcome = (f"{_amount(row.mean, unit)} [{_amount(row.low, unit)}, "
                   f"{_amount(row.high, unit)}]")
        lines.append(f"{row.target:<28}{row.period:>11}{_amount(row.goal, unit):>12}  "
                     f"{outcome:<34}{row.probability_met:>7.0%}")
    return "\n".join(lines)


def chance_text(chance: ChancePlan) -> str:
    """The plan over parameter draws beside the mean-curve plan: costs, the cost of
    certainty, and each target's chance under both (on the draws planned on, and fresh)."""
    robust = chance.result.evaluation
    mean = chance.mean.evaluation
    lines = [(f"chance plan ({chance.robust.method}, {chance.draws.size} parameter draws, "
              f"each target at {chance.level:.0%}): "
              + (_money(robust.total_cost) if robust else chance.robust.status)
              + "; mean-curve plan: " + (_money(mean.total_cost) if mean else "infeasible"))]
    if robust and mean:
        lines.append(f"cost of certainty: {_money(chance.cost_of_certainty)}")
    fresh = chance.fresh is not None
    header = (f"{'target':<28}{'period':>11}{'chance plan':>13}{'mean plan':>11}"
              + (f"{'fresh: chance':>15}{'mean':>7}" if fresh else ""))
    lines += ["", header, "-" * len(header)]
    for row in chance.table.itertuples():
        line = (f"{row.target:<28}{row.period:>11}{row.chance_plan:>13.0%}"
                f"{row.mean_plan:>11.0%}")
        if fresh:
            line += f"{row.chance_plan_fresh:>15.0%}{row.mean_plan_fresh:>7.0%}"
        lines.append(line)
    return "\n".join(lines)
