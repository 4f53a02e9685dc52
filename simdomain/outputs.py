"""Write results to a folder without ever leaving it half-written.

Whole folders are written through :mod:`simdomain.outfolder` (checked, locked, swapped
in at once); :func:`staged` places single files in a folder written in place (an
experiment's, under its lock).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from simdomain.outfolder import open_folder
from simdomain.scenario.io import dump_scenario
from simdomain.simulation import SimulationResult


@contextmanager
def staged(out_dir: str | Path) -> Iterator[Path]:
    """A scratch folder whose files move into ``out_dir`` only if the block succeeds.

    For folders written in place under :meth:`simdomain.outfolder.OutputFolder.in_place`:
    each file is renamed into place whole. Files already in ``out_dir`` with other
    names are left alone; an interrupted block leaves ``out_dir`` as it was.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        yield scratch
        for path in sorted(scratch.iterdir()):
            target = out / path.name
            if path.is_dir() and target.is_dir():
                shutil.rmtree(target)
            os.replace(path, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_result(result: SimulationResult, folder: Path, *, agents: bool = False) -> list[str]:
    """Write a result's frames, summary and resolved scenario into ``folder``."""
    writers: dict[str, Callable[[Path], None]] = {
        "daily.csv": lambda p: result.daily.to_csv(p, index=False),
        "channels.csv": lambda p: result.channels.to_csv(p, index=False),
        "monthly.csv": lambda p: result.monthly.to_csv(p, index=False),
        "targets.csv": lambda p: result.targets.to_csv(p, index=False),
        "summary.json": lambda p: p.write_text(json.dumps(result.summary(), indent=2) + "\n"),
        "scenario.resolved.yaml": lambda p: p.write_text(dump_scenario(result.scenario)),
    }
    if agents and result.agents is not None:
        writers["agents.parquet"] = lambda p: result.agents.to_parquet(p, index=False)
    folder.mkdir(parents=True, exist_ok=True)
    for name, write in writers.items():
        write(folder / name)
    return list(writers)


def write_run(result: SimulationResult, out_dir: str | Path, *, agents: bool = False) -> list[str]:
    """Write a run's outputs to ``out_dir`` all at once; return the file names.

    ``out_dir`` then holds this run's outputs only (see :func:`simdomain.outfolder.open_folder`).
    """
    with open_folder(out_dir, "run") as folder, folder.stage() as scratch:
        return write_result(result, scratch, agents=agents)
