"""Tests for the fidelity checks: aggregate definitions, the report at CI size, learnability."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlib.fidelity import (
    KS_METRICS,
    FidelityReport,
    fidelity_report,
    learnability,
    load_real_user_features,
    page_mix,
    real_page_mix,
    user_aggregates,
)
from churnlib.simulate import simulate_events

H = 3_600_000


def _row(uid, sid, ts, page, level="paid", length=None, method=None, status=None):
    from churnlib.schema import PAGE_METHOD_STATUS
    m, s = PAGE_METHOD_STATUS[page]
    return {"userId": uid, "sessionId": sid, "ts": ts, "page": page, "level": level,
            "method": method or m, "status": status or s, "length": length, "gender": "F"}


@pytest.fixture()
def tiny() -> pd.DataFrame:
    rows = [
        # user 1: session 10 lasts 2 h, session 11 lasts 1 h; upgrades in session 11
        _row("1", 10, 0, "NextSong", "free", 200.0),
        _row("1", 10, 1 * H, "Thumbs Up", "free"),
        _row("1", 10, 2 * H, "NextSong", "free", 100.0),
        _row("", 10, 2 * H, "Login", "free"),  # logged-out row: never counted
        _row("1", 11, 24 * H, "Roll Advert", "free"),
        _row("1", 11, 24 * H, "Submit Upgrade", "free"),
        _row("1", 11, 25 * H, "Thumbs Down", "paid"),
        # user 2: one session of 30 minutes, cancels
        _row("2", 20, 0, "NextSong", "free", 300.0),
        _row("2", 20, H // 4, "Help", "free"),
        _row("2", 20, H // 2, "Cancel", "free"),
        _row("2", 20, H // 2, "Cancellation Confirmation", "free"),
    ]
    return pd.DataFrame(rows)


def test_user_aggregates_follow_the_mini_table_definitions(tiny):
    a = user_aggregates(tiny).set_index("userId")
    assert list(a.index) == ["1", "2"]
    u1, u2 = a.loc["1"], a.loc["2"]
    assert u1["count_items"] == 6 and u2["count_items"] == 4
    assert u1["session_count"] == 2 and u1["sum_session_length_hours"] == pytest.approx(3.0)
    assert u1["avg_session_length_hours"] == pytest.approx(1.5)
    assert u1["avg_songs_session"] == pytest.approx(1.0)
    assert u1["thumbs_up_rate"] == pytest.approx(1 / 3) and u1["advert_rate"] == pytest.approx(1 / 3)
    assert u1["thumbs_up_pct"] == pytest.approx(0.5)
    assert u1["paid"] == 1 and u2["paid"] == 0  # paid: ever on the paid level
    assert u1["submit_upgrade"] == 1 and u1["churn"] == 0 and u2["churn"] == 1
    assert u1["sum_length"] == pytest.approx(300.0)
    assert u1["tenure_days"] == pytest.approx(25 / 24)
    assert u2["help_rate"] == pytest.approx(2.0)
    # mini table: non-song interactions exclude the confirmation row
    assert u2["non_song_interaction_count"] == 2
    assert u1["PUT_200_count"] == 2 and u1["GET_200_count"] == 1 and u1["PUT_307_count"] == 3


def test_page_mix_counts_only_user_rows(tiny):
    mix = page_mix(tiny)
    assert mix.sum() == pytest.approx(1.0)
    assert "Login" not in mix.index
    assert mix["NextSong"] == pytest.approx(3 / 10)


@pytest.mark.real_data
def test_aggregates_reproduce_the_real_table_identities(mini_user_features):
    real = load_real_user_features(mini_user_features)
    sim = user_aggregates(simulate_events(200, 30, seed=1))
    for df in (real, sim):
        assert np.allclose(df["next_song_rate"], df["next_song_count"] / df["sum_session_length_hours"])
        assert np.allclose(df["avg_items_session"], df["count_items"] / df["session_count"])
        assert (df["non_song_interaction_count"]
                == df["count_items"] - df["next_song_count"] - df["churn"]).all()
    assert set(real.columns) - {"split"} <= set(sim.columns)
    assert real_page_mix(real)["NextSong"] == pytest.approx(228_108 / real["count_items"].sum())


@pytest.mark.real_data
def test_load_real_user_features_errors(tmp_path, mini_user_features):
    with pytest.raises(FileNotFoundError):
        load_real_user_features(tmp_path / "absent.csv.gz")
    pd.read_csv(mini_user_features).drop(columns=["advert_rate"]).to_csv(tmp_path / "x.csv")
    with pytest.raises(KeyError, match="advert_rate"):
        load_real_user_features(tmp_path / "x.csv")


@pytest.fixture(scope="module")
def report(mini_user_features) -> FidelityReport:
    # CI size: 2,000 users x 60 days (the real table: 225 users x ~60 days), 3 seeds
    return fidelity_report(mini_user_features, n_users=2000, days=60, seeds=(1, 2, 3))


@pytest.mark.real_data
@pytest.mark.slow
def test_fidelity_distributions_within_ks_threshold(report):
    d = report.distributions.set_index("metric")
    assert list(d.index) == list(KS_METRICS)
    bad = d[d["ks_median"] > 0.15]
    assert bad.empty, f"KS above 0.15:\n{bad[['real_median', 'sim_median', 'ks_median']]}"


@pytest.mark.real_data
@pytest.mark.slow
def test_fidelity_page_mix_churn_and_paid_share(report):
    mix = report.page_mix.set_index("page")
    checked = mix[mix["checked"]]
    assert {"NextSong", "Thumbs Up", "Home", "Add to Playlist", "Roll Advert"} <= set(checked.index)
    assert (checked["rel_diff"].abs() <= 0.15).all(), checked
    s = report.summary
    assert 0.20 <= s["churn_rate"] <= 0.26
    assert abs(s["paid_share"] - s["real_paid_share"]) <= 0.05
    assert report.passed, report.failures()


@pytest.mark.real_data
@pytest.mark.slow
def test_fidelity_report_renders(report):
    text = str(report)
    for m in KS_METRICS:
        assert m in text
    assert "OVERALL: PASS" in text and "churn rate" in text
    assert "<table" in report._repr_html_()


@pytest.mark.slow
def test_churn_is_learnable_but_not_trivial():
    ev = simulate_events(3000, 60, seed=11)
    r = learnability(ev, "2018-10-31", horizon_days=21)
    assert r["positives"] >= 100
    assert 0.70 <= r["roc_auc"] <= 0.90, r
    lo, hi = r["ci95"]
    assert lo < r["roc_auc"] < hi
    sig = r["signatures"]
    # the literature's signatures: listening declines, more thumbs down and help visits
    assert sig["songs_trend"]["churners"] < sig["songs_trend"]["stayers"]
    assert sig["tdown_per_song_last14"]["churners"] > sig["tdown_per_song_last14"]["stayers"]
    assert sig["help_per_song_last14"]["churners"] > sig["help_per_song_last14"]["stayers"]
    assert sig["advert_per_song_last14"]["churners"] > sig["advert_per_song_last14"]["stayers"]
