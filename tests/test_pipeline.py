"""Stage products with cache keys: a product is reused only when its key matches, else rebuilt or refused."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from churnlib import pipeline as P
from churnlib import training
from churnlib.datasets import default_event_log
from churnlib.features import observation_dates

PARAMS = {"as_of": "auto", "horizon_days": 14, "inactivity_days": None}


@pytest.fixture()
def two_files(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one")
    b.write_text("two")
    return a, b


def test_the_stage_table_runs_in_order_and_names_known_inputs():
    names = list(P.STAGES)
    assert names[:2] == ["events", "features"] and names[-1] == "summary"
    for i, stage in enumerate(P.STAGES.values()):
        assert stage.notebook[:2].isdigit()
        for inp in stage.inputs:  # every stage reads what an earlier one made (or the data)
            assert inp == "data" or names.index(inp) < i
    assert set(P.STAGES["features"].params) == set(PARAMS)


def test_the_key_changes_with_each_parameter_and_the_input_content(two_files):
    a, _ = two_files
    base = P.product_key("features", {"events": a}, PARAMS)
    assert base["stage"] == "features" and base["params"]["horizon_days"] == 14 and len(base["digest"]) == 64
    assert P.product_key("features", {"events": a}, dict(PARAMS))["digest"] == base["digest"]  # deterministic
    for name, value in (("as_of", ["2018-11-01"]), ("horizon_days", 7), ("inactivity_days", 10)):
        assert P.product_key("features", {"events": a}, {**PARAMS, name: value})["digest"] != base["digest"], name
    assert P.product_key("features", {"events": a}, {**PARAMS, "extra": 1})["digest"] != base["digest"]
    assert P.product_key("models", {"events": a}, PARAMS)["digest"] != base["digest"]
    a.write_text("one, edited")  # same path, other content
    assert P.product_key("features", {"events": a}, PARAMS)["digest"] != base["digest"]


def test_the_key_follows_content_not_the_path(two_files, tmp_path):
    a, b = two_files
    copy = tmp_path / "copy.txt"
    copy.write_bytes(a.read_bytes())
    key = P.product_key("features", {"events": a}, PARAMS)
    assert P.product_key("features", {"events": copy}, PARAMS)["digest"] == key["digest"]
    assert P.product_key("features", {"events": b}, PARAMS)["digest"] != key["digest"]
    # a string is taken as an already computed fingerprint, even one that names a file: paths are Paths
    assert P.product_key("features", {"events": "f00"}, PARAMS)["inputs"]["events"] == "f00"
    assert P.product_key("features", {"events": str(a)}, PARAMS)["inputs"]["events"] == str(a)


def test_equal_numbers_and_orderings_give_one_key(two_files):
    a, _ = two_files
    key = P.product_key("features", {"events": a}, PARAMS)
    assert P.product_key("features", {"events": a}, {**PARAMS, "horizon_days": 14.0})["digest"] == key["digest"]
    reordered = dict(reversed(list(PARAMS.items())))
    assert P.product_key("features", {"events": a}, reordered)["digest"] == key["digest"]
    assert P.product_key("features", {"events": a}, {**PARAMS, "horizon_days": 14.5})["digest"] != key["digest"]
    with pytest.raises(ValueError, match="unknown stage"):
        P.product_key("nope", {}, {})


def test_stale_reason_names_what_differs_and_require_refuses(two_files, tmp_path):
    a, b = two_files
    product = tmp_path / "product.csv"
    key = P.product_key("features", {"events": a}, PARAMS)
    assert "does not exist" in P.stale_reason(product, key)
    product.write_text("x\n1\n")
    assert "carries no key" in P.stale_reason(product, key)
    P.write_key(product, key)
    assert P.stale_reason(product, key) is None and P.require(product, key) == product
    assert P.read_key(product) == key
    other = P.product_key("features", {"events": a}, {**PARAMS, "horizon_days": 7})
    why = P.stale_reason(product, other)
    assert "horizon_days 14 -> 7" in why and "as_of" not in why
    with pytest.raises(P.StaleProductError, match="horizon_days 14 -> 7") as err:
        P.require(product, other)
    assert "02_features" in str(err.value) and isinstance(err.value, ValueError)
    moved = P.product_key("features", {"events": b}, PARAMS)
    assert "input events" in P.stale_reason(product, moved)


def test_read_key_is_none_for_absent_or_unreadable_keys(tmp_path):
    product = tmp_path / "t.csv"
    assert P.read_key(product) is None
    product.write_text("x\n")
    assert P.read_key(product) is None
    P.key_path(product).write_text("{broken")
    assert P.read_key(product) is None
    P.key_path(product).write_text(json.dumps({"no": "digest"}))
    assert P.read_key(product) is None
    assert P.key_path(product).name == "t.csv.key.json"


def test_write_product_stamps_a_table_and_upstream_mismatch_names_another_source(two_files, tmp_path):
    a, _ = two_files
    product = tmp_path / "drivers.csv"
    key = P.product_key("explanations", {"models": "sha-of-model-one"}, {})
    P.write_product(product, pd.DataFrame({"f": ["x"], "v": [1.0]}), key)
    assert pd.read_csv(product).to_dict("list") == {"f": ["x"], "v": [1.0]} and P.read_key(product) == key
    assert P.upstream_mismatch(product, "models", "sha-of-model-one") is None
    assert P.upstream_mismatch(product, "models", None) is None
    why = P.upstream_mismatch(product, "models", "sha-of-model-two")
    assert "another models" in why and "06_explanations" in why


# --------------------------------------------------------------------------------------------
# The scenario: features with horizon 14, then models with horizon 7
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def log(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return default_event_log(n_users=150, days=45, seed=4, output_dir=out), out


def test_models_with_another_horizon_rebuild_the_features(log):
    path, out = log
    first = P.feature_table(path, horizon_days=14, output_dir=out)  # 02_features
    assert not first.reused and first.note == "" and first.path.exists()
    assert P.read_key(first.path)["params"]["horizon_days"] == 14
    assert first.dates == observation_dates(path, 14)

    # 05_models with horizon_days=7 (as training_table is called there)
    table, id_col, label_col, text, source = training.training_table(
        None, n_users=150, days=45, seed=4, horizon_days=7, output_dir=out, feature_set=False)
    assert (id_col, label_col, source) == ("userId", "churned", first.path)
    assert "rebuilt because" in text and "horizon_days 14 -> 7" in text and "7-day label window" in text
    assert P.read_key(first.path)["params"]["horizon_days"] == 7  # the product on disk is the new one
    pd.testing.assert_frame_equal(pd.read_parquet(first.path), table)
    assert not table.equals(first.table)

    # the labels are 7-day labels: on the rows both tables hold, churn within 7 days implies within 14
    both = first.table.merge(table, on=["userId", "as_of"], suffixes=("_14", "_7"))
    assert len(both)
    assert (both["churned_7"] <= both["churned_14"]).all()
    assert both["churned_7"].mean() <= both["churned_14"].mean()
    assert table["churned"].mean() <= first.table["churned"].mean()

    # a matching call reuses it
    again = P.feature_table(path, horizon_days=7.0, output_dir=out)
    assert again.reused and again.note == "" and "reused" in again.description
    pd.testing.assert_frame_equal(again.table, table)
    _, _, _, text2, _ = training.training_table(None, n_users=150, days=45, seed=4, horizon_days=7,
                                                output_dir=out, feature_set=False)
    assert "reused (its key matches)" in text2 and "rebuilt" not in text2


def test_the_same_horizon_on_fixed_dates_gives_nested_labels(log):
    path, out = log
    dates = observation_dates(path, 14)
    t14 = P.feature_table(path, as_of=dates, horizon_days=14, output_dir=out, write=False).table
    t7 = P.feature_table(path, as_of=dates, horizon_days=7, output_dir=out, write=False).table
    assert list(t7["userId"]) == list(t14["userId"]) and (t7["churned"] <= t14["churned"]).all()
    assert t7["churned"].sum() < t14["churned"].sum()


def test_a_crash_between_table_and_key_leaves_no_old_key(log, monkeypatch):
    path, out = log
    built = P.feature_table(path, horizon_days=14, output_dir=out)
    assert P.read_key(built.path) is not None

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(P, "write_key", crash)
    with pytest.raises(OSError, match="disk full"):
        P.feature_table(path, horizon_days=10, output_dir=out)
    monkeypatch.undo()
    assert P.read_key(built.path) is None  # the new table stands unstamped, never under the old key
    assert not list(built.path.parent.glob(".*.tmp"))
    nxt = P.feature_table(path, horizon_days=14, output_dir=out)
    assert not nxt.reused and "carries no key" in nxt.note
    assert P.read_key(built.path)["digest"] == nxt.key["digest"] == built.key["digest"]
    pd.testing.assert_frame_equal(nxt.table, built.table)


def test_write_false_leaves_the_stamped_product_alone(log):
    path, out = log
    built = P.feature_table(path, horizon_days=14, output_dir=out)
    before = built.path.read_bytes()
    other = P.feature_table(path, horizon_days=7, output_dir=out, write=False)
    assert not other.reused and "horizon_days 14 -> 7" in other.note
    assert built.path.read_bytes() == before and P.read_key(built.path)["digest"] == built.key["digest"]
