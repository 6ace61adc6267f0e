"""Artifact save/load: round trip, and refusal of tampered, incomplete or incompatible artifacts."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnlib import artifact as A
from churnlib import models as M


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.choice(["x", "y"], 200)})
    y = (X["a"] + rng.normal(scale=0.5, size=200) > 0.5).astype(int).to_numpy()
    return M.make_pipeline("logreg", "none").fit(X, y), X


def save(fitted, tmp_path):
    pipe, X = fitted
    path = tmp_path / "m.joblib"
    A.save_artifact(pipe, path, threshold=0.3, risk_bands={"medium_from": 0.15, "high_from": 0.3},
                    feature_schema=[{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}],
                    id_col="user_id", metadata={"data_fingerprint": "f00", "holdout": {"auc": np.float64(0.8)}})
    return path


def test_round_trip_gives_the_same_predictions_and_metadata(fitted, tmp_path):
    path = save(fitted, tmp_path)
    loaded = A.load_artifact(tmp_path)  # the folder works too
    pipe, X = fitted
    np.testing.assert_array_equal(loaded.estimator.predict_proba(X), pipe.predict_proba(X))
    assert loaded.threshold == 0.3 and loaded.feature_names == ["a", "b"] and loaded.id_col == "user_id"
    m = loaded.manifest
    assert m["data_fingerprint"] == "f00" and m["versions"]["scikit-learn"] and len(m["sha256"]) == 64
    assert A.load_artifact(path.with_name("m.manifest.json")).threshold == 0.3


def test_a_single_changed_byte_is_refused(fitted, tmp_path):
    path = save(fitted, tmp_path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(A.ArtifactError, match="SHA-256 does not match"):
        A.load_artifact(path)


def test_a_swapped_model_file_is_refused(fitted, tmp_path):
    path = save(fitted, tmp_path)
    other = M.make_pipeline("dummy").fit(fitted[1], np.r_[np.zeros(100), np.ones(100)])
    import joblib
    joblib.dump(other, path)
    with pytest.raises(A.ArtifactError, match="modified or corrupted"):
        A.load_artifact(path)


def test_missing_or_broken_manifest_is_refused(fitted, tmp_path):
    path = save(fitted, tmp_path)
    mpath = path.with_name("m.manifest.json")
    mpath.write_text("{not json")
    with pytest.raises(A.ArtifactError, match="unreadable manifest"):
        A.load_artifact(path)
    mpath.unlink()
    with pytest.raises(A.ArtifactError, match="manifest not found"):
        A.load_artifact(path)


@pytest.mark.parametrize("field,value,message", [
    ("versions", {"scikit-learn": "0.24.2"}, "incompatible library versions"),
    ("format_version", 99, "manifest format"),
])
def test_incompatible_artifacts_are_refused(fitted, tmp_path, field, value, message):
    path = save(fitted, tmp_path)
    mpath = path.with_name("m.manifest.json")
    manifest = json.loads(mpath.read_text())
    manifest[field] = {**manifest[field], **value} if isinstance(value, dict) else value
    mpath.write_text(json.dumps(manifest))
    with pytest.raises(A.ArtifactError, match=message):
        A.load_artifact(path)
    if field == "versions":  # an explicit opt-out still verifies the hash
        assert A.load_artifact(path, check_versions=False).threshold == 0.3


def test_save_refuses_a_non_joblib_name(fitted, tmp_path):
    with pytest.raises(ValueError, match=".joblib"):
        A.save_artifact(fitted[0], tmp_path / "m.pkl", threshold=0.5, risk_bands={}, feature_schema=[], id_col="u")
