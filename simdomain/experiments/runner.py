"""Run an experiment's design points on all cores or on a Dask cluster, resumably.

Each run (design point) simulates ``replications`` replications with its own seed (see
:mod:`simdomain.experiments.design`) in a worker: in this process (one worker), in a
pool of local processes, or on a ``dask.distributed`` cluster. Finished runs are
written to part files at least every ``checkpoint_seconds``; a rerun skips them. A run
that raises is recorded with its error and the others go on.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from simdomain import __version__
from simdomain.errors import InputError, Problem
from simdomain.experiments import expr
from simdomain.experiments.analysis import failures, sensitivity, summarize
from simdomain.experiments.design import DesignPoints, build_design
from simdomain.experiments.outcomes import Measure, measure
from simdomain.experiments.spec import SENSITIVITY_DESIGNS, Experiment, scenario_at
from simdomain.experiments.store import SENSITIVITY, SUMMARY, ResultStore, finished_runs, read_runs
from simdomain.outfolder import open_folder
from simdomain.outputs import staged
from simdomain.simulation import simulate
from simdomain.workers import DaskCluster, die_with_parent, terminate

_FLUSH_ROWS = 10_000
"""Write a part once this many rows wait, however recent the last part."""


class EngineError(RuntimeError):
    """The pool or cluster failed (a worker died); finished runs are saved."""


@dataclass(frozen=True)
class RunContext:
    """What every run of an experiment shares (sent to the workers with each task)."""

    base: dict[str, Any]
    paths: dict[str, str]
    """Factor label -> scenario path, for factors that set a field."""
    derived: dict[str, str]
    """Scenario path -> expression over named factors."""
    measures: tuple[Measure, ...]
    replications: int


@dataclass(frozen=True)
class RunTask:
    """One design point: its index, seed and factor values."""

    run: int
    seed: int
    values: dict[str, Any]


def execute_run(context: RunContext, task: RunTask) -> tuple[int, list[dict[str, float]], str | None]:
    """Simulate one design point; return its run, outcomes per replication and error.

    Never raises for a problem of the run itself (an invalid scenario, a failing
    simulation): the error is returned as text and the outcomes are empty.
    """
    try:
        fields = {path: task.values[label] for label, path in context.paths.items()}
        for path, text in context.derived.items():
            fields[path] = expr.evaluate(expr.parse(text), task.values)
        scenario = scenario_at(context.base, fields)
        result = simulate(scenario, seed=task.seed, reps=context.replications, keep_agents=False)
        return task.run, measure(result, context.measures), None
    except InputError as exc:
        return task.run, [], "invalid scenario: " + "; ".join(str(p) for p in exc.problems)
    except Exception as exc:  # noqa: BLE001 - recorded, the other runs go on
        return task.run, [], f"{type(exc).__name__}: {exc}"


@dataclass
class ExperimentReport:
    """What :func:`run_experiment` did.

    Attributes
    ----------
    out_dir
        The results folder.
    runs
        Design points in the experiment.
    resumed
        Runs found finished in ``out_dir`` and skipped.
    ran
        Runs done by this call.
    seconds
        Wall time of the runs done by this call.
    failed
        The failed runs: ``run`` and ``error``.
    notes
        Outcomes the sensitivity analysis had to skip, and why.
    files
        Files written beside the part files.
    """

    out_dir: Path
    runs: int
    resumed: int
    ran: int
    seconds: float
    failed: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def runs_per_minute(self) -> float:
        return 60.0 * self.ran / self.seconds if self.seconds > 0 else float("nan")


def run_experiment(
    experiment: Experiment,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    fresh: bool = False,
    progress: bool | None = False,
    checkpoint_seconds: float = 30.0,
) -> ExperimentReport:
    """Run every design point not yet in ``out_dir``, then write the summaries.

    Parameters
    ----------
    experiment
        From :func:`simdomain.experiments.load_experiment`.
    out_dir
        Results folder; finished runs already there are skipped.
    workers
        Local worker processes (default: the cores available); 1 runs in this process.
    scheduler
        Address of a ``dask.distributed`` scheduler (``tcp://host:port``); its workers
        run the experiment instead of local processes, and must have simdomain installed.
    fresh
        Discard the results in ``out_dir`` first (needed if the experiment changed).
    progress
        Show a progress bar (runs done, rate, ETA); ``None`` shows it on a terminal.
    checkpoint_seconds
        Write finished runs at least this often.

    Raises
    ------
    InputError
        If ``out_dir`` holds another experiment's results, or the options are wrong.
    EngineError
        If the pool or cluster fails; the finished runs are saved.
    """
    if workers is not None and workers < 1:
        raise InputError([Problem("--workers", (), f"expected at least 1, got {workers}")])
    if workers is not None and scheduler is not None:
        raise InputError([Problem("--workers", (), "applies to local runs; a Dask cluster "
                                                   "has its own workers")])
    spec = experiment.spec
    design = build_design(spec)
    points = design.table()
    remote = _Dask(scheduler) if scheduler is not None else None  # before touching out_dir
    try:
        with open_folder(out_dir, "experiment", replace=False) as folder:
            store = ResultStore(folder.in_place(), _schema(points, experiment.outcome_names))
            return _run(experiment, design, points, store, remote, workers=workers,
                        fresh=fresh, progress=progress, checkpoint_seconds=checkpoint_seconds)
    finally:
        if remote is not None:
            remote.shutdown()


def _run(experiment: Experiment, design: DesignPoints, points: pd.DataFrame, store: ResultStore,
         remote: _Dask | None, *, workers: int | None, fresh: bool, progress: bool | None,
         checkpoint_seconds: float) -> ExperimentReport:
    """Run the design points not yet in the store (the folder's lock held)."""
    spec = experiment.spec
    store.open(experiment.fingerprint(), experiment.resolved_files(), {
        "experiment": spec.name, "simdomain": __version__, "runs": len(design),
        "replications": spec.replications, "design": spec.design.kind,
        "factors": experiment.factor_names, "outcomes": experiment.outcome_names,
        "status": "running",
    }, fresh=fresh)
    done = finished_runs(store.out)
    todo = [RunTask(run, design.seeds[run], design.values[run])
            for run in range(len(design)) if run not in done]
    context = RunContext(
        base=experiment.base,
        paths={f.label: f.path for f in spec.factors if f.path is not None},
        derived=dict(spec.derived), measures=experiment.measures,
        replications=spec.replications,
    )
    start = time.monotonic()
    if todo:
        engine = remote or _local(workers, len(todo))
        with tqdm(total=len(design), initial=len(done), unit="run", desc=spec.name,
                  disable=None if progress is None else not progress) as bar:
            _drive(engine, context, todo, points, store, bar, checkpoint_seconds)
    seconds = time.monotonic() - start
    return _finish(experiment, design, store, resumed=len(done), ran=len(todo), seconds=seconds)


def _drive(engine: _Engine, context: RunContext, todo: list[RunTask], points: pd.DataFrame,
           store: ResultStore, bar: tqdm, checkpoint_seconds: float) -> None:
    """Keep the engine busy, collect finished runs and checkpoint them."""
    finished: queue.Queue[Future[Any]] = queue.Queue()
    tasks = iter(todo)
    in_flight: set[Future[Any]] = set()
    rows: list[dict[str, Any]] = []
    failed = 0
    last_write = time.monotonic()
    records = points.to_dict("records")  # run i is row i; native types keep seeds exact

    def flush() -> None:
        nonlocal last_write
        if rows:
            batch = pd.DataFrame(rows)
            rows.clear()  # before writing: an interrupted write loses runs, never repeats them
            store.write_part(batch)
        last_write = time.monotonic()

    try:
        while True:
            while len(in_flight) < engine.slots and (task := next(tasks, None)) is not None:
                future = engine.submit(context, task)
                in_flight.add(future)
                future.add_done_callback(finished.put)
            if not in_flight:
                break
            try:
                future = finished.get(timeout=checkpoint_seconds)
            except queue.Empty:
                future = None
            if future is not None:
                in_flight.discard(future)
                try:
                    run, outcomes, error = future.result()
                except Exception as exc:  # the engine, not the run, failed
                    raise EngineError(f"{type(exc).__name__}: {exc}") from exc
                rows.extend(_rows(records[run], outcomes, error, context))
                failed += error is not None
                bar.update(1)
                if failed:
                    bar.set_postfix(failed=failed)
            if len(rows) >= _FLUSH_ROWS or time.monotonic() - last_write >= checkpoint_seconds:
                flush()
        flush()
    except BaseException:
        flush()  # whatever stops us, the finished runs are kept
        engine.close(pending=in_flight)
        raise
    engine.close(pending=set())


def _rows(point: dict[str, Any], outcomes: list[dict[str, float]], error: str | None,
          context: RunContext) -> list[dict[str, Any]]:
    """The run's rows, one per replication (outcomes missing if it failed)."""
    empty = dict.fromkeys((m.name for m in context.measures), np.nan)
    return [{"run": point["run"], "replication": rep, **point,
             **(outcomes[rep] if outcomes else empty), "error": error}
            for rep in range(context.replications)]


def _schema(points: pd.DataFrame, outcomes: list[str]) -> pa.Schema:
    """Columns of the results: run, replication, seed, factors, outcomes, error."""
    fields = [pa.field("run", pa.int64()), pa.field("replication", pa.int64()),
              pa.field("seed", pa.int64())]
    for label in points.columns.drop(["run", "seed"]):
        dtype = points[label].dtype
        kind = pa.from_numpy_dtype(dtype) if isinstance(dtype, np.dtype) else pa.string()
        fields.append(pa.field(label, kind))
    fields += [pa.field(name, pa.float64()) for name in outcomes]
    return pa.schema([*fields, pa.field("error", pa.string())])


def _finish(experiment: Experiment, design: DesignPoints, store: ResultStore, *, resumed: int,
            ran: int, seconds: float) -> ExperimentReport:
    """Write summary.csv (and sensitivity.csv) and mark the manifest complete."""
    spec = experiment.spec
    runs = read_runs(store.out)
    tables = {SUMMARY: summarize(runs, experiment.factor_names, experiment.outcome_names)}
    notes: list[str] = []
    if spec.design.kind in SENSITIVITY_DESIGNS:
        tables[SENSITIVITY], notes = sensitivity(spec, design, runs, experiment.outcome_names)
    with staged(store.out) as scratch:
        for name, table in tables.items():
            table.to_csv(scratch / name, index=False)
    failed = failures(runs)
    store.update_manifest({"status": "complete", "done": len(design), "failed": len(failed)})
    return ExperimentReport(out_dir=store.out, runs=len(design), resumed=resumed, ran=ran,
                            seconds=seconds, failed=failed, notes=notes, files=list(tables))


class _Engine(Protocol):
    slots: int
    """Runs kept in flight (enough to keep every worker busy)."""

    def submit(self, context: RunContext, task: RunTask) -> Future[Any]: ...

    def close(self, pending: set[Future[Any]]) -> None:
        """Release the workers, cancelling the ``pending`` runs."""


def _local(workers: int | None, runs: int) -> _Engine:
    count = min(workers or _cores(), runs)
    return _Inline() if count == 1 else _Processes(count)


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Inline:
    """Runs each task in this process as it is submitted."""

    slots = 1

    def submit(self, context: RunContext, task: RunTask) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(execute_run(context, task))
        return future

    def close(self, pending: set[Future[Any]]) -> None:
        """Nothing to release."""


class _Processes:
    """A pool of fresh (spawned) local processes."""

    def __init__(self, workers: int) -> None:
        self.slots = 2 * workers
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=die_with_parent, initargs=(os.getpid(),))

    def submit(self, context: RunContext, task: RunTask) -> Future[Any]:
        return self.pool.submit(execute_run, context, task)

    def close(self, pending: set[Future[Any]]) -> None:
        """Wait for the workers; if runs are pending (Ctrl-C, an error), stop them now."""
        if not pending:
            self.pool.shutdown(wait=True)
            return
        terminate(self.pool)


class _Dask:
    """The workers of a ``dask.distributed`` cluster."""

    def __init__(self, address: str) -> None:
        cluster = DaskCluster(address)
        self.client = cluster.client
        self.slots = 2 * cluster.workers

    def submit(self, context: RunContext, task: RunTask) -> Any:
        return self.client.submit(execute_run, context, task, pure=False)

    def close(self, pending: set[Any]) -> None:
        """Cancel the ``pending`` runs (the client stays open until :meth:`shutdown`)."""
        if pending:
            self.client.cancel(list(pending))

    def shutdown(self) -> None:
        self.client.close()
