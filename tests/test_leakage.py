"""Tests for churnlib.features.leakage_report: single-feature AUC / correlation screening."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlib.features import leakage_report


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random(n) < 0.3).astype(int)
    return pd.DataFrame({
        "userId": [f"u{i}" for i in range(n)],
        "churned": y,
        "noise": rng.normal(size=n),
        "weak": y * 0.3 + rng.normal(size=n),
        # the label plus a little noise: both AUC and correlation are extreme
        "leak": y + rng.normal(scale=0.2, size=n),
        # ranks churners last: AUC is reported as max(auc, 1 - auc)
        "leak_reversed": -y + rng.normal(scale=0.2, size=n),
        # separates the classes perfectly but on a heavy-tailed scale: low linear correlation
        "leak_monotone": y * 10.0 ** rng.uniform(0, 6, size=n) + rng.uniform(0, 0.5, size=n),
        "category_leak": np.where(y == 1, "cancelled", "active"),
        "category_noise": rng.choice(["a", "b", "c"], size=n),
        "id_like": [f"x{i}" for i in range(n)],
        "constant": 1.0,
    })


@pytest.fixture(scope="module")
def report(table) -> pd.DataFrame:
    return leakage_report(table, "churned", exclude=("userId",)).set_index("feature")


def test_lists_every_feature_once(report, table):
    assert sorted(report.index) == sorted(set(table.columns) - {"userId", "churned"})
    assert list(report.columns) == ["kind", "n", "auc", "corr", "suspect", "reason"]


def test_planted_leaks_are_suspects(report):
    assert report.loc["leak", "auc"] > 0.95 and report.loc["leak", "corr"] > 0.7
    assert "AUC" in report.loc["leak", "reason"] and "corr" in report.loc["leak", "reason"]
    assert report.loc["leak_reversed", "suspect"]
    assert report.loc["leak_reversed", "auc"] > 0.95 and report.loc["leak_reversed", "corr"] < -0.7


def test_auc_alone_makes_a_suspect(report):
    row = report.loc["leak_monotone"]
    assert abs(row["corr"]) < 0.7 and row["auc"] >= 0.8
    assert row["suspect"] and "AUC" in row["reason"] and "corr" not in row["reason"]


def test_honest_features_are_not_suspects(report):
    for col in ["noise", "weak", "category_noise", "id_like", "constant"]:
        assert not report.loc[col, "suspect"], col
        assert report.loc[col, "reason"] == ""
    assert 0.5 <= report.loc["noise", "auc"] < 0.6
    assert report.loc["constant", "auc"] == 0.5


def test_categories_are_encoded_without_memorising_ids(report):
    assert report.loc["category_leak", "kind"] == "categorical"
    assert report.loc["category_leak", "suspect"]
    # out-of-fold encoding: unseen ids fall back to the overall rate, carrying no signal
    assert report.loc["id_like", "auc"] < 0.6


def test_suspects_come_first(report):
    flags = report["suspect"].tolist()
    assert flags == sorted(flags, reverse=True)


def test_thresholds_are_parameters(table):
    strict = leakage_report(table, "churned", exclude=("userId",), auc_threshold=0.55,
                            corr_threshold=0.99).set_index("feature")
    assert strict.loc["weak", "suspect"]
    # |corr| of the leak (about 0.9) is below the raised bar, so only its AUC is cited
    assert "AUC" in strict.loc["leak", "reason"] and "corr" not in strict.loc["leak", "reason"]


def test_missing_values_are_left_out(table):
    t = table.assign(leak=table["leak"].mask(table.index % 3 == 0))
    row = leakage_report(t, "churned", exclude=("userId",)).set_index("feature").loc["leak"]
    assert row["n"] == len(t) - (t.index % 3 == 0).sum()
    assert row["suspect"]


@pytest.mark.parametrize("label", [
    lambda y: y.astype(bool),
    lambda y: y.map({1: "yes", 0: "no"}),
])
def test_label_forms(table, label):
    t = table.assign(churned=label(table["churned"]))
    rep = leakage_report(t, "churned", exclude=("userId",)).set_index("feature")
    assert rep.loc["leak", "suspect"] and not rep.loc["noise", "suspect"]


def test_label_must_be_binary(table):
    with pytest.raises(ValueError):
        leakage_report(table.assign(churned=np.arange(len(table)) % 3), "churned")
    with pytest.raises(KeyError):
        leakage_report(table, "no_such_label")


def test_feature_table_with_a_leak_from_the_future():
    """On a built feature table, a column computed after as_of stands out; real features do not."""
    from churnlib.features import build_features
    from churnlib.labels import to_epoch_ms
    from churnlib.simulate import simulate_events

    ev = simulate_events(150, 45, seed=5)
    ev = ev.loc[ev["userId"] != ""]
    as_of, horizon = "2018-10-22", 14
    table = build_features(ev, as_of, horizon_days=horizon)
    assert table["churned"].sum() >= 5
    t = to_epoch_ms(as_of)
    future = ev.loc[(ev["ts"] >= t) & (ev["page"] == "Cancel")].groupby("userId").size()
    table["cancel_visits_next_weeks"] = table["userId"].map(future).fillna(0)
    rep = leakage_report(table, "churned", exclude=("userId", "as_of")).set_index("feature")
    assert rep.loc["cancel_visits_next_weeks", "suspect"]
    assert rep.loc["device_type", "kind"] == "categorical"
    assert rep["auc"].drop("cancel_visits_next_weeks").max() < 0.95


@pytest.mark.real_data
def test_spotify_snapshot_has_no_suspects(spotify_snapshot):
    snap = pd.read_csv(spotify_snapshot)
    rep = leakage_report(snap, "is_churned", exclude=("user_id",))
    assert len(rep) == snap.shape[1] - 2
    assert not rep["suspect"].any()
    assert set(rep.loc[rep["kind"] == "categorical", "feature"]) >= {"gender", "country"}
