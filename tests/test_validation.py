"""Feature validation: ladder, paired comparison, univariate tests, redundancy, importance, selection."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnlib import features
from churnlib import validation as V
from churnlib import validation_report as VR
from churnlib.intervals import Interval
from churnlib.rank_metrics import average_precision, f1_from_decisions, rank_auc
from churnlib.load import data_fingerprint, load_snapshot

FAST = dict(n_splits=3, n_repeats=1, n_bootstrap=50, seed=0)


def _frame(n: int = 300, seed: int = 0, shift: float = 1.0) -> tuple[pd.DataFrame, np.ndarray]:
    """A label, a feature shifted by ``shift`` standard deviations for churners, and pure noise."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    X = pd.DataFrame({
        "signal": rng.normal(size=n) + shift * y,
        "noise": rng.normal(size=n),
        "noise2": rng.exponential(size=n),
        "plan": rng.choice(["free", "paid", "family"], size=n),
    })
    return X, y


# --- univariate tests -----------------------------------------------------------------------------

def test_q_values_are_at_least_p_and_monotone_in_p():
    rng = np.random.default_rng(1)
    X, y = _frame(200, seed=1)
    for k in range(20):  # a mix of weak and null features
        X[f"f{k}"] = rng.normal(size=len(y)) + (0.3 if k % 4 == 0 else 0.0) * y
    t = V.univariate_tests(X, y)
    assert (t["q_value"] >= t["p_value"] - 1e-15).all()
    by_p = t.sort_values("p_value", kind="mergesort")
    assert (np.diff(by_p["q_value"].to_numpy()) >= -1e-15).all()
    assert t["q_value"].le(1).all() and len(t) == X.shape[1]


def test_planted_shift_is_significant_and_noise_is_not():
    X, y = _frame(300, seed=20, shift=1.0)
    t = V.univariate_tests(X, y).set_index("feature")
    assert t.loc["signal", "q_value"] < 1e-6 and t.loc["signal", "significant"]
    assert t.loc["signal", "effect"] > 0.3  # churners higher: positive rank-biserial
    assert t.loc["signal", "median_churned"] > t.loc["signal", "median_retained"]
    for col in ("noise", "noise2", "plan"):
        assert t.loc[col, "q_value"] > 0.2 and not t.loc[col, "significant"]
    assert t.loc["plan", "test"] == "chi-square" and 0 <= t.loc["plan", "effect"] < 0.2


def test_categorical_that_follows_the_label_has_large_cramers_v():
    X, y = _frame(300, seed=3)
    rng = np.random.default_rng(3)
    X["plan"] = np.where((y == 1) ^ (rng.random(len(y)) < 0.1), "premium", "basic")
    row = V.univariate_tests(X, y).set_index("feature").loc["plan"]
    assert row["significant"] and row["effect"] > 0.6 and row["effect_measure"] == "Cramér's V"


def test_users_with_several_rows_are_tested_once():
    X, y = _frame(300, seed=4)
    groups = np.repeat(np.arange(100), 3)
    t = V.univariate_tests(X, y, groups, seed=0)
    assert t.attrs["rows_tested"] == 100
    assert (t["n_churned"] + t["n_retained"]).max() == 100


# --- redundancy -----------------------------------------------------------------------------------

def test_duplicated_columns_form_one_cluster_with_one_kept():
    X, y = _frame(300, seed=5)
    X["signal_scaled"] = 2 * X["signal"] + 1
    X["signal_negated"] = -X["signal"]
    c = V.redundancy_clusters(X, 0.9, y=y).set_index("feature")
    dup = ["signal", "signal_scaled", "signal_negated"]
    assert c.loc[dup, "cluster"].nunique() == 1 and c.loc[dup, "cluster_size"].eq(3).all()
    assert c.loc[dup, "kept"].sum() == 1
    assert c.loc["signal", "kept"]  # equal association: ties go to the first name
    assert set(c.loc[["signal_scaled", "signal_negated"], "duplicate_of"]) == {"signal"}
    assert c.loc["noise", "cluster_size"] == 1 and c.loc["noise", "kept"]
    assert "plan" not in c.index  # categorical columns are not clustered


def test_representative_is_the_member_most_associated_with_the_label():
    rng = np.random.default_rng(6)
    X, y = _frame(400, seed=6)
    X["signal_blurred"] = X["signal"] + 0.3 * rng.normal(size=len(y))  # same measurement, noisier
    X["noise_copy"] = X["noise"] + 0.01 * rng.normal(size=len(y))
    c = V.redundancy_clusters(X, 0.9, y=y)
    for _, members in c.groupby("cluster"):
        rep = members.loc[members["kept"]]
        assert len(rep) == 1
        assert rep["association"].iloc[0] == members["association"].max()
    assert c.set_index("feature").loc["signal_blurred", "duplicate_of"] == "signal"


def test_threshold_one_only_merges_exact_rank_duplicates():
    X, y = _frame(200, seed=7)
    X["signal_cubed"] = X["signal"] ** 3  # rank-identical: Spearman rho exactly 1
    c = V.redundancy_clusters(X, 1.0, y=y).set_index("feature")
    assert c.loc["signal", "cluster"] == c.loc["signal_cubed", "cluster"]
    assert c["cluster"].nunique() == len(c) - 1
    with pytest.raises(ValueError, match="threshold"):
        V.redundancy_clusters(X, 0.0)


# --- ladder ---------------------------------------------------------------------------------------

def test_event_ladder_is_nested_and_ends_with_every_column():
    cols = features.feature_columns() + ["extra_column"]
    ladder = V.feature_ladder(cols, "events")
    assert list(ladder) == list(V.LADDER_STEPS)
    sets = [set(v) for v in ladder.values()]
    for small, big in zip(sets, sets[1:]):
        assert small < big
    assert sets[-1] == set(cols) and len(ladder["+ contact signals"]) == len(cols)

    def step_of(col):
        return next(name for name, members in ladder.items() if col in members)

    assert step_of("tenure_days") == step_of("songs_total") == step_of("thumbs_up") == "baseline counts"
    assert step_of("device_type") == step_of("level_paid") == "baseline counts"
    assert step_of("days_since_last_event") == step_of("events_7d") == step_of("n_sessions") == "+ windows"
    assert step_of("listening_hours_7d") == step_of("thumbs_up_per_song") == "+ windows"
    assert step_of("events_trend_7d") == step_of("weekend_share") == "+ trends"
    for contact in ("customer_support_contact_30d", "help", "help_per_song", "error", "roll_advert",
                    "roll_advert_per_song", "thumbs_down_per_session_hour", "skip_rate", "extra_column"):
        assert step_of(contact) == "+ contact signals", contact


def test_snapshot_ladder_adds_synthetic_columns_last_and_skips_empty_steps():
    ladder = V.feature_ladder(["age", "plan", "syn_a", "syn_b"], "snapshot", synthetic=["syn_a", "syn_b"])
    assert ladder == {"original columns": ["age", "plan"], "+ synthetic features": ["age", "plan", "syn_a", "syn_b"]}
    assert V.feature_ladder(["age"], "snapshot") == {"original columns": ["age"]}
    only_trends = V.feature_ladder(["events_trend_7d", "help"], "events")
    assert list(only_trends) == ["+ trends", "+ contact signals"]
    with pytest.raises(ValueError):
        V.feature_ladder(["a"], "other")


# --- comparison -----------------------------------------------------------------------------------

def test_a_set_compared_with_itself_differs_by_exactly_zero():
    """Every set is scored on the same splits and bootstrap draws, so identical sets tie exactly."""
    X, y = _frame(240, seed=8)
    groups = np.repeat(np.arange(120), 2)
    cols = ["signal", "noise", "plan"]
    c = V.compare_feature_sets(X, y, groups, {"a": cols, "b": list(cols)}, **FAST)
    b = c.loc["b"]
    assert b["delta_roc_auc"] == 0 and b["delta_roc_auc_low"] == 0 and b["delta_roc_auc_high"] == 0
    assert b["delta_pr_auc"] == 0 and b["folds_better"] == 0 and b["verdict"] == "no clear change"
    assert c.loc["a", "roc_auc"] == b["roc_auc"] and c.loc["a", "verdict"] == "first"


def test_adding_a_signal_feature_clearly_helps_and_more_effect_scores_higher():
    rows = []
    for shift in (0.0, 1.5):
        X, y = _frame(300, seed=9, shift=shift)
        c = V.compare_feature_sets(X, y, None, {"noise": ["noise", "noise2"],
                                                "+ signal": ["noise", "noise2", "signal"]}, **FAST)
        rows.append(c.loc["+ signal"])
    null, strong = rows
    assert strong["verdict"] == "helps" and strong["delta_roc_auc_low"] > 0 and strong["folds_better"] == 3
    assert strong["gain_roc_auc"] == strong["delta_roc_auc"]  # two sets: the gain over the first is the step
    assert strong["roc_auc"] > null["roc_auc"] + 0.2
    assert null["roc_auc_low"] < 0.5 < strong["roc_auc_low"]
    for m in ("roc_auc", "pr_auc", "f1"):
        assert strong[f"{m}_low"] <= strong[m] <= strong[f"{m}_high"]


def test_comparison_is_deterministic_and_checks_its_input():
    X, y = _frame(200, seed=10)
    sets = {"one": ["noise"], "two": ["noise", "signal"]}
    a = V.compare_feature_sets(X, y, None, sets, **FAST)
    b = V.compare_feature_sets(X, y, None, sets, **FAST)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(KeyError, match="missing_col"):
        V.compare_feature_sets(X, y, None, {"x": ["missing_col"]}, **FAST)
    assert "No detectable signal" not in VR.ladder_statement(a)


def test_statement_says_no_signal_when_every_interval_covers_chance():
    X, y = _frame(300, seed=20, shift=0.0)
    c = V.compare_feature_sets(X, y, None, {"noise": ["noise"], "+ more noise": ["noise", "noise2", "plan"]},
                               **FAST)
    assert (c["roc_auc_low"] <= 0.5).all()
    assert VR.ladder_statement(c).startswith("No detectable signal")


# --- importance -----------------------------------------------------------------------------------

def test_permutation_importance_and_mutual_information_find_the_planted_feature():
    X, y = _frame(300, seed=12, shift=1.5)
    imp = V.importance(X, y, None, n_splits=3, n_permutations=5, seed=0).set_index("feature")
    assert imp.index[0] == "signal" and imp.loc["signal", "perm_rank"] == 1
    assert imp.loc["signal", "perm_importance"] > 0.1 and imp.loc["signal", "folds_positive"] == 1
    assert imp.loc["signal", "mutual_info"] > imp.drop(index="signal")["mutual_info"].max()
    for col in ("noise", "noise2", "plan"):
        assert abs(imp.loc[col, "perm_importance"]) < 0.05
    again = V.importance(X, y, None, n_splits=3, n_permutations=5, seed=0).set_index("feature")
    pd.testing.assert_frame_equal(imp, again)


def test_batched_permutation_matches_the_definition():
    """Shuffling a column the fitted model ignores costs nothing; the AUC helper equals sklearn's."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from churnlib.models import make_pipeline

    X, y = _frame(200, seed=13, shift=1.5)
    fitted = make_pipeline("logreg").fit(X[["signal", "noise"]].assign(noise=0.0), y)
    drops = V.permutation_drops(fitted, X[["signal", "noise"]], y, 4, np.random.default_rng(0))
    assert drops.shape == (2, 4) and (drops[0] > 0).all() and np.all(drops[1] == 0)  # noise constant in training
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = rng.integers(0, 6, size=len(y)) / 5  # many ties
        assert rank_auc(y, p[None, :])[0] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert average_precision(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)


# --- selection and persistence --------------------------------------------------------------------

def test_selection_drops_leaks_duplicates_constants_and_keeps_the_rest():
    X, y = _frame(300, seed=14)
    rng = np.random.default_rng(14)
    X["leak"] = y + 0.05 * rng.normal(size=len(y))
    X["signal_copy"] = 3 * X["signal"] - 2
    X["constant"] = 1.0
    X["synthetic_x"] = y * 1.0
    sel = V.select_features(X, y, never={"synthetic_x": "synthetic column drawn from the label"})
    assert sel.features == ["signal", "noise", "noise2", "plan"]  # weak or not, kept: conservative
    assert sel.dropped["leak"].startswith("leakage suspect")
    assert sel.dropped["signal_copy"].startswith("redundant with signal")
    assert sel.dropped["constant"].startswith("constant")
    assert sel.dropped["synthetic_x"] == "synthetic column drawn from the label"
    assert set(sel.reasons) == set(X.columns) and sel.reasons["noise"] == "kept"
    assert sel.reasons["signal"].startswith("kept: represents 1 feature")
    table = sel.table()
    assert (table["decision"] == "kept").sum() == 4 and len(table) == X.shape[1]
    assert VR.selection_summary(sel).startswith("4 of 8 candidate features kept")


def test_feature_set_round_trip(tmp_path):
    X, y = _frame(200, seed=15)
    X["signal_copy"] = X["signal"] * 2
    sel = V.select_features(X, y)
    source = tmp_path / "input.csv"
    source.write_text("a,b\n1,2\n")
    assert V.load_feature_set(tmp_path) is None
    path = V.save_feature_set(sel, id_col="userId", label_col="churned", source_path=source, output_dir=tmp_path)
    assert path == tmp_path / "data" / "processed" / "feature_set.json"
    raw = json.loads(path.read_text())
    assert list(raw) == ["features", "id_col", "label_col", "fingerprint", "source", "dropped", "written_by"]
    loaded = V.load_feature_set(tmp_path)
    assert loaded == raw
    assert loaded["features"] == sel.features and loaded["dropped"] == sel.dropped
    assert loaded["fingerprint"] == data_fingerprint(source) and loaded["source"] == str(source)
    assert loaded["written_by"] == "03_feature_validation" and loaded["id_col"] == "userId"
    assert [p.name for p in path.parent.iterdir()] == ["feature_set.json"]  # no temp file left behind
    path.write_text("{not json")
    with pytest.raises(ValueError, match="feature_set.json"):
        V.load_feature_set(tmp_path)


# --- whole flow, real data ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def simulated_table(tmp_path_factory):
    from churnlib.training import training_table

    out = tmp_path_factory.mktemp("validation")
    table, id_col, label_col, _, source = training_table(n_users=150, days=45, seed=4, output_dir=out)
    return table, id_col, label_col, source, out


def test_whole_flow_on_a_simulated_log_validates_only_the_training_part(simulated_table):
    from churnlib.training import split_table

    table, id_col, label_col, source, out = simulated_table
    r = V.run_validation(table, id_col, label_col, n_bootstrap=30, n_permutations=2, seed=3)
    parts = split_table(table, id_col, label_col, seed=3, drop_suspects=False)
    assert set(r.groups) == set(parts.groups) and not set(r.groups) & set(parts.groups_test)
    assert len(r.y) == len(parts.y)
    assert r.kind == "events" and list(r.comparison.index) == list(r.ladder) and r.synthetic == []
    assert set(r.selection.features) <= set(r.X.columns)
    assert not set(r.selection.features) & {"userId", "as_of", "churned"}
    assert r.check.loc["chosen set", "n_features"] == len(r.selection.features)
    assert set(r.importance["feature"]) == set(r.univariate["feature"])
    path = V.save_feature_set(r.selection, id_col=id_col, label_col=label_col, source_path=source, output_dir=out)
    assert V.load_feature_set(out)["features"] == r.selection.features and path.exists()
    assert set(VR.key_numbers(r)) >= {"Chosen features", "Signal detected"}


@pytest.mark.real_data
def test_mini_table_flags_tenure_and_selection_drops_it(mini_user_features):
    mini = load_snapshot(mini_user_features, id_col="userId", label_col="churn").table
    report = features.leakage_report(mini, "churn", exclude=("userId", "split"))
    assert "tenure_days" in report.loc[report["suspect"], "feature"].tolist()
    r = V.run_validation(mini, "userId", "churn", "split", kind="snapshot", synthetic_effect_size=None,
                         n_bootstrap=30, n_permutations=2, seed=0)
    assert r.selection.dropped["tenure_days"].startswith("leakage suspect")
    assert "tenure_days" not in r.selection.features and "split" not in r.X.columns
    assert "tenure_days" not in r.ladder["original columns"]  # suspects stay out of the comparison
    assert len(r.y) == int((mini["split"] == "train").sum())
    direct = V.select_features(r.X, r.y)  # computing its own leakage report on the same rows
    assert "tenure_days" not in direct.features and direct.dropped == r.selection.dropped


@pytest.mark.real_data
def test_spotify_snapshot_has_no_signal_but_synthetic_features_do(spotify_snapshot):
    pytest.importorskip("churnlib.synthetic")
    table = load_snapshot(spotify_snapshot, id_col="user_id", label_col="is_churned").table
    r = V.run_validation(table, "user_id", "is_churned", synthetic_effect_size=1.0, n_bootstrap=30,
                         n_permutations=2, seed=0)
    assert r.kind == "snapshot" and len(r.synthetic) == 9
    assert list(r.comparison.index) == ["original columns", "+ synthetic features"]
    orig = r.comparison.loc["original columns"]
    assert orig["roc_auc_low"] < 0.5 < orig["roc_auc_high"]
    assert not r.signal_detected and VR.signal_statement(r).startswith("No detectable signal")
    assert r.comparison.loc["+ synthetic features", "verdict"] == "helps"
    assert not set(r.synthetic) & set(r.selection.features)  # drawn from the label: never chosen


# --- the single bootstrap pass, the fast permutation path and the verdicts ------------------------

def test_set_intervals_are_those_of_evaluate_predictions_on_the_same_predictions():
    """One bootstrap pass scores every set; it must reproduce evaluation.evaluate_predictions exactly."""
    from churnlib import evaluation as ev
    from churnlib import thresholds as th
    from churnlib.models import make_pipeline, negatives_per_positive

    X, y = _frame(240, seed=21, shift=1.0)
    groups = np.repeat(np.arange(120), 2)
    cols = ["signal", "noise", "plan"]
    c = V.compare_feature_sets(X, y, groups, {"all": cols}, **FAST)
    splits = ev.cv_splits(y, groups, 3, 1, 0)
    oof = ev.oof_predict(make_pipeline("logreg", "class_weight", pos_weight=negatives_per_positive(y)),
                         X[cols], y, splits)
    ref = ev.evaluate_predictions(y, oof, th.cross_fitted_decisions(y, oof, splits), groups, n_bootstrap=50, seed=0)
    for m in ("roc_auc", "pr_auc", "f1"):
        for col, suffix in (("value", ""), ("low", "_low"), ("high", "_high")):
            assert c.loc["all", f"{m}{suffix}"] == pytest.approx(ref.loc[m, col], abs=1e-9), (m, col)


def test_rank_metrics_equal_sklearn_with_ties():
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    rng = np.random.default_rng(22)
    y = rng.integers(0, 2, 300)
    P = rng.integers(0, 6, size=(4, 300)) / 5  # many ties
    np.testing.assert_allclose(rank_auc(y, P), [roc_auc_score(y, p) for p in P], atol=1e-12)
    assert average_precision(y, P[0]) == pytest.approx(average_precision_score(y, P[0]), abs=1e-12)
    H = P >= 0.6
    np.testing.assert_allclose(f1_from_decisions(y, H), [f1_score(y, h) for h in H], atol=1e-12)
    assert f1_from_decisions(np.zeros(5), np.zeros((1, 5), bool))[0] == 0.0  # no positives, none flagged


class _Opaque:
    """A fitted model seen only through predict_proba: permutation_drops must take its general path."""

    def __init__(self, fitted):
        self.fitted = fitted

    def predict_proba(self, X):
        return self.fitted.predict_proba(X)


@pytest.mark.parametrize("strategy", ["class_weight", "smote"])
def test_fast_permutation_path_equals_shuffling_the_raw_frame(strategy):
    """Preprocessing once and permuting the preprocessed columns gives the drops of shuffling raw rows:
    numbers with missing values (imputed + missing flags) and a category with a rare level."""
    from churnlib.models import make_pipeline

    X, y = _frame(240, seed=23, shift=1.0)
    rng = np.random.default_rng(23)
    X.loc[rng.random(len(y)) < 0.15, "noise"] = np.nan
    X.loc[:4, "plan"] = "rare"
    X.loc[5:9, "plan"] = None
    fitted = make_pipeline("logreg", strategy, seed=0).fit(X.iloc[:160], y[:160])
    held, yh = X.iloc[160:], y[160:]
    fast = V.permutation_drops(fitted, held, yh, 3, np.random.default_rng(5))
    slow = V.permutation_drops(_Opaque(fitted), held, yh, 3, np.random.default_rng(5))
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    assert fast[0].mean() > 0.05  # the signal column matters


def _ladder(rows):
    """A compare_feature_sets-shaped frame from (name, auc, low, high, delta_low, delta_high, verdict)."""
    out = []
    for name, auc, lo, hi, dlo, dhi in rows:
        d = (dlo + dhi) / 2
        verdict = "first" if not out else V.difference_verdict(Interval(d, dlo, dhi))
        out.append({"set": name, "n_features": len(out) + 1, "roc_auc": auc, "roc_auc_low": lo, "roc_auc_high": hi,
                    "pr_auc": auc / 3, "pr_auc_low": lo / 3, "pr_auc_high": hi / 3,
                    "delta_roc_auc": d if out else np.nan, "delta_roc_auc_low": dlo if out else np.nan,
                    "delta_roc_auc_high": dhi if out else np.nan, "gain_roc_auc": auc - rows[0][1],
                    "gain_roc_auc_low": auc - rows[0][1] - 0.01, "gain_roc_auc_high": auc - rows[0][1] + 0.01,
                    "folds_better": 2, "n_folds": 3, "verdict": verdict})
    return pd.DataFrame(out).set_index("set")


def test_difference_verdict_and_ladder_findings():
    assert V.difference_verdict(Interval(0.02, 0.001, 0.04)) == "helps"
    assert V.difference_verdict(Interval(-0.02, -0.04, -0.001)) == "hurts"
    assert V.difference_verdict(Interval(0.02, -0.001, 0.04)) == "no clear change"
    assert V.difference_verdict(Interval(0.02)) == "no clear change"  # no interval, no claim
    c = _ladder([("a", 0.52, 0.45, 0.58, 0, 0), ("b", 0.60, 0.55, 0.66, 0.02, 0.1),
                 ("c", 0.59, 0.54, 0.65, -0.03, 0.01)])
    f = V.ladder_findings(c)
    assert f.beats_chance and not f.first_beats_chance and f.best == "b"
    assert f.helps == ["b"] and f.hurts == [] and f.total_gain_clear and f.total_gain.above(0)
    text = VR.ladder_statement(c)
    assert "b: ROC-AUC +0.060 (+0.020 to +0.100), better in 2 of 3 folds -- clearly helps" in text
    assert "c vs a: ROC-AUC +0.070 (+0.060 to +0.080) -- a clear change" in text
    chance = _ladder([("a", 0.52, 0.45, 0.58, 0, 0), ("b", 0.53, 0.48, 0.50, -0.01, 0.02)])
    assert not V.ladder_findings(chance).beats_chance
    assert VR.ladder_statement(chance).startswith("No detectable signal")


def test_pruning_verdict_is_an_interval_below_zero():
    first = ("all candidates (suspects out)", 0.8, 0.78, 0.82, 0, 0)
    lost = _ladder([first, ("chosen set", 0.78, 0.76, 0.8, -0.03, -0.005)])
    same = _ladder([first, ("chosen set", 0.8, 0.78, 0.82, -0.01, 0.01)])
    assert V.pruning_cost(lost) and not V.pruning_cost(same)
    assert VR.pruning_statement(lost).endswith("consider a higher redundancy threshold.")
    assert VR.pruning_statement(same) == ("Chosen set vs all candidates: ROC-AUC +0.000 (-0.010 to +0.010) — "
                                          "pruning lost nothing measurable.")


def test_consistent_features_need_a_positive_drop_on_every_fold():
    imp = pd.DataFrame({"feature": ["a", "b", "c"], "perm_importance": [0.1, 0.05, -0.01],
                        "folds_positive": [1.0, 0.8, 1.0]})
    assert V.consistent_features(imp) == ["a"]
