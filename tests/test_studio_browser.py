"""The studio driven in real headless Chromium (Playwright), as a strategist uses it.

Directions checked against the model: more monthly spend on a channel buys more
contacts (up to its capacity), so with the same seeds (common random numbers) the
new adds over the horizon rise; every test uses the small fixture scenario (60 days,
a few thousand people) and a few replications.
"""

from __future__ import annotations

import csv
import io
import re
import shutil

import pytest
from studio_support import MINIMAL, Studio, env_requires_browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SPEND = "channels.sms.monthly_spend_cny"
PER_WEEK = "touch_policy.one_to_one.per_week"

if not env_requires_browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (CI installs it and sets "
                    "SIMDOMAIN_REQUIRE_BROWSER)", allow_module_level=True)
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("starlette")
from playwright.sync_api import expect, sync_playwright

pytestmark = pytest.mark.slow  # about 30 s in all: a server, a browser, a dozen small runs


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    server = Studio(tmp_path_factory.mktemp("studio"), MINIMAL)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM, "chromium is required (SIMDOMAIN_REQUIRE_BROWSER is set)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def context(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 900}, accept_downloads=True)
    yield context  # one cache: Plotly.js loads once
    context.close()


@pytest.fixture
def page(context, studio):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
            and "status of 400" not in msg.text else None)  # 400: bad input, answered
    page.goto(studio.url)
    page.wait_for_selector(f"input[type=number][data-path='{SPEND}']")
    page.fill("#reps", "3")
    yield page
    page.close()
    assert errors == []


def run_and_read(page, kpi: str) -> float:
    """Press Run, wait for the result, and read the KPI's mean over the horizon."""
    before = page.get_attribute("#run-view", "data-run") or ""
    page.click("#run")
    expect(page.locator("#cancel")).to_be_enabled()
    expect(page.locator("#run-view")).to_have_attribute(  # the page's CSP allows no eval
        "data-run", re.compile(rf"^(?!{re.escape(before)}$).+"), timeout=60_000)
    return float(page.get_attribute(f"#headline tr[data-kpi={kpi}] .mean", "data-value"))


def test_more_spend_on_a_channel_brings_more_adds(page):
    base = run_and_read(page, "new_adds")
    expect(page.locator("#kpi-figures .js-plotly-plot")).to_have_count(6)  # charts drawn
    slider = page.locator(f"input[type=range][data-path='{SPEND}']")
    slider.fill("30000")  # a slider's value, as dragging it sets it
    expect(page.locator(f"input[type=number][data-path='{SPEND}']")).to_have_value("30000")
    expect(page.locator("#changes")).to_contain_text(f"{SPEND}=30000")
    more = run_and_read(page, "new_adds")
    assert more > base * 1.2
    expect(page.locator("#command")).to_contain_text(f"--set {SPEND}=30000")


def test_a_bad_value_shows_the_clis_message_beside_its_field(page):
    page.fill(f"input[type=number][data-path='{PER_WEEK}']", "9")
    message = page.locator(f".problem[data-for='{PER_WEEK}']")
    expect(message).to_have_text(f"--set {PER_WEEK}=9: touch_policy -> one_to_one -> per_week: "
                                 "Input should be less than or equal to 7 (got 9)")
    expect(page.locator("#run")).to_be_disabled()
    page.fill(f"input[type=number][data-path='{PER_WEEK}']", "3")
    expect(message).to_have_text("")
    expect(page.locator("#run")).to_be_enabled()


def test_user_text_is_shown_as_text(page):
    name = "<img src=x onerror=alert(1)>"
    page.fill("#variant-name", name)
    page.click("#keep")
    expect(page.locator("#variants b")).to_have_text(name)
    assert page.locator("#variants img").count() == 0


def test_compare_two_variants(page):
    page.locator(f"input[type=range][data-path='{SPEND}']").fill("30000")
    page.fill("#variant-name", "more_sms")
    page.click("#keep")
    page.locator(f"input[type=range][data-path='{SPEND}']").fill("5000")
    page.fill("#variant-name", "less_sms")
    page.click("#keep")
    page.click("#compare")
    row = "#compare-table tr[data-variant='{}'][data-kpi='new_adds'] .diff"
    page.wait_for_selector(row.format("more_sms"), timeout=60_000)
    more = float(page.get_attribute(row.format("more_sms"), "data-value"))
    less = float(page.get_attribute(row.format("less_sms"), "data-value"))
    assert more > 0 > less
    expect(page.locator("#diff-figures .js-plotly-plot").first).to_be_visible()
    expect(page.locator("#command")).to_contain_text("--variant more_sms")


def test_plan_and_download(page):
    page.fill("input[type=number][data-path='targets.max_monthly_deletion_rate']", "0.2")
    page.check("#verify")
    page.click("#plan")
    link = page.locator("#downloads a", has_text="plan.csv")
    link.wait_for(timeout=60_000)
    expect(page.locator("#plan-status")).to_contain_text("Plan found")
    with page.expect_download() as download:
        link.click()
    with open(download.value.path(), encoding="utf-8") as file:
        rows = list(csv.DictReader(io.StringIO(file.read())))
    assert {r["channel"] for r in rows} == {"sms"} and len(rows) >= 2
    assert all(float(r["spend_cny"]) >= 0 for r in rows)
    expect(page.locator("#plan-figure.js-plotly-plot")).to_have_count(1)
    expect(page.locator("#plan-targets")).to_contain_text("chance met (simulated)")
    expect(page.locator("#command")).to_contain_text("--verify 3")


def test_cancel_a_run(page, studio):
    page.fill("#reps", "200")  # a long run: about a minute
    page.fill("input[type=number][data-path='horizon_days']", "365")
    expect(page.locator("#run")).to_be_enabled()
    before = set((studio.out / "runs").iterdir())
    page.click("#run")
    expect(page.locator("#progress")).to_have_attribute("data-status", "running")
    expect(page.locator("#progress")).to_have_attribute("data-progress",
                                                        re.compile(r"^0\.0*[1-9]"))
    page.click("#cancel")
    expect(page.locator("#progress")).to_have_attribute("data-status", "cancelled")
    expect(page.locator("#run")).to_be_enabled()
    assert set((studio.out / "runs").iterdir()) == before


def test_two_tabs_run_at_once_without_clashing(page, context, studio):
    other = context.new_page()
    try:
        other.goto(studio.url)
        other.wait_for_selector(f"input[type=number][data-path='{SPEND}']")
        other.fill("#reps", "3")
        other.locator(f"input[type=range][data-path='{SPEND}']").fill("30000")
        expect(other.locator("#changes")).to_contain_text(f"{SPEND}=30000")
        page.click("#run")
        other.click("#run")  # while the first tab's run goes on
        for tab in (page, other):
            expect(tab.locator("#headline tr[data-kpi=new_adds]")).to_be_visible(timeout=60_000)
        ids = {tab.get_attribute("#run-view", "data-run") for tab in (page, other)}
        assert len(ids) == 2
        adds = [float(tab.get_attribute("#headline tr[data-kpi=new_adds] .mean", "data-value"))
                for tab in (page, other)]
        assert adds[1] > adds[0] * 1.2  # each tab shows its own run
    finally:
        other.close()


def test_save_a_variant_shows_its_diff_and_keeps_the_levers(page, studio):
    page.locator(f"input[type=range][data-path='{SPEND}']").fill("25000")
    page.fill("#variant-name", "more_sms")
    page.click("#save")
    expect(page.locator("#save-diff")).to_contain_text("+    monthly_spend_cny: 25000")
    expect(page.locator("#changes")).to_contain_text(f"{SPEND}=25000")
    expect(page.locator("#scenario option", has_text="more_sms")).to_have_count(1)
    assert (studio.out / "scenarios" / "more_sms.yaml").is_file()


def test_open_a_scenario_file_from_the_page(page, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.read_text().replace("horizon_days: 60", "horizon_days: -3"))
    page.set_input_files("#upload", str(bad))
    expect(page.locator("#problems")).to_contain_text(
        "upload bad.yaml: horizon_days: Input should be greater than 0 (got -3)")
    good = tmp_path / "brand x.yaml"
    good.write_text(MINIMAL.read_text())
    page.set_input_files("#upload", str(good))
    expect(page.locator("#scenario option:checked")).to_contain_text("uploads/brand_x.yaml")
    expect(page.locator("#problems")).to_have_text("")
