"""The stakeholder summary: sections from small fixture files, degrading when an input is missing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnlib import summary
from churnlib.features import FEATURE_DICTIONARY
from churnlib.load import DataQuality, load_events, load_snapshot


def _metrics(detected: bool = True, precision=(0.42, 0.30, 0.55), lift=(2.6, 1.8, 3.4),
             auc=(0.78, 0.71, 0.84)) -> dict:
    def rec(t):
        return {"value": t[0], "low": t[1], "high": t[2]}
    return {
        "data": {"rows_test": 400, "churn_rate_test": 0.12},
        "chosen": {"model": "lightgbm", "strategy": "class_weight",
                   "holdout": {"precision": rec(precision), "recall": rec((0.55, 0.40, 0.70)),
                               "lift_top_decile": rec(lift), "roc_auc": rec(auc), "pr_auc": rec((0.3, 0.2, 0.4))}},
        "signal_detected": detected,
        "signal_statement": ("Signal detected: holdout ROC-AUC 0.780 lies above 0.5." if detected else
                             "No detectable signal: holdout ROC-AUC 0.51 covers 0.5."),
    }


def _scores(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    p = np.sort(rng.uniform(0, 1, n))[::-1]
    reasons = ["roll_advert_per_song high", "error_per_song high", "songs_7d low", "help_per_session_hour high"]
    return pd.DataFrame({
        "userId": [f"u{i}" for i in range(n)], "churn_probability": p, "churn_label": (p >= 0.5).astype(int),
        "risk_band": np.where(p >= 0.5, "high", np.where(p >= 0.25, "medium", "low")),
        "reason_1": [reasons[i % 4] for i in range(n)], "reason_2": "thumbs_down high", "reason_3": None,
    })


def _monitoring(drifted: int = 2, current_auc=(0.70, 0.64, 0.76)) -> dict:
    return {"reference": "2018-10-01 to 2018-10-31", "current": "2018-11-01 to 2018-11-30",
            "drifted_features": [{"feature": f"f{i}", "psi": 0.3 + i / 10, "ks": 0.2} for i in range(drifted)],
            "n_features_checked": 90,
            "performance": {"reference": {"roc_auc": [0.78, 0.72, 0.84], "pr_auc": [0.3, 0.2, 0.4]},
                            "current": {"roc_auc": list(current_auc), "pr_auc": [0.3, 0.2, 0.4]}},
            "recommendation": "retrain on the current window", "false_alarm_rate": [0.04, 0.01, 0.1],
            "n_false_alarm_samples": 50,
            "challenger": {"decision": "keep the current model", "metric": "pr_auc",
                           "champion": [0.3, 0.2, 0.4], "challenger": [0.31, 0.21, 0.41]}}


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def test_missing_inputs_degrade_to_one_sentence(tmp_path: Path):
    inputs = summary.load_inputs(tmp_path)
    assert (inputs.metrics, inputs.risk_scores, inputs.drivers, inputs.monitoring) == (None, None, None, None)
    assert set(inputs.missing) == {"metrics", "risk_scores", "drivers", "monitoring"}
    sections = [summary.signal_section(None), summary.model_quality_section(None),
                summary.top_users_section(None), summary.drivers_section(None), summary.actions_section(None),
                summary.changes_section(None), summary.data_quality_section(None), summary.trend_section(None)]
    for s in sections:
        assert not s.available and s.table is None
        assert s.text.startswith("Not available in this run:") and s.text.count(". ") == 0


def test_load_inputs_reads_what_the_notebooks_wrote(tmp_path: Path):
    from churnlib import paths
    (paths.models_dir(tmp_path) / "metrics.json").write_text(json.dumps(_metrics()))
    _scores().to_parquet(paths.processed_data_dir(tmp_path) / "risk_scores.parquet")
    pd.DataFrame({"feature": ["a"], "mean_abs_shap": [0.1], "direction": ["raises"], "meaning": ["A"]}).to_csv(
        paths.processed_data_dir(tmp_path) / "drivers.csv", index=False)
    (paths.processed_data_dir(tmp_path) / "monitoring.json").write_text("{not json")
    inputs = summary.load_inputs(tmp_path)
    assert inputs.metrics["signal_detected"] is True
    assert len(inputs.risk_scores) == 40 and list(inputs.drivers["feature"]) == ["a"]
    assert inputs.monitoring is None and "could not be read" in inputs.missing["monitoring"]


def test_products_made_by_another_model_are_left_out_with_the_reason(tmp_path: Path):
    from churnlib import paths, pipeline

    models = paths.models_dir(tmp_path)
    (models / "metrics.json").write_text(json.dumps(_metrics()))
    (models / "churn_model.manifest.json").write_text(json.dumps({"sha256": "a" * 64}))
    risk = paths.processed_data_dir(tmp_path) / "risk_scores.parquet"
    drivers = paths.processed_data_dir(tmp_path) / "drivers.csv"
    same = pipeline.product_key("explanations", {"model": "a" * 64}, {})
    other = pipeline.product_key("explanations", {"model": "b" * 64}, {})
    pipeline.write_product(risk, _scores(), other)
    pipeline.write_product(drivers, pd.DataFrame({"feature": ["a"], "mean_abs_shap": [0.1]}), same)
    inputs = summary.load_inputs(tmp_path)
    assert inputs.risk_scores is None and "made from another model" in inputs.missing["risk_scores"]
    assert "06_explanations" in inputs.missing["risk_scores"]
    assert inputs.drivers is not None and "drivers" not in inputs.missing  # made by the model in models/
    pipeline.write_product(risk, _scores(), same)
    assert len(summary.load_inputs(tmp_path).risk_scores) == 40


# ---------------------------------------------------------------------------------------------
# Signal first; no signal -> nothing presented as actionable
# ---------------------------------------------------------------------------------------------

def test_no_signal_is_said_and_nothing_is_actionable():
    m = _metrics(detected=False)
    sig = summary.signal_section(m)
    assert "No detectable" in sig.title and m["signal_statement"] in sig.text
    actionable = summary.signal_detected(m)
    top = summary.top_users_section(_scores(), actionable=actionable)
    acts = summary.actions_section(_scores(), actionable=actionable)
    assert top.table is None and acts.table is None  # no list of people to call
    assert "u0" not in top.text
    assert "no detectable signal" in top.title.lower() and "no detectable signal" in acts.title.lower()
    assert "not meaningful" in summary.drivers_section(
        pd.DataFrame({"feature": ["a"], "mean_abs_shap": [0.1], "direction": ["raises"], "meaning": ["A"]}),
        signal=False).title


def test_signal_detected_shows_ranked_top_users():
    scores = _scores().sample(frac=1, random_state=1)  # order on disk must not matter
    s = summary.top_users_section(scores, n=5, actionable=summary.signal_detected(_metrics()))
    assert list(s.table["user"]) == ["u0", "u1", "u2", "u3", "u4"]
    probs = [float(p.rstrip("%")) for p in s.table["churn probability"]]
    assert probs == sorted(probs, reverse=True)
    assert list(s.table.columns[-3:]) == ["reason 1", "reason 2", "reason 3"]
    n_high = int((scores["risk_band"] == "high").sum())
    assert s.title.startswith(f"{n_high:,} users")


# ---------------------------------------------------------------------------------------------
# Model quality in plain words
# ---------------------------------------------------------------------------------------------

def test_model_quality_words_follow_the_numbers():
    s = summary.model_quality_section(_metrics(precision=(0.42, 0.30, 0.55)))
    assert "about **4.2 in 10 churned**" in s.text and "3.0–5.5 in 10" in s.text
    assert "2.6× as many churners" in s.text and "1.8×–3.4×" in s.text
    assert "1.2 in 10 among all users" in s.text  # the base rate for comparison
    better = summary.model_quality_section(_metrics(precision=(0.8, 0.7, 0.9)))
    assert "about **8 in 10 churned**" in better.text
    small = summary.model_quality_section(_metrics(precision=(0.04, 0.01, 0.08)))
    assert "about **4 in 100 churned**" in small.text  # small shares do not round to "0 in 10"


def test_model_quality_headline_depends_on_signal_and_lift():
    assert "well above chance" in summary.model_quality_section(_metrics()).title
    assert "no reliable guide" in summary.model_quality_section(_metrics(detected=False)).title
    assert "wide uncertainty" in summary.model_quality_section(_metrics(lift=(1.1, 0.8, 1.5))).title
    no_verdict = {k: v for k, v in _metrics(auc=(0.6, 0.45, 0.7)).items() if k != "signal_detected"}
    assert "no reliable guide" in summary.model_quality_section(no_verdict).title


# ---------------------------------------------------------------------------------------------
# Churn rate and trend
# ---------------------------------------------------------------------------------------------

def _trend_table(rates: list[float], users: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2018-10-01", periods=len(rates), freq="7D", tz="UTC")
    return pd.concat([pd.DataFrame({"userId": [f"u{i}" for i in range(users)], "as_of": d,
                                    "churned": (rng.random(users) < r).astype(int)}) for d, r in zip(dates, rates)])


@pytest.mark.parametrize("rates,direction", [([0.05, 0.10, 0.15, 0.20], "rising"),
                                             ([0.20, 0.15, 0.10, 0.05], "falling")])
def test_trend_beyond_the_noise_is_detected(rates, direction):
    t = summary.churn_trend(_trend_table(rates), n_bootstrap=200, seed=3)
    assert t.direction == direction
    assert t.low <= t.slope <= t.high
    assert direction in t.statement()
    assert summary.trend_section(t).title == f"Churn is {direction}"
    assert "within the 14 days after it" in summary.trend_section(t, horizon_days=14).text


def test_equal_rates_are_flat_and_intervals_cover_rates():
    rng = np.random.default_rng(0)  # exactly 10 of 100 churn on every date, different users each time
    table = pd.concat([pd.DataFrame({"userId": [f"u{i}" for i in range(100)], "as_of": d,
                                     "churned": rng.permutation(np.r_[np.ones(10), np.zeros(90)]).astype(int)})
                       for d in pd.date_range("2018-10-01", periods=4, freq="7D")])
    t = summary.churn_trend(table, n_bootstrap=200, seed=0)
    assert t.direction == "flat" and abs(t.slope) < 1e-12 and t.low < 0 < t.high
    assert "No trend beyond the noise" in t.statement()
    assert ((t.per_date["low"] <= t.per_date["rate"]) & (t.per_date["rate"] <= t.per_date["high"])).all()
    assert list(t.per_date["users"]) == [100] * 4 and list(t.per_date["churned"]) == [10] * 4


def test_trend_is_deterministic_and_single_date_has_no_trend():
    table = _trend_table([0.1, 0.12, 0.11])
    a, b = summary.churn_trend(table, seed=5), summary.churn_trend(table, seed=5)
    assert (a.slope, a.low, a.high) == (b.slope, b.low, b.high)
    one = summary.churn_trend(_trend_table([0.1]))
    assert one.direction == "unknown" and "one observation date" in one.statement()


def test_trend_figure_title_states_the_finding():
    import matplotlib.pyplot as plt
    fig = summary.plot_churn_trend(summary.churn_trend(_trend_table([0.05, 0.1, 0.15, 0.2]), seed=1))
    assert fig.axes[0].get_title() == "Churn is rising beyond the noise"
    plt.close(fig)


def test_churn_rate_on_the_real_mini_table(mini_user_features: Path):
    table = load_snapshot(mini_user_features, id_col="userId", label_col="churn").table
    s = summary.churn_rate_section(table["churn"])
    assert f"{int(table['churn'].sum()):,} of {len(table):,}" in s.text
    assert "95% interval" in s.text


# ---------------------------------------------------------------------------------------------
# Retention actions
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("feature,segment", [
    ("error_per_song", "errors / crashes"), ("app_crash_count_30d", "errors / crashes"),
    ("customer_support_contact_30d", "help contacts"), ("help_per_session_hour", "help contacts"),
    ("submit_downgrade", "downgrade visits"), ("roll_advert_per_song", "adverts"),
    ("thumbs_down_per_song", "thumbs down / skips"), ("skip_rate_7d", "thumbs down / skips"),
    ("listening_hours_7d", "falling listening"), ("songs_7d", "falling listening"),
    ("days_since_last_event", "falling listening"), ("events_trend_14d", "falling listening"),
])
def test_reason_family_from_feature_name_and_meaning(feature: str, segment: str):
    meaning = next(f.meaning for f in FEATURE_DICTIONARY if f.name == feature)
    assert summary.reason_family(feature) == segment
    assert summary.reason_family(f"{feature} = 3.2 (raises risk)") == segment
    assert summary.reason_family(meaning) == segment  # reasons written in plain words land in the same segment


def test_reasons_written_by_explain_land_in_their_segment():
    from churnlib.explain import describe_reason  # the words 06_explanations writes into risk_scores
    for feature, segment in [("roll_advert_per_song", "adverts"), ("app_crash_count_30d", "errors / crashes"),
                             ("customer_support_contact_30d", "help contacts"), ("submit_downgrade", "downgrade visits"),
                             ("thumbs_down", "thumbs down / skips"), ("days_since_last_login", "falling listening")]:
        assert summary.reason_family(describe_reason(feature, 3)) == segment, describe_reason(feature, 3)


def test_drivers_use_meanings_and_name_the_leader():
    drivers = pd.DataFrame({"feature": ["songs_7d", "roll_advert_per_song", "odd_one"],
                            "mean_abs_shap": [0.1, 0.3, 0.05], "direction": ["higher lowers risk", "higher raises risk",
                                                                              "mixed"],
                            "meaning": ["Songs played in the last 7 days", "Adverts per song", ""]})
    s = summary.drivers_section(drivers, signal=True)
    assert s.title == "Churn risk is driven most by roll advert per song (higher raises risk)"
    assert list(s.table["feature"]) == ["roll_advert_per_song", "songs_7d", "odd_one"]
    assert s.table["driver"].iloc[-1] == "odd_one"  # a blank meaning falls back to the name
    import matplotlib.pyplot as plt
    fig = summary.plot_drivers(drivers)
    assert fig.axes[0].get_title() == "Churn risk is driven most by roll advert per song"
    plt.close(fig)


def test_reason_family_of_nothing_is_other():
    assert summary.reason_family(None) == summary.reason_family("") == summary.reason_family("gender") == "other"


def test_retention_actions_count_every_high_risk_user_once():
    scores = _scores(40)
    levels = pd.Series(np.where(np.arange(40) % 2 == 0, "paid", "free"), index=scores["userId"])
    table = summary.retention_actions(scores, levels)
    assert table["high-risk users"].sum() == (scores["risk_band"] == "high").sum()
    assert table["watch list (medium)"].sum() == (scores["risk_band"] == "medium").sum()
    assert (table["of which paid"] <= table["high-risk users"]).all()
    assert table["high-risk users"].is_monotonic_decreasing
    assert set(table["segment"]) <= {seg for seg, _, _ in summary.ACTION_RULES} | {"other"}
    assert table["suggested action"].str.len().gt(0).all()


def test_first_recognised_reason_decides_the_segment():
    scores = pd.DataFrame({"userId": ["a", "b"], "churn_probability": [0.9, 0.8], "risk_band": ["high", "high"],
                           "reason_1": ["gender", "roll_advert_per_song"], "reason_2": ["error_per_song", "songs_7d"],
                           "reason_3": [None, None]})
    table = summary.retention_actions(scores).set_index("segment")
    assert table.loc["errors / crashes", "high-risk users"] == 1  # 'gender' is not actionable: next reason
    assert table.loc["adverts", "high-risk users"] == 1 and "falling listening" not in table.index
    s = summary.actions_section(scores)
    assert s.table is not None and "Ad-free trial" in " ".join(s.table["suggested action"])


# ---------------------------------------------------------------------------------------------
# Data quality and monitoring
# ---------------------------------------------------------------------------------------------

def test_data_quality_in_plain_words():
    q = DataQuality("x", "events", rows_read=1000, rows_kept=900, dropped={"no user id (guest)": 100},
                    repaired={"ts as ISO text": 5})
    s = summary.data_quality_section(q)
    assert "1,000 events read, 900 (90.0%) were kept" in s.text
    assert "100 dropped (100 no user id (guest))" in s.text and "5 repairs" in s.text
    clean = summary.data_quality_section(DataQuality("x", "snapshot", 50, 50))
    assert clean.title.startswith("The data is clean") and "none dropped" in clean.text


def test_data_quality_on_the_real_event_sample(event_sample: Path):
    q = load_events(event_sample).quality
    s = summary.data_quality_section(q)
    assert f"{q.rows_read:,} events read, {q.rows_kept:,}" in s.text
    for reason in q.dropped:
        assert reason in s.text


def test_changes_since_the_reference_window():
    s = summary.changes_section(_monitoring(drifted=3))
    assert s.title.startswith("3 of 90 features shifted")
    assert "f2 (PSI 0.50)" in s.text and "retrain on the current window" in s.text
    assert "intervals overlap" in s.text and "keep the current model" in s.text
    assert "2018-10-01 to 2018-10-31" in s.text
    calm = summary.changes_section(_monitoring(drifted=0, current_auc=(0.60, 0.55, 0.65)))
    assert calm.title.startswith("Nothing shifted") and "beyond the noise" in calm.text
    partial = summary.changes_section({"drifted_features": []})  # a sparse file still reads
    assert partial.available and "No feature shifted" in partial.text


def test_key_numbers_collect_available_sections():
    secs = [summary.signal_section(_metrics()), summary.model_quality_section(_metrics()),
            summary.top_users_section(_scores()), summary.top_users_section(None)]
    nums = summary.key_numbers(secs)
    assert nums["Signal detected"] == "yes" and "Top-10% lift" in nums and "High-risk users" in nums
    assert all(isinstance(v, str) for v in nums.values())


def test_the_risk_list_leaves_out_users_whose_label_says_they_left():
    scores = _scores(40)
    ids = scores[scores.columns[0]].astype(str)
    gone = list(ids[:5]) + ["not-scored-1"]  # label-1 users; one of them was never scored
    kept, note = summary.still_customers(scores, gone)
    assert len(kept) == 35 and not kept[scores.columns[0]].astype(str).isin(gone).any()
    assert note == "6 users whose label says they already left are not listed."
    top = summary.top_users_section(kept, n=40, note=note)
    assert note in top.text and not top.table["user"].isin(gone).any()
    assert summary.retention_actions(kept)[["high-risk users", "watch list (medium)"]].to_numpy().sum() <= 35
    # an event log's scores are the users still subscribed at the latest date: nothing to drop
    same, words = summary.still_customers(scores, None)
    assert same is scores and "had not cancelled" in words


def test_changes_section_without_monitoring_shows_no_drift_numbers():
    s = summary.changes_section({"status": "not run", "reason": "`t.csv` is one table of users at one time",
                                 "how": "give a second table"})
    assert not s.available and "not run" in s.title
    assert "one table of users" in s.text and "give a second table" in s.text
    assert "Drifted features" not in s.numbers and "PSI" not in s.text


def test_changes_section_for_two_tables_states_score_drift_and_current_performance():
    mon = {"status": "run", "mode": "tables", "reference": "`a.csv`: 400 users", "current": "`b.csv`: 300 users",
           "drifted_features": [{"feature": "age", "psi": 0.4, "ks": 0.3}], "n_features_checked": 9,
           "score_drift": {"psi": 0.31, "ks": 0.2, "drifted": True, "reference_mean": 0.2, "current_mean": 0.3},
           "performance": {"reference": None, "current": {"roc_auc": [0.7, 0.65, 0.75], "pr_auc": [0.4, 0.3, 0.5]}},
           "false_alarm_rate": [0.0, 0.0, 0.28], "n_false_alarm_samples": 10, "challenger": None,
           "recommendation": "Investigate: 1 of 9 features drifted."}
    s = summary.changes_section(mon)
    assert s.title.startswith("1 of 9 features shifted")
    assert "probabilities shifted" in s.text and "0.700 (0.650–0.750)" in s.text
    assert "random halves of the reference table" in s.text
