"""``simdomain calibrate`` and ``simdomain backtest``: a twin from a brand's data, and its test.

    simdomain calibrate DATA [--as-of DATE] [--base SCENARIO] --out TWIN
    simdomain backtest DATA --cutoff DATE [--cutoff DATE ...] [--end DATE] [--reps N] --out DIR
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from simdomain.cliutil import OK, date, positive_int, replications, seed
from simdomain.errors import InputError, Problem


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="folder of the brand's data (docs/data.md)")
    parser.add_argument("--base", metavar="SCENARIO",
                        help="scenario for what the data cannot show (marked as assumed)")
    parser.add_argument("--skip-bad-rows", action="store_true",
                        help="drop unreadable rows (written to rejects.csv) instead of stopping")
    parser.add_argument("--aggregate-duplicates", action="store_true",
                        help="merge rows without an order id that repeat customer, time and "
                             "amount (default: keep them, with a counted warning)")
    parser.add_argument("--draws", type=positive_int, default=200,
                        help="parameter draws to write (default 200)")
    parser.add_argument("--seed", type=seed, default=0, help="root seed (default 0)")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress or tables")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` and ``backtest`` subcommands."""
    cal = commands.add_parser(
        "calibrate", help="a twin of the brand: a scenario and its real people, from its data",
        description="Fit the brand's lifecycle, channels and order process from its own data "
                    "and write a twin: scenario.yaml (every number annotated), "
                    "population.parquet, parameters.parquet, estimates.csv and a report.")
    _data_args(cal)
    cal.add_argument("--as-of", type=date, metavar="DATE",
                     help="last day of data to use (default: the data's last day)")
    cal.add_argument("--horizon-days", type=positive_int, default=365,
                     help="the twin scenario's horizon (default 365)")
    cal.set_defaults(command=cmd_calibrate)

    test = commands.add_parser(
        "backtest", help="calibrate up to a cutoff, forecast to the end, compare with the data",
        description="Calibrate a twin on the data up to each cutoff, simulate to the end (with "
                    "the actual spend where recorded) and compare with what happened, side by "
                    "side with a BG/NBD baseline.")
    _data_args(test)
    test.add_argument("--cutoff", type=date, action="append", required=True, metavar="DATE",
                      help="calibrate on the data up to this day (repeat for rolling origins)")
    test.add_argument("--end", type=date, metavar="DATE",
                      help="last day to forecast (default: the data's last day)")
    test.add_argument("--reps", type=replications, default=20,
                      help="replications (default 20)")
    test.add_argument("--parameters", choices=("posterior", "point"), default="posterior",
                      help="draw parameters per replication or use the point estimates")
    test.set_defaults(command=cmd_backtest)


def _load(args: argparse.Namespace, as_of: dt.date | None = None) -> Any:
    from simdomain.data import load_bundle

    return load_bundle(Path(args.data), as_of=as_of, skip_bad_rows=args.skip_bad_rows,
                       aggregate_duplicates=args.aggregate_duplicates,
                       progress=not args.quiet)


def _base(args: argparse.Namespace) -> Any:
    from simdomain.scenario import load_scenario

    return load_scenario(args.base) if args.base else None


def _name(folder: Path) -> str:
    text = "".join(c if c.isalnum() or c in "-_" else "_" for c in folder.resolve().name)
    return f"twin_{text[:40]}" if text else "twin"


def cmd_calibrate(args: argparse.Namespace) -> int:
    from simdomain.outfolder import open_folder
    from simdomain.twin.calibrate import calibrate
    from simdomain.twin.history import build_history

    base = _base(args)
    with open_folder(args.out, "calibrate") as out:  # refused at once if taken
        bundle = _load(args, args.as_of)
        as_of = args.as_of or bundle.span[1].date()
        history = build_history(bundle.orders, as_of, contacts=bundle.contacts,
                                members=bundle.members, referrals=bundle.referrals)
        twin = calibrate(history, spend=bundle.spend, referrals=bundle.referrals, base=base,
                         name=_name(Path(args.data)), horizon_days=args.horizon_days,
                         draws=args.draws, seed=args.seed, tests=bundle.tests,
                         touches=bundle.touches)
        files = _write_twin(out, twin, history, bundle)
    if not args.quiet:
        print(str(bundle.report))
        print(f"\ncalibrated on {len(history.people):,} people ({len(history.customers):,} "
              f"customers) up to {as_of}")
        print(twin.estimates[["parameter", "estimate", "low", "high"]].to_string(index=False))
        for message in twin.messages:
            print(f"note: {message}")
        print(f"\nwrote {', '.join(files)} to {args.out}")
        print(f"next: simdomain run {Path(args.out) / 'scenario.yaml'}")
    return OK


def _write_twin(out: Any, twin: Any, history: Any, bundle: Any) -> list[str]:
    from simdomain.report.calibration import write_calibration_report
    from simdomain.twin.write import write_twin

    with out.stage() as scratch:
        files = write_twin(twin, scratch)
        (scratch / "cleaning.txt").write_text(str(bundle.report) + "\n", encoding="utf-8")
        files.append("cleaning.txt")
        if bundle.rejects is not None and len(bundle.rejects):
            bundle.rejects.to_csv(scratch / "rejects.csv", index=False)
            files.append("rejects.csv")
        files.append(write_calibration_report(twin, history, scratch))
    return files


def cmd_backtest(args: argparse.Namespace) -> int:
    from simdomain.outfolder import open_folder

    base = _base(args)
    with open_folder(args.out, "backtest") as out:  # refused at once if taken
        bundle = _load(args)
        first, end = bundle.span[0].date(), args.end or bundle.span[1].date()
        cutoffs = sorted(set(args.cutoff))
        for cutoff in cutoffs:
            if not first < cutoff < end:
                raise InputError([Problem("--cutoff", (), f"{cutoff} is not inside the data "
                                          f"({first}..{end})")])
        with out.stage() as scratch:
            rows = [_backtest_into(scratch if len(cutoffs) == 1 else scratch / f"cutoff-{c}",
                                   args, bundle, base, c, end) for c in cutoffs]
            if len(cutoffs) > 1:
                import pandas as pd

                pd.DataFrame(rows).to_csv(scratch / "origins.csv", index=False)
    if not args.quiet:
        _print_origins(rows)
        print(f"\nwrote the backtest to {args.out}")
    return OK


def _backtest_into(folder: Path, args: argparse.Namespace, bundle: Any, base: Any,
                   cutoff: dt.date, end: dt.date) -> dict[str, Any]:
    from simdomain.backtest import run_backtest
    from simdomain.report.calibration import write_backtest_report

    folder.mkdir(parents=True, exist_ok=True)
    test = run_backtest(bundle, cutoff, end, folder, base=base, reps=args.reps, seed=args.seed,
                        draws=args.draws, parameters=args.parameters, progress=not args.quiet)
    test.customers.to_csv(folder / "customers.csv", index=False)
    test.monthly.drop(columns=["samples"], errors="ignore").to_csv(folder / "monthly.csv",
                                                                   index=False)
    (folder / "backtest.json").write_text(json.dumps(test.metrics, indent=2) + "\n")
    write_backtest_report(test, folder)
    return _origin_row(test.metrics)


def _origin_row(m: dict[str, Any]) -> dict[str, Any]:
    return {"cutoff": m["cutoff"], "end": m["end"], "customers": m["customers"],
            "twin_mae": m["twin"]["mae"], "baseline_mae": m["baseline"]["mae"],
            "twin_total_error_pct": m["twin"]["total_error_pct"],
            "baseline_total_error_pct": m["baseline"]["total_error_pct"],
            "twin_crps": m["twin"]["crps"], "monthly_coverage": m["monthly_coverage_all"]}


def _print_origins(rows: list[dict[str, Any]]) -> None:
    print(f"{'cutoff':<12}{'customers':>10}{'MAE twin':>10}{'MAE BG/NBD':>12}"
          f"{'total twin':>12}{'total BG/NBD':>14}{'90% cover':>11}")
    for r in rows:
        cover = r["monthly_coverage"]
        print(f"{r['cutoff']:<12}{r['customers']:>10,}{r['twin_mae']:>10.3f}"
              f"{r['baseline_mae']:>12.3f}{r['twin_total_error_pct']:>+11.1f}%"
              f"{r['baseline_total_error_pct']:>+13.1f}%"
              f"{'' if cover is None else f'{cover:.0%}':>11}")
