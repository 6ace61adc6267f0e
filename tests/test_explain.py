"""SHAP explanations of the final model: additivity, a planted driver, one-hot mapping, reasons."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from churnlib import evaluation as ev  # noqa: E402
from churnlib import explain as E  # noqa: E402
from churnlib import models as M  # noqa: E402
from churnlib import thresholds as th  # noqa: E402
from churnlib.calibration import CalibratedClassifier  # noqa: E402
from churnlib.model import ChurnModel, feature_schema  # noqa: E402


def planted(n: int = 300, seed: int = 0, sign: float = 1.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Only ``signal`` drives the label; the other columns (one with gaps, one categorical) are noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    X = pd.DataFrame({
        "signal": signal,
        "noise_a": rng.normal(size=n),
        "noise_gaps": np.where(rng.random(n) < 0.15, np.nan, rng.normal(size=n)),
        "plan": rng.choice(["free", "paid", "family"], size=n).astype(object),
    })
    y = (sign * signal + 0.3 * rng.normal(size=n) > 0.6).astype(int)
    return X, y


def margin(pipe, X: pd.DataFrame) -> np.ndarray:
    """The model step's raw output (log-odds) on the preprocessed rows, computed independently."""
    pre, final = E._parts(pipe)
    Xt = X
    for step in pre:
        Xt = step.transform(Xt)
    Xt = np.asarray(Xt, dtype=float)
    kind = type(final).__name__
    if kind == "LGBMClassifier":
        return final.predict(Xt, raw_score=True)
    if kind == "XGBClassifier":
        return final.predict(Xt, output_margin=True)
    return final.decision_function(Xt)


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = M.make_pipeline(name, "none", seed=0).fit(X, y)
        return cache[name]
    return get


@pytest.mark.parametrize("name", ["lightgbm", "xgboost", "hist_gb", "logreg"])
def test_shap_values_add_up_to_the_model_margin(name, data, fitted):
    X, _ = data
    expl = E.explain_model(fitted(name), X.head(12))
    assert expl.output == "log-odds" and expl.values.shape == (12, expl.data.shape[1])
    np.testing.assert_allclose(expl.margin(), margin(fitted(name), X.head(12)), atol=1e-5)


@pytest.mark.parametrize("name", ["random_forest", "extra_trees", "knn"])
def test_probability_explainers_add_up_to_the_probability(name, data, fitted):
    X, _ = data
    expl = E.explain_model(fitted(name), X.head(6), seed=1)
    assert expl.output == "probability"
    np.testing.assert_allclose(expl.margin(), fitted(name).predict_proba(X.head(6))[:, 1], atol=1e-6)


@pytest.mark.parametrize("name", ["lightgbm", "logreg", "random_forest"])
def test_the_planted_feature_leads_globally_and_in_high_risk_reasons(name, data, fitted):
    X, y = data
    pipe = fitted(name)
    expl = E.explain_model(pipe, X)
    imp = E.global_importance(expl)
    assert imp["feature"].iloc[0] == "signal"
    assert imp["mean_abs_shap"].iloc[0] > 3 * imp["mean_abs_shap"].iloc[1]
    assert imp.loc[0, "direction"] == "higher raises risk"
    p = pipe.predict_proba(X)[:, 1]
    high = p >= np.quantile(p, 0.9)
    reasons = E.top_reasons(expl, k=3)
    assert (reasons.loc[high, "feature_1"] == "signal").all()
    assert reasons.loc[high, "reason_1"].str.startswith("signal: ").all()


def test_direction_follows_the_sign_of_the_effect():
    X, y = planted(sign=-1.0, seed=3)
    expl = E.explain_model(M.make_pipeline("logreg").fit(X, y), X)
    imp = E.global_importance(expl).set_index("feature")
    assert imp.loc["signal", "direction"] == "higher lowers risk"
    assert imp.loc["plan", "direction"] == "mixed"  # a category has no "higher"


def test_one_hot_columns_and_missing_flags_map_back_to_their_feature(data, fitted):
    X, _ = data
    expl = E.explain_model(fitted("logreg"), X.head(20))
    mapping = dict(zip(expl.feature_names, expl.original))
    onehot = [n for n in expl.feature_names if n.startswith("plan_")]
    assert len(onehot) == 3 and {mapping[n] for n in onehot} == {"plan"}
    assert mapping["missingindicator_noise_gaps"] == "noise_gaps"
    assert expl.features == list(X.columns)
    by = expl.by_feature()
    cols = [i for i, o in enumerate(expl.original) if o == "plan"]
    np.testing.assert_allclose(by["plan"], expl.values[:, cols].sum(axis=1))
    np.testing.assert_allclose(by.sum(axis=1), expl.values.sum(axis=1))


def test_original_feature_prefers_the_longest_name():
    originals = ["os", "os_version", "state"]
    assert E._original_feature("os_version_14", originals) == "os_version"
    assert E._original_feature("os_Linux", originals) == "os"
    assert E._original_feature("cat__state_CA", originals) == "state"


@pytest.mark.parametrize("name", ["lightgbm", "logreg", "knn"])
def test_reasons_only_list_risk_raising_features_strongest_first(name, data, fitted):
    X, _ = data
    expl = E.explain_model(fitted(name), X.head(40), seed=0)
    by = expl.by_feature()
    reasons = E.top_reasons(expl, k=3)
    for i in by.index:
        positive = by.loc[i][by.loc[i] > 0].sort_values(ascending=False)
        listed = [f for f in reasons.loc[i, ["feature_1", "feature_2", "feature_3"]] if pd.notna(f)]
        assert listed == list(positive.index[:3])  # only risk-raising, strongest first, up to three
        texts = [t for t in reasons.loc[i, ["reason_1", "reason_2", "reason_3"]] if pd.notna(t)]
        assert len(texts) == len(listed) and all(t.endswith("(raises risk)") for t in texts)


def test_fewer_raising_features_leave_empty_reasons():
    # one feature only: a user whose value lowers the risk has no reason at all
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"signal": rng.normal(size=200)})
    y = (X["signal"] > 0).astype(int).to_numpy()
    expl = E.explain_model(M.make_pipeline("logreg").fit(X, y), X)
    reasons = E.top_reasons(expl, k=3)
    low = expl.by_feature()["signal"] < 0
    assert reasons.loc[low, ["reason_1", "reason_2", "reason_3"]].isna().all().all()
    assert reasons.loc[~low, "reason_1"].notna().all() and reasons["reason_2"].isna().all()


@pytest.mark.parametrize("name", M.MODELS)
def test_every_model_family_is_explained(name):
    X, y = planted(n=120, seed=5)
    pipe = M.make_pipeline(name, "none", seed=0).fit(X, y)
    expl = E.explain_model(pipe, X.head(5), seed=0)
    assert expl.values.shape[0] == 5 and np.isfinite(expl.values).all()
    reasons = E.top_reasons(expl)
    route = {"dummy": "constant", "logreg": "linear", "knn": "agnostic"}.get(name, "tree")
    assert E.explainer_route(pipe) == route
    if name == "dummy":
        assert expl.message == E.CONSTANT_MESSAGE and "constant" in expl.method
        assert (expl.values == 0).all() and reasons[["reason_1", "reason_2", "reason_3"]].isna().all().all()
        assert E.global_importance(expl)["mean_abs_shap"].eq(0).all()
    else:
        assert expl.message is None and reasons["reason_1"].notna().any()


def test_samplers_are_skipped_and_calibration_is_seen_through(data):
    X, y = data
    pipe = M.make_pipeline("lightgbm", "smote", seed=0).fit(X, y)
    assert "resample" in pipe.named_steps
    expl = E.explain_model(pipe, X.head(10))
    np.testing.assert_allclose(expl.margin(), margin(pipe, X.head(10)), atol=1e-5)
    oof = ev.oof_predict(pipe, X, y, ev.cv_splits(y, None, 3, 1, 0))[0]
    cal = CalibratedClassifier(pipe, "isotonic").fit(X, y, oof_proba=oof)
    model = ChurnModel(cal, threshold=0.5, schema=feature_schema(X))
    wrapped = model.shap(X.head(10))
    assert wrapped.calibrated and not expl.calibrated
    # the calibration map is monotone: the explanation is of the pipeline inside it
    inner = E.explain_model(model.pipeline, X.head(10))
    np.testing.assert_array_equal(wrapped.values, inner.values)
    np.testing.assert_allclose(wrapped.margin(), margin(model.pipeline, X.head(10)), atol=1e-5)
    np.testing.assert_allclose(wrapped.values, expl.values, atol=1e-6)  # the same fit as `pipe`
    # the calibrated probability ranks the users as the explained margin does
    order = np.argsort(wrapped.margin(), kind="stable")
    assert (np.diff(model.churn_probability(X.head(10))[order]) >= -1e-12).all()


def test_explanations_are_deterministic_and_row_samples_keep_order(data, fitted):
    X, _ = data
    a = E.explain_model(fitted("knn"), X.head(8), seed=4)
    b = E.explain_model(fitted("knn"), X.head(8), seed=4)
    np.testing.assert_array_equal(a.values, b.values)
    s = E.explain_model(fitted("lightgbm"), X, max_rows=50, seed=2)
    assert len(s.data) == 50 and s.data.index.is_monotonic_increasing
    assert list(E.explain_model(fitted("lightgbm"), X, max_rows=50, seed=2).data.index) == list(s.data.index)


def test_reason_text_uses_the_feature_dictionary():
    assert E.describe_reason("days_since_last_login", 23.0) == "days since last login: 23 (raises risk)"
    assert E.describe_reason("skip_rate", 0.314) == "skip rate: 31% (raises risk)"
    assert E.describe_reason("level_paid", 1) == "level paid: yes (raises risk)"
    assert E.describe_reason("session_gap_hours_mean", float("nan")) == "session gap hours mean: missing (raises risk)"
    assert E.describe_reason("tenure", 12.5) == "tenure: 12.5 (raises risk)"  # not in the dictionary


def test_plots_name_the_leading_feature(data, fitted):
    X, _ = data
    expl = E.explain_model(fitted("lightgbm"), X)
    figs = [E.plot_importance(expl), E.plot_beeswarm(expl), E.plot_dependence(expl, "signal"),
            E.plot_dependence(expl, "plan")]
    assert "Signal" in figs[0].axes[0].get_title()
    assert figs[2].axes[0].get_title() == "Higher signal raises the churn risk"
    with pytest.raises(ValueError, match="not a feature"):
        E.plot_dependence(expl, "nope")
    for f in figs:
        plt.close(f)


# --------------------------------------------------------------------------------------------
# Real tables (skipped when ../shared/data is absent)
# --------------------------------------------------------------------------------------------

@pytest.mark.real_data
@pytest.mark.parametrize("name", ["logreg", "lightgbm"])
def test_real_spotify_snapshot_categories_map_back_and_values_add_up(name, spotify_snapshot):
    from churnlib.load import load_snapshot

    table = load_snapshot(spotify_snapshot, id_col="user_id", label_col="is_churned").table.head(1500)
    X = M.feature_frame(table, "user_id", "is_churned")
    pipe = M.make_pipeline(name, "none", seed=0).fit(X, table["is_churned"].to_numpy())
    expl = E.explain_model(pipe, X.head(200))
    np.testing.assert_allclose(expl.margin(), margin(pipe, X.head(200)), atol=1e-5)
    mapping = dict(zip(expl.feature_names, expl.original))
    for cat in ("country", "subscription_type", "device_type", "gender"):
        cols = [n for n in expl.feature_names if n.startswith(cat + "_")]
        assert cols and {mapping[c] for c in cols} == {cat}
    assert expl.features == list(X.columns)
    reasons = E.top_reasons(expl)
    country = reasons["reason_1"].dropna()
    country = country[country.str.startswith("country: ")]
    for i, text in country.items():  # a category's reason names the user's own category
        assert text == f"country: {X.loc[i, 'country']} (raises risk)"


@pytest.mark.real_data
def test_real_mini_table_explains_every_user(mini_user_features):
    from churnlib.load import load_snapshot

    table = load_snapshot(mini_user_features, id_col="userId", label_col="churn").table
    X = M.feature_frame(table, "userId", "churn", drop=["split", "tenure_days"])  # tenure_days: a known leak
    pipe = M.make_pipeline("lightgbm", "none", seed=0).fit(X, table["churn"].to_numpy())
    expl = E.explain_model(pipe, X)
    np.testing.assert_allclose(expl.margin(), margin(pipe, X), atol=1e-5)
    imp = E.global_importance(expl)
    assert len(imp) == X.shape[1] and set(imp["direction"]) <= {"higher raises risk", "higher lowers risk", "mixed"}
    assert imp["mean_abs_shap"].is_monotonic_decreasing


def test_a_category_without_effect_gets_no_weight_in_a_linear_model():
    # every category of "plan" carries the same (null) effect: its values must not count as a driver
    X, y = planted(n=400, seed=6)
    expl = E.explain_model(M.make_pipeline("logreg").fit(X, y), X)
    imp = E.global_importance(expl).set_index("feature")
    assert imp.loc["plan", "mean_abs_shap"] < 0.25 * imp.loc["signal", "mean_abs_shap"]
    coefs = M.make_pipeline("logreg").fit(X, y).named_steps["model"].coef_[0]
    cols = [i for i, o in enumerate(expl.original) if o == "plan"]
    by = expl.by_feature()["plan"].to_numpy()
    user_cat = expl.data.iloc[:, cols].to_numpy().argmax(axis=1)
    np.testing.assert_allclose(by, coefs[cols][user_cat] - coefs[cols].mean(), atol=1e-9)


def test_reasons_are_worded_against_the_training_median():
    assert (E.describe_reason("thumbs_up_share", 0.64, typical=0.81)
            == "thumbs up share: 64%, typical 81% (raises risk)")
    assert (E.describe_reason("days_since_last_login", 23.0, typical=2.0)
            == "days since last login: 23, typical 2 (raises risk)")
    # no comparison for missing values, yes/no flags and categories
    assert E.describe_reason("session_gap_hours_mean", float("nan"), typical=5.0).endswith("missing (raises risk)")
    assert E.describe_reason("level_paid", 1, typical=1.0) == "level paid: yes (raises risk)"


def test_saved_model_reasons_quote_the_typical_value(tmp_path):
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"days_since_last_login": rng.exponential(5, 300), "songs_7d": rng.poisson(30, 300)})
    y = (X["days_since_last_login"] + rng.normal(0, 1, 300) > 6).astype(int).to_numpy()
    schema = feature_schema(X)
    assert schema[0]["median"] == pytest.approx(float(X["days_since_last_login"].median()))
    ChurnModel(M.make_pipeline("logreg").fit(X, y), threshold=0.5, schema=schema, id_col="user_id",
               bands=th.RiskBands(medium_from=0.25, high_from=0.5)).save(tmp_path / "churn_model.joblib")
    model = ChurnModel.load(tmp_path / "churn_model.joblib")
    assert model.typical["songs_7d"] == pytest.approx(float(X["songs_7d"].median()))
    expl = model.shap(X.head(40))
    assert expl.typical == model.typical
    reasons = E.top_reasons(expl, X.head(40))
    far = X.head(40)["days_since_last_login"] > 15
    assert far.any()
    median = float(X["days_since_last_login"].median())
    typical = E.describe_reason("days_since_last_login", median).split(": ")[1].removesuffix(" (raises risk)")
    assert reasons.loc[far.to_numpy(), "reason_1"].str.contains(f", typical {typical} ", regex=False).all()
    assert model.explain(X.head(40))["reason_1"].equals(reasons["reason_1"])
    # a bare pipeline has no recorded medians: the plain wording stays
    plain = E.top_reasons(E.explain_model(model.pipeline, X.head(40)), X.head(40))
    assert not plain["reason_1"].dropna().str.contains("typical").any()
    # and neither has a model whose schema records no medians (an older manifest)
    bare = ChurnModel(model.estimator, threshold=0.5, schema=[{"name": c, "kind": "numeric"} for c in X.columns])
    assert bare.typical == {} and not bare.explain(X.head(40))["reason_1"].dropna().str.contains("typical").any()


def test_risk_population_holds_only_users_who_are_still_customers():
    snap = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "x": [1, 2, 3, 4], "is_churned": [0, 1, 0, 1]})
    pop = E.risk_population(snap, "is_churned")
    assert list(pop.frame["user_id"]) == ["a", "c"] and pop.n_left == 2
    assert "2 users whose label says they already left are not listed" in pop.text
    # an event log's feature table: the users at the latest observation date (their label is a later cancel)
    dates = pd.to_datetime(["2018-11-01", "2018-11-01", "2018-11-08", "2018-11-08"])
    feats = pd.DataFrame({"userId": ["1", "2", "1", "3"], "as_of": dates, "churned": [0, 1, 1, 0]})
    latest = E.risk_population(feats, "churned")
    assert list(latest.frame["userId"]) == ["1", "3"] and latest.n_left == 0
    # no label: every row
    assert len(E.risk_population(snap.drop(columns="is_churned"), None).frame) == 4
