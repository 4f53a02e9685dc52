"""The package's layers, read from the source: lower layers import nothing above them.

The folder tree reads as the pipeline (data -> twin -> sim/simulate -> models -> planner
-> experiments -> report), with the scenario, errors and KPI definitions beneath it.
Every ``import`` statement of every module is parsed (top level and inside functions
alike) and checked against :data:`LAYERS`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "simdomain"

# Each unit (a subpackage, or a module at the top of the package) in pipeline order: a
# unit may import the units before it, except the pairs in SEPARATE.
LAYERS = (
    "errors",
    "textio",  # reading users' text files
    "outfolder",  # writing output folders (locks, atomic swaps)
    "workers",  # worker processes that end with their parent
    "scenario",
    "kpi",
    "tables",
    "data",
    "twin",
    "sim",
    "shards",  # a population split by person, and merged
    "simulation",
    "synth",  # data bundles made by the engine or by independent processes
    "outputs",
    "compare",
    "backtest",  # runs a calibrated twin forward with simulate()
    "models",
    "planner",
    "advise",  # which test next: the planner over the twin's draws
    "experiments",
    "report",
    "studio",
)
SEPARATE = {
    # The twin's population is data the engine reads, never a module it imports.
    ("sim", "twin"),
    # The twin is fitted from the data bundle and the scenario only.
    ("twin", "tables"),
    ("data", "tables"),
}
EXCEPTIONS = {
    # simulate() builds the targeted 1:1 policy a scenario asks for from its fitted
    # models (a function-level import, so the models load only then); the engine
    # itself is handed the policy (simdomain.sim.policy).
    ("simdomain/simulation.py", "simdomain.models.targeting"),
    # The naive reference simulator (a validation tool no engine module imports) mirrors
    # simulate() and returns its result type.
    ("simdomain/sim/reference.py", "simdomain.simulation"),
}
SHELLS = {"cli", "cliutil", "__init__", "__main__"}
"""Command-line shells sit on top of their package and may import anything; no other
module may import them."""


def unit_of(module: str) -> str:
    """``simdomain.sim.steps`` -> ``sim``; ``simdomain.kpi`` -> ``kpi``."""
    return module.split(".")[1] if module.count(".") else ""


def imports(path: Path, top: Path) -> list[tuple[str, int]]:
    """Every simdomain module ``path`` (in the folder ``top`` holding the package)
    imports, with its line."""
    module = ".".join(path.relative_to(top).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:  # `from simdomain import kpi` imports a module
                sub = f"{base}.{alias.name}"
                file = top / sub.replace(".", "/")
                is_module = file.with_suffix(".py").is_file() or file.is_dir()
                found.append((sub if is_module else base, node.lineno))
    return [(name, line) for name, line in found
            if name == "simdomain" or name.startswith("simdomain.")]


def violations(path: Path, top: Path = PACKAGE.parent) -> list[str]:
    """What is wrong with the imports of the module at ``path``."""
    relative = path.relative_to(top).as_posix()
    own = unit_of(".".join(path.relative_to(top).with_suffix("").parts))
    if path.stem in SHELLS:
        return []
    out = []
    for target, line in imports(path, top):
        unit = unit_of(target)
        if unit in ("", own) or (relative, target) in EXCEPTIONS:
            continue  # the package root (its __version__) is loaded before any module
        where = f"{relative}:{line} imports {target}"
        if target.rsplit(".", 1)[-1] in SHELLS:
            out.append(f"{where}: a command-line shell")
        elif unit not in LAYERS:
            out.append(f"{where}: {unit!r} has no place in LAYERS (add it)")
        elif own not in LAYERS:
            out.append(f"{relative}: {own!r} has no place in LAYERS (add it)")
        elif LAYERS.index(unit) > LAYERS.index(own) or (own, unit) in SEPARATE:
            out.append(f"{where}: {own} may not import {unit}")
    return out


def test_lower_layers_import_nothing_above_them():
    problems = [v for path in sorted(PACKAGE.rglob("*.py")) for v in violations(path)]
    assert problems == []


def test_every_unit_has_a_place():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").is_file())}
    assert units - SHELLS <= set(LAYERS)


@pytest.mark.parametrize(("source", "expected"), [
    ("from simdomain.models.targeting import select\n", "sim may not import models"),
    ("def f():\n    import simdomain.planner.milp\n", "sim may not import planner"),
    ("from simdomain import twin\n", "sim may not import twin"),
    ("from ..report import html\n", "sim may not import report"),
    ("from simdomain.cli import main\n", "a command-line shell"),
])
def test_the_check_sees_an_import_upwards(tmp_path, source, expected):
    """The check itself: a module in sim/ that imports upwards is caught, wherever the
    import is written."""
    root = tmp_path / "simdomain"
    for folder in ("sim", "models", "planner", "twin", "report"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "models" / "targeting.py").write_text("")
    (root / "report" / "html.py").write_text("")
    (root / "cli.py").write_text("")
    bad = root / "sim" / "bad.py"
    bad.write_text(source)
    assert any(expected in v for v in violations(bad, tmp_path))
    bad.write_text("from simdomain.scenario.model import STAGES\nfrom . import steps\n")
    assert violations(bad, tmp_path) == []
