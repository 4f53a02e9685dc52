"""The ``simdomain`` command: a thin shell over the library.

Exit codes: 0 done; 1 an internal error (a bug: please report it); 2 bad input or
usage (every problem is printed as ``FILE: a -> b -> field: message``); 3 no plan
meets the targets; 4 every run of an experiment failed; 130 interrupted (nothing
half-written is left behind).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from simdomain import __version__
from simdomain.advise import cli as advise_cli
from simdomain.cliutil import (
    BAD_INPUT,
    INTERNAL_ERROR,
    INTERRUPTED,
    OK,
    add_cluster_args,
    add_simulation_args,
    cluster_from,
    memory_share,
)
from simdomain.compare import compare
from simdomain.errors import InputError, Problem, SimdomainWarning
from simdomain.experiments import cli as experiments_cli
from simdomain.models import cli as models_cli
from simdomain.outfolder import default_out, open_folder, slug
from simdomain.outputs import write_result, write_run
from simdomain.planner import cli as planner_cli
from simdomain.scenario import load_scenario
from simdomain.simulation import simulate
from simdomain.studio import cli as studio_cli
from simdomain.synth import cli as synth_cli
from simdomain.tables import comparison_table, monthly_table, targets_table
from simdomain.twin import cli as twin_cli


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``simdomain`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
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


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """Print simdomain's own warnings as one plain line; others as Python does."""
    stream = file or sys.stderr
    if issubclass(category, SimdomainWarning):
        print(f"warning: {message}", file=stream)
    else:
        stream.write(warnings.formatwarning(message, category, filename, lineno, line))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit with BAD_INPUT
        self.print_usage(sys.stderr)
        self.exit(BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="simdomain", description=(
        "Simulate a brand's private domain, plan its channel spend, and say how sure it is."),
        epilog="exit codes: 0 done, 1 internal error, 2 bad input or usage, "
               "3 no plan meets the targets, 4 every run of an experiment failed, "
               "130 interrupted")
    parser.add_argument("--version", action="version", version=f"simdomain {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)

    validate = commands.add_parser("validate", help="check scenario files")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(command=cmd_validate)

    run = commands.add_parser("run", help="simulate a scenario and print its north-star table")
    run.add_argument("file", metavar="FILE")
    add_simulation_args(run)
    add_cluster_args(run)
    run.add_argument("--agents", action="store_true", help="also write agents.parquet")
    run.set_defaults(command=cmd_run)

    comp = commands.add_parser("compare", help="what-ifs side by side, with common random numbers")
    comp.add_argument("file", metavar="BASE")
    comp.add_argument("others", nargs="*", metavar="OTHER", help="scenario files to compare")
    add_simulation_args(comp)
    add_cluster_args(comp)
    comp.add_argument("--variant", nargs="+", action="append", default=[],
                      metavar=("NAME", "PATH=VALUE"),
                      help="a variant of the base with overrides, e.g. "
                           "--variant three touch_policy.one_to_one.per_week=3")
    comp.set_defaults(command=cmd_compare)

    report = commands.add_parser("report", help="turn an output folder into one HTML report")
    report.add_argument("folder", metavar="DIR")
    report.set_defaults(command=cmd_report)
    experiments_cli.register(commands)
    planner_cli.register(commands)
    models_cli.register(commands)
    synth_cli.register(commands)
    twin_cli.register(commands)
    studio_cli.register(commands)
    advise_cli.register(commands)
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
    scenario = load_scenario(args.file, args.set, memory_share=memory_share(args))
    out = args.out if args.out is not None else default_out(scenario.name, source=args.file)
    shards = args.shards or 1
    # the cluster is reached, and the folder taken, at once: not after the simulation
    with cluster_from(args, tasks=args.reps * shards) as cluster, open_folder(out, "run"):
        result = simulate(scenario, seed=args.seed, reps=args.reps, keep_agents=args.agents,
                          progress=False if args.quiet else None, shards=shards,
                          cluster=cluster)
        files = write_run(result, out, agents=args.agents)
    if not args.quiet:
        summary = result.summary()
        split = f" of {shards} shards each" if shards > 1 else ""
        print(f"{scenario.name}: {args.reps} replications{split}, seed {args.seed}; the mean "
              "and, below it, the 90% interval; * = the target is missed in most "
              "replications\n")
        print(monthly_table(summary))
        print()
        print(targets_table(summary))
        print(f"\nwrote {', '.join(files)} to {out}")
    return OK


def cmd_compare(args: argparse.Namespace) -> int:
    share = memory_share(args)
    base = load_scenario(args.file, memory_share=share)
    variants = {"base": base}
    for path in args.others:
        variants[Path(path).stem] = load_scenario(path, memory_share=share)
    if args.set:
        variants[" ".join(args.set)] = load_scenario(args.file, args.set, memory_share=share)
    for name, *overrides in args.variant:
        variants[name] = load_scenario(args.file, overrides, memory_share=share)
    if len(variants) < 2:
        raise InputError([Problem("compare", (), "give another scenario file, --set or "
                                                 "--variant to compare the base with")])
    if args.reps < 2:
        raise InputError([Problem("--reps", (), f"needs at least 2 to give intervals, got {args.reps}")])
    out = args.out if args.out is not None else default_out(base.name, prefix="compare-", source=args.file)
    shards = args.shards or 1
    with cluster_from(args, tasks=args.reps * shards) as cluster, \
            open_folder(out, "compare") as folder:
        comparison = compare(variants, seed=args.seed, reps=args.reps,
                             progress=False if args.quiet else None, shards=shards,
                             cluster=cluster)
        with folder.stage() as scratch:
            comparison.table.to_csv(scratch / "comparison.csv", index=False)
            for i, (name, result) in enumerate(comparison.results.items()):
                write_result(result, scratch / "variants" / f"{i}-{slug(name)}")
    if not args.quiet:
        print(f"{len(variants)} variants, {args.reps} replications each with the same seeds "
              f"(seed {args.seed}); over the horizon: mean [90% of replications], and the "
              "change vs the base [90% confidence interval]\n")
        print(comparison_table(comparison.table))
        print(f"\nwrote comparison.csv and variants/ to {out}")
    return OK


def cmd_report(args: argparse.Namespace) -> int:
    from simdomain.report import build_report  # matplotlib loads only when needed

    path = build_report(args.folder)
    print(f"wrote {path}")
    return OK


if __name__ == "__main__":
    sys.exit(main())
