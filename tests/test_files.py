"""Writing outputs safely: atomic replacement, strictly valid JSON, file hashes."""
from __future__ import annotations

import hashlib
import json
import stat

import numpy as np
import pandas as pd
import pytest

from churnlib.files import atomic_write, atomic_write_text, jsonable, sha256_file, write_json


def test_atomic_write_publishes_the_new_content(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    assert atomic_write(path, lambda tmp: open(tmp, "w").write("new")) == path
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def half(tmp):
        open(tmp, "w").write("half of the ne")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        atomic_write(path, half)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with pytest.raises(KeyboardInterrupt):  # an interrupt cleans up too
        atomic_write(path, lambda tmp: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_failing_writer_creates_nothing_when_there_was_nothing(tmp_path):
    with pytest.raises(ValueError):
        atomic_write(tmp_path / "x.parquet", lambda tmp: (_ for _ in ()).throw(ValueError("no")))
    assert not list(tmp_path.iterdir())


def test_atomic_write_text(tmp_path):
    path = atomic_write_text(tmp_path / "t.md", "naïve – text")
    assert path.read_text(encoding="utf-8") == "naïve – text"


def test_write_json_writes_nan_as_null_and_numpy_as_numbers(tmp_path):
    obj = {"auc": np.float64(0.8), "n": np.int64(3), "bad": float("nan"), "inf": np.inf, "flag": np.bool_(True),
           "when": pd.Timestamp("2018-11-01", tz="UTC"), "arr": np.array([1.0, np.nan]), "t": (1, 2), 5: "key"}
    path = write_json(tmp_path / "m.json", obj)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text)
    assert back == {"auc": 0.8, "n": 3, "bad": None, "inf": None, "flag": True,
                    "when": "2018-11-01T00:00:00+00:00", "arr": [1.0, None], "t": [1, 2], "5": "key"}


def test_write_json_refuses_what_json_cannot_hold_and_keeps_the_old_file(tmp_path):
    path = write_json(tmp_path / "m.json", {"ok": 1})
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1} and [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_jsonable_uses_to_dict():
    class Thing:
        def to_dict(self):
            return {"x": np.float32(0.5), "y": float("nan")}

    assert jsonable([Thing()]) == [{"x": 0.5, "y": None}]
    assert jsonable(float("nan")) is None and jsonable(np.float32(np.inf)) is None


def test_sha256_file_matches_hashlib_across_chunks(tmp_path):
    data = np.random.default_rng(0).bytes((1 << 20) + 123)  # more than one 1 MiB chunk
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert sha256_file(path) != hashlib.sha256(data).hexdigest()
