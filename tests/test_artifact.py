"""Artifact persistence: round trip, and refusal of tampered, incomplete or incompatible artifacts."""
from __future__ import annotations

import json

import joblib
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


SCHEMA = [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}]


def save(fitted, tmp_path):
    pipe, X = fitted
    path = tmp_path / "m.joblib"
    A.save_artifact(pipe, path, threshold=0.3, risk_bands={"medium_from": 0.15, "high_from": 0.3},
                    feature_schema=SCHEMA, id_col="user_id",
                    metadata={"data_fingerprint": "f00", "holdout": {"auc": np.float64(0.8)}})
    return path


def test_round_trip_gives_the_same_predictions_and_metadata(fitted, tmp_path):
    path = save(fitted, tmp_path)
    loaded = A.read_artifact(tmp_path)  # the folder works too
    pipe, X = fitted
    assert isinstance(loaded, A.Artifact) and loaded.path == path
    np.testing.assert_array_equal(loaded.estimator.predict_proba(X), pipe.predict_proba(X))
    m = loaded.manifest
    assert m["threshold"] == 0.3 and m["risk_bands"] == {"medium_from": 0.15, "high_from": 0.3}
    assert m["feature_schema"] == SCHEMA and m["id_col"] == "user_id"
    assert m["format_version"] == A.FORMAT_VERSION and m["artifact"] == "m.joblib"
    assert m["data_fingerprint"] == "f00" and m["holdout"] == {"auc": 0.8}
    assert m["versions"]["scikit-learn"] and len(m["sha256"]) == 64
    assert A.read_artifact(path.with_name("m.manifest.json")).manifest["threshold"] == 0.3


def test_a_single_changed_byte_is_refused(fitted, tmp_path):
    path = save(fitted, tmp_path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(A.ArtifactError, match="SHA-256 does not match"):
        A.read_artifact(path)


def test_a_swapped_model_file_is_refused(fitted, tmp_path):
    path = save(fitted, tmp_path)
    other = M.make_pipeline("dummy").fit(fitted[1], np.r_[np.zeros(100), np.ones(100)])
    joblib.dump(other, path)
    with pytest.raises(A.ArtifactError, match="modified or corrupted"):
        A.read_artifact(path)


def test_missing_or_broken_manifest_is_refused(fitted, tmp_path):
    path = save(fitted, tmp_path)
    mpath = path.with_name("m.manifest.json")
    mpath.write_text("{not json")
    with pytest.raises(A.ArtifactError, match="unreadable manifest"):
        A.read_artifact(path)
    mpath.unlink()
    with pytest.raises(A.ArtifactError, match="manifest not found"):
        A.read_artifact(path)
    path.unlink()
    with pytest.raises(A.ArtifactError, match="model file not found"):
        A.read_artifact(path)


def test_a_folder_must_hold_exactly_one_artifact(fitted, tmp_path):
    with pytest.raises(A.ArtifactError, match="found 0"):
        A.read_artifact(tmp_path)
    path = save(fitted, tmp_path)
    # A .joblib without a manifest (the what-if model beside the churn model) is not an artifact.
    joblib.dump(fitted[0], tmp_path / "whatif.joblib")
    assert A.read_artifact(tmp_path).path == path
    joblib.dump(fitted[0], tmp_path / "other.joblib")
    A.manifest_path(tmp_path / "other.joblib").write_bytes(A.manifest_path(path).read_bytes())
    with pytest.raises(A.ArtifactError, match="found 2"):
        A.read_artifact(tmp_path)


@pytest.mark.parametrize("field,value,message", [
    ("versions", {"scikit-learn": "0.24.2"}, "incompatible library versions"),
    ("format_version", 1, "manifest format"),
    ("format_version", 99, "manifest format"),
    ("threshold", None, "lacks 'threshold'"),
])
def test_incompatible_artifacts_are_refused(fitted, tmp_path, field, value, message):
    path = save(fitted, tmp_path)
    mpath = path.with_name("m.manifest.json")
    manifest = json.loads(mpath.read_text())
    if value is None:
        del manifest[field]
    else:
        manifest[field] = {**manifest[field], **value} if isinstance(value, dict) else value
    mpath.write_text(json.dumps(manifest))
    with pytest.raises(A.ArtifactError, match=message):
        A.read_artifact(path)
    if field == "versions":  # an explicit opt-out still verifies the hash
        assert A.read_artifact(path, check_versions=False).manifest["threshold"] == 0.3


def test_an_incomplete_manifest_is_refused_before_unpickling(fitted, tmp_path, monkeypatch):
    path = save(fitted, tmp_path)
    mpath = path.with_name("m.manifest.json")
    manifest = json.loads(mpath.read_text())
    del manifest["feature_schema"]
    mpath.write_text(json.dumps(manifest))

    def never(*args, **kwargs):
        raise AssertionError("unpickled an unverified artifact")

    monkeypatch.setattr(A.joblib, "load", never)
    with pytest.raises(A.ArtifactError, match="lacks 'feature_schema'"):
        A.read_artifact(path)


def test_artifact_error_is_a_value_error():
    # `python -m churnlib` reports ValueErrors as bad input in one line
    assert issubclass(A.ArtifactError, ValueError)


def test_save_refuses_a_non_joblib_name(fitted, tmp_path):
    with pytest.raises(ValueError, match=".joblib"):
        A.save_artifact(fitted[0], tmp_path / "m.pkl", threshold=0.5, risk_bands={}, feature_schema=[], id_col="u")
    assert not list(tmp_path.iterdir())


def test_saving_again_replaces_both_files_and_leaves_no_temporaries(fitted, tmp_path):
    path = save(fitted, tmp_path)
    first = json.loads(path.with_name("m.manifest.json").read_text())["sha256"]
    other = M.make_pipeline("dummy").fit(fitted[1], np.r_[np.zeros(100), np.ones(100)])
    A.save_artifact(other, path, threshold=0.4, risk_bands={"medium_from": 0.2, "high_from": 0.4},
                    feature_schema=SCHEMA, id_col="user_id")
    art = A.read_artifact(path)
    assert art.manifest["sha256"] != first and art.manifest["threshold"] == 0.4
    assert type(art.estimator.steps[-1][1]).__name__ == "DummyClassifier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.joblib", "m.manifest.json"]
