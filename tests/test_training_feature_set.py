"""The modelling step reads the feature set chosen by 03_feature_validation, for that table only."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from churnlib.load import data_fingerprint
from churnlib.training import apply_feature_set


def _table(tmp_path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"uid": [f"u{i}" for i in range(40)], "y": rng.integers(0, 2, 40),
                          "a": rng.normal(size=40), "b": rng.normal(size=40), "c": rng.normal(size=40)})
    src = tmp_path / "table.csv"
    table.to_csv(src, index=False)
    return table, src


def _write_set(out, src, label="y", dropped=None, features=("a", "c")):
    folder = out / "data" / "processed"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feature_set.json").write_text(json.dumps({
        "features": list(features), "id_col": "uid", "label_col": label,
        "fingerprint": data_fingerprint(src), "source": str(src),
        "dropped": dropped if dropped is not None else {"b": "redundant with a"},
        "written_by": "03_feature_validation"}))


def test_no_feature_set_keeps_the_table(tmp_path):
    table, src = _table(tmp_path)
    out, note = apply_feature_set(table, src, "y", tmp_path / "out")
    assert out.equals(table) and note == ""


def test_feature_set_of_this_table_drops_its_left_out_features(tmp_path):
    table, src = _table(tmp_path)
    _write_set(tmp_path / "out", src)
    out, note = apply_feature_set(table, src, "y", tmp_path / "out")
    assert list(out.columns) == ["uid", "y", "a", "c"]
    assert "2 features, 1 left out" in note


def test_feature_set_of_another_table_is_ignored(tmp_path):
    table, src = _table(tmp_path)
    _write_set(tmp_path / "out", src)
    other = tmp_path / "other.csv"
    table.assign(a=table["a"] + 1).to_csv(other, index=False)
    out, note = apply_feature_set(table, other, "y", tmp_path / "out")
    assert out.equals(table) and "another table" in note
    # same file, other label column: also not this selection's table
    out, note = apply_feature_set(table, src, "uid", tmp_path / "out")
    assert out.equals(table) and "another table" in note


def test_label_column_is_never_dropped(tmp_path):
    table, src = _table(tmp_path)
    _write_set(tmp_path / "out", src, dropped={"y": "oops", "b": "redundant"})
    out, _ = apply_feature_set(table, src, "y", tmp_path / "out")
    assert "y" in out.columns and "b" not in out.columns
