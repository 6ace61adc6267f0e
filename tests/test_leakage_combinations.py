"""Tests for churnlib.leakage: labels hidden in relations across columns, and the model probe."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnlib.leakage import LeakageScreen, probe_models, relation_search, screen_leaks


def honest_table(n: int = 1500, p: int = 12, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Counts and rates with a modest churn signal, no leak."""
    rng = np.random.default_rng(seed)
    activity = rng.gamma(2.0, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(1.5 + 0.8 * (activity - 2)))).astype(int)
    cols = {f"count_{i}": rng.poisson(activity * rng.uniform(2, 30)) for i in range(p)}
    cols["hours"] = activity * 3 + rng.gamma(1.0, 1.0, n)
    cols["rate"] = cols["count_0"] / cols["hours"]
    cols["device"] = rng.choice(["ios", "android", "web"], n)
    return pd.DataFrame(cols), y


@pytest.fixture(scope="module")
def base():
    return honest_table()


def _found(screen: LeakageScreen) -> list[set]:
    return [set(c) for c in screen.combinations["columns"]]


def test_no_alarm_without_a_leak(base):
    X, y = base
    screen = screen_leaks(X, y)
    assert screen.combinations.empty
    assert screen.dropped == []
    assert not screen.probe["fired"]
    assert not screen.found
    assert "No combination" in screen.statement()


def test_difference_of_three_counts_is_found_and_stated(base):
    X, y = base
    X = X.assign(total=X["count_1"] + X["count_2"] + y)  # a total that also counts the cancellation
    screen = screen_leaks(X, y)
    assert _found(screen) == [{"total", "count_1", "count_2"}]
    row = screen.combinations.iloc[0]
    assert row["exact"] and row["kind"] == "linear" and row["auc"] == 1.0
    assert row["relation"] == "total - count_1 - count_2 equals 1 for every churner and 0 for every other user"
    assert set(screen.dropped) == {"total", "count_1", "count_2"}
    assert all("relation across columns" in screen.reasons[c] for c in screen.dropped)
    assert row["relation"] in screen.statement()


def test_complement_with_coefficients_is_found(base):
    X, y = base
    X = X.assign(other=2 * X["count_3"] - 3 * X["count_4"] + (1 - y))  # the complement, integer coefficients
    row = screen_leaks(X, y, probe=False).combinations.iloc[0]
    assert set(row["columns"]) == {"other", "count_3", "count_4"}
    assert row["exact"]
    # smallest integer coefficients, churners on the larger value
    assert "3 * count_4" in row["relation"] and "2 * count_3" in row["relation"]
    assert "equals 0 for every churner and -1 for every other user" in row["relation"] or \
        "equals 1 for every churner and 0 for every other user" in row["relation"]


def test_sum_of_two_columns_is_found(base):
    X, y = base
    X = X.assign(part=X["count_5"] * 0 + y * 7 + X["count_6"])  # part - count_6 = 7 * label
    screen = screen_leaks(X, y, probe=False)
    assert _found(screen)[0] == {"part", "count_6"}
    assert "equals 7 for every churner and 0 for every other user" in screen.combinations.iloc[0]["relation"]


def test_ratio_is_found(base):
    X, y = base
    X = X.assign(scaled=X["hours"] * (1 + y))  # scaled / hours = 2 for churners, 1 otherwise
    row = screen_leaks(X, y, probe=False).combinations.iloc[0]
    assert set(row["columns"]) == {"scaled", "hours"}
    assert row["kind"] == "log-linear"
    assert row["relation"] == "scaled / hours equals 2 for every churner and 1 for every other user"


def test_product_is_found(base):
    X, y = base
    X = X.assign(inverse=(3 - y) / X["hours"])  # inverse * hours = 2 for churners, 3 otherwise
    row = screen_leaks(X, y, probe=False).combinations.iloc[0]
    assert set(row["columns"]) == {"inverse", "hours"} and row["kind"] == "log-linear"
    assert row["relation"].endswith("equals 2 for every churner and 3 for every other user")
    assert "inverse * hours" in row["relation"] or "hours * inverse" in row["relation"]


def test_constant_within_one_class_is_found(base):
    X, y = base
    rng = np.random.default_rng(4)
    # a rate identity that holds for non-churners only: a - b - c = 0 unless churned (then 1 / hours)
    b, c = rng.gamma(2, 1, len(y)), rng.gamma(2, 1, len(y))
    X = X.assign(b=b, c=c, a=b + c + y / X["hours"])
    screen = screen_leaks(X, y, probe=False)
    assert _found(screen)[0] == {"a", "b", "c"}
    assert "equals 0 for every other user and differs from it for every churner" in \
        screen.combinations.iloc[0]["relation"]


def test_two_identities_and_minimal_subsets(base):
    X, y = base
    X = X.assign(t1=X["count_1"] + X["count_2"] + y, t2=X["count_7"] - y)
    screen = screen_leaks(X, y, probe=False)
    found = _found(screen)
    assert {"t2", "count_7"} in found and {"t1", "count_1", "count_2"} in found
    assert all(len(s) <= 3 for s in found)


def test_near_exact_identity_is_found_and_worded(base):
    X, y = base
    rng = np.random.default_rng(5)
    noise = (rng.random(len(y)) < 0.004).astype(int)  # a few rows break the identity
    X = X.assign(total=X["count_1"] + X["count_2"] + y + noise)
    row = screen_leaks(X, y, probe=False).combinations.iloc[0]
    assert set(row["columns"]) == {"total", "count_1", "count_2"}
    assert not row["exact"] and row["auc"] >= 0.99


def test_wide_identity_among_counts(base):
    X, y = base
    X = X.assign(total=X[[f"count_{i}" for i in range(1, 6)]].sum(axis=1) + y)
    screen = screen_leaks(X, y, probe=False)
    assert _found(screen) == [{"total", *[f"count_{i}" for i in range(1, 6)]}]
    assert screen.combinations.iloc[0]["kind"] == "linear, wide"


def test_never_drops_every_column():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(int)
    X = pd.DataFrame({"a": rng.poisson(5, 400).astype(float)})
    X["b"] = X["a"] + y
    screen = screen_leaks(X, y, probe=False)
    assert len(screen.combinations) == 1 and screen.dropped == []
    assert screen.settings["kept_all"]


def test_to_dict_is_json(base):
    X, y = base
    screen = screen_leaks(X.assign(total=X["count_1"] + X["count_2"] + y), y)
    d = json.loads(json.dumps(screen.to_dict()))
    assert d["combinations"][0]["columns"] and d["dropped"] == screen.dropped
    assert d["probe"]["fired"] is False and "statement" in d


def test_probe_fires_on_a_nonlinear_leak_and_names_columns():
    rng = np.random.default_rng(1)
    n = 1500
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = ((a * b) > 0).astype(int)  # no single column, no linear relation, but a tree sees it
    X = pd.DataFrame({"a": a, "b": b, **{f"n{i}": rng.normal(size=n) for i in range(5)}})
    probe = probe_models(X, y)
    assert probe["fired"] and probe["mean"]["logistic C=1"] < 0.7
    assert set(probe["top_columns"][:2]) == {"a", "b"}
    screen = screen_leaks(X, y)
    assert screen.dropped == []  # the probe reports; it does not drop
    assert "Probe fired" in screen.statement()


def test_probe_fires_when_regularisation_hides_an_identity(base):
    X, y = base
    X = X.assign(total=X["count_1"] * 50 + X["count_2"] * 50 + y)
    probe = probe_models(X, y)
    assert probe["fired"] and probe["mean"]["logistic C=1e4"] > probe["mean"]["logistic C=1"]


def test_groups_are_accepted(base):
    X, y = base
    g = np.repeat(np.arange(len(y) // 3 + 1), 3)[: len(y)]
    screen = screen_leaks(X.assign(total=X["count_1"] - X["count_2"] + y), y, g, probe=False)
    assert _found(screen) == [{"total", "count_1", "count_2"}]


def test_search_caps_columns(base):
    X, y = base
    out = relation_search(X, y, max_columns=3)
    assert out.empty


def test_timing_on_a_wide_table():
    import time
    rng = np.random.default_rng(2)
    n = 22_000
    X = pd.DataFrame(rng.poisson(rng.uniform(1, 50, 50), size=(n, 50)).astype(float),
                     columns=[f"c{i}" for i in range(50)])
    y = (rng.random(n) < 0.2).astype(int)
    X["c7"] = X["c3"] + X["c5"] - y
    start = time.perf_counter()
    screen = screen_leaks(X, y)
    assert _found(screen) == [{"c3", "c5", "c7"}]
    assert time.perf_counter() - start < 30  # a few seconds; generous for a loaded CI machine


# --- real data ----------------------------------------------------------------------------------

@pytest.fixture
def mini(mini_user_features):  # skips with the reason when ../shared/data is absent
    d = pd.read_csv(mini_user_features)
    return d.drop(columns=["userId", "churn", "split"]), d["churn"].to_numpy()


@pytest.mark.real_data
def test_mini_table_identity_and_tenure(mini):
    X, y = mini
    screen = screen_leaks(X, y)
    assert "tenure_days" in screen.dropped
    found = _found(screen)
    assert {"count_items", "next_song_count", "non_song_interaction_count"} in found
    assert {"count_items", "next_song_count", "non_song_interaction_count"} <= set(screen.dropped)
    assert ("count_items - next_song_count - non_song_interaction_count equals 1 for every churner and 0 for "
            "every other user") in screen.statement()


@pytest.mark.real_data
def test_mini_table_quiet_once_leaks_are_gone(mini):
    X, y = mini
    first = screen_leaks(X, y)
    again = screen_leaks(X.drop(columns=first.dropped), y)
    assert not again.found


@pytest.mark.real_data
def test_spotify_snapshot_no_alarm(spotify_snapshot):
    d = pd.read_csv(spotify_snapshot)
    screen = screen_leaks(d.drop(columns=["user_id", "is_churned"]), d["is_churned"].to_numpy())
    assert not screen.found and screen.dropped == []
