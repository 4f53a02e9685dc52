"""Experiment files: a base scenario, the factors to vary, a design and the outcomes.

An experiment file is YAML validated like a scenario (unknown keys refused with a
suggestion, every problem reported as ``FILE: a -> b: message``)::

    name: touch_frequency
    scenario: ../scenarios/social_ecommerce.yaml   # relative to this file
    set: {horizon_days: 180}                       # fixed in every run
    factors:
      - path: touch_policy.one_to_one.per_week
        values: [1, 2, 3, 4]
      - name: sms_share                            # a variable used by `derived`
        low: 0.1
        high: 0.4
    derived:                                       # fields computed from named factors
      channels.sms_short_link.monthly_spend_cny: 362500 * sms_share
    design: {kind: latin_hypercube, samples: 32}
    replications: 5
    seed: 2027
    outcomes:
      - {name: members, kpi: new_members}
      - {name: q3_cost_per_member, kpi: cost_per_member_cny, months: 2027-07..2027-09}
      - {name: members_target_met, target: monthly_new_members}

Factor paths, ``set`` and ``derived`` fields are checked against the base scenario
when the file is loaded, by applying them as ``--set`` overrides would be.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from simdomain import __version__
from simdomain.errors import InputError, Problem
from simdomain.experiments import expr
from simdomain.experiments.outcomes import CHANNEL_KPIS, COSTS, KPIS, Measure
from simdomain.kpi import ALL
from simdomain.scenario.io import apply_overrides, dump_scenario, explain, read_yaml
from simdomain.scenario.model import FieldError, Scenario, Strict

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
PATH = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$"
RESERVED_COLUMNS = ("run", "replication", "seed", "error")
"""Columns of the results table that factors and outcomes may not be named."""
SENSITIVITY_DESIGNS = ("sobol_sensitivity", "morris")
MAX_SIMULATIONS = 100_000
"""Simulations (runs x replications) an experiment may ask for unless forced."""
MAX_RUNS = 1_000_000
"""Design points an experiment may have even when forced: each is held in memory."""
MAX_SEED = 2**63 - 1
MAX_VALUES = 10_000
"""Most listed values of one factor (each is checked against the base scenario)."""
_MONTHS = r"^(each|\d{4}-\d{2}(\.\.\d{4}-\d{2})?)$"


class Factor(Strict):
    """A scenario field, or a named variable that ``derived`` fields use, and its values.

    Either ``values`` (a list; grids take each, samplers pick among them uniformly) or a
    range ``low``..``high`` (samplers draw uniformly; grids take ``levels`` evenly
    spaced points; ``integer`` rounds to whole numbers, both ends included).
    """

    name: str | None = Field(None, pattern=IDENTIFIER,
                             description="column name and name in derived; default: the path")
    path: str | None = Field(None, pattern=PATH,
                             description="scenario field set, e.g. touch_policy.one_to_one.per_week")
    values: list[Any] | None = Field(None, min_length=1, max_length=MAX_VALUES)
    low: float | None = None
    high: float | None = None
    integer: bool = False
    levels: int | None = Field(None, ge=2, description="points of a range in a grid design")

    @property
    def label(self) -> str:
        """The factor's column in the results."""
        return self.name or str(self.path)

    @property
    def is_range(self) -> bool:
        return self.values is None

    @property
    def grid_levels(self) -> int:
        """Points of the factor in a grid: its values, or its levels (for an integer
        range, at most one per whole number: points closer than 1 round together)."""
        if self.values is not None:
            return len(self.values)
        assert self.levels is not None and self.low is not None and self.high is not None
        return min(self.levels, int(self.high - self.low) + 1) if self.integer else self.levels

    def checked_values(self) -> list[Any]:
        """The values validated against the base scenario: all listed ones, or both ends."""
        if self.values is not None:
            return self.values
        ends = [self.low, self.high]
        return [int(v) for v in ends] if self.integer else ends  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _check(self) -> Factor:
        if self.name is None and self.path is None:
            raise FieldError((), "needs a path, a name (for derived), or both")
        ranged = self.low is not None or self.high is not None
        if self.values is not None:
            if ranged or self.integer or self.levels is not None:
                raise FieldError(("values",), "give values or a range (low, high, integer, "
                                              "levels), not both")
            return self
        if not ranged:
            raise FieldError((), "needs values, or a range with low and high")
        if self.low is None or self.high is None:
            raise FieldError(("low" if self.low is None else "high",), "a range needs low and high")
        if self.high <= self.low:
            raise FieldError(("high",), f"must be above low ({self.low:g}), got {self.high:g}")
        if self.integer and not (self.low.is_integer() and self.high.is_integer()):
            raise FieldError(("low",), f"an integer range needs whole ends, got "
                                       f"{self.low:g}..{self.high:g}")
        return self


class Outcome(Strict):
    """A number kept from each replication (see :mod:`simdomain.experiments.outcomes`)."""

    name: str = Field(pattern=IDENTIFIER, description="column name in the results")
    kpi: str | None = Field(None, description="a monthly KPI (see simdomain.kpi)")
    target: str | None = Field(None, description="a target of the scenario: share of periods met")
    channel: str = Field(ALL, description='"all" or a channel of the scenario')
    months: str | None = Field(None, pattern=_MONTHS, description=(
        '"2027-07", "2027-07..2027-09", or "each" (one column per month); default: the horizon'))
    aggregate: Literal["sum", "last", "mean", "min", "max", "ratio"] | None = None

    @field_validator("kpi")
    @classmethod
    def _known_kpi(cls, value: str | None) -> str | None:
        if value is not None and value not in KPIS:
            close = difflib.get_close_matches(value, KPIS, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {list(KPIS)}"
            raise ValueError(f"unknown KPI; {hint}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Outcome:
        if (self.kpi is None) == (self.target is None):
            raise FieldError((), "needs exactly one of kpi and target")
        if self.target is not None:
            if self.channel != ALL:
                raise FieldError(("channel",), f"a target is counted over all channels, "
                                               f"got {self.channel!r}")
            if self.aggregate:
                raise FieldError(("aggregate",), "does not apply to a target")
        elif self.channel != ALL and self.kpi not in CHANNEL_KPIS:
            raise FieldError(("kpi",), f"{self.kpi!r} is not reported per channel; "
                                       f"per channel: {list(CHANNEL_KPIS)}")
        if self.aggregate == "ratio" and self.kpi not in COSTS:
            raise FieldError(("aggregate",), f"ratio applies to {list(COSTS)} only")
        return self


class Design(Strict):
    """How factor values are combined into design points (runs).

    ``samples`` is the number of points for ``latin_hypercube`` and ``sobol_sequence``,
    the base sample N of ``sobol_sensitivity`` (N (D + 2) runs, N (2D + 2) with
    ``second_order``) and the number of trajectories of ``morris`` (r (D + 1) runs).
    """

    kind: Literal["grid", "latin_hypercube", "sobol_sequence", "sobol_sensitivity",
                  "morris"] = "grid"
    samples: int | None = Field(None, ge=1)
    second_order: bool = Field(False, description="also second-order Sobol indices")
    levels: int = Field(4, ge=2, le=100, description="grid levels of a Morris design")

    @model_validator(mode="after")
    def _check(self) -> Design:
        if self.kind == "grid":
            if self.samples is not None:
                raise FieldError(("samples",), "a grid takes every combination; remove samples")
        elif self.samples is None:
            raise FieldError(("samples",), f"a {self.kind} design needs samples")
        elif self.kind.startswith("sobol") and self.samples & (self.samples - 1):
            raise FieldError(("samples",), f"must be a power of 2 for Sobol points, "
                                           f"got {self.samples}")
        if self.second_order and self.kind != "sobol_sensitivity":
            raise FieldError(("second_order",), "applies to sobol_sensitivity designs only")
        return self


class ExperimentSpec(Strict):
    """An experiment file: what to vary, how to sample it and what to keep."""

    schema_version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    scenario: str = Field(description="base scenario file, relative to the experiment file")
    set: dict[str, Any] = Field({}, description="fields set in every run, as with --set")
    factors: list[Factor] = Field(min_length=1)
    derived: dict[str, str] = Field({}, description="fields computed from named factors")
    design: Design = Design()
    replications: int = Field(1, ge=1, description="replications of each design point")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="root of every run's seed")
    outcomes: list[Outcome] = Field(min_length=1)

    @property
    def runs(self) -> int:
        """Design points (runs) of the design, counted without building it."""
        design, dims = self.design, len(self.factors)
        if design.kind == "grid":
            return math.prod(f.grid_levels for f in self.factors)
        assert design.samples is not None  # checked by Design
        if design.kind == "sobol_sensitivity":
            return design.samples * ((2 if design.second_order else 1) * dims + 2)
        if design.kind == "morris":
            return design.samples * (dims + 1)
        return design.samples

    def size_problem(self, *, force: bool = False) -> str | None:
        """Why the design is too large to start, or ``None``: past :data:`MAX_RUNS` runs,
        or (unless ``force``) past :data:`MAX_SIMULATIONS` simulations."""
        runs = self.runs
        simulations = runs * self.replications
        if runs > MAX_RUNS:
            return (f"the design has {runs:,} runs; the limit is {MAX_RUNS:,} (each run's "
                    "values are held in memory); use fewer samples, levels or values")
        if simulations > MAX_SIMULATIONS and not force:
            return (f"the design has {runs:,} runs x {self.replications:,} replications = "
                    f"{simulations:,} simulations; the limit is {MAX_SIMULATIONS:,} "
                    "(pass --force if you mean it)")
        return None

    @model_validator(mode="after")
    def _check(self) -> ExperimentSpec:
        labels = [f.label for f in self.factors]
        named = {f.name for f in self.factors if f.name}
        paths = [f.path for f in self.factors if f.path]
        for i, factor in enumerate(self.factors):
            where = ("factors", i)
            if factor.label in RESERVED_COLUMNS or labels.index(factor.label) != i:
                raise FieldError((*where, "name"), f"{factor.label!r} is reserved or repeated")
            if factor.path and (factor.path in self.set or factor.path in self.derived
                                or paths.count(factor.path) > 1):
                raise FieldError((*where, "path"), f"{factor.path!r} is set twice "
                                                   "(by another factor, set or derived)")
            if self.design.kind in SENSITIVITY_DESIGNS and not factor.is_range:
                raise FieldError(where, f"a {self.design.kind} design needs a range (low, high)")
            if self.design.kind == "grid" and factor.is_range and factor.levels is None:
                raise FieldError((*where, "levels"), "a range in a grid needs levels")
            if self.design.kind != "grid" and factor.levels is not None:
                raise FieldError((*where, "levels"), "applies to grid designs only")
        for path, text in {**self.set, **self.derived}.items():
            section = "set" if path in self.set else "derived"
            if path in self.set and path in self.derived:
                raise FieldError(("derived", path), "is also in set")
            if not re.fullmatch(PATH, path):
                raise FieldError((section, path), "expected a dotted path like a.b.c")
            if section == "derived":
                _check_expression(str(text), named, ("derived", path))
        outcomes = [o.name for o in self.outcomes]
        for i, outcome in enumerate(self.outcomes):
            if outcome.name in (*RESERVED_COLUMNS, *labels) or outcomes.index(outcome.name) != i:
                raise FieldError(("outcomes", i, "name"),
                                 f"{outcome.name!r} is reserved, repeated or a factor's name")
        return self


def _check_expression(text: str, named: set[str], loc: tuple[str | int, ...]) -> None:
    try:
        tree = expr.parse(text)
    except ValueError as exc:
        raise FieldError(loc, str(exc)) from None
    for name in sorted(expr.names(tree) - named):
        close = difflib.get_close_matches(name, sorted(named), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"named factors: {sorted(named)}"
        raise FieldError(loc, f"{name!r} is not a named factor; {hint}")


@dataclass(frozen=True)
class Experiment:
    """A validated experiment, resolved against its base scenario.

    Attributes
    ----------
    spec
        The experiment file as typed.
    source
        The file it was read from.
    base
        The base scenario mapping with ``set`` applied; each run sets its factors and
        derived fields on a copy.
    scenario
        ``base`` validated.
    measures
        The outcomes resolved to month windows (``months: each`` expanded).
    """

    spec: ExperimentSpec
    source: str
    base: dict[str, Any]
    scenario: Scenario
    measures: tuple[Measure, ...]

    @property
    def factor_names(self) -> list[str]:
        return [f.label for f in self.spec.factors]

    @property
    def outcome_names(self) -> list[str]:
        return [m.name for m in self.measures]

    def resolved_files(self) -> dict[str, str]:
        """The resolved experiment and base scenario, as written beside the results."""
        spec = yaml.safe_dump(self.spec.model_dump(mode="json"), sort_keys=False,
                              allow_unicode=True)
        return {"experiment.resolved.yaml": f"# resolved from {self.source}\n{spec}",
                "scenario.resolved.yaml": dump_scenario(self.scenario)}

    def fingerprint(self) -> str:
        """A hash of everything that decides the results: the experiment, its resolved
        scenario and the simdomain version (not where the files are)."""
        spec = self.spec.model_dump(mode="json", exclude={"scenario"})
        text = f"simdomain {__version__}\n{yaml.safe_dump(spec, sort_keys=True)}"
        text += dump_scenario(self.scenario)
        return hashlib.sha256(text.encode()).hexdigest()


def load_experiment(path: str | Path, *, force: bool = False) -> Experiment:
    """Read an experiment file and check it against its base scenario.

    Parameters
    ----------
    force
        Accept a design past :data:`MAX_SIMULATIONS` simulations (up to :data:`MAX_RUNS`
        runs).

    Raises
    ------
    InputError
        Every problem found, as ``FILE: factors -> 0 -> path: ...``.
    """
    source = str(path)
    raw = read_yaml(path)
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise InputError(explain(exc, ExperimentSpec, source)) from None
    too_large = spec.size_problem(force=force)
    if too_large:
        raise InputError([Problem(source, ("design",), too_large)])
    scenario_file = Path(path).parent / spec.scenario
    base = read_yaml(scenario_file)
    scenario_at(base, {}, str(scenario_file))
    try:
        base = with_fields(base, spec.set)
        scenario = scenario_at(base, {})
    except InputError as exc:
        raise InputError(_relocate(exc, source, ("set",))) from None
    problems = [*_check_factors(spec, base, source), *_check_derived(spec, base, source)]
    measures: list[Measure] = []
    for i, outcome in enumerate(spec.outcomes):
        try:
            measures.extend(_resolve(outcome, scenario))
        except FieldError as exc:
            problems.append(Problem(source, ("outcomes", i, *exc.loc), str(exc)))
    names = [m.name for m in measures]
    clashes = sorted({n for n in names if names.count(n) > 1 or n in
                      (*RESERVED_COLUMNS, *(f.label for f in spec.factors))})
    if clashes and not problems:
        problems.append(Problem(source, ("outcomes",), f"expanded names clash: {clashes}"))
    if problems:
        raise InputError(problems)
    return Experiment(spec, source, base, scenario, tuple(measures))


def scenario_at(base: dict[str, Any], fields: dict[str, Any], source: str = "scenario") -> Scenario:
    """The scenario ``base`` with each dotted path of ``fields`` set to its value.

    Raises
    ------
    InputError
        With problems located in the scenario, attributed to ``source``.
    """
    raw = with_fields(base, fields, source)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise InputError(explain(exc, Scenario, source)) from None


def with_fields(base: dict[str, Any], fields: dict[str, Any],
                source: str = "scenario") -> dict[str, Any]:
    """A copy of ``base`` with each dotted path of ``fields`` set (not validated)."""
    try:
        raw, _ = apply_overrides(base, [_override(p, v) for p, v in fields.items()])
    except InputError as exc:
        raise InputError([Problem(source, p.loc, "no such place in the scenario")
                          for p in exc.problems]) from None
    return raw


def _override(path: str, value: Any) -> str:
    """``path=value`` with the value in YAML flow style, as ``--set`` reads it."""
    return f"{path}={yaml.safe_dump(value, default_flow_style=True, width=2**20).strip()}"


def _relocate(exc: InputError, source: str, loc: tuple[str | int, ...]) -> list[Problem]:
    """Problems found in the scenario, reported at ``loc`` of the experiment file."""
    return [Problem(source, loc, f"{' -> '.join(map(str, p.loc)) or 'scenario'}: {p.message}")
            for p in exc.problems]


def _check_factors(spec: ExperimentSpec, base: dict[str, Any], source: str) -> list[Problem]:
    problems = []
    for i, factor in enumerate(spec.factors):
        if factor.path is None:
            continue
        for value in factor.checked_values():
            try:
                scenario_at(base, {factor.path: value})
            except InputError as exc:
                problems.extend(_path_problems(exc, source, ("factors", i, "path"), base,
                                               factor.path))
                break
    return problems


def _check_derived(spec: ExperimentSpec, base: dict[str, Any], source: str) -> list[Problem]:
    """Each derived field at the first design point (each factor's first value or low)."""
    first = {f.name: f.checked_values()[0] for f in spec.factors if f.name}
    problems = []
    for path, text in spec.derived.items():
        try:
            value = expr.evaluate(expr.parse(text), first)
        except (ArithmeticError, ValueError, TypeError) as exc:
            problems.append(Problem(source, ("derived", path),
                                    f"cannot evaluate at the first design point {first}: {exc}"))
            continue
        try:
            scenario_at(base, {path: value})
        except InputError as exc:
            problems.extend(_path_problems(exc, source, ("derived", path), base, path))
    return problems


def _path_problems(exc: InputError, source: str, loc: tuple[str | int, ...],
                   base: dict[str, Any], path: str) -> list[Problem]:
    """Why setting ``path`` failed: a missing place in the base scenario, or the value."""
    misplaced = any(p.message.startswith(("unknown field", "Field required", "no such place"))
                    for p in exc.problems)
    missing = _missing_key(base, path) if misplaced else None
    return [Problem(source, loc, missing)] if missing else _relocate(exc, source, loc)


def _missing_key(base: dict[str, Any], path: str) -> str | None:
    """What is wrong when ``path`` walks into a key the base scenario lacks."""
    node: Any = base
    walked: list[str] = []
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            break
        node = node[part]
        walked.append(part)
    else:
        return None
    where = " -> ".join(walked) or "the scenario"
    if not isinstance(node, dict) or not node:
        return f"{where} has no {path.split('.')[len(walked)]!r} to set"
    part = path.split(".")[len(walked)]
    close = difflib.get_close_matches(part, list(node), n=1, cutoff=0.5)
    return f"{where} has no {part!r}; " + (f"did you mean {close[0]!r}?" if close
                                          else f"it has {sorted(node)}")


def month_labels(scenario: Scenario) -> list[str]:
    """``YYYY-MM`` of each calendar month the horizon touches."""
    first = scenario.start_date.year * 12 + scenario.start_date.month - 1
    return [f"{(first + m) // 12:04d}-{(first + m) % 12 + 1:02d}" for m in range(scenario.months)]


def _resolve(outcome: Outcome, scenario: Scenario) -> list[Measure]:
    if outcome.channel != ALL and outcome.channel not in scenario.channels:
        close = difflib.get_close_matches(outcome.channel, list(scenario.channels), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {sorted(scenario.channels)}"
        raise FieldError(("channel",), f"unknown channel {outcome.channel!r}; {hint}")
    if outcome.target is not None and outcome.target not in _targets(scenario):
        raise FieldError(("target",), f"the scenario has no target {outcome.target!r}; "
                                      f"it has {_targets(scenario)}")
    labels = month_labels(scenario)
    fields = outcome.model_dump(exclude={"months"})
    if outcome.months == "each":
        return [Measure(months=(m,), **{**fields, "name": f"{outcome.name}_{m.replace('-', '_')}"})
                for m in labels]
    if outcome.months is None:
        return [Measure(months=tuple(labels), **fields)]
    first, _, last = outcome.months.partition("..")
    last = last or first
    for end in (first, last):
        if end not in labels:
            raise FieldError(("months",), f"{end} is outside the horizon {labels[0]}..{labels[-1]}")
    if last < first:
        raise FieldError(("months",), f"ends before it starts: {outcome.months}")
    return [Measure(months=tuple(m for m in labels if first <= m <= last), **fields)]


def _targets(scenario: Scenario) -> list[str]:
    """Names of the targets the scenario sets (as in :func:`simdomain.kpi.check_targets`)."""
    targets = scenario.targets
    return [name for name, value in [
        ("monthly_new_adds", targets.monthly_new_adds),
        ("monthly_new_members", targets.monthly_new_members),
        ("max_monthly_deletion_rate", targets.max_monthly_deletion_rate),
        ("pool_size", targets.pool_size or None),
        ("gmv", targets.gmv),
    ] if value is not None]
