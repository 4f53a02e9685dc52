"""``simdomain plan``: the cheapest monthly channel plan that hits the targets.

Exit codes: 0 a plan was found; 3 no plan meets every target (or, with
``--confidence``, not at that confidence), the diagnosis printed; 2 bad input.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from simdomain.cliutil import (
    INFEASIBLE,
    MAX_REPS,
    OK,
    add_cluster_args,
    amount,
    cluster_from,
    int_in,
    seed,
)
from simdomain.errors import InputError, Problem
from simdomain.outfolder import default_out, open_folder
from simdomain.planner.chance import plan_over_draws, verify_fresh
from simdomain.planner.export import (
    chance_text,
    diagnosis_text,
    plan_text,
    verification_text,
    write_plan,
)
from simdomain.planner.milp import SOLVERS, available_solvers
from simdomain.planner.planning import plan
from simdomain.planner.problem import BASES, OBJECTIVES, PlanOptions
from simdomain.planner.robust import METHODS
from simdomain.planner.verify import plan_with_confidence, verify
from simdomain.scenario import Scenario, load_scenario
from simdomain.scenario.model import MAX_CNY
from simdomain.textio import detect_encoding
from simdomain.workers import Cluster

MAX_MEMBER_WINDOW = 120
"""Most months after the add month that ``--member-window`` may count (ten years)."""
MAX_PLAN_PIECES = 100_000
"""Spend pieces (channels x months x breakpoints) a plan may have unless forced."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``plan`` subcommand."""
    parser = commands.add_parser("plan", help="plan channel spend to hit the targets at least cost",
                                 description=__doc__.split("\n\n")[0])
    parser.add_argument("file", metavar="SCENARIO")
    parser.add_argument("--objective", choices=OBJECTIVES, default="min-cost",
                        help="min-cost (default): cheapest plan meeting every target; max-*: "
                             "the most members/adds/GMV within the budget")
    parser.add_argument("--budget", type=amount, metavar="CNY",
                        help="total budget over the horizon (replaces the scenario's)")
    parser.add_argument("--monthly-budget", type=amount, metavar="CNY",
                        help="budget per month (replaces the scenario's)")
    parser.add_argument("--lock", action="append", default=[], metavar="CH=SPEND",
                        help="fix a channel's monthly spend (one amount, or one per month "
                             "separated by commas); repeatable")
    parser.add_argument("--verify", type=int_in(1, MAX_REPS, "a number of replications"),
                        metavar="N",
                        help="simulate the plan N times and report each target's chance")
    parser.add_argument("--confidence", type=_probability, metavar="P",
                        help="raise the planned targets until the simulated chance of "
                             "meeting every target reaches P (uses --verify N, default 20)")
    parser.add_argument("--chance", type=_probability, metavar="P",
                        help="plan over the twin's parameter draws: each target met with "
                             "probability P across draws and chance (see --draws); "
                             "compared with the mean-curve plan")
    parser.add_argument("--draws", type=int_in(1, 10_000, "a number of draws"), default=100,
                        metavar="K", help="parameter draws to plan over with --chance "
                                          "(default 100)")
    parser.add_argument("--chance-method", choices=METHODS, default="sets",
                        help="sets (default: CVaR start, then the draws each target must "
                             "meet, re-solved), milp (exact, slower) or cvar (conservative LP)")
    parser.add_argument("--curves", choices=("scenario", "simulated"), default="scenario",
                        help="response curves from the channel parameters (default) or "
                             "measured by simulation")
    parser.add_argument("--members-basis", choices=BASES, default="cohort",
                        help="cohort (default): members a month's adds bring within the "
                             "window; calendar: members who join in the month")
    parser.add_argument("--member-window", type=int_in(0, MAX_MEMBER_WINDOW, "months"),
                        default=6, metavar="MONTHS",
                        help="months after the add month that count (default 6)")
    parser.add_argument("--channel-values", metavar="CSV",
                        help="channel value table: columns channel, members_per_add")
    parser.add_argument("--solver", choices=SOLVERS, default="cbc",
                        help="cbc (default, bundled with PuLP) or highs (needs highspy)")
    parser.add_argument("--seed", type=seed, default=0, help="root seed of simulations")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a scenario field")
    parser.add_argument("--out", metavar="DIR", help="output folder (default out/<name>-plan)")
    parser.add_argument("--force", action="store_true",
                        help=f"plan past {MAX_PLAN_PIECES:,} spend pieces (channels x months x "
                             "breakpoints); without it, such a plan is refused before it starts")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or tables")
    add_cluster_args(parser)  # for the simulations of --verify and --confidence
    parser.set_defaults(command=cmd_plan)


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}")
    return value


def parse_locks(items: list[str]) -> dict[str, float | list[float]]:
    """``["sms=50000", "feeds=1,2,3"]`` as ``{"sms": 50000.0, "feeds": [1.0, 2.0, 3.0]}``."""
    locks: dict[str, float | list[float]] = {}
    problems = []
    for item in items:
        name, sep, value = item.partition("=")
        try:
            amounts = [float(v) for v in value.split(",")]
        except ValueError:
            amounts = []
        if not sep or not name.strip() or not amounts:
            problems.append(Problem("--lock", (), f"expected CH=SPEND, got {item!r}"))
            continue
        if not all(math.isfinite(a) and 0 <= a <= MAX_CNY for a in amounts):
            problems.append(Problem("--lock", (), f"spend must be from 0 up to {MAX_CNY:g} "
                                                  f"yuan, got {item!r}"))
            continue
        locks[name.strip()] = amounts[0] if len(amounts) == 1 else amounts
    if problems:
        raise InputError(problems)
    return locks


def read_channel_values(path: str, channels: list[str]) -> dict[str, float]:
    """Members per add of the scenario's ``channels`` from a CSV with columns ``channel,
    members_per_add`` (the channel value table of ``simdomain fit``: its ``segment ==
    "all"`` rows; rows of other sources, such as referral, are left out)."""
    try:
        with open(path, "rb") as handle:
            encoding = detect_encoding(handle.read(1 << 20), path)
        table = pd.read_csv(path, encoding=encoding)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError([Problem(path, (), f"cannot read the channel values: {reason}")]) from None
    missing = [c for c in ("channel", "members_per_add") if c not in table.columns]
    if missing:
        raise InputError([Problem(path, (), f"missing columns {missing}; "
                                            f"found {list(table.columns)}")])
    if "segment" in table.columns:
        table = table[table["segment"] == "all"]
    table = table[table["channel"].astype(str).isin(channels)]
    values = pd.to_numeric(table["members_per_add"], errors="coerce")
    bad = table.loc[~values.between(0, 1), "channel"].tolist()
    if bad:
        raise InputError([Problem(path, ("members_per_add",),
                                  f"must be between 0 and 1, for channels {bad}")])
    return dict(zip(table["channel"].astype(str), values.astype(float)))


def check_solver(name: str) -> None:
    """Refuse a solver that is not installed here, saying how to install it."""
    available = available_solvers()
    if name not in available:
        how = "pip install highspy" if name == "highs" else "reinstall PuLP (pip install pulp)"
        raise InputError([Problem("--solver", (), f"{name} is not installed here ({how}); "
                                                  f"available: {', '.join(available) or 'none'}")])


def check_plan_size(scenario: Scenario, options: PlanOptions, source: str, *,
                    force: bool = False) -> None:
    """Refuse, unless ``force``, a plan of more than :data:`MAX_PLAN_PIECES` spend pieces."""
    channels, months = len(scenario.channels), scenario.months
    pieces = channels * months * options.max_breakpoints
    if pieces > MAX_PLAN_PIECES and not force:
        raise InputError([Problem(source, ("channels",), (
            f"the plan has {channels:,} channels x {months} months x {options.max_breakpoints} "
            f"breakpoints = {pieces:,} spend pieces; the limit is {MAX_PLAN_PIECES:,} "
            "(pass --force if you mean it)"))])


def cmd_plan(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.file, args.set)
    check_solver(args.solver)
    values = read_channel_values(args.channel_values, list(scenario.channels)) \
        if args.channel_values else {}
    options = PlanOptions(
        objective=args.objective, total_budget_cny=args.budget,
        monthly_budget_cny=args.monthly_budget, locks=parse_locks(args.lock),
        curves=args.curves, members_basis=args.members_basis,
        member_window_months=args.member_window,
        members_per_add=values,
    )
    check_plan_size(scenario, options, args.file, force=args.force)
    if args.shards is not None and args.verify is None and args.confidence is None:
        raise InputError([Problem("--shards", (), "splits the simulations of --verify or "
                                                  "--confidence; give one of them")])
    out = args.out if args.out is not None else default_out(scenario.name, suffix="-plan", source=args.file)
    # the cluster is reached, and the folder taken, at once: not after the solve
    with cluster_from(args, tasks=args.shards or 1) as cluster, open_folder(out, "plan"):
        return _plan_into(args, scenario, options, out, cluster)


def _plan_into(args: argparse.Namespace, scenario: Scenario, options: PlanOptions,
               out: str | Path, cluster: Cluster | None = None) -> int:
    progress = False if args.quiet else None
    say = (lambda text: None) if args.quiet else print
    reps = args.verify or 20
    confidence = verification = chance = None
    if args.chance is not None and args.confidence is not None:
        raise InputError([Problem("--chance", (), "give --chance (across parameter draws and "
                                  "chance, solved at once) or --confidence (margins raised "
                                  "until simulations reach it), not both")])
    if args.chance is not None:
        chance = plan_over_draws(scenario, options, args.chance, draws=args.draws,
                                 seed=args.seed, method=args.chance_method, progress=progress)
        result = chance.result
        if result.optimal and args.verify:
            verification = verify_fresh(result, chance.draws.draws, reps=args.verify,
                                        seed=args.seed, progress=progress,
                                        shards=args.shards or 1, cluster=cluster)
    elif args.confidence is not None:
        confidence = plan_with_confidence(scenario, options, args.confidence, reps=reps,
                                          seed=args.seed, solver=args.solver, progress=progress,
                                          shards=args.shards or 1, cluster=cluster)
        result, verification = confidence.result, confidence.verification
    else:
        result = plan(scenario, options, solver=args.solver, seed=args.seed)
        if result.optimal and args.verify:
            verification = verify(result, reps=args.verify, seed=args.seed, progress=progress,
                                  shards=args.shards or 1, cluster=cluster)
    files = write_plan(result, out, verification=verification, confidence=confidence,
                       chance=chance)
    if not result.optimal:
        print(diagnosis_text(result), file=sys.stderr)
        say(f"\nwrote {', '.join(files)} to {out}")
        return INFEASIBLE
    say(plan_text(result))
    if verification is not None:
        say("\n" + verification_text(verification))
    if chance is not None:
        say("\n" + chance_text(chance))
    if confidence is not None:
        extra = confidence.extra_cost
        say(f"\nconfidence {confidence.level:.0%}: {confidence.message}; "
            f"extra cost of the margins: ¥{extra:,.0f}")
    say(f"\nwrote {', '.join(files)} to {out}")
    if confidence is not None and not confidence.reached:
        if confidence.blocked is not None:
            print(diagnosis_text(confidence.blocked), file=sys.stderr)
        return INFEASIBLE
    return OK
