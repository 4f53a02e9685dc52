"""An experiment's folder: results that survive a crash, and the means to resume.

Layout of ``DIR``:

- ``part-000001.parquet``, ...: finished runs, one row per run x replication. Every
  file is written in a scratch folder and renamed into place
  (:func:`simdomain.outputs.staged`), so it is either complete or absent, whatever
  kills the process.
- ``experiment.resolved.yaml``, ``scenario.resolved.yaml``: what was run.
- ``manifest.json``: the experiment's fingerprint, its size, progress, and the SHA-256
  of every part file, written before the part is renamed into place; a resume checks
  every part against it and refuses a damaged one (or a damaged manifest), naming it.
- ``summary.csv`` (and ``sensitivity.csv``) once every run is done.

A folder whose manifest has another fingerprint is refused unless ``fresh`` is given;
``fresh`` deletes the files above (and nothing else in the folder). The folder is
written by one process at a time (the caller holds its lock: see
:meth:`simdomain.outfolder.OutputFolder.in_place`).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simdomain.errors import InputError, Problem
from simdomain.outfolder import sha256
from simdomain.outputs import staged

MANIFEST = "manifest.json"
SUMMARY = "summary.csv"
SENSITIVITY = "sensitivity.csv"
_PART = re.compile(r"^part-(\d{6})\.parquet$")
_OWN = re.compile(r"^(part-\d{6}\.parquet|manifest\.json|summary\.csv|sensitivity\.csv|"
                  r"experiment\.resolved\.yaml|scenario\.resolved\.yaml)$")


class ResultStore:
    """Part files, resolved inputs and manifest of one experiment folder.

    Parameters
    ----------
    out_dir
        The folder; created if missing.
    schema
        The columns of every part file (identical in every part, so the parts of any
        run order concatenate to the same table).
    """

    def __init__(self, out_dir: str | Path, schema: pa.Schema) -> None:
        self.out = Path(out_dir)
        self.schema = schema

    def open(self, fingerprint: str, files: dict[str, str], manifest: dict[str, Any], *,
             fresh: bool = False) -> None:
        """Start or resume: check the fingerprint, then write the resolved inputs.

        Raises
        ------
        InputError
            If the folder holds results of a different experiment and not ``fresh``.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        if fresh:
            for path in self.out.iterdir():
                if path.is_file() and _OWN.match(path.name):
                    path.unlink()
        for stale in self.out.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a process killed while writing
        old = read_manifest(self.out)
        if old is None and parts(self.out):
            raise _damaged(self.out / MANIFEST, "is missing but the folder holds part files")
        if old is not None and old.get("fingerprint") != fingerprint:
            raise InputError([Problem(str(self.out / MANIFEST), (), (
                f"{self.out} holds results of a different experiment "
                f"({old.get('experiment')!r}, fingerprint {str(old.get('fingerprint'))[:12]}); "
                "the experiment or its scenario changed since. Add --fresh to discard "
                "those results, or choose another --out"))])
        checked = verify_parts(self.out, old) if old is not None else {}
        with staged(self.out) as scratch:
            for name, text in files.items():
                (scratch / name).write_text(text, encoding="utf-8")
        self.update_manifest({**(old or {}), **manifest, "fingerprint": fingerprint,
                              "parts": checked})

    def update_manifest(self, fields: dict[str, Any]) -> None:
        """Merge ``fields`` into the manifest (written atomically)."""
        manifest = {**(read_manifest(self.out) or {}), **fields}
        with staged(self.out) as scratch:
            (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    def write_part(self, rows: pd.DataFrame) -> Path:
        """Write finished runs' rows as the next part file, atomically."""
        numbers = [int(m.group(1)) for p in parts(self.out) if (m := _PART.match(p.name))]
        path = self.out / f"part-{max(numbers, default=0) + 1:06d}.parquet"
        table = pa.Table.from_pandas(rows, schema=self.schema, preserve_index=False)
        table = table.replace_schema_metadata(None)  # the schema alone decides the dtypes
        with staged(self.out) as scratch:
            pq.write_table(table, scratch / path.name)
            listed = (read_manifest(self.out) or {}).get("parts", {})
            entry = {"sha256": sha256(scratch / path.name), "rows": table.num_rows}
            self.update_manifest({"parts": {**listed, path.name: entry}})
        return path  # listed before it appears: a kill in between only loses its runs


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    """The manifest of an experiment folder, or ``None`` if it has none.

    Raises
    ------
    InputError
        If the manifest is damaged (naming it, and offering ``--fresh``).
    """
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _damaged(path, f"cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("parts", {}), dict):
        raise _damaged(path, "is not an experiment manifest")
    return manifest


def verify_parts(out_dir: str | Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Check every part file against the manifest; return the manifest's entries of the
    parts present (parts listed but absent were being written when a process died).

    Raises
    ------
    InputError
        A part whose checksum differs, or one the manifest does not list (naming it,
        and offering ``--fresh``).
    """
    listed = manifest.get("parts")
    checked = {}
    for path in parts(out_dir):
        if listed is None:  # written by a version without checksums: it must read
            try:
                rows = pq.read_metadata(path).num_rows
            except (OSError, pa.ArrowException) as exc:
                raise _damaged(path, f"cannot be read ({exc})") from None
            checked[path.name] = {"sha256": sha256(path), "rows": rows}
            continue
        entry = listed.get(path.name)
        if not isinstance(entry, dict):
            raise _damaged(path, f"is not listed in {MANIFEST}")
        if sha256(path) != entry.get("sha256"):
            raise _damaged(path, f"does not match its checksum in {MANIFEST} (truncated or "
                                 "changed)")
        checked[path.name] = entry
    return checked



def _damaged(path: Path, what: str) -> InputError:
    return InputError([Problem(str(path), (), f"{what}; rerun with --fresh to start the "
                                              "experiment over, or choose another --out")])


def parts(out_dir: str | Path) -> list[Path]:
    """The part files of an experiment folder, in the order they were written."""
    out = Path(out_dir)
    return sorted(p for p in out.iterdir() if _PART.match(p.name)) if out.is_dir() else []


def finished_runs(out_dir: str | Path) -> set[int]:
    """Runs already in a part file."""
    return {int(run) for path in parts(out_dir)
            for run in _read_part(path, columns=["run"]).column("run").to_pylist()}


def _read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise _damaged(path, f"cannot be read ({exc})") from None


def read_runs(out_dir: str | Path) -> pd.DataFrame:
    """Every finished row of an experiment folder, sorted by run and replication."""
    found = parts(out_dir)
    if not found:
        raise InputError([Problem(str(out_dir), (), "holds no experiment results "
                                                    "(no part files)")])
    table = pa.concat_tables([_read_part(p) for p in found])
    return (table.to_pandas().sort_values(["run", "replication"], kind="stable")
            .reset_index(drop=True))


@dataclass
class ExperimentResults:
    """An experiment folder read back (see :func:`load_results`).

    Attributes
    ----------
    runs
        One row per run x replication: ``run, replication, seed``, a column per factor,
        a column per outcome, and ``error`` (missing unless the run failed).
    summary
        Mean and 95% interval per design point and outcome (``None`` until complete).
    sensitivity
        Sensitivity indices per outcome and factor, for sensitivity designs.
    manifest
        The experiment's name, fingerprint, size and status.
    """

    runs: pd.DataFrame
    summary: pd.DataFrame | None
    sensitivity: pd.DataFrame | None
    manifest: dict[str, Any]


def load_results(out_dir: str | Path) -> ExperimentResults:
    """Read an experiment folder written by ``simdomain experiment``.

    Raises
    ------
    InputError
        If the folder holds no results.
    """
    out = Path(out_dir)
    runs = read_runs(out)
    frames = {name: pd.read_csv(out / name) if (out / name).exists() else None
              for name in (SUMMARY, SENSITIVITY)}
    return ExperimentResults(runs, frames[SUMMARY], frames[SENSITIVITY], read_manifest(out) or {})
