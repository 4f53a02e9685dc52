"""``simdomain experiment``: run an experiment file, resumably, and summarise it.

The experiment modules (SciPy, SALib, Dask) load when the command runs, so other
commands start fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from simdomain.cliutil import ALL_FAILED, INTERNAL_ERROR, INTERRUPTED, OK, seconds, workers
from simdomain.experiments.spec import MAX_SIMULATIONS
from simdomain.outfolder import default_out
from simdomain.workers import is_scheduler_address

if TYPE_CHECKING:
    from simdomain.experiments.runner import ExperimentReport
    from simdomain.experiments.spec import ExperimentSpec


def register(commands: Any) -> None:
    """Add the ``experiment`` command to the ``simdomain`` subcommands."""
    parser = commands.add_parser(
        "experiment", help="run a batch experiment: sweeps, replications, sensitivity",
        description="Run every design point of an experiment file, locally or on a Dask "
                    "cluster. Rerun the same command after a crash or Ctrl-C to finish.",
        epilog="exit codes: 0 done (some runs may have failed: they are listed), 2 bad input, "
               "4 every run failed, 130 interrupted (rerun to finish)")
    parser.add_argument("file", metavar="FILE", help="an experiment file (experiments/*.yaml)")
    parser.add_argument("--workers", type=workers,
                        help="local worker processes (default: the cores available)")
    parser.add_argument("--scheduler", metavar="ADDRESS", type=_address,
                        help="run on a dask.distributed cluster, e.g. tcp://host:8786")
    parser.add_argument("--out", metavar="DIR", help="results folder (default out/NAME)")
    parser.add_argument("--fresh", action="store_true",
                        help="discard the results already in DIR (needed after a change)")
    parser.add_argument("--checkpoint", type=seconds, default=30.0, metavar="SECONDS",
                        help="write finished runs at least this often (default 30); "
                             "Ctrl-C writes them at once")
    parser.add_argument("--force", action="store_true",
                        help=f"run a design past {MAX_SIMULATIONS:,} simulations (runs x replications); "
                             "without it, such a design is refused before it starts")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or report")
    parser.set_defaults(command=cmd_experiment)


def _address(text: str) -> str:
    if not is_scheduler_address(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a scheduler address; expected "
                                         "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    return text


def cmd_experiment(args: argparse.Namespace) -> int:
    from simdomain.experiments.runner import EngineError, run_experiment
    from simdomain.experiments.spec import load_experiment
    from simdomain.experiments.store import finished_runs

    experiment = load_experiment(args.file, force=args.force)
    out = args.out if args.out is not None else default_out(experiment.spec.name, source=args.file)
    try:
        report = run_experiment(experiment, out, workers=args.workers, scheduler=args.scheduler,
                                fresh=args.fresh, progress=False if args.quiet else None,
                                checkpoint_seconds=args.checkpoint)
    except KeyboardInterrupt:
        print(f"interrupted: {len(finished_runs(out))} runs are saved in {out}; "
              "rerun the same command to finish", file=sys.stderr)
        return INTERRUPTED
    except EngineError as exc:
        print(f"the workers failed: {exc}\n{len(finished_runs(out))} runs are saved in {out}; "
              "rerun the same command to finish", file=sys.stderr)
        return INTERNAL_ERROR
    for line in _problems(report):
        print(line, file=sys.stderr)
    if not args.quiet:
        print(_report(report, experiment.spec))
    if report.runs and len(report.failed["run"].unique()) == report.runs:
        print(f"every run failed: exit code {ALL_FAILED}", file=sys.stderr)
        return ALL_FAILED
    return OK


def _report(report: ExperimentReport, spec: ExperimentSpec) -> str:
    done_now = (f"{report.ran} run in {report.seconds:.1f} s, "
                f"{report.runs_per_minute:.1f} runs/min" if report.ran else "nothing left to run")
    return (f"{spec.name}: {report.runs} runs x {spec.replications} replications "
            f"({report.resumed} already done, {done_now}); "
            f"{len(report.failed)} failed\nwrote {', '.join(report.files)} and the part files "
            f"to {report.out_dir}")


def _problems(report: ExperimentReport) -> list[str]:
    lines = []
    if len(report.failed):
        lines.append(f"{len(report.failed)} of {report.runs} runs failed "
                     "(their rows have an error and no outcomes):")
        for error, group in report.failed.groupby("error", sort=False)["run"]:
            runs = ", ".join(map(str, group.head(5))) + (", ..." if len(group) > 5 else "")
            lines.append(f"  {len(group)} x {error} (runs {runs})")
    return lines + [f"note: {note}" for note in report.notes]
