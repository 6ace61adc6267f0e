"""The loaders on the real data in ../shared/data (skipped with a reason when absent)."""
from __future__ import annotations

import pytest

from churnlib.load import data_fingerprint, detect_kind, load_events, load_snapshot

pytestmark = pytest.mark.real_data

# From ../shared/data/README.md: page counts over all 8,056 rows read (guest rows included).
SAMPLE_PAGES = {
    "NextSong": 6820, "Home": 806, "Login": 92, "Logout": 90, "Downgrade": 60, "Settings": 56,
    "Help": 47, "About": 36, "Upgrade": 21, "Save Settings": 10, "Error": 9, "Submit Upgrade": 8,
    "Submit Downgrade": 1,
}


@pytest.mark.parametrize("strict", [False, True])
def test_event_sample(event_sample, strict):
    log = load_events(event_sample, strict=strict)
    q = log.quality
    assert q.rows_read == 8056
    assert q.dropped == {"logged-out/guest row with empty userId": 286}
    assert q.repaired == {}
    assert q.rows_kept == 8056 - 286 == len(log.events)
    assert log.events["userId"].nunique() == 97
    assert (log.events["userId"] != "").all()
    assert log.page_counts_read.to_dict() == SAMPLE_PAGES
    assert log.events["auth"].value_counts().to_dict() == {"Logged In": 7770}
    assert log.events["ts"].is_monotonic_increasing
    assert log.events["registration"].notna().all()
    assert detect_kind(event_sample) == "events"


def test_event_sample_is_deterministic(event_sample):
    a, b = load_events(event_sample).events, load_events(event_sample).events
    assert a.equals(b)
    assert data_fingerprint(event_sample) == data_fingerprint(event_sample)


def test_spotify_snapshot(spotify_snapshot):
    snap = load_snapshot(spotify_snapshot, strict=True)
    assert len(snap.table) == 8000 and snap.table["user_id"].is_unique
    assert snap.table["is_churned"].sum() == 2071
    assert snap.table.isna().sum().sum() == 0
    assert snap.quality.rows_read == 8000 and snap.quality.dropped == {}
    assert str(snap.table["skip_rate"].dtype) == "float64"
    assert detect_kind(spotify_snapshot) == "snapshot"


def test_mini_user_features(mini_user_features):
    snap = load_snapshot(mini_user_features, id_col="userId", label_col="churn", strict=True)
    assert len(snap.table) == 225 and snap.table["userId"].is_unique
    assert snap.table["churn"].sum() == 52
    # sums of the count columns are the page totals of the mini log (README)
    assert snap.table["next_song_count"].sum() == 228_108
    assert snap.table["thumbs_up_count"].sum() == 12_551
    assert snap.table["thumbs_down_count"].sum() == 2_546
    assert snap.table["advert_count"].sum() == 3_933


def test_real_tables_need_no_repairs_and_keep_every_feature(spotify_snapshot, mini_user_features):
    from churnlib.load import load_table

    for path, id_col, label_col in ((spotify_snapshot, "user_id", "is_churned"),
                                    (mini_user_features, "userId", "churn")):
        snap = load_snapshot(path, id_col=id_col, label_col=label_col)
        assert snap.quality.repaired == {} and snap.quality.dropped == {}
        assert snap.not_features == {} and snap.quality.notes == []
        assert "kept" in snap.quality.text() and snap.quality.to_dict()["rows_kept"] == len(snap.table)
        bare = load_table(path, id_col=id_col)  # no label: the same rows and values
        assert bare.label_col is None and len(bare.table) == len(snap.table)
        assert bare.table.drop(columns=label_col).equals(snap.table.drop(columns=label_col))


def test_event_sample_account_text(event_sample):
    q = load_events(event_sample).quality
    assert q.locations == {"logged-out/guest row with empty userId": "line 187"}
    assert q.text().splitlines()[1] == "  dropped 286: logged-out/guest row with empty userId (first at line 187)"
