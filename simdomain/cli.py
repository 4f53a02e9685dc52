"""The ``simdomain`` command: a thin shell over the library.

Exit codes: 0 done; 1 an internal error (a bug: please report it); 2 bad input or
usage (every problem is printed as ``FILE: a -> b -> field: message``); 130
interrupted (nothing half-written is left behind).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from simdomain import __version__
from simdomain.cliutil import BAD_INPUT, INTERNAL_ERROR, INTERRUPTED, OK, add_simulation_args
from simdomain.errors import InputError
from simdomain.outputs import write_run
from simdomain.scenario import load_scenario
from simdomain.simulation import simulate
from simdomain.tables import monthly_table, targets_table


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``simdomain`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except InputError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted; no partial output was written", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if os.environ.get("SIMDOMAIN_DEBUG"):
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc}\n"
              "this is a bug in simdomain; set SIMDOMAIN_DEBUG=1 for the traceback",
              file=sys.stderr)
        return INTERNAL_ERROR


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit with BAD_INPUT
        self.print_usage(sys.stderr)
        self.exit(BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="simdomain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"simdomain {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)

    validate = commands.add_parser("validate", help="check scenario files")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(command=cmd_validate)

    run = commands.add_parser("run", help="simulate a scenario and print its north-star table")
    run.add_argument("file", metavar="FILE")
    add_simulation_args(run)
    run.add_argument("--agents", action="store_true", help="also write agents.parquet")
    run.set_defaults(command=cmd_run)
    # further commands register here
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    problems = []
    for file in args.files:
        try:
            scenario = load_scenario(file)
        except InputError as exc:
            problems.extend(exc.problems)
        else:
            print(f"{file}: ok ({scenario.name}, {scenario.horizon_days} days, "
                  f"{len(scenario.channels)} channels)")
    if problems:
        raise InputError(problems)
    return OK


def cmd_run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.file, args.set)
    out = Path(args.out) if args.out else Path("out") / scenario.name
    result = simulate(scenario, seed=args.seed, reps=args.reps, keep_agents=args.agents,
                      progress=False if args.quiet else None)
    files = write_run(result, out, agents=args.agents)
    if not args.quiet:
        summary = result.summary()
        print(f"{scenario.name}: {args.reps} replications, seed {args.seed}; the mean and, "
              "below it, the 90% interval; * = the target is missed in most replications\n")
        print(monthly_table(summary))
        print()
        print(targets_table(summary))
        print(f"\nwrote {', '.join(files)} to {out}")
    return OK


if __name__ == "__main__":
    sys.exit(main())
