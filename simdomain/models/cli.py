"""``simdomain fit``: models from a simulated scenario or from a brand's order log.

    simdomain fit SCENARIO.yaml [--reps N] [--seed S] [--set PATH=VALUE] --out DIR
                  [--compare-targeting --top-share 0.3 --max-churn-risk 0.5]
    simdomain fit --transactions FILE.csv [--seed S] --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

from simdomain.cliutil import OK, add_simulation_args
from simdomain.errors import InputError, Problem
from simdomain.outfolder import default_out, open_folder
from simdomain.scenario import load_scenario
from simdomain.scenario.model import Scenario, Targeting

ESTIMATORS = ("gbm", "logistic")
"""As :data:`simdomain.models.estimators.ESTIMATORS` (scikit-learn loads only for ``fit``)."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``fit`` subcommand."""
    fit = commands.add_parser(
        "fit", help="fit churn and propensity models on a simulation or on a brand's orders",
        description="Fit churn and propensity models, value the channels (from a scenario) or "
                    "estimate lifecycle rates (from an order log), and write them to --out.")
    fit.add_argument("file", nargs="?", metavar="SCENARIO", help="scenario file to simulate")
    fit.add_argument("--transactions", metavar="FILE.csv",
                     help="a brand's order log (customer_id, date, amount; optionally channel, "
                          "member_join_date) instead of a scenario")
    add_simulation_args(fit, reps=3)
    fit.add_argument("--days", type=int, nargs="+", metavar="DAY",
                     help="observation days of the panel (default: 4 spread over the horizon)")
    fit.add_argument("--estimator", choices=ESTIMATORS, action="append",
                     help="fit only these (repeatable; default: all)")
    fit.add_argument("--compare-targeting", action="store_true",
                     help="also simulate 1:1 messages targeted with the fitted model against "
                          "uniform ones at the same volume (writes targeting.csv)")
    fit.add_argument("--top-share", type=_share, default=0.3,
                     help="targeting: share of people messaged (default 0.3)")
    fit.add_argument("--max-churn-risk", type=_share, default=0.5,
                     help="targeting: skip people whose 30-day churn risk is above (default 0.5)")
    fit.set_defaults(command=cmd_fit)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def cmd_fit(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.transactions is None):
        raise InputError([Problem("simdomain fit", (), "give either a SCENARIO file or "
                                  "--transactions FILE.csv (exactly one)")])
    estimators = tuple(dict.fromkeys(args.estimator or ESTIMATORS))
    if args.transactions is not None:
        return _fit_transactions(args, estimators)
    return _fit_scenario(args, estimators)


def _fit_scenario(args: argparse.Namespace, estimators: tuple[str, ...]) -> int:
    scenario = load_scenario(args.file, args.set)
    if args.days:
        bad = [d for d in args.days if not 0 <= d < scenario.horizon_days]
        if bad:
            raise InputError([Problem("--days", (), f"days must lie in 0..{scenario.horizon_days - 1}"
                                      f", got {bad}")])
    out = args.out if args.out is not None else default_out(scenario.name, suffix="-models", source=args.file)
    with open_folder(out, "fit"):  # refused at once if taken, not after the fit
        _fit_scenario_into(args, scenario, estimators, out)
    return OK


def _fit_scenario_into(args: argparse.Namespace, scenario: Scenario,
                       estimators: tuple[str, ...], out: str | Path) -> None:
    from simdomain.models.outputs import (
        markdown,
        metrics_table,
        write_simulation_fit,
        write_targeting,
    )
    from simdomain.models.pipeline import fit_simulation
    from simdomain.models.targeting import compare_targeting

    fit = fit_simulation(scenario, seed=args.seed, reps=args.reps, days=args.days,
                         estimators=estimators, progress=False if args.quiet else None)
    files = write_simulation_fit(fit, out)
    if not args.quiet:
        print(f"{scenario.name}: {args.reps} replications, seed {args.seed}; held-out metrics\n")
        print(markdown(metrics_table(fit.evaluation)))
        print("\nchannel value per add (all segments)\n")
        shown = ["channel", "adds", "members_per_add", "retention_90d", "gmv_per_add_365d_cny",
                 "kocs_per_1000_adds", "ltv_cny", "basis_365d"]
        print(markdown(fit.value.loc[fit.value["segment"] == "all", shown]))
        if not fit.check.empty:
            print("\nmembers per add, predicted vs realized on held-out replications\n")
            print(markdown(fit.check[["channel", "horizon_days", "predicted", "realized_mean",
                                      "realized_sd", "z", "within_spread"]]))
        print(f"\nwrote {', '.join(files)} to {out}")
    if args.compare_targeting:
        targeting = Targeting(model=str(out), top_share=args.top_share,
                              max_churn_risk=args.max_churn_risk,
                              estimator="gbm" if "gbm" in estimators else estimators[0])
        comparison = compare_targeting(scenario, targeting, seed=args.seed, reps=args.reps,
                                       progress=False if args.quiet else None)
        written = write_targeting(comparison, out)
        if not args.quiet:
            print(f"\n1:1 messages: targeted (top {args.top_share:.0%} by join propensity, churn "
                  f"risk <= {args.max_churn_risk:g}) vs uniform at the same volume "
                  f"(reach {comparison.reach:.3f})\n")
            table = comparison.table[comparison.table["policy"] != "uniform"]
            print(markdown(table))
            print(f"\nwrote {', '.join(written)} to {out}")


def _fit_transactions(args: argparse.Namespace, estimators: tuple[str, ...]) -> int:
    from simdomain.models.outputs import markdown, metrics_table, write_transactions_fit
    from simdomain.models.pipeline import fit_transactions

    path = Path(args.transactions)
    out = args.out if args.out is not None else default_out(path.stem, suffix="-models", source=str(path))
    with open_folder(out, "fit"):
        fit = fit_transactions(path, seed=args.seed, estimators=estimators)
        files = write_transactions_fit(fit, out)
    if not args.quiet:
        print(fit.fragment)
        if fit.evaluation is not None:
            print(markdown(metrics_table(fit.evaluation)))
        print(f"\nwrote {', '.join(files)} to {out}")
    return OK
