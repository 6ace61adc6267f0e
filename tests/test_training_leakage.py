"""Training's own screen: leaks across columns and columns that cannot be features never reach a model."""
from __future__ import annotations

import numpy as np
import pandas as pd

from churnlib.load import load_snapshot
from churnlib.model_report import leakage_sentence
from churnlib.summary import model_quality_section
from churnlib.training import run_training, split_table


def test_mini_table_identity_and_tenure_are_dropped_before_training(mini_user_features):
    table = load_snapshot(mini_user_features, id_col="userId", label_col="churn").table
    parts = split_table(table, "userId", "churn", "split")
    for col in ("tenure_days", "non_song_interaction_count", "count_items", "next_song_count"):
        assert col in parts.suspects and col not in parts.X.columns and col not in parts.X_test.columns
    relations = parts.leakage.to_dict()["combinations"]
    three = [r for r in relations if set(r["columns"]) == {"non_song_interaction_count", "count_items",
                                                           "next_song_count"}]
    assert len(three) == 1 and "for every churner" in three[0]["relation"]
    # the screen saw the training part only: the split column marks the holdout
    assert len(parts.X) == int((table["split"] == "train").sum())


def _table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    a = rng.poisson(20, n)
    b = rng.poisson(5, n)
    return pd.DataFrame({
        "user_id": [f"u{i}" for i in range(n)],
        "email": [f"person{i}@example.com" for i in range(n)],  # a second id: unique text per row
        "plan": "standard",                                      # constant
        "songs": a + rng.poisson(3, n) * y,
        "skips": b,
        "songs_plus_cancel": a + y.astype(int),                  # songs' base count plus the label
        "base_songs": a,
        "churned": y.astype(int),
    })


def test_planted_difference_and_non_features_are_kept_out_of_the_model():
    table = _table()
    result = run_training(table, "user_id", "churned", models=("dummy", "logreg"), strategies=("none",),
                          n_splits=3, search_budget=0, n_permutations=3, n_bootstrap=30, seed=0)
    used = {f["name"] for f in result.feature_schema}
    data = result.metrics()["data"]
    assert set(data["not_features"]) == {"email", "plan"}
    assert {"songs_plus_cancel", "base_songs"} <= set(data["leakage_suspects_dropped"])
    assert not used & {"email", "plan", "songs_plus_cancel", "base_songs"}
    sentence = leakage_sentence(result.metrics())
    assert "songs_plus_cancel" in sentence and "base_songs" in sentence
    assert sentence in model_quality_section(result.metrics()).text


def test_no_sentence_when_nothing_was_dropped():
    assert leakage_sentence({"data": {"leakage": {"dropped": []}}}) == ""
    assert leakage_sentence({}) == ""
