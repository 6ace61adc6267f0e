"""ChurnModel: one object owning schema checks, calibration, threshold and bands; CalibratedClassifier's contract."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from churnlib import evaluation as ev
from churnlib import models as M
from churnlib import thresholds as th
from churnlib.artifact import ArtifactError
from churnlib.calibration import CalibratedClassifier, Calibrator
from churnlib.model import ARTIFACT_NAME, ChurnModel, feature_schema


def table(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Days since the last login drive churn; songs and the plan are noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "days_since_last_login": rng.exponential(5, n),
        "songs_7d": rng.poisson(30, n).astype(float),
        "plan": rng.choice(["free", "paid"], n).astype(object),
    })
    X.loc[rng.random(n) < 0.1, "songs_7d"] = np.nan
    y = (X["days_since_last_login"] + rng.normal(0, 1.5, n) > 6).astype(int).to_numpy()
    return X, y


@pytest.fixture(scope="module")
def data():
    return table()


@pytest.fixture(scope="module")
def model(data):
    X, y = data
    return ChurnModel.fit(M.make_pipeline("logreg"), X, y, calibration="sigmoid", id_col="user_id",
                          info={"data_fingerprint": "abc123", "holdout": {"roc_auc": {"value": 0.8, "low": 0.7,
                                                                                      "high": 0.9}}})


@pytest.fixture()
def saved(model, tmp_path):
    model.save(tmp_path)
    return tmp_path


def test_import_from_the_package():
    import churnlib
    from churnlib import ChurnModel as Public

    assert Public is ChurnModel and "ChurnModel" in churnlib.__all__
    # the lazy attribute keeps `import churnlib.files` free of scikit-learn
    code = "import sys, churnlib, churnlib.files; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_feature_schema_records_kinds_medians_ranges_and_categories(data):
    X, _ = data
    schema = {f["name"]: f for f in feature_schema(X)}
    assert [f["name"] for f in feature_schema(X)] == list(X.columns)
    days = schema["days_since_last_login"]
    assert days["kind"] == "numeric" and days["dtype"] == "float64"
    assert days["median"] == pytest.approx(X["days_since_last_login"].median())
    assert (days["min"], days["max"]) == (X["days_since_last_login"].min(), X["days_since_last_login"].max())
    assert schema["songs_7d"]["median"] == pytest.approx(X["songs_7d"].median())  # missing values left out
    assert schema["plan"] == {"name": "plan", "kind": "categorical", "dtype": str(X["plan"].dtype), "n_categories": 2,
                              "categories": ["free", "paid"]}
    empty = feature_schema(pd.DataFrame({"x": [np.nan, np.nan]}))[0]
    assert empty["median"] is None and empty["min"] is None


def test_round_trip_keeps_probabilities_threshold_bands_schema_and_info(model, data, saved):
    X, _ = data
    loaded = ChurnModel.load(saved)  # the folder; the .joblib and the manifest work too
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.threshold == model.threshold and loaded.bands == model.bands
    assert loaded.schema == model.schema and loaded.typical == model.typical
    assert loaded.id_col == "user_id" and loaded.calibration == "sigmoid" and loaded.feature_names == list(X.columns)
    assert loaded.info["data_fingerprint"] == "abc123"
    assert loaded.info["holdout"]["roc_auc"] == {"value": 0.8, "low": 0.7, "high": 0.9}
    assert loaded.info["calibration"] == "sigmoid" and loaded.info["threshold_rule"] == "f1"
    assert loaded.info["versions"]["scikit-learn"] and len(loaded.info["sha256"]) == 64
    assert loaded.version == loaded.info["sha256"][:12] and model.version == loaded.version
    assert ChurnModel.load(saved / ARTIFACT_NAME).threshold == model.threshold
    assert ChurnModel.load(saved / "churn_model.manifest.json").threshold == model.threshold
    assert "sigmoid calibration" in repr(loaded) and f"{model.threshold:.3f}" in loaded.describe()


def test_saving_a_loaded_model_again_round_trips(saved, data, tmp_path):
    X, _ = data
    first = ChurnModel.load(saved)
    first.save(tmp_path / "again" / "m.joblib", info={"note": "copied"})
    second = ChurnModel.load(tmp_path / "again" / "m.joblib")
    np.testing.assert_array_equal(second.predict_proba(X), first.predict_proba(X))
    assert second.info["note"] == "copied" and second.info["data_fingerprint"] == "abc123"
    assert second.schema == first.schema and second.bands == first.bands


def test_load_refuses_a_tampered_file(saved):
    art = saved / ARTIFACT_NAME
    raw = bytearray(art.read_bytes())
    raw[len(raw) // 3] ^= 0x04
    art.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="SHA-256"):
        ChurnModel.load(saved)


def test_load_refuses_an_edited_threshold_less_manifest(saved):
    mpath = saved / "churn_model.manifest.json"
    manifest = json.loads(mpath.read_text())
    del manifest["risk_bands"]
    mpath.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="risk_bands"):
        ChurnModel.load(saved)


def test_predict_and_risk_band_follow_threshold_and_bands(model, data):
    X, _ = data
    p = model.churn_probability(X)
    np.testing.assert_array_equal(model.predict_proba(X)[:, 1], p)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    assert 0 < model.threshold < 1 and model.bands.high_from == model.threshold
    np.testing.assert_array_equal(model.predict(X), (p >= model.threshold).astype(int))
    band = model.risk_band(X)
    expect = np.where(p >= model.bands.high_from, "high", np.where(p >= model.bands.medium_from, "medium", "low"))
    np.testing.assert_array_equal(band, expect)
    assert set(band) == {"low", "medium", "high"}
    np.testing.assert_array_equal(model.risk_band(proba=p), band)
    assert ((band == "high") == (model.predict(X) == 1)).all()


def test_prepare_names_the_missing_column_and_the_non_numeric_value(model, data):
    X, _ = data
    with pytest.raises(ValueError, match="songs_7d"):
        model.prepare(X.drop(columns=["songs_7d"]))
    bad = X.head(5).astype({"days_since_last_login": object})
    bad.loc[bad.index[2], "days_since_last_login"] = "seven"
    with pytest.raises(ValueError, match="'days_since_last_login' must be numeric; e.g. 'seven'"):
        model.prepare(bad)
    with pytest.raises(ValueError, match="days_since_last_login"):
        model.predict(bad)


def test_prepare_orders_columns_coerces_text_numbers_and_leaves_the_input_alone(model, data):
    X, _ = data
    frame = X.head(20)[["plan", "songs_7d", "days_since_last_login"]].assign(user_id=range(20), extra="x")
    frame["songs_7d"] = frame["songs_7d"].map(lambda v: "" if pd.isna(v) else str(v)).astype(object)
    before = frame.copy()
    prepared = model.prepare(frame)
    assert list(prepared.columns) == model.feature_names
    assert pd.api.types.is_numeric_dtype(prepared["songs_7d"])
    assert prepared["songs_7d"].isna().sum() == X.head(20)["songs_7d"].isna().sum()  # "" is missing
    pd.testing.assert_frame_equal(frame, before)
    np.testing.assert_allclose(model.churn_probability(frame), model.churn_probability(X.head(20)))


def test_prepare_reads_category_codes_given_as_numbers(data):
    X, y = data
    codes = X.assign(plan=X["plan"].map({"free": "10", "paid": "20"}))
    m = ChurnModel.fit(M.make_pipeline("logreg"), codes, y)
    as_float = codes.assign(plan=codes["plan"].astype(float))  # a CSV column of codes with gaps reads as floats
    as_float.loc[as_float.index[:5], "plan"] = np.nan
    expect = codes.astype({"plan": object})
    expect.loc[expect.index[:5], "plan"] = np.nan
    assert m.prepare(as_float)["plan"].dropna().isin(["10", "20"]).all()
    np.testing.assert_allclose(m.churn_probability(as_float), m.churn_probability(expect))
    np.testing.assert_allclose(m.churn_probability(codes.assign(plan=codes["plan"].astype(int))),
                               m.churn_probability(codes))


def test_explain_gives_three_reasons_in_plain_words(model, data):
    X, _ = data
    why = model.explain(X.head(60))
    assert list(why.columns) == ["reason_1", "reason_2", "reason_3", "feature_1", "feature_2", "feature_3"]
    assert list(why.index) == list(X.head(60).index)
    texts = why[["reason_1", "reason_2", "reason_3"]].stack().dropna()
    assert len(texts) and texts.str.endswith("(raises risk)").all()
    assert not texts.str.contains("_").any()  # plain words: "days since last login", not the column name
    far = X.head(60)["days_since_last_login"] > 12  # the driver far above its median leads
    assert far.any() and why.loc[far, "feature_1"].eq("days_since_last_login").all()
    assert why.loc[far, "reason_1"].str.startswith("days since last login: ").all()
    assert why.loc[far, "reason_1"].str.contains(", typical ").all()  # against the training median
    shap = model.shap(X.head(60))
    assert shap.calibrated and shap.typical == model.typical and model.explainer_route == "linear"


def test_fit_without_calibration_thresholds_at_the_f1_of_its_raw_oof(data):
    X, y = data
    pipe = M.make_pipeline("logreg")
    m = ChurnModel.fit(pipe, X, y, calibration=None, n_splits=3, seed=1)
    raw = ev.oof_predict(pipe, X, y, ev.cv_splits(y, None, 3, 1, 1))[0]
    np.testing.assert_allclose(m.oof_proba, raw)
    assert m.calibration is None and m.estimator is m.pipeline and m.info["calibration"] is None
    assert m.threshold == th.f1_threshold(y, m.oof_proba)
    np.testing.assert_allclose(m.churn_probability(X), clone(pipe).fit(X, y).predict_proba(X)[:, 1])
    assert not hasattr(pipe, "classes_")  # the given pipeline is cloned, never fitted


def test_fit_with_sigmoid_calibrates_oof_and_thresholds_on_the_calibrated_values(data):
    X, y = data
    pipe = M.make_pipeline("logreg")
    m = ChurnModel.fit(pipe, X, y, calibration="sigmoid", n_splits=3, seed=1)
    raw = ev.oof_predict(pipe, X, y, ev.cv_splits(y, None, 3, 1, 1))[0]
    cal = Calibrator("sigmoid").fit(raw, y)
    np.testing.assert_allclose(m.oof_proba, cal.transform(raw))
    assert isinstance(m.estimator, CalibratedClassifier) and m.calibration == "sigmoid"
    assert m.threshold == th.f1_threshold(y, m.oof_proba)
    uncal = clone(pipe).fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_allclose(m.churn_probability(X), cal.transform(uncal))


def test_fit_with_user_groups_keeps_a_users_rows_in_one_fold(data):
    X, y = data
    groups = np.repeat(np.arange(len(y) // 3), 3)
    m = ChurnModel.fit(M.make_pipeline("logreg"), X, y, groups=groups, calibration=None, seed=2)
    raw = ev.oof_predict(M.make_pipeline("logreg"), X, y, ev.cv_splits(y, groups, 3, 1, 2))[0]
    np.testing.assert_allclose(m.oof_proba, raw)


def configuration(pipe) -> list[tuple[str, str, dict]]:
    """Each step's name, class and plain parameters (what a refit must keep)."""
    plain = (int, float, str, bool, type(None))
    return [(name, type(step).__name__, {k: v for k, v in step.get_params(deep=False).items() if isinstance(v, plain)})
            for name, step in pipe.steps]


def test_refit_keeps_calibration_and_configuration_and_learns_the_new_rows(data):
    X, y = data
    model = ChurnModel.fit(M.make_pipeline("logreg").set_params(model__C=0.05), X, y, calibration="sigmoid",
                           id_col="user_id", info={"model": {"model": "logreg", "strategy": "none"}})
    before = model.churn_probability(X)
    X2, y2 = table(n=250, seed=9)
    challenger = model.refit(X2.assign(user_id=range(250), extra=1), y2)
    assert challenger is not model and challenger.calibration == model.calibration == "sigmoid"
    assert challenger.feature_names == model.feature_names and challenger.id_col == model.id_col
    assert configuration(challenger.pipeline) == configuration(model.pipeline)
    assert challenger.pipeline.named_steps["model"].C == 0.05 and challenger.pipeline is not model.pipeline
    assert challenger.info["model"] == model.info["model"]
    assert not np.allclose(challenger.churn_probability(X), before)  # fitted on other rows
    np.testing.assert_array_equal(model.churn_probability(X), before)  # the champion is unchanged
    assert challenger.threshold == th.f1_threshold(y2, challenger.oof_proba)
    assert challenger.schema[0]["median"] == pytest.approx(X2["days_since_last_login"].median())
    assert challenger.info["refit_of"] is None  # never saved: no hash to name it by
    plain = ChurnModel.fit(M.make_pipeline("logreg"), X, y, calibration=None).refit(X2, y2)
    assert plain.calibration is None


def test_refit_of_a_loaded_model_names_its_parent(saved):
    loaded = ChurnModel.load(saved)
    X2, y2 = table(n=200, seed=11)
    challenger = loaded.refit(X2, y2)
    assert challenger.info["refit_of"] == loaded.info["sha256"] and challenger.calibration == "sigmoid"


def test_set_threads_changes_no_output(model, data):
    X, _ = data
    before = model.churn_probability(X)
    model.set_threads(2)
    np.testing.assert_array_equal(model.churn_probability(X), before)
    model.set_threads(1)


# --------------------------------------------------------------------------------------------
# CalibratedClassifier: the scikit-learn estimator contract
# --------------------------------------------------------------------------------------------

def test_calibrated_classifier_init_stores_parameters_only_and_clones():
    pipe = M.make_pipeline("logreg")
    cc = CalibratedClassifier(pipe, "isotonic", cv=4)
    assert cc.get_params(deep=False) == {"estimator": pipe, "method": "isotonic", "cv": 4}
    assert not [a for a in vars(cc) if a.endswith("_")]  # nothing fitted in __init__
    twin = clone(cc)
    assert twin is not cc and twin.method == "isotonic" and twin.cv == 4 and twin.estimator is not pipe
    assert CalibratedClassifier().get_params(deep=False) == {"estimator": None, "method": "sigmoid", "cv": 5}


def test_an_unfitted_calibrated_classifier_refuses_to_predict(data):
    X, _ = data
    with pytest.raises(NotFittedError):
        CalibratedClassifier(M.make_pipeline("logreg")).predict_proba(X)
    with pytest.raises(NotFittedError):
        CalibratedClassifier(M.make_pipeline("logreg")).predict(X)
    with pytest.raises(NotFittedError):
        Calibrator("isotonic").transform([0.2, 0.4])


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_fit_with_oof_proba_equals_the_calibrator_on_those_probabilities(method, data):
    X, y = data
    pipe = M.make_pipeline("logreg")
    oof = cross_val_predict(clone(pipe), X, y, cv=StratifiedKFold(3), method="predict_proba")[:, 1]
    cc = CalibratedClassifier(pipe, method)
    assert cc.fit(X, y, oof_proba=oof) is cc
    cal = Calibrator(method).fit(oof, y)
    grid = np.linspace(0.01, 0.99, 25)
    np.testing.assert_allclose(cc.calibrator_.transform(grid), cal.transform(grid))
    raw = clone(pipe).fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_allclose(cc.predict_proba(X)[:, 1], cal.transform(raw))
    np.testing.assert_allclose(cc.predict_proba(X).sum(axis=1), 1.0)
    np.testing.assert_array_equal(cc.predict(X), (cc.predict_proba(X)[:, 1] >= 0.5).astype(int))
    assert list(cc.classes_) == [0, 1] and not hasattr(pipe, "classes_")
    # repeats of out-of-fold probabilities are averaged
    twice = CalibratedClassifier(pipe, method).fit(X, y, oof_proba=np.vstack([oof, oof]))
    np.testing.assert_allclose(twice.predict_proba(X), cc.predict_proba(X))


def test_fit_without_oof_proba_computes_them_with_cv(data):
    X, y = data
    pipe = M.make_pipeline("logreg")
    cc = CalibratedClassifier(pipe, "sigmoid", cv=StratifiedKFold(3)).fit(X, y)
    oof = cross_val_predict(clone(pipe), X, y, cv=StratifiedKFold(3), method="predict_proba")[:, 1]
    grid = np.linspace(0.01, 0.99, 25)
    np.testing.assert_allclose(cc.calibrator_.transform(grid), Calibrator("sigmoid").fit(oof, y).transform(grid))


def test_calibration_refuses_bad_methods_and_misaligned_probabilities(data):
    X, y = data
    with pytest.raises(ValueError, match="rows"):
        CalibratedClassifier(M.make_pipeline("logreg")).fit(X, y, oof_proba=np.full(len(y) - 1, 0.5))
    with pytest.raises(ValueError, match="calibration method"):
        Calibrator("beta").fit(np.full(len(y), 0.5), y)


def test_calibration_maps_are_monotone(data):
    X, y = data
    oof = cross_val_predict(M.make_pipeline("logreg"), X, y, cv=3, method="predict_proba")[:, 1]
    grid = np.linspace(0, 1, 101)
    for method in ("sigmoid", "isotonic"):
        out = Calibrator(method).fit(oof, y).transform(grid)
        assert (np.diff(out) >= -1e-12).all() and out.min() >= 0 and out.max() <= 1
