"""The dashboard's products loader and its streamlit-free views (pages 1-3).

The products tree is made once per module by the project's own functions, as ``make report`` makes it
(the session's ``sim_trained`` model, :func:`churnlib.scoring.score_frame` for the risk scores, the
summary's functions for its key numbers): :func:`products_tree`. ``tests/test_dashboard_pages.py``
imports it for the AppTest runs.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnlib import summary
from churnlib.dashboard import products as prod
from churnlib.dashboard import views
from churnlib.model import ChurnModel
from tests.dashboard_tree import LOG_NAME
from churnlib.scoring import REASON_COLUMNS

@pytest.fixture(scope="module")
def products_tree(dashboard_tree) -> Path:
    return dashboard_tree


@pytest.fixture(scope="module")
def loaded(products_tree) -> prod.Products:
    return prod.load_products(products_tree)


# --------------------------------------------------------------------------------------------
# load_products, products_signature
# --------------------------------------------------------------------------------------------

def test_load_products_reads_every_product_and_joins_level_and_device(loaded, products_tree, sim_trained):
    _, table = sim_trained
    assert loaded.missing == ("monitoring results (`monitoring.json` was not written)",)
    assert loaded.id_col == "userId" and loaded.kind == "events"
    assert loaded.events_path == products_tree / "data" / "raw" / LOG_NAME
    scored = pd.read_parquet(products_tree / "data" / "processed" / "risk_scores.parquet")
    assert len(loaded.risk) == len(scored) == table.loc[table["as_of"] == table["as_of"].max(), "userId"].nunique()
    assert loaded.risk["churn_probability"].is_monotonic_decreasing
    # level and device come from each user's LATEST feature row
    latest = table.sort_values("as_of").groupby("userId").tail(1).set_index("userId")
    for _, r in loaded.risk.sample(20, random_state=0).iterrows():
        row = latest.loc[r["userId"]]
        assert r[prod.LEVEL_COLUMN] == {1: "paid", 0: "free"}[int(row["level_paid"])]
        assert r[prod.DEVICE_COLUMN] == row["device_type"]
    assert len(loaded.features) == len(table) and not loaded.drivers.empty
    assert loaded.key_numbers["09_summary"]["Rows kept"]
    assert loaded.metrics["data"]["id_col"] == "userId"


def test_missing_pieces_are_named_and_pages_get_a_plain_message(products_tree, tmp_path):
    root = tmp_path / "partial"
    shutil.copytree(products_tree, root)
    (root / "data" / "processed" / "risk_scores.parquet").unlink()
    shutil.rmtree(root / "reports")
    p = prod.load_products(root)
    assert p.risk.empty and not p.ok
    assert any(m.startswith("risk scores (`risk_scores.parquet` was not written)") for m in p.missing)
    assert any(m.startswith("stakeholder summary's key numbers") for m in p.missing)
    msg = views.missing_message(p, ["risk"])
    assert "risk scores" in msg and "make report" in msg
    assert views.missing_message(p, ["features", "model"]) is None
    empty = prod.load_products(tmp_path / "nothing")
    assert {m.split(" (")[0] for m in empty.missing} >= {"model", "model metrics", "risk scores", "feature table",
                                                          "event log"}


def test_risk_scores_of_another_model_count_as_missing(products_tree, tmp_path):
    root = tmp_path / "stale"
    shutil.copytree(products_tree, root)
    manifest = root / "models" / "churn_model.manifest.json"
    m = json.loads(manifest.read_text())
    m["sha256"] = "0" * 64  # as if models/ now held another model
    manifest.write_text(json.dumps(m))
    p = prod.load_products(root)
    assert p.risk.empty and any(x.startswith("risk scores (") and "model" in x for x in p.missing)


def test_signature_changes_when_a_product_changes(products_tree, tmp_path):
    root = tmp_path / "sig"
    shutil.copytree(products_tree, root)
    before = prod.products_signature(root)
    assert before == prod.products_signature(root)
    drivers = root / "data" / "processed" / "drivers.csv"
    drivers.write_text(drivers.read_text() + "\n")
    after = prod.products_signature(root)
    assert after != before
    changed = [a for a, b in zip(after, before) if a != b]
    assert [c[0] for c in changed] == [str(drivers)]
    (root / "reports" / "key_numbers" / "10_retention.json").write_text("{}")
    assert prod.products_signature(root) != after


def test_event_log_found_from_the_report_parameters(products_tree, tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for name in ("simulated_u300_d60_s7_a.parquet", "simulated_u2000_d60_s7_a.parquet"):
        (raw / name).write_bytes(b"")
    executed = tmp_path / "reports" / "executed"
    executed.mkdir(parents=True)
    cells = [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["data = None\n", "n_users = 300\n",
                                                                                    "days = 60\n", "seed = 7\n"]},
             {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": ["n_users = 2000\n"]}]
    (executed / "02_features.ipynb").write_text(json.dumps({"cells": cells}))
    assert prod.report_parameters(tmp_path) == {"data": None, "n_users": 2000, "days": 60, "seed": 7}
    assert prod.find_event_log(tmp_path) == (raw / "simulated_u2000_d60_s7_a.parquet", "events")
    snapshot = tmp_path / "users.csv"
    pd.DataFrame({"user_id": [1, 2], "is_churned": [0, 1], "x": [1.0, 2.0]}).to_csv(snapshot, index=False)
    assert prod.find_event_log(tmp_path, {"data": str(snapshot)}) == (None, "snapshot")


def test_synthetic_products_scale_the_risk_list(products_tree, tmp_path):
    root = prod.synthetic_products(tmp_path / "big", n_users=1_000, seed=1, source=products_tree)
    p = prod.load_products(root)
    small = prod.load_products(products_tree)
    assert p.missing == small.missing and len(p.risk) == 1_000 and p.risk["userId"].is_unique
    assert set(p.risk["risk_band"]) <= {"high", "medium", "low"}
    assert set(small.risk["userId"]) <= set(p.risk["userId"])  # the originals keep their ids (and log)
    latest = p.features[p.features["as_of"] == p.features["as_of"].max()]
    assert set(latest["userId"]) == set(p.risk["userId"])


# --------------------------------------------------------------------------------------------
# views: overview
# --------------------------------------------------------------------------------------------

def test_overview_says_what_the_summary_says(loaded):
    o = views.overview(loaded)
    kn = loaded.key_numbers["09_summary"]
    assert o.churn_rate == kn["Churn rate"]
    assert o.sections["trend"].numbers["Churn trend"] == kn["Churn trend"]  # same table, seed and words
    assert o.data_quality == f"Rows kept: {kn['Rows kept']}"
    assert o.sections["risk"].numbers["High-risk users"] == kn["High-risk users"]
    assert o.sections["quality"].numbers.get("Holdout ROC-AUC") == kn.get("Holdout ROC-AUC")
    assert o.sections["changes"].available is False or "Not available" in o.sections["changes"].text
    counts = loaded.risk["risk_band"].value_counts()
    assert o.bands.set_index("band")["users"].to_dict() == {b: int(counts.get(b, 0)) for b in views.BAND_ORDER}
    assert o.title.startswith(o.sections["risk"].title)
    ivs = views.trend_intervals(o.trend)
    assert all(iv.low <= iv.value <= iv.high for iv in ivs) and len(ivs) == loaded.features["as_of"].nunique()


# --------------------------------------------------------------------------------------------
# views: the at-risk list, exact against pandas
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def risk(loaded) -> pd.DataFrame:
    return views.risk_table(loaded)


def test_risk_table_segments_and_reason_features(risk, loaded):
    assert len(risk) == len(loaded.risk)
    first = risk.iloc[0]
    assert first["_reasons"] == tuple(str(first[r]).split(":")[0] for r in REASON_COLUMNS if isinstance(first[r], str))
    fam = risk["reason_1"].map(summary.reason_family)
    direct = fam != summary.OTHER_SEGMENT[0]
    assert (risk.loc[direct, "segment"] == fam[direct]).all()
    assert views.reason_feature("songs 30d: 2, typical 540 (raises risk)") == "songs 30d"
    assert views.reason_feature(None) is None


@pytest.mark.parametrize("kw", [
    {"bands": ["high"]},
    {"bands": ["medium", "low"], "levels": ["paid"]},
    {"devices": ["mobile"], "sort": "user id"},
    {"levels": ["free"], "sort": "churn probability (lowest first)"},
    {"bands": ["high", "medium"], "sort": "risk band, then probability"},
])
def test_filters_and_sort_match_pandas(risk, kw):
    got = views.filter_risk(risk, **kw)
    want = risk
    if kw.get("bands"):
        want = want[want["risk_band"].isin(kw["bands"])]
    if kw.get("levels"):
        want = want[want["level"].isin(kw["levels"])]
    if kw.get("devices"):
        want = want[want["device"].isin(kw["devices"])]
    sort = kw.get("sort", "churn probability (highest first)")
    if sort == "user id":
        want = want.sort_values("userId", kind="stable")
    elif sort == "churn probability (lowest first)":
        want = want.sort_values(["churn_probability", "userId"], ascending=[True, True], kind="stable")
    elif sort == "risk band, then probability":
        rank = want["risk_band"].map({"high": 0, "medium": 1, "low": 2})
        want = want.assign(_r=rank).sort_values(["_r", "churn_probability", "userId"],
                                                ascending=[True, False, True], kind="stable").drop(columns="_r")
    else:
        want = want.sort_values(["churn_probability", "userId"], ascending=[False, True], kind="stable")
    assert got["userId"].tolist() == want["userId"].tolist()
    assert 0 < len(got) <= len(risk)


def test_reason_filter_and_search(risk):
    feature = risk["_reasons"].explode().value_counts().index[0]
    got = views.filter_risk(risk, reasons=[feature])
    mask = np.column_stack([risk[r].fillna("").str.startswith(feature + ":") for r in REASON_COLUMNS]).any(axis=1)
    assert set(got["userId"]) == set(risk.loc[mask, "userId"]) and 0 < len(got) < len(risk)
    user = risk["userId"].iloc[len(risk) // 2]
    found = views.filter_risk(risk, search=f"  {user.upper()} ")
    assert user in set(found["userId"])
    assert found["userId"].str.lower().str.contains(user.lower(), regex=False).all()
    assert views.filter_risk(risk, search="no such user id").empty
    assert len(views.filter_risk(risk)) == len(risk)


def test_risk_csv_round_trips_the_listed_users(risk):
    rows = views.filter_risk(risk, bands=["high", "medium"])
    back = pd.read_csv(pd.io.common.BytesIO(views.risk_csv(rows)), dtype={"userId": str})
    assert back["userId"].tolist() == rows["userId"].tolist()
    assert not any(c.startswith("_") for c in back.columns) and "segment" in back.columns
    np.testing.assert_allclose(back["churn_probability"], rows["churn_probability"])


# --------------------------------------------------------------------------------------------
# views: one user
# --------------------------------------------------------------------------------------------

def test_risk_history_scores_the_stored_rows_and_matches_the_risk_list(loaded):
    model = ChurnModel.load(loaded.model_dir)
    user = str(loaded.risk["userId"].iloc[0])
    h = views.risk_history(loaded, model, user)
    rows = loaded.features[loaded.features["userId"] == user]
    assert len(h) == len(rows) and h["as_of"].is_monotonic_increasing
    assert h["churn_probability"].iloc[-1] == pytest.approx(loaded.risk["churn_probability"].iloc[0])
    assert h["risk_band"].iloc[-1] == loaded.risk["risk_band"].iloc[0]
    assert views.risk_history(loaded, model, "no such user").empty


def test_user_reasons_quote_the_risk_list_words(loaded):
    model = ChurnModel.load(loaded.model_dir)
    r = loaded.risk.iloc[0]
    reasons = views.user_reasons(loaded, model, str(r["userId"]), k=8)
    raising = reasons[reasons["effect"] == "raises risk"]
    assert reasons["push"].abs().is_monotonic_decreasing
    stored = [r[c] for c in REASON_COLUMNS if isinstance(r[c], str)]
    # the strongest risk-raising features are the stored reasons, in the same words
    assert raising["reason"].head(len(stored)).tolist() == stored
    assert set(reasons.columns) >= {"user's value", "typical value"}


def test_activity_log_newest_first_with_the_right_kinds(loaded):
    path = loaded.events_path
    pages = pd.read_parquet(path, columns=["userId", "page"])
    user = pages.loc[pages["page"] == "Thumbs Up", "userId"].value_counts().index[0]
    events = pd.read_parquet(path, filters=[("userId", "==", user)])
    full = views.activity_log(path, user, limit=100_000)
    assert full.total == len(events) and full.note == f"showing {len(events):,} of {len(events):,} events"
    assert full.frame["time"].is_monotonic_decreasing
    assert full.frame["time"].iloc[0] == pd.to_datetime(events["ts"].max(), unit="ms", utc=True)
    want = events["page"].map(views.page_kind).value_counts().to_dict()
    assert full.counts == want and list(full.counts) == [k for k in views.KIND_ORDER if k in want]
    thumbs = views.activity_log(path, user, kinds=["thumbs", "login"], limit=10)
    n = int(events["page"].isin(["Thumbs Up", "Thumbs Down", "Login", "Logout", "Register",
                                 "Submit Registration"]).sum())
    assert thumbs.total == n and len(thumbs.frame) == min(10, n)
    assert set(thumbs.frame["kind"]) <= {"thumbs", "login"}
    assert thumbs.note == f"showing {min(10, n):,} of {n:,} events"
    assert thumbs.frame["time"].tolist() == full.frame.loc[full.frame["kind"].isin(["thumbs", "login"]),
                                                          "time"].head(10).tolist()
    none = views.activity_log(path, "no such user")
    assert none.total == 0 and none.note == "no events for this user in the log"
    snap = views.activity_log(None, user)
    assert snap.frame.empty and "snapshot" in snap.note


def test_activity_log_reads_ndjson_too(tmp_path, loaded):
    path = loaded.events_path
    user = str(loaded.risk["userId"].iloc[0])
    events = pd.read_parquet(path, filters=[("userId", "==", user)])
    nd = tmp_path / "log.jsonl"
    events.to_json(nd, orient="records", lines=True)
    a = views.activity_log(nd, user, limit=50)
    assert a.total == len(events) and a.frame["time"].is_monotonic_decreasing


def test_user_ids_scored_first_then_the_rest(loaded):
    ids = views.user_ids(loaded)
    scored = loaded.risk["userId"].astype(str).tolist()
    assert ids[:len(scored)] == scored
    assert set(ids) == set(loaded.features["userId"].astype(str)) and len(ids) == len(set(ids))
