"""Saved models load only from a folder the tool wrote, with matching hash and versions."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from models_support import busy, fitted_folder  # noqa: F401 - a fixture

from simdomain.errors import InputError
from simdomain.models.panel import FEATURES, simulate_panel
from simdomain.models.persist import MANIFEST_FILE, MODEL_FILE, load_models, sha256


@pytest.fixture()
def folder(fitted_folder, tmp_path):  # noqa: F811
    copy = tmp_path / "models"
    shutil.copytree(fitted_folder, copy)
    return copy


def test_round_trip(folder):
    bundle = load_models(folder)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert bundle.kind == "simulation" and manifest["kind"] == "simulation"
    assert set(bundle.models) == {"gbm", "logistic"} == set(manifest["estimators"])
    assert manifest["sha256"] == sha256(folder / MODEL_FILE)
    assert manifest["info"]["features"] == list(FEATURES)
    _, panel = simulate_panel(busy(), seed=9, days=[60])
    p = bundle.models["gbm"].predict_proba(panel[list(FEATURES)])
    assert list(p.columns) == manifest["targets"] and p.notna().all().all()


def test_a_changed_file_is_refused(folder):
    with open(folder / MODEL_FILE, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(InputError, match="SHA-256 differs from the manifest's"):
        load_models(folder)


def test_another_version_is_refused(folder):
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["simdomain_version"] = "0.0.1"
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"simdomain_version: written by '0.0.1'.*refit"):
        load_models(folder)
    manifest["simdomain_version"] = json.loads(
        (folder / MANIFEST_FILE).read_text())["simdomain_version"]


def test_a_pickle_without_a_manifest_is_refused(folder, tmp_path):
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(InputError, match="refusing to load a model without its manifest"):
        load_models(folder)
    pd.to_pickle({"any": "pickle"}, tmp_path / MODEL_FILE)
    with pytest.raises(InputError, match="missing: not a folder written by `simdomain fit`"):
        load_models(tmp_path)


@pytest.mark.parametrize("manifest, message", [
    ("{not json", "unreadable manifest"),
    ('{"format": "other"}', "expected 'simdomain-models'"),
    ('{"format": "simdomain-models", "format_version": 99}', "format_version: expected 1"),
])
def test_a_malformed_manifest_is_refused(folder, manifest, message):
    (folder / MANIFEST_FILE).write_text(manifest)
    with pytest.raises(InputError, match=message):
        load_models(folder)


def test_no_such_folder(tmp_path):
    with pytest.raises(InputError, match="no such model folder"):
        load_models(tmp_path / "absent")
