"""``simdomain synth SCENARIO --out DATA``: write a synthetic data bundle with its truth."""

from __future__ import annotations

import argparse
from typing import Any

from simdomain.cliutil import OK, date, positive_int
from simdomain.scenario import load_scenario
from simdomain.synth import PROCESS_NAMES, synthesize, write_bundle


def register(commands: Any) -> None:
    """Add the ``synth`` subcommand to the top-level parser's subcommands."""
    synth = commands.add_parser(
        "synth", help="write a realistic data bundle with known truth from a scenario",
        description="Write a data bundle (orders, contacts, members, referrals, spend and "
                    "truth.json) covering the history before the scenario's start date.")
    synth.add_argument("file", metavar="SCENARIO")
    synth.add_argument("--out", required=True, metavar="DATA", help="bundle folder to write")
    synth.add_argument("--process", choices=PROCESS_NAMES, default="engine",
                       help="what makes the orders: the engine (default) or an independent "
                            "process")
    synth.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    window = synth.add_mutually_exclusive_group()
    window.add_argument("--history-days", type=positive_int, metavar="N",
                        help="days of history before the scenario's start (default 730)")
    window.add_argument("--start", type=date, metavar="DATE",
                        help="first day of the history (YYYY-MM-DD)")
    synth.add_argument("--messy", action="store_true",
                       help="add the dirt of real exports (counted in truth.json)")
    synth.add_argument("--tests", action="store_true",
                       help="add a tests file: touch frequency and content-mix tests with "
                            "the scenario's effects, each arm simulated (truth in truth.json)")
    synth.add_argument("--format", choices=("csv", "parquet"), default="csv")
    synth.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                       help="override a scenario field, e.g. channels.x.monthly_spend_cny=0")
    synth.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    synth.set_defaults(command=cmd_synth)




def cmd_synth(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.file, args.set)
    bundle = synthesize(scenario, process=args.process, seed=args.seed,
                        history_days=args.history_days, start=args.start, messy=args.messy,
                        tests=args.tests, progress=False if args.quiet else None)
    files = write_bundle(bundle, args.out, format=args.format)
    if not args.quiet:
        counts, window = bundle.truth["counts"], bundle.truth["window"]
        print(f"{args.out}: {bundle.truth['process']} bundle of {window['start']}.."
              f"{window['end']} (seed {args.seed}): {counts['contacts']} contacts, "
              f"{counts['buyers']} buyers, {counts['orders']} orders; files: {', '.join(files)}")
    return OK
