"""EDA helpers on small hand-made logs whose answers are known."""
from __future__ import annotations

import math

import matplotlib
import pandas as pd
import pytest

from churnlib import eda

matplotlib.use("Agg")
DAY = 86_400_000
T0 = 1_538_352_000_000  # 2018-10-01 00:00 UTC


def _ev(user, day, page, session=1, hour=12):
    return {"ts": T0 + day * DAY + hour * 3_600_000, "userId": user, "sessionId": session, "page": page,
            "level": "free", "itemInSession": 0}


@pytest.fixture
def events() -> pd.DataFrame:
    rows = []
    # u1 stays: 4 songs on day 0, 2 songs + a thumbs down on day 1
    rows += [_ev("u1", 0, "NextSong") for _ in range(4)]
    rows += [_ev("u1", 1, "NextSong", 2), _ev("u1", 1, "NextSong", 2), _ev("u1", 1, "Thumbs Down", 2)]
    # u2 cancels on day 1 after 2 songs and an advert; the label pages must not count as activity
    rows += [_ev("u2", 0, "NextSong", 3), _ev("u2", 0, "Roll Advert", 3), _ev("u2", 1, "NextSong", 4),
             _ev("u2", 1, "Cancel", 4), _ev("u2", 1, "Cancellation Confirmation", 4)]
    return pd.DataFrame(rows)


def test_page_mix_shares_sum_to_one_and_sort(events):
    mix = eda.page_mix(events)
    assert mix.index[0] == "NextSong"
    assert mix.loc["NextSong", "events"] == 8
    assert math.isclose(mix["share"].sum(), 1.0)


def test_daily_activity_counts(events):
    daily = eda.daily_activity(events, complete_days_only=False)
    assert daily["events"].tolist() == [6, 6]
    assert daily["songs"].tolist() == [5, 3]
    assert daily["active_users"].tolist() == [2, 2]


def test_user_activity_rates_and_labels(events):
    users = eda.user_activity(events).set_index("userId")
    assert users.loc["u1", "churned"] == 0 and users.loc["u2", "churned"] == 1
    # label pages are excluded from activity: u2 has 3 events, not 5
    assert users.loc["u2", "events"] == 3
    assert users.loc["u1", "songs_per_active_day"] == 3.0
    assert users.loc["u1", "thumbs_down_per_100_songs"] == pytest.approx(100 / 6)
    assert users.loc["u2", "adverts_per_100_songs"] == pytest.approx(50.0)


def test_churn_rate_wilson_interval():
    r = eda.churn_rate(pd.Series([1] * 52 + [0] * 173))
    p, n, z = 52 / 225, 225, 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert r.value == pytest.approx(p)
    assert r.interval == pytest.approx((centre - half, centre + half), abs=1e-4)
    assert "52 of 225" in str(r)


def test_compare_groups_effect_sign():
    table = pd.DataFrame({"x": [5, 6, 7, 1, 2, 3], "churned": [1, 1, 1, 0, 0, 0]})
    out = eda.compare_groups(table, ["x"])
    assert out.loc["x", "effect (rank-biserial)"] == pytest.approx(1.0)
    flipped = eda.compare_groups(table.assign(churned=1 - table["churned"]), ["x"])
    assert flipped.loc["x", "effect (rank-biserial)"] == pytest.approx(-1.0)


def test_figure_titles_state_the_finding(events):
    fig = eda.plot_page_mix(eda.page_mix(events))
    assert fig.axes[0].get_title().startswith("NextSong is 67% of all events")
    table = pd.DataFrame({"x": [5, 6, 7, 1, 2, 3], "churned": [1, 1, 1, 0, 0, 0]})
    table["group"] = table["churned"].map({1: "churned", 0: "retained"})
    fig = eda.plot_group_distributions(table, ["x"], eda.compare_groups(table, ["x"]))
    assert fig._suptitle.get_text().startswith("Churned users have higher x")


def test_daily_activity_leaves_out_partial_edge_days():
    rows = [_ev("u1", d, "NextSong", hour=h) for d in range(4) for h in (0, 12, 23)] + [_ev("u1", 4, "NextSong", hour=0)]
    full = eda.daily_activity(pd.DataFrame(rows), complete_days_only=False)
    trimmed = eda.daily_activity(pd.DataFrame(rows))
    assert len(full) == 5 and len(trimmed) == 4  # day 4 holds one event at 00:00: the log's cut-off
    assert trimmed.index.equals(full.index[:4])


def test_group_plot_says_when_one_group_is_missing():
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0], "churned": [0, 0, 0]})
    table["group"] = "retained"
    comparison = eda.compare_groups(table, ["x"])
    assert comparison["effect (rank-biserial)"].isna().all()
    fig = eda.plot_group_distributions(table, ["x"], comparison)
    assert fig._suptitle.get_text() == "No comparison possible: the data holds only retained users"


def test_churn_statement_names_missing_classes():
    assert eda.churn_statement(eda.churn_rate(pd.Series([0] * 97))).startswith("**No user churned** in this data (0 of 97")
    assert eda.churn_statement(eda.churn_rate(pd.Series([1] * 3))).startswith("**Every user churned**")
    assert eda.churn_statement(eda.churn_rate(pd.Series([1, 0, 0, 0]))).startswith("**25.0% (95% CI")


def test_data_quality_table_shows_blanks_numeric_text_labels_and_not_features(tmp_path):
    from churnlib.load import load_table

    rows = ["user_id,email,age,plan,is_churned"]
    rows += [f"{i},u{i}@x.org,{' ' if i == 3 else 20 + i},basic,{'Yes' if i % 2 else 'No'}" for i in range(1, 26)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    snap = load_table(path, id_col="user_id", label_col="is_churned")
    dq = eda.data_quality_table(snap.quality, snap.not_features).set_index("reason")
    assert dq.loc["kept", "rows"] == 25
    assert dq.loc["blank value read as missing", ["outcome", "rows"]].tolist() == ["repaired", 1]
    assert dq.loc["blank value read as missing", "first_at"] == "line 4, column 'age'"
    spelled = "label 'is_churned' spelled 'No'/'Yes' mapped to 1/0"
    assert dq.loc[spelled, "rows"] == 25
    not_feat = dq[dq["outcome"] == "not a feature"].index.tolist()
    assert any(r.startswith("email: unique text") for r in not_feat)
    assert any(r.startswith("plan: constant") for r in not_feat)
    assert not any("is not a feature" in r for r in dq[dq["outcome"] == "note"].index)


def test_data_quality_table_shows_numeric_text_conversion(tmp_path):
    from churnlib.load import load_table

    path = tmp_path / "t.parquet"
    pd.DataFrame({"user_id": ["a", "b", "c"], "age": ["30", "41", "52"]}).to_parquet(path)
    snap = load_table(path, id_col="user_id")
    dq = eda.data_quality_table(snap.quality, snap.not_features)
    row = dq[dq["reason"] == "numeric text converted"].iloc[0]
    assert row["rows"] == 3 and row["first_at"] == "row 1, column 'age'"
    assert dq["reason"].str.contains("numbers stored as text").any()
