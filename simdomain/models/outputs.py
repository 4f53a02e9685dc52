"""Files written by ``simdomain fit``, all at once (see :func:`simdomain.outputs.staged`).

From a scenario: ``report.md`` (the metrics report), ``metrics.csv``,
``calibration.csv``, ``channel_calibration.csv``, ``channel_value.csv`` (the contract of
:data:`simdomain.models.value.VALUE_COLUMNS`), ``value_check.csv``, ``models.joblib`` +
``manifest.json`` and ``scenario.resolved.yaml``. From an order log: ``rates.yaml`` (a
scenario fragment), ``rates.csv``, the metrics files, ``report.md`` and the models.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from simdomain import __version__
from simdomain.models.estimators import MIN_EACH
from simdomain.models.evaluate import Evaluation
from simdomain.models.persist import save_models
from simdomain.models.pipeline import SimulationFit, TransactionsFit
from simdomain.models.targeting import TargetingComparison
from simdomain.outfolder import open_folder
from simdomain.scenario.io import dump_scenario

METRICS_SHOWN = ("roc_auc", "pr_auc", "brier", "top_decile_lift", "base_rate", "n")


def write_simulation_fit(fit: SimulationFit, out: str | Path) -> list[str]:
    """Write a scenario fit's files into ``out``; return their names."""
    writers: dict[str, Callable[[Path], None]] = {
        "report.md": lambda p: p.write_text(simulation_report(fit)),
        "channel_value.csv": lambda p: fit.value.to_csv(p, index=False, float_format="%.6g"),
        "value_check.csv": lambda p: fit.check.to_csv(p, index=False, float_format="%.6g"),
        "scenario.resolved.yaml": lambda p: p.write_text(dump_scenario(fit.scenario)),
        **_evaluation_writers(fit.evaluation),
    }
    return _write(out, writers, fit.bundle())


def write_transactions_fit(fit: TransactionsFit, out: str | Path) -> list[str]:
    """Write an order log fit's files into ``out``; return their names."""
    writers: dict[str, Callable[[Path], None]] = {
        "report.md": lambda p: p.write_text(transactions_report(fit)),
        "rates.yaml": lambda p: p.write_text(fit.fragment),
        "rates.csv": lambda p: fit.rates.table().to_csv(p, index=False),
    }
    if fit.evaluation is not None:
        writers.update(_evaluation_writers(fit.evaluation))
    return _write(out, writers, fit.bundle() if fit.models else None)


def write_targeting(comparison: TargetingComparison, out: str | Path) -> list[str]:
    writers = {
        "targeting.csv": lambda p: comparison.table.to_csv(p, index=False, float_format="%.6g"),
        "targeting_per_rep.csv": lambda p: comparison.per_rep.to_csv(p, index=False,
                                                                     float_format="%.6g"),
    }
    return _write(out, writers, None, add=True)


def _evaluation_writers(evaluation: Evaluation) -> dict[str, Callable[[Path], None]]:
    return {
        "metrics.csv": lambda p: evaluation.metrics.to_csv(p, index=False, float_format="%.6g"),
        "calibration.csv": lambda p: evaluation.calibration.to_csv(p, index=False,
                                                                   float_format="%.6g"),
        "channel_calibration.csv": lambda p: evaluation.groups.to_csv(p, index=False,
                                                                      float_format="%.6g"),
    }


def _write(out: str | Path, writers: dict[str, Callable[[Path], None]], bundle, *,
           add: bool = False) -> list[str]:
    """Write the files in one step (see :mod:`simdomain.outfolder`); with ``add``, beside
    the folder's other files, else in place of them."""
    names = list(writers)
    with open_folder(out, "fit") as folder:
        keep = [n for n in folder.entries() if n not in writers] if add else []
        with folder.stage(keep=keep) as scratch:
            for name, write in writers.items():
                write(scratch / name)
            if bundle is not None:
                names += save_models(bundle, scratch)
    return names


# -- the report ----------------------------------------------------------------------------

def simulation_report(fit: SimulationFit) -> str:
    lines = [
        f"# Models of `{fit.scenario.name}`",
        "",
        (f"simdomain {__version__}; seed {fit.seed}; {fit.reps} replications; observation "
         f"days {fit.days}; {fit.rows['panel']:,} panel rows ({fit.rows['train']:,} to fit, "
         f"{fit.rows['test']:,} held out by person)."),
        "",
        "## Held-out metrics",
        "",
        markdown(metrics_table(fit.evaluation)),
        "",
        ("ROC AUC and PR AUC: discrimination (PR AUC against the base rate); Brier: mean "
         "squared error of the probabilities; lift: event rate of the top 10% of scores over "
         "the base rate. The calibration table is `calibration.csv`; predicted vs realized "
         "events per source channel is `channel_calibration.csv`."),
        "",
        "## Channel value (per add)",
        "",
        markdown(fit.value[fit.value["segment"] == "all"].drop(columns=["segment"])),
        "",
        ("Every channel x segment is in `channel_value.csv` (columns documented in "
         "`simdomain/models/value.py`)."),
    ]
    if not fit.check.empty:
        lines += ["", "## Members per add: predicted vs realized", "",
                  (f"Cohort model fitted on {int(fit.check['fit_reps'].iloc[0])} replications, "
                   f"realized on {int(fit.check['check_reps'].iloc[0])} others "
                   f"(adds followed {int(fit.check['horizon_days'].iloc[0])} days)."), "",
                  markdown(fit.check.drop(columns=["fit_reps", "check_reps"]))]
    lines += ["", f"Seconds: {fit.seconds}", ""]
    return "\n".join(lines)


def transactions_report(fit: TransactionsFit) -> str:
    tx = fit.transactions
    lines = [
        f"# Models of `{tx.source}`",
        "",
        (f"simdomain {__version__}; {fit.rates.customers:,} customers, "
         f"{fit.rates.orders:,} orders, {tx.start} .. {tx.end}; seed {fit.seed}."),
        "",
        "## Lifecycle rates (per day)",
        "",
        markdown(fit.rates.table()),
        "",
        "The scenario fragment is `rates.yaml`.",
    ]
    if fit.evaluation is not None:
        lines += ["", "## Held-out metrics", "", markdown(metrics_table(fit.evaluation)), "",
                  ("`lapse_90d`: no order within 90 days (a log of orders cannot show "
                   "deletions).")]
    else:
        lines += ["", f"No models: too few customers for {MIN_EACH} of each outcome of a label."]
    lines += ["", f"Seconds: {fit.seconds}", ""]
    return "\n".join(lines)


def metrics_table(evaluation: Evaluation) -> pd.DataFrame:
    wide = evaluation.wide()
    return wide[["target", "estimator", *[m for m in METRICS_SHOWN if m in wide]]]


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured table of ``frame`` (numbers to 4 significant digits)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
