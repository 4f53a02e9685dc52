"""Synthetic brand data bundles with known truth, for tests, the tour and learning the
format: from the engine (:mod:`simdomain.synth.engine`) or from independent order
processes (:mod:`simdomain.synth.processes`), optionally with the dirt of real exports
(:mod:`simdomain.synth.messy`)."""

from __future__ import annotations

import datetime as dt

import numpy as np

from simdomain.errors import InputError, Problem
from simdomain.scenario.model import Scenario
from simdomain.sim.world import stream
from simdomain.synth.bundle import Bundle, write_bundle
from simdomain.synth.independent import synth_process
from simdomain.synth.messy import Dirt, make_messy
from simdomain.synth.people import Window, history_window
from simdomain.synth.processes import PROCESSES

PROCESS_NAMES = ("engine", *PROCESSES)

__all__ = ["PROCESS_NAMES", "Bundle", "Dirt", "Window", "history_window", "make_messy",
           "synthesize", "write_bundle"]


def synthesize(
    scenario: Scenario,
    *,
    process: str = "engine",
    seed: int = 0,
    history_days: int | None = None,
    start: dt.date | None = None,
    messy: bool = False,
    tests: bool = False,
    progress: bool | None = False,
) -> Bundle:
    """A data bundle of the history before ``scenario.start_date``, with its truth.

    Parameters
    ----------
    scenario
        The brand: its channels, spend and staff (and, for ``process="engine"``, every
        rate of the simulation).
    process
        ``"engine"`` (one seeded replication of the scenario over the history) or an
        independent order process: ``"bgnbd"``, ``"pareto"``, ``"pareto-seasonal"``,
        ``"pareto-decay"``.
    seed
        Root seed; the same seed gives the same bundle, byte for byte.
    history_days, start
        The history's length (default 730 days), or its first day; it ends the day
        before the scenario's start date.
    messy
        Add the dirt of real exports (see :func:`make_messy`), counted in truth.json.
    tests
        Add a ``tests`` file: a 1:1 frequency, a group posts and (with two contents or
        more) a content-mix test, each arm simulated by the engine with the scenario's
        touch effects (see :mod:`simdomain.synth.tests`), recorded in truth.json.
    progress
        Progress bar for the engine's simulation; ``None`` shows it on a terminal.

    Raises
    ------
    InputError
        For an unknown process, a bad history window, or a scenario that brings no
        contacts (independent processes) or makes no orders.
    """
    if process not in PROCESS_NAMES:
        raise InputError([Problem("--process", (), f"unknown process {process!r}; "
                                  f"known: {', '.join(PROCESS_NAMES)}")])
    window = history_window(scenario, history_days=history_days, start=start)
    if process == "engine":
        from simdomain.synth.engine import synth_engine  # the simulation loads only if used
        bundle = synth_engine(scenario, window, seed=seed, progress=progress)
    else:
        bundle = synth_process(scenario, PROCESSES[process], window, seed=seed)
    if bundle.orders.empty:
        raise InputError([Problem(scenario.name, (), "makes no orders over the history "
                                  f"({window.days} days): a bundle needs orders")])
    if messy:
        bundle = make_messy(bundle, stream(np.random.SeedSequence(seed), "messy"))
    if tests:
        from simdomain.synth.tests import synth_tests

        bundle.tests, bundle.truth["tests"] = synth_tests(
            scenario, window, np.random.SeedSequence(seed, spawn_key=(0x7E57,)))
    return bundle
