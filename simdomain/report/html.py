"""One self-contained HTML file from an output folder: plots embedded, no network needed.

The folder's kind is recognised by its files: a run (``summary.json``), a comparison
(``comparison.csv``), a plan (``plan.csv``), an experiment (``manifest.json``). Every figure is also saved as a PNG under ``figures/``. Numbers
in tables are read from the folder's CSV and JSON files, not recomputed.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from simdomain.compare import COLUMNS as COMPARISON
from simdomain.errors import InputError, Problem
from simdomain.outfolder import open_folder, slug
from simdomain.report import plots

MONTHLY = ("rep", "month", "kpi", "channel", "value")
"""Columns of ``monthly.csv`` the report reads."""
Section = tuple[str, str]
"""A heading and its HTML body."""

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f6f8}td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto;display:block;margin:.5em 0}
.missed{color:#b30000;font-weight:600}.met{color:#1a7f37}
.note{color:#555;font-size:.9em}.wide{overflow-x:auto}
"""


class Figures:
    """Saves figures as PNG files and returns them as embedded ``<img>`` tags."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, bytes] = {}

    def embed(self, name: str, made: tuple[Figure, object], alt: str) -> str:
        fig = made[0]
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        data = buffer.getvalue()
        self.files[f"{name}.png"] = data
        encoded = base64.b64encode(data).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def build_report(folder: str | Path) -> Path:
    """Write ``report.html`` (and ``figures/*.png``) into an output folder; return its path.

    The folder is swapped for a copy with the report added (see
    :mod:`simdomain.outfolder`), so it never holds half a report, and a command writing
    the folder at the same time is refused.

    Raises
    ------
    InputError
        If the folder is missing, not one of simdomain's, or a file in it is damaged
        (the message names the file).
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise InputError([Problem(str(folder), (), f"{what}; give an output folder of "
                                                   "simdomain run, compare, plan or experiment")])
    for name, kind in (("report.html", "a file"), ("figures", "a folder")):
        path = folder / name
        if path.exists() and path.is_dir() != (kind == "a folder"):
            raise InputError([Problem(str(path), (), f"should be {kind}; move it away and "
                                                     "run the report again")])
    builders: list[tuple[str, Callable[[Path, Figures], tuple[str, list[Section]]]]] = [
        ("manifest.json", _experiment),
        ("plan.csv", _plan),
        ("advice.csv", _advice),
        ("comparison.csv", _comparison),
        ("summary.json", _run),
    ]
    with open_folder(folder, "report", replace=False) as out, plots.cjk_text():
        figures = Figures(folder / "figures")
        for marker, build in builders:
            if (folder / marker).exists():
                try:
                    title, sections = build(folder, figures)
                except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                    raise InputError([Problem(str(folder / marker), (), (
                        f"damaged or written by another version ({type(exc).__name__}: "
                        f"{exc}); rerun the command that wrote {folder}"))]) from None
                break
        else:
            if (folder / "diagnosis.txt").exists():
                raise InputError([Problem(str(folder), (), "holds no plan: no plan met the "
                                          "targets (see diagnosis.txt); nothing to report")])
            raise InputError([Problem(str(folder), (), "not a simdomain output folder: expected "
                                      "summary.json (run), comparison.csv (compare), "
                                      "plan.csv (plan) or manifest.json (experiment)")])
        page = _page(title, sections)
        keep = [n for n in out.entries() if n not in ("report.html", "figures")]
        with out.stage(keep=keep) as scratch:
            (scratch / "figures").mkdir()
            for name, data in figures.files.items():
                (scratch / "figures" / name).write_bytes(data)
            (scratch / "report.html").write_text(page, encoding="utf-8")
    return folder / "report.html"


def _page(title: str, sections: list[Section]) -> str:
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{content}" for h, content in sections)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _read_csv(path: Path, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV of the folder, with at least ``columns``, or an error naming the file."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError([Problem(str(path), (), "is missing; rerun the command that "
                                                 "wrote the folder")]) from None
    except (OSError, ValueError) as exc:
        raise InputError([Problem(str(path), (), f"cannot read: {exc}")]) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError([Problem(str(path), (), f"lacks the columns {', '.join(missing)}; "
                                                 "rerun the command that wrote the folder")])
    return frame


def _read_json(path: Path, keys: tuple[str, ...] = ()) -> dict:
    """A JSON object of the folder, with at least ``keys``, or an error naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError([Problem(str(path), (), "is missing; rerun the command that "
                                                 "wrote the folder")]) from None
    except (OSError, ValueError) as exc:
        reason = "is empty" if isinstance(exc, ValueError) and not path.read_bytes().strip() \
            else f"is not valid JSON ({exc})" if isinstance(exc, ValueError) else f"cannot read: {exc}"
        raise InputError([Problem(str(path), (), f"{reason}; rerun the command that wrote "
                                                 "the folder")]) from None
    if not isinstance(data, dict) or any(k not in data for k in keys):
        missing = [k for k in keys if not isinstance(data, dict) or k not in data]
        raise InputError([Problem(str(path), (), f"lacks {', '.join(missing) or 'an object'}; "
                                                 "rerun the command that wrote the folder")])
    return data


def _fmt(value: float | None, kind: str = "") -> str:
    if value is None or pd.isna(value):
        return "–"
    if kind == "rate":
        return f"{100 * value:.2f}%"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.3g}" if kind != "ratio" else f"{value:.3f}"


def _kind(kpi: str) -> str:
    return "rate" if ("rate" in kpi or "share" in kpi) else "ratio" if kpi == "k_factor" else ""


def _run(folder: Path, figures: Figures) -> tuple[str, list[Section]]:
    summary = _read_json(folder / "summary.json", ("scenario", "reps", "seed", "targets", "kpis"))
    daily = _read_csv(folder / "daily.csv", ("rep", "date", "pool", "gmv_cny",
                                             *plots.STAGE_COLORS))
    daily["date"] = pd.to_datetime(daily["date"])
    monthly = _read_csv(folder / "monthly.csv", MONTHLY)
    goals = {t["target"]: t["goal"] for t in summary["targets"]}
    title = f"{summary['scenario']}: {summary['reps']} replications (seed {summary['seed']})"
    sections: list[Section] = [
        ("Targets", _targets_html(summary)),
        ("Stage funnel over time", figures.embed(
            "stage_funnel", plots.stage_funnel(daily), "people per stage over time")),
    ]
    charts = []
    for kpi, label, target in [("new_adds", "New adds per month", "monthly_new_adds"),
                               ("new_members", "New members per month", "monthly_new_members"),
                               ("deletion_rate", "Deletion rate per month", "max_monthly_deletion_rate"),
                               ("gmv_cny", "GMV per month (yuan)", None),
                               ("cost_per_member_cny", "Cost per member (yuan)", None)]:
        charts.append(figures.embed(kpi, plots.monthly_kpi({"": monthly}, kpi, label, goals.get(target)),
                                    label))
    pool_goals = [(pd.Timestamp(t["period"]), t["goal"]) for t in summary["targets"]
                  if t["target"] == "pool_size"]
    charts.append(figures.embed("pool", plots.daily_with_band(daily, "pool", "Pool size (people)",
                                                              goals=pool_goals), "pool size"))
    gmv_goals = [(pd.Timestamp(t["period"]), t["goal"]) for t in summary["targets"]
                 if t["target"] == "gmv"]
    charts.append(figures.embed("gmv_cumulative", plots.daily_with_band(
        daily, "gmv_cny", "Cumulative GMV (yuan)", cumulative=True, goals=gmv_goals),
        "cumulative GMV"))
    sections.append(("North-star KPIs against targets", "\n".join(charts)))
    sections.append(("Monthly KPIs (mean and 90% of replications)", _kpi_table_html(summary)))
    if (monthly["channel"] != "all").any():
        sections.append(("Channels", figures.embed("channel_adds", plots.channel_adds(monthly),
                                                   "adds by channel")
                         + figures.embed("cost_per_member", plots.cost_per_member(monthly),
                                         "cost per member by channel")))
    return title, sections


def _targets_html(summary: dict) -> str:
    """Point targets as rows; monthly targets as a target x month grid of the mean and the
    probability of meeting the goal."""
    if not summary["targets"]:
        return "<p class=note>The scenario sets no targets.</p>"
    targets = pd.DataFrame(summary["targets"])
    monthly = targets[targets["period"].str.len() == 7]
    point = targets[targets["period"].str.len() != 7]
    parts = []
    if not point.empty:
        rows = [("<tr><th>target</th><th>date</th><th>goal</th><th>mean</th><th>5%</th>"
                "<th>95%</th><th>probability met</th></tr>")]
        for t in point.itertuples():
            rows.append(f"<tr><td>{html.escape(t.target)}</td><td>{t.period}</td>"
                        f"<td>{_fmt(t.goal)}</td><td>{_fmt(t.mean)}</td><td>{_fmt(t.low)}</td>"
                        f"<td>{_fmt(t.high)}</td>{_probability_cell(t.probability_met)}</tr>")
        parts.append("<table>" + "".join(rows) + "</table>")
    if not monthly.empty:
        months = sorted(monthly["period"].unique())
        rows = ["<tr><th>monthly target</th><th>goal</th>"
                + "".join(f"<th>{m}</th>" for m in months) + "</tr>"]
        for name, group in monthly.groupby("target", sort=False):
            kind = _kind(name)
            cells = group.set_index("period").reindex(months)
            row = "".join(
                "<td></td>" if pd.isna(c.mean) else
                _probability_cell(c.probability_met, f"{_fmt(c.mean, kind)}<br>")
                for c in cells.itertuples())
            rows.append(f"<tr><td>{html.escape(name)}</td>"
                        f"<td>{_fmt(group['goal'].iloc[0], kind)}</td>{row}</tr>")
        parts.append("<p class=note>Monthly targets: the mean, and the share of replications "
                     "in which the month meets its goal.</p><div class=wide><table>"
                     + "".join(rows) + "</table></div>")
    return "\n".join(parts)


def _probability_cell(probability: float, prefix: str = "") -> str:
    css = "met" if probability >= 0.5 else "missed"
    return f"<td>{prefix}<span class={css}>{100 * probability:.0f}%</span></td>"


def _kpi_table_html(summary: dict) -> str:
    cells = [k for k in summary["kpis"] if k["channel"] == "all"]
    frame = pd.DataFrame(cells)
    frame["text"] = [f"{_fmt(r.mean, _kind(r.kpi))}<br><span class=note>{_fmt(r.low, _kind(r.kpi))}"
                     f" – {_fmt(r.high, _kind(r.kpi))}</span>" for r in frame.itertuples()]
    table = frame.pivot(index="kpi", columns="month", values="text")
    return f"<div class=wide>{table.to_html(escape=False, border=0)}</div>"


def _comparison(folder: Path, figures: Figures) -> tuple[str, list[Section]]:
    table = _read_csv(folder / "comparison.csv", tuple(COMPARISON))
    if not (folder / "variants").is_dir():
        raise InputError([Problem(str(folder / "variants"), (), "is missing; rerun the "
                                                                "comparison")])
    variants = sorted((p for p in (folder / "variants").iterdir()
                       if p.is_dir() and p.name.split("-", 1)[0].isdigit()),
                      key=lambda p: int(p.name.split("-", 1)[0]))
    names = list(dict.fromkeys(table["variant"]))
    if len(variants) != len(names):
        raise InputError([Problem(str(folder / "variants"), (), (
            f"holds {len(variants)} variants where comparison.csv has {len(names)}; rerun "
            "the comparison"))])
    monthly = {name: _read_csv(path / "monthly.csv", MONTHLY)
               for name, path in zip(names, variants)}
    total = table[table["month"] == "total"]
    rows = ["<tr><th>KPI</th>" + "".join(
        f"<th>{html.escape(n)}</th>" + (f"<th>change vs {html.escape(names[0])}</th>" if i else "")
        for i, n in enumerate(names)) + "</tr>"]
    for kpi, group in total.groupby("kpi", sort=True):
        kind = _kind(kpi)
        cells = []
        for i, r in enumerate(group.set_index("variant").reindex(names).itertuples()):
            cells.append(f"<td>{_fmt(r.mean, kind)}<br><span class=note>{_fmt(r.low, kind)} – "
                         f"{_fmt(r.high, kind)}</span></td>")
            if i:
                cells.append(f"<td>{'+' if r.diff_mean >= 0 else ''}{_fmt(r.diff_mean, kind)}<br>"
                             f"<span class=note>{_fmt(r.diff_low, kind)} – "
                             f"{_fmt(r.diff_high, kind)}</span></td>")
        rows.append(f"<tr><td>{html.escape(kpi)}</td>{''.join(cells)}</tr>")
    sections: list[Section] = [
        ("Over the horizon", "<p class=note>Mean and 90% of replications; change vs the base with "
                             "its 90% confidence interval (paired by replication, same seeds)."
                             "</p><table>" + "".join(rows) + "</table>"),
        ("Change vs the base", figures.embed("differences", plots.differences(table),
                                             "change vs the base")),
    ]
    charts = [figures.embed(f"compare_{kpi}", plots.monthly_kpi(monthly, kpi, label),
                            label)
              for kpi, label in [("new_members", "New members per month"),
                                 ("deletion_rate", "Deletion rate per month"),
                                 ("gmv_cny", "GMV per month (yuan)")]]
    sections.append(("Month by month", "\n".join(charts)))
    return f"Comparison: {', '.join(names)}", sections


def _experiment(folder: Path, figures: Figures) -> tuple[str, list[Section]]:
    manifest = _read_json(folder / "manifest.json", ("experiment", "runs", "replications",
                                                      "design", "factors", "outcomes"))
    title = (f"Experiment {manifest['experiment']}: {manifest['runs']} runs x "
             f"{manifest['replications']} replications ({manifest['design']} design)")
    status = (f"<p>{manifest.get('done', 0)} of {manifest['runs']} runs done, "
              f"{manifest.get('failed', 0)} failed; status: "
              f"{html.escape(str(manifest.get('status', 'unknown')))}.</p>")
    if not (folder / "summary.csv").exists():
        return title, [("Status", status + "<p class=note>The summary is written when every "
                                           "run is done; rerun the experiment to finish it.</p>")]
    summary = _read_csv(folder / "summary.csv", ("run", "outcome", "mean"))
    factors = [f for f in manifest["factors"] if f in summary.columns]
    sections: list[Section] = [("Status", status)]
    if (folder / "sensitivity.csv").exists():
        indices = _read_csv(folder / "sensitivity.csv", ("outcome",))
        sections.append(("Sensitivity", "\n".join(
            figures.embed(f"sensitivity_{slug(o)}", plots.sensitivity(indices, o), f"sensitivity of {o}")
            for o in manifest["outcomes"] if o in set(indices["outcome"]))))
    else:
        charts = [figures.embed(f"response_{slug(o)}_{slug(f)}", plots.response(summary, f, o),
                                f"{o} by {f}")
                  for o in manifest["outcomes"] if o in set(summary["outcome"]) for f in factors]
        sections.append(("Responses", "\n".join(charts)))
    table = summary.pivot_table(index=["run", *factors], columns="outcome", values="mean")
    sections.append(("Mean per design point (95% intervals in summary.csv)",
                     f"<div class=wide>{table.to_html(float_format=lambda v: _fmt(v), border=0)}</div>"))
    return title, sections


def _advice(folder: Path, figures: Figures) -> tuple[str, list[Section]]:
    """The ranked tests of ``simdomain advise``."""
    table = _read_csv(folder / "advice.csv", ("rank", "lever", "design", "cost_cny",
                                              "evsi_cny", "evsi_se_cny", "net_value_cny"))
    summary = _read_json(folder / "advice.json", ("level", "draws", "plan_cost_cny", "levers"))
    title = (f"Which test next: plan of {_fmt(summary['plan_cost_cny'])} yuan, targets met "
             f"with chance {summary['level']:.0%} over {summary['draws']} draws")
    levers = pd.DataFrame(summary["levers"]).reindex(
        columns=["lever", "spread", "evpi_cny", "evpi_se_cny", "screened", "designs"])
    shown = [c for c in ("rank", "lever", "design", "people_per_arm", "days", "cost_cny",
                         "evsi_cny", "evsi_se_cny", "chance_gain", "net_value_cny",
                         "tied_with_above", "measure") if c in table.columns]
    return title, [
        ("Uncertain levers", ("<p class=note>spread: the largest coefficient of variation, "
         "across the draws, of what the lever's tests measure; evpi: what perfect "
         "information on it would save (yuan), an upper bound on any of its tests; "
         "screened: too small for its tests to be valued.</p>"
         f"<div class=wide>{levers.to_html(index=False, border=0)}</div>")),
        ("Ranked tests", ("<p class=note>EVSI: the expected saving of the plan after the test "
         "(yuan, with its Monte Carlo standard error); net value: EVSI minus the test's cost; "
         "tied: within two standard errors of the test above.</p>"
         f"<div class=wide>{table[shown].to_html(index=False, border=0, float_format=lambda v: _fmt(v))}"
         "</div>")),
    ]


def _plan(folder: Path, figures: Figures) -> tuple[str, list[Section]]:
    plan = _read_csv(folder / "plan.csv", ("channel", "month", "spend_cny", "adds",
                                           "staff_accounts"))
    summary = _read_json(folder / "plan.json", ("scenario", "objective", "status",
                                                "total_cost_cny", "targets"))
    title = (f"Plan for {summary['scenario']}: {summary['objective']}, {summary['status']}, "
             f"total cost {_fmt(summary['total_cost_cny'])} yuan")
    spend = plan.pivot_table(index="channel", columns="month", values="spend_cny", aggfunc="sum")
    staff = plan.pivot_table(index="channel", columns="month", values="staff_accounts",
                             aggfunc="sum")
    targets = pd.DataFrame(summary["targets"])
    shown = [c for c in ("target", "period", "goal", "planned", "plan", "current",
                         "marginal_cost", "simulated_mean", "simulated_low", "simulated_high",
                         "probability_met") if c in targets.columns]
    sections: list[Section] = [
        ("Spend and adds", figures.embed("plan_spend", plots.plan_by_channel(
            plan, "spend_cny", "spend (yuan)"), "planned spend by channel")
         + figures.embed("plan_adds", plots.plan_by_channel(plan, "adds", "adds"),
                         "planned adds by channel")),
        ("Spend per channel and month (yuan)",
         f"<div class=wide>{spend.to_html(float_format=lambda v: _fmt(v), border=0)}</div>"),
        ("Staff accounts per channel and month",
         f"<div class=wide>{staff.to_html(float_format=lambda v: f'{v:.0f}', border=0)}</div>"),
        ("Targets against the plan",
         ("<p class=note>goal; planned (raised by --confidence); the plan's expected value; the "
         "current spend plan's; the marginal cost of one more unit (yuan); and, when verified "
         "by simulation, the mean, 90% interval and chance of meeting the goal.</p>"
         f"<div class=wide>{targets[shown].to_html(index=False, border=0, float_format=lambda v: _fmt(v))}"
         "</div>")),
    ]
    if (folder / "chance.csv").exists():
        sections.append(("The plan under uncertainty", _chance_html(folder)))
    if (folder / "diagnostics.json").exists():
        diagnostics = _read_json(folder / "diagnostics.json")
        if diagnostics.get("binding"):
            families = pd.DataFrame(diagnostics["binding"])["family"].value_counts()
            sections.append(("Binding constraints", "<ul>" + "".join(
                f"<li>{html.escape(f)}: {n}</li>" for f, n in families.items()) + "</ul>"))
    return title, sections


def _chance_html(folder: Path) -> str:
    """``plan --chance``: the chance plan's and the mean-curve plan's costs, the cost of
    certainty, and each target's chance under both, on the draws and on fresh ones."""
    table = _read_csv(folder / "chance.csv", ("target", "period", "chance_plan", "mean_plan"))
    chance = _read_json(folder / "diagnostics.json").get("chance", {})
    percent = [c for c in table.columns if c.startswith(("chance_plan", "mean_plan"))]
    shown = table.copy()
    for column in percent:
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.0%}")
    draws = len(chance.get("draws", []))
    fresh = chance.get("fresh_draws")
    note = (f"<p class=note>Planned over {draws} parameter draws of the twin, each target met "
            f"with probability {chance.get('level', float('nan')):.0%} across the draws and "
            f"the simulation's chance ({html.escape(str(chance.get('method', '')))}). The "
            f"chance plan costs {_fmt(chance.get('chance_plan_cost_cny'))} yuan, the mean-curve "
            f"plan (the point estimates) {_fmt(chance.get('mean_plan_cost_cny'))} yuan: the cost "
            f"of certainty is {_fmt(chance.get('cost_of_certainty_cny'))} yuan. Chances are the "
            "model's (exact curves, normal chance around each draw's mean)"
            + (f"; 'fresh' ones on {fresh} draws not planned on" if fresh else "") + ".</p>")
    body = shown.to_html(index=False, border=0, float_format=lambda v: _fmt(v))
    return note + f"<div class=wide>{body}</div>"
