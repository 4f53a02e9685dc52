"""The studio without a browser: folders, levers, the API's guards, workers' lifetimes."""

from __future__ import annotations

import os
import signal
import time

import pandas as pd
import pytest
import yaml
from studio_support import MINIMAL, Studio, alive, wait_dead

from simdomain import cli, load_scenario
from simdomain.errors import InputError
from simdomain.studio import levers
from simdomain.studio.workspace import MAX_UPLOAD_BYTES, Workspace

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

SPEND = "channels.sms.monthly_spend_cny"


@pytest.fixture
def workspace(tmp_path):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "minimal.yaml").write_text(MINIMAL.read_text())
    twin = scenarios / "brand_twin"
    twin.mkdir()
    (twin / "scenario.yaml").write_text(MINIMAL.read_text())
    (tmp_path / "secret.yaml").write_text("name: secret\n")
    return Workspace([scenarios], tmp_path / "out")


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """An output folder of ``simdomain compare``, made before the studio starts."""
    folder = tmp_path_factory.mktemp("earlier")
    assert cli.main(["compare", str(MINIMAL), "--variant", "more", f"{SPEND}=20000",
                     "--reps", "2", "--quiet", "--out", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def studio(tmp_path_factory, earlier):
    server = Studio(tmp_path_factory.mktemp("studio"), MINIMAL, earlier)
    yield server
    server.stop()


def test_the_page_names_scenarios_by_id_and_twins_are_scenarios(workspace):
    found = {s["name"]: s for s in workspace.scenarios()}
    assert found["minimal"]["kind"] == "file" and found["brand_twin"]["kind"] == "twin"
    raw, _ = workspace.read(found["brand_twin"]["id"])
    assert raw["name"] == "minimal"
    assert "secret" not in found


@pytest.mark.parametrize("ident", ["0/../secret.yaml", "0//etc/passwd", "0/../../etc/passwd",
                                   "9/minimal.yaml", "../secret.yaml", "0/", "x/minimal.yaml",
                                   "0/sub/../../secret.yaml", "0/..\\secret.yaml"])
def test_paths_out_of_the_folders_are_refused(workspace, ident):
    with pytest.raises(InputError):
        workspace.read(ident)


def test_a_symbolic_link_out_of_the_folder_is_refused(workspace, tmp_path):
    (workspace.roots[0] / "link.yaml").symlink_to(tmp_path / "secret.yaml")
    with pytest.raises(InputError, match="refused"):
        workspace.read("0/link.yaml")


def test_uploads_are_validated_and_size_limited(workspace):
    with pytest.raises(InputError, match="larger than"):
        workspace.upload("big.yaml", "#" * (MAX_UPLOAD_BYTES + 1))
    with pytest.raises(InputError, match="invalid YAML"):
        workspace.upload("bad.yaml", "name: [unclosed")
    with pytest.raises(InputError, match="horizon_days"):
        workspace.upload("bad.yaml", MINIMAL.read_text().replace("horizon_days: 60",
                                                                  "horizon_days: -1"))
    ident = workspace.upload("../../evil name.yaml", MINIMAL.read_text())
    path = workspace.resolve(ident)
    assert path.parent == workspace.out / "uploads" and path.name == "evil_name.yaml"


def test_lever_messages_are_the_clis(workspace):
    raw, source = workspace.read("0/minimal.yaml")
    sets = ["touch_policy.one_to_one.per_week=-5"]
    problems = levers.check(raw, source, sets)
    with pytest.raises(InputError) as caught:
        load_scenario(workspace.scenario_file("0/minimal.yaml"), sets)
    assert [p["text"] for p in problems] == [str(p) for p in caught.value.problems]
    assert problems[0]["path"] == "touch_policy.one_to_one.per_week"
    paths = {lever["path"] for lever in levers.levers(raw)}
    assert {SPEND, "touch_policy.one_to_one.per_week", "campaigns.0.start",
            "referral.reward_tiers.1.gift_cny", "targets.monthly_new_members"} <= paths
    for lever in levers.levers(raw):  # every lever at its own value is valid
        assert not levers.check(raw, source, [f"{lever['path']}={lever['value']}"])


def test_a_saved_variant_differs_from_its_base_only_in_the_overrides(workspace):
    raw, _ = workspace.read("0/minimal.yaml")
    text, diff = levers.variant_yaml(raw, [f"{SPEND}=25000"])
    changed = [line for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-    monthly_spend_cny: 10000", "+    monthly_spend_cny: 25000"]
    assert yaml.safe_load(text)["channels"]["sms"]["monthly_spend_cny"] == 25000


def test_the_shown_command_reproduces_the_run(studio, tmp_path):
    status, job = studio.request("/api/jobs", {"kind": "run", "scenario": "0/minimal.yaml",
                                               "overrides": [f"{SPEND}=20000"], "reps": 2,
                                               "seed": 3})
    assert status == 200, job
    assert studio.wait(job["id"])["status"] == "done"
    argv = job["command"].split()[1:]
    out = argv.index("--out") + 1
    argv[out] = str(tmp_path / "cli")
    assert cli.main([*argv, "--quiet"]) == 0
    mine = pd.read_csv(studio.out / "runs" / job["id"] / "monthly.csv")
    pd.testing.assert_frame_equal(mine, pd.read_csv(tmp_path / "cli" / "monthly.csv"))


def test_output_folders_given_at_start_reopen(studio, earlier):
    _, runs = studio.request("/api/runs")
    given = [r for r in runs["runs"] if r["id"] == "given-0"]
    assert given and given[0]["kind"] == "compare" and given[0]["source"] == str(earlier)
    status, shown = studio.request("/api/runs/given-0")
    assert status == 200 and shown["base"] == "base"
    table = pd.read_csv(earlier / "comparison.csv")
    row = table[(table["variant"] == "more") & (table["month"] == "total")
                & (table["kpi"] == "new_adds")].iloc[0]
    mine = next(r for r in shown["table"] if r["variant"] == "more" and r["kpi"] == "new_adds")
    assert mine["diff_mean"] == pytest.approx(row["diff_mean"]) and row["diff_mean"] > 0
    status, data = studio.request("/api/runs/given-0/files/comparison.csv")
    assert status == 200 and data.decode().startswith("variant,month,kpi")
    assert studio.request("/api/runs/given-1")[0] == 400
    assert studio.request("/api/runs/given-0/files/variants")[0] == 404


def test_bad_requests_get_messages_and_the_server_stays_up(studio):
    assert studio.request("/api/jobs", {"kind": "rm -rf", "scenario": "0/minimal.yaml"})[0] == 400
    assert studio.request("/api/jobs", {"kind": "run", "scenario": "0/minimal.yaml",
                                        "reps": "many"})[0] == 400
    status, answer = studio.request("/api/jobs", {"kind": "run", "scenario": "0/minimal.yaml",
                                                  "overrides": ["horizon_days=abc"]})
    assert status == 400 and "horizon_days" in answer["problems"][0]["text"]
    assert studio.request("/api/validate", data=b"{not json",
                          headers={"Content-Type": "application/json"})[0] == 400
    assert studio.request("/api/validate", data=b"a=b",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
    big = b'{"x": "' + b"a" * (MAX_UPLOAD_BYTES + 128 * 1024) + b'"}'
    assert studio.request("/api/upload", data=big,
                          headers={"Content-Type": "application/json"})[0] == 413
    assert studio.request("/api/runs/..%2F..%2Fetc")[0] in (400, 404)
    assert studio.request("/api/runs/x/files/passwd")[0] in (400, 404)
    assert studio.request("/api/scenario?id=0/../../etc/passwd")[0] == 400
    assert studio.request("/api/validate", {"scenario": "0/minimal.yaml"},
                          headers={"Origin": "http://evil.example"})[0] == 403
    assert studio.request("/api/scenarios", headers={"Host": "evil.example"})[0] == 421
    assert studio.request("/api/scenarios")[0] == 200


def test_save_and_upload_stay_in_the_output_folder(studio):
    status, saved = studio.request("/api/save", {"scenario": "0/minimal.yaml",
                                                 "overrides": [f"{SPEND}=25000"],
                                                 "name": "../../more sms"})
    assert status == 200, saved
    path = studio.out / "scenarios" / "more_sms.yaml"
    assert saved["path"].endswith("scenarios/more_sms.yaml") and path.is_file()
    assert "+    monthly_spend_cny: 25000" in saved["diff"]
    assert load_scenario(path).channels["sms"].monthly_spend_cny == 25000
    assert any(s["id"] == saved["id"] for s in saved["scenarios"])
    status, answer = studio.request("/api/save", {"scenario": "0/minimal.yaml",
                                                  "overrides": ["horizon_days=0"], "name": "x"})
    assert status == 400 and "horizon_days" in answer["problems"][0]["text"]
    assert not (studio.out / "scenarios" / "x.yaml").exists()
    status, up = studio.request("/api/upload", {"name": "mine.yaml", "text": MINIMAL.read_text()})
    assert status == 200 and (studio.out / "uploads" / "mine.yaml").is_file()
    status, _ = studio.request(f"/api/scenario?id={up['id']}")
    assert status == 200


def test_a_token_is_needed_off_loopback(tmp_path):
    server = Studio(tmp_path, MINIMAL, extra=("--host", "0.0.0.0"))
    try:
        assert "?token=" in server.url
        token = server.url.split("token=")[1]
        server.base = server.base.replace("0.0.0.0", "127.0.0.1")
        assert server.request("/api/scenarios")[0] == 403
        assert server.request("/api/scenarios", headers={"X-Studio-Token": "wrong"})[0] == 403
        assert server.request("/api/scenarios", headers={"X-Studio-Token": token})[0] == 200
    finally:
        server.stop()


def test_cancel_leaves_nothing_and_two_jobs_do_not_clash(studio):
    slow = {"kind": "run", "scenario": "0/minimal.yaml", "reps": 200,
            "overrides": ["horizon_days=365", "campaigns=[]",
                          "targets.pool_size=[]", "targets.gmv=null"]}
    _, first = studio.request("/api/jobs", slow)
    _, second = studio.request("/api/jobs", {"kind": "run", "scenario": "0/minimal.yaml",
                                             "reps": 2})
    assert first["id"] != second["id"]
    assert studio.wait(second["id"])["status"] == "done"
    _, state = studio.request(f"/api/jobs/{first['id']}")
    assert state["status"] == "running" and state["progress"] > 0
    _, state = studio.request(f"/api/jobs/{first['id']}/cancel", {})
    assert state["status"] == "cancelled"
    runs = studio.out / "runs"
    assert not (runs / first["id"]).exists() and (runs / second["id"] / "summary.json").exists()
    time.sleep(0.5)
    assert not [p for p in runs.iterdir() if p.name.startswith(".staging")]


@pytest.mark.slow
def test_stopping_the_server_keeps_finished_runs_and_ends_the_workers(tmp_path):
    server = Studio(tmp_path, MINIMAL)
    try:
        _, done = server.request("/api/jobs", {"kind": "run", "scenario": "0/minimal.yaml",
                                               "reps": 2})
        assert server.wait(done["id"])["status"] == "done"
        server.request("/api/jobs", {
            "kind": "run", "scenario": "0/minimal.yaml", "reps": 200,
            "overrides": ["horizon_days=365", "campaigns=[]", "targets.pool_size=[]",
                          "targets.gmv=null"]})
        time.sleep(1)
        workers = server.workers()
        assert workers and all(alive(p) for p in workers)
        server.interrupt()
        assert wait_dead(workers) == []
    finally:
        server.stop()
    runs = tmp_path / "runs"
    assert (runs / done["id"] / "summary.json").exists()
    assert sorted(p.name for p in runs.iterdir()) == [done["id"]]


@pytest.mark.slow
def test_workers_die_when_the_server_is_killed(tmp_path):
    server = Studio(tmp_path, MINIMAL)
    try:
        server.request("/api/jobs", {"kind": "run", "scenario": "0/minimal.yaml", "reps": 200,
                                     "overrides": ["horizon_days=365", "campaigns=[]",
                                                   "targets.pool_size=[]", "targets.gmv=null"]})
        time.sleep(1)
        workers = server.workers()
        assert workers
        os.kill(server.process.pid, signal.SIGKILL)
        assert wait_dead(workers) == []
    finally:
        server.stop()
