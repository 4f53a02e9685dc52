"""The folders the studio may touch, and every path the page names checked against them.

The page never sends a path: it sends an id (``"0/dtc.yaml"``: a root's index and a
path inside it), which is resolved here and refused unless it stays inside that root
(``..``, absolute paths and symbolic links out of it are refused alike).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simdomain.errors import InputError, Problem
from simdomain.scenario.io import read_yaml, validate_scenario

SCENARIO_FILE = "scenario.yaml"
"""A twin is a folder holding this file."""
MAX_UPLOAD_BYTES = 256 * 1024
META = "studio.json"
"""What the studio ran, in each run's folder."""
SUFFIXES = (".yaml", ".yml")


@dataclass
class Workspace:
    """Where scenarios are read from and results are written to.

    Parameters
    ----------
    sources
        Scenario files, twin folders or folders of scenarios given at start; the page
        may read scenario files in their folders only. Output folders (of ``simdomain
        run``, ``compare`` or ``plan``) among them are listed with the past runs.
    out
        The one folder written to: ``runs/`` (one folder per run), ``scenarios/``
        (saved variants) and ``uploads/``. It is also readable.
    """

    sources: list[Path]
    out: Path
    roots: list[Path] = field(init=False)
    preferred: list[str] = field(init=False)
    outputs: list[Path] = field(init=False)

    def __post_init__(self) -> None:
        self.out = self.out.resolve()
        roots: list[Path] = []
        self.preferred = []
        self.outputs = [s.resolve() for s in self.sources if is_output(s)]
        self.sources = [s for s in self.sources if not is_output(s)]
        for source in self.sources:
            source = source.resolve()
            folder = source if source.is_dir() and not (source / SCENARIO_FILE).exists() \
                else source.parent
            if folder not in roots:
                roots.append(folder)
        roots.append(self.out)
        self.roots = roots
        for source in self.sources:
            source = source.resolve()
            if source.is_file() or (source / SCENARIO_FILE).exists():
                self.preferred.append(self.id_of(source))
        for name in ("runs", "scenarios", "uploads"):
            (self.out / name).mkdir(parents=True, exist_ok=True)

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    def id_of(self, path: Path) -> str:
        """The page's id of a path inside a root."""
        path = path.resolve()
        for i, root in enumerate(self.roots):
            if path.is_relative_to(root):
                return f"{i}/{path.relative_to(root).as_posix()}"
        raise ValueError(f"{path} is outside the studio's folders")

    def resolve(self, ident: str) -> Path:
        """The path of an id, refused unless it lies inside its root."""
        index, sep, rel = str(ident).partition("/")
        if not sep or not index.isdigit() or int(index) >= len(self.roots) or not rel:
            raise InputError([Problem("studio", (), f"unknown scenario {ident!r}")])
        root = self.roots[int(index)]
        if rel.startswith("/") or "\\" in rel or any(p in ("..", "") for p in rel.split("/")):
            raise InputError([Problem("studio", (), f"refused the path {rel!r}")])
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise InputError([Problem("studio", (), f"refused the path {rel!r}")])
        return path

    def scenario_file(self, ident: str) -> Path:
        """The YAML file of a scenario id (a file, or a twin folder's scenario.yaml)."""
        path = self.resolve(ident)
        if path.is_dir():
            path = path / SCENARIO_FILE
        if path.suffix not in SUFFIXES or not path.is_file():
            raise InputError([Problem("studio", (), f"not a scenario file: {ident!r}")])
        return path

    def scenarios(self) -> list[dict[str, str]]:
        """Scenario files and twins in the roots (not in the output folder's runs)."""
        found: dict[str, dict[str, str]] = {}
        for i, root in enumerate(self.roots):
            candidates = [root / "scenarios", root / "uploads"] if root == self.out else [root]
            for folder in candidates:
                if not folder.is_dir():
                    continue
                for path in sorted(folder.iterdir()):
                    if path.name.startswith("."):
                        continue
                    if path.is_dir() and (path / SCENARIO_FILE).is_file():
                        kind = "twin"
                    elif path.is_file() and path.suffix in SUFFIXES:
                        kind = "saved" if root == self.out else "file"
                    else:
                        continue
                    ident = self.id_of(path)
                    found[ident] = {"id": ident, "name": path.stem if kind != "twin" else path.name,
                                    "kind": kind, "label": _label(root, path, i)}
        order = {ident: n for n, ident in enumerate(self.preferred)}
        return sorted(found.values(), key=lambda s: (order.get(s["id"], len(order)), s["id"]))

    def read(self, ident: str) -> tuple[dict[str, Any], str]:
        """A scenario's raw mapping and its source name (as the CLI names it)."""
        path = self.scenario_file(ident)
        return read_yaml(path), self.display(path)

    def display(self, path: Path) -> str:
        """A path as the CLI would be given it: relative to the working folder if inside."""
        try:
            return path.relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return str(path)

    def upload(self, name: str, text: str) -> str:
        """Validate an uploaded scenario and keep it in ``uploads/``; return its id."""
        source = f"upload {Path(str(name)).name[:100] or 'scenario'}"  # shown as text only
        if len(text.encode("utf-8")) > MAX_UPLOAD_BYTES:
            raise InputError([Problem(source, (), f"the file is larger than "
                                                  f"{MAX_UPLOAD_BYTES // 1024} KiB")])
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise InputError([Problem(source, (), f"invalid YAML{where}")]) from None
        if not isinstance(raw, dict):
            raise InputError([Problem(source, (), "expected a mapping of fields")])
        validate_scenario(raw, source)
        stem = slug(Path(name).stem) or "scenario"
        path = self.out / "uploads" / f"{stem}.yaml"
        path.write_text(text, encoding="utf-8")
        return self.id_of(path)

    def save_variant(self, name: str, text: str) -> Path:
        """Write a variant's YAML into ``scenarios/`` under a safe name."""
        stem = slug(name)
        if not stem:
            raise InputError([Problem("save", ("name",), "give the variant a name "
                                                         "(letters, digits, - or _)")])
        path = self.out / "scenarios" / f"{stem}.yaml"
        tmp = path.with_name(f".{stem}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        return path

    def run_folders(self) -> list[tuple[str, Path]]:
        """Past runs, as (id, folder): output folders given at start, then the studio's
        own runs, newest first."""
        given = [(f"given-{i}", folder) for i, folder in enumerate(self.outputs)]
        own = sorted((p for p in self.runs.iterdir() if RUN_ID.fullmatch(p.name)
                      and p.is_dir()), reverse=True)
        return given + [(p.name, p) for p in own]

    def run_folder(self, run_id: str) -> Path:
        """An existing run's folder, by its id (a plain name, checked)."""
        given = re.fullmatch(r"given-([0-9]{1,4})", run_id or "")
        if given and int(given[1]) < len(self.outputs):
            return self.outputs[int(given[1])]
        if not RUN_ID.fullmatch(run_id or ""):
            raise InputError([Problem("studio", (), f"unknown run {run_id!r}")])
        folder = self.runs / run_id
        if not folder.is_dir():
            raise InputError([Problem("studio", (), f"unknown run {run_id!r}")])
        return folder


def is_output(path: Path) -> bool:
    """Whether a folder holds a run's, a comparison's or a plan's outputs."""
    return path.is_dir() and any((path / name).is_file() for name in OUTPUT_MARKERS)


OUTPUT_MARKERS = ("summary.json", "comparison.csv", "plan.json")
RUN_ID = re.compile(r"[0-9]{8}-[0-9]{6}-[a-z]+-[0-9a-f]{6}")


def new_run_id(kind: str) -> str:
    """``YYYYMMDD-HHMMSS-kind-xxxxxx``: sortable by time, unique across tabs."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{kind}-{secrets.token_hex(3)}"


def slug(text: str) -> str:
    """Letters, digits, ``-`` and ``_`` only, at most 60 characters."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(text)).strip("_")[:60]


def _label(root: Path, path: Path, index: int) -> str:
    rel = path.relative_to(root).as_posix()
    return rel if index == 0 else f"{root.name}/{rel}"
