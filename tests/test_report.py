"""Reports: self-contained HTML whose numbers match the CSVs, rendered in a real browser."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from simdomain import cli, load_scenario, simulate
from simdomain.compare import compare
from simdomain.errors import InputError
from simdomain.outputs import staged, write_result, write_run
from simdomain.report import build_report

MINIMAL = Path(__file__).parent / "fixtures" / "minimal.yaml"
EXPERIMENT = Path(__file__).parent / "fixtures" / "experiment_tiny.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--enable-logging=stderr", "--v=0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    write_run(simulate(load_scenario(MINIMAL), seed=2, reps=3, keep_agents=False), folder)
    build_report(folder)
    return folder


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    variants = {"base": load_scenario(MINIMAL),
                "three": load_scenario(MINIMAL, ["touch_policy.one_to_one.per_week=3"])}
    comparison = compare(variants, seed=2, reps=3)
    with staged(folder) as scratch:
        comparison.table.to_csv(scratch / "comparison.csv", index=False)
        for i, (name, result) in enumerate(comparison.results.items()):
            write_result(result, scratch / "variants" / f"{i}-{name}")
    build_report(folder)
    return folder


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("experiment")
    assert cli.main(["experiment", str(EXPERIMENT), "--workers", "1", "--quiet",
                     "--out", str(folder)]) == 0
    build_report(folder)
    return folder


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plan")
    assert cli.main(["plan", str(MINIMAL), "--quiet", "--out", str(folder),
                     "--set", "targets.max_monthly_deletion_rate=0.2"]) == 0
    build_report(folder)
    return folder


FOLDERS = ["run_dir", "compare_dir", "experiment_dir", "plan_dir"]


@pytest.mark.parametrize("folder", FOLDERS)
def test_report_is_self_contained(folder, request):
    path = request.getfixturevalue(folder) / "report.html"
    page = path.read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    pngs = list((path.parent / "figures").glob("*.png"))
    assert len(pngs) == len(sources)


def test_report_numbers_match_the_summary(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    summary = json.loads((run_dir / "summary.json").read_text())
    for target in summary["targets"]:
        if target["target"] == "gmv":
            assert f"{target['mean']:,.0f}" in page
            assert f"{100 * target['probability_met']:.0f}%" in page
    members = next(k for k in summary["kpis"] if k["kpi"] == "new_members" and k["channel"] == "all")
    assert f"{members['mean']:,.0f}" in page or f"{members['mean']:,.3g}" in page


def test_report_refuses_a_folder_that_is_not_an_output(tmp_path):
    with pytest.raises(InputError, match="not a simdomain output folder"):
        build_report(tmp_path)


def render(page: Path, tmp_path: Path) -> tuple[np.ndarray, str]:
    """Screenshot ``page`` in headless Chromium; return the image and the console log."""
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), done.stderr[-2000:]
    console = "\n".join(line for line in done.stderr.splitlines() if ":CONSOLE" in line)
    return imread(shot), console


def plot_pixels(image: np.ndarray) -> float:
    """Share of pixels that are clearly coloured (plot lines, bands, bars), not grey text."""
    rgb = image[..., :3]
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    return float((saturation > 0.25).mean())


needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("SIMDOMAIN_REQUIRE_BROWSER"),
    reason="chromium is not installed (CI installs it and sets SIMDOMAIN_REQUIRE_BROWSER)")


@needs_browser
@pytest.mark.parametrize("folder", FOLDERS)
def test_report_renders_its_plots_without_console_errors(folder, request, tmp_path):
    image, console = render(request.getfixturevalue(folder) / "report.html", tmp_path)
    assert console == ""
    assert image.std() > 0.05  # not a blank page
    assert plot_pixels(image) > 0.001  # the coloured plots are there (a plain page has none)


@needs_browser
def test_the_browser_check_catches_a_broken_page(tmp_path):
    """The same checks fail on a page with a script error and no plots."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><p>text</p><script>undefinedFunction()</script></body></html>")
    image, console = render(page, tmp_path)
    assert "undefinedFunction" in console
    assert plot_pixels(image) < 1e-5
