"""Save fitted models in a folder with a manifest; load them only after checks.

A model folder holds ``models.joblib`` (a pickle) and ``manifest.json``: the format,
the simdomain and scikit-learn versions that wrote it, what was fitted, and the SHA-256
of ``models.joblib``. :func:`load_models` refuses a folder whose manifest is missing or
malformed, whose file's hash differs, or that another simdomain or scikit-learn version
wrote (pickled models do not survive version changes reliably).

.. warning::
   Loading a pickle runs code. The hash check proves that the file is the one its
   manifest describes (not corrupted, not swapped for another file), not that whoever
   wrote the folder meant well: load only folders written by ``simdomain fit`` on a
   machine you trust.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import sklearn

from simdomain import __version__
from simdomain.errors import InputError, Problem
from simdomain.outfolder import sha256

FORMAT = "simdomain-models"
FORMAT_VERSION = 1
MODEL_FILE = "models.joblib"
MANIFEST_FILE = "manifest.json"


@dataclass
class ModelBundle:
    """What a model folder holds.

    Attributes
    ----------
    kind
        ``"simulation"`` (features of :mod:`simdomain.models.panel`, usable for a
        targeted policy) or ``"transactions"`` (features of
        :mod:`simdomain.models.transactions`).
    models
        Fitted :class:`~simdomain.models.estimators.LifecycleModels` by estimator name.
    info
        Provenance written to the manifest: scenario or file, seed, replications, ...
    """

    kind: str
    models: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def targets(self) -> list[str]:
        return list(next(iter(self.models.values())).targets_) if self.models else []


def save_models(bundle: ModelBundle, folder: str | Path) -> list[str]:
    """Write ``models.joblib`` and its ``manifest.json`` into ``folder``; return the names.

    Write into a staging folder (see :func:`simdomain.outputs.staged`) so that a model
    and its manifest only ever appear together.
    """
    folder = Path(folder)
    path = folder / MODEL_FILE
    joblib.dump(bundle, path, compress=3)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "simdomain_version": __version__,
        "sklearn_version": sklearn.__version__,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "file": MODEL_FILE,
        "sha256": sha256(path),
        "kind": bundle.kind,
        "estimators": list(bundle.models),
        "targets": bundle.targets,
        "info": bundle.info,
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return [MODEL_FILE, MANIFEST_FILE]


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a model folder, checked for form (not yet against the file)."""
    folder = Path(folder)
    where = str(folder / MANIFEST_FILE)
    if not folder.is_dir():
        raise InputError([Problem(str(folder), (), "no such model folder (expected a folder "
                                  "written by `simdomain fit`)")])
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise InputError([Problem(where, (), "missing: not a folder written by `simdomain fit`; "
                                  "refusing to load a model without its manifest")]) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError([Problem(where, (), f"unreadable manifest: {exc}")]) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError([Problem(where, ("format",), f"expected {FORMAT!r}; not a simdomain "
                                  "model folder")])
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InputError([Problem(where, ("format_version",), f"expected {FORMAT_VERSION}, got "
                                  f"{manifest.get('format_version')!r}")])
    return manifest


def load_models(folder: str | Path) -> ModelBundle:
    """Load a model folder written by :func:`save_models`, after checking it.

    Raises
    ------
    InputError
        If the manifest is missing or malformed, the file's SHA-256 differs from the
        manifest's, or the folder was written by another simdomain or scikit-learn
        version (refit the models with this one).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    where = str(folder / MANIFEST_FILE)
    for key, have in (("simdomain_version", __version__), ("sklearn_version", sklearn.__version__)):
        if manifest.get(key) != have:
            raise InputError([Problem(where, (key,), f"written by {manifest.get(key)!r}, this is "
                                      f"{have!r}; refit the models with `simdomain fit`")])
    path = folder / str(manifest.get("file", MODEL_FILE))
    if path.name != MODEL_FILE or not path.is_file():
        raise InputError([Problem(str(path), (), "missing or renamed model file")])
    if sha256(path) != manifest.get("sha256"):
        raise InputError([Problem(str(path), (), "SHA-256 differs from the manifest's: the file "
                                  "was changed or replaced; refusing to load it")])
    bundle = joblib.load(path)
    if not isinstance(bundle, ModelBundle):
        raise InputError([Problem(str(path), (), "does not hold simdomain models")])
    return bundle
