"""Bad inputs to ``score``: each case states its exact outcome.

Either a :class:`~churnlib.load.DataValidationError` naming the file and the line and/or column (no
traceback from a library, and a previous risk file and its account left as they were), or the rows
scored with exact counts in the data-quality account and the exact rows flagged in
``input_warnings``. One tiny model (logistic regression on 300 synthetic users) serves every case.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from churnlib import models as M
from churnlib import scoring
from churnlib import thresholds as th
from churnlib.input_checks import check_input
from churnlib.load import DataValidationError
from churnlib.model import ChurnModel, feature_schema
from churnlib.outputs import OutputError

ID = "user_id"
TS0 = 1_541_105_830_796  # 2018-11-01T20:57:10.796Z
PREVIOUS = "user_id,churn_probability\nold,0.5\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """age (int, 18..90, never missing), tenure (float, sometimes missing), sessions (int, from 0), country, plan."""
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame({
        "age": rng.integers(18, 91, n).astype("int64"),
        "tenure": np.where(rng.random(n) < 0.1, np.nan, rng.exponential(300, n)),
        "sessions": rng.poisson(20, n).astype("int64"),
        "country": rng.choice(["US", "DE", "FR"], n),
        "plan": rng.choice(["basic", "premium"], n),
    })
    X.loc[0, "age"], X.loc[1, "age"] = 18, 90  # the training range is exactly 18..90
    X.loc[2, "sessions"] = 0
    y = ((X["sessions"] < 18) ^ (rng.random(n) < 0.2)).astype(int).to_numpy()
    out = tmp_path_factory.mktemp("tiny_model")
    ChurnModel(M.make_pipeline("logreg").fit(X, y), threshold=0.5, schema=feature_schema(X), id_col=ID,
               bands=th.RiskBands(medium_from=0.25, high_from=0.5)).save(out)
    return out


def base() -> pd.DataFrame:
    """Six clean users to score (file lines 2..7 in a CSV)."""
    return pd.DataFrame({
        ID: ["u1", "u2", "u3", "u4", "u5", "u6"],
        "age": [25, 40, 33, 61, 19, 50],
        "tenure": [10.5, 300.0, 42.0, 800.25, 5.0, 120.0],
        "sessions": [3, 25, 14, 30, 8, 19],
        "country": ["US", "DE", "FR", "US", "DE", "FR"],
        "plan": ["basic", "premium", "basic", "basic", "premium", "basic"],
    })


def csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)


def put(df: pd.DataFrame, row: int, col: str, value) -> pd.DataFrame:
    df = df.copy()
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        df[col] = df[col].astype(object)
    df.loc[row, col] = value
    return df


def write(name: str, content: str | bytes | pd.DataFrame) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        p = tmp / name
        if isinstance(content, pd.DataFrame):
            content.to_parquet(p, index=False)
        else:
            data = content.encode() if isinstance(content, str) else content  # bytes are written as given
            p.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") and isinstance(content, str) else data)
        return p
    return build


def event(i: int, user: str, page: str = "NextSong") -> dict:
    return {"ts": TS0 + 60_000 * i, "userId": user, "sessionId": 1, "page": page, "auth": "Logged In",
            "method": "PUT", "status": 200, "level": "free", "itemInSession": i, "location": "Tampa, FL",
            "userAgent": "Mozilla/5.0", "firstName": "A", "lastName": "B", "registration": 1_540_000_000_000,
            "gender": "F", "artist": "X", "song": "S", "length": 200.0}


def all_cancelled_log(tmp: Path) -> Path:
    rows = [event(0, "7"), event(1, "7", "Cancellation Confirmation"),
            event(2, "8"), event(3, "8", "Cancellation Confirmation")]
    p = tmp / "gone.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


@dataclass
class Case:
    name: str
    build: Callable[[Path], Path]
    kwargs: dict = field(default_factory=dict)
    kind: str = "table"                                   # "table" or "events"
    # error: (message fragment, line or None, column or None); None -> must score
    error: tuple[str, int | None, str | None] | None = None
    scored: int | None = None                             # rows in the risk file
    counts: dict[str, int] = field(default_factory=dict)  # account reason -> rows (dropped or repaired)
    flagged: dict[str, str] = field(default_factory=dict)  # id -> its exact input_warnings text
    note: str | None = None                               # a fragment of one of the account's notes


far = put(base(), 2, "age", 1e12)
dup = pd.concat([base(), base().iloc[[2]]], ignore_index=True)  # u3 again on line 8
gz_full = gzip.compress(csv_text(base()).encode(), mtime=0)

CASES = [
    Case("clean_csv", write("t.csv", csv_text(base())), scored=6),
    Case("missing_id_column", write("t.csv", csv_text(base().drop(columns=[ID]))),
         error=("no id column 'user_id'", None, ID)),
    Case("other_id_column_named", write("t.csv", csv_text(base().rename(columns={ID: "cid"}))),
         kwargs={"id_col": "cid"}, scored=6),
    Case("duplicate_ids", write("t.csv", csv_text(dup)),
         error=("duplicate id: 'u3' appears on lines 4, 8", 4, ID)),
    Case("duplicate_ids_strict", write("t.csv", csv_text(dup)), kwargs={"strict": True},
         error=("duplicate id: 'u3'", 4, ID)),
    Case("duplicate_ids_allowed", write("t.csv", csv_text(dup)), kwargs={"allow_duplicates": True}, scored=6,
         counts={"duplicate id: later row dropped (first kept)": 1, "duplicate id: first row scored, flagged": 1},
         flagged={"u3": "user_id: 1 later row(s) with this id dropped"}),
    Case("empty_id", write("t.csv", csv_text(put(base(), 3, ID, " "))), scored=5,
         counts={"no id: row dropped": 1}),
    Case("empty_id_strict", write("t.csv", csv_text(put(base(), 3, ID, " "))), kwargs={"strict": True},
         error=("empty id", 5, ID)),
    Case("unseen_category", write("t.csv", csv_text(put(base(), 1, "country", "XX"))), scored=6,
         counts={"unseen category in 'country' (scored as an unknown category)": 1},
         flagged={"u2": "country: unseen category 'XX'"}),
    Case("unseen_category_strict", write("t.csv", csv_text(put(base(), 1, "country", "XX"))),
         kwargs={"strict": True}, error=("category not seen in training", 3, "country")),
    Case("blank_int_numeric", write("t.csv", csv_text(put(base(), 4, "age", np.nan))), scored=6,
         counts={"missing value in 'age' (none in training; filled in by the model)": 1},
         flagged={"u5": "age: missing"}),
    Case("blank_int_numeric_strict", write("t.csv", csv_text(put(base(), 4, "age", np.nan))),
         kwargs={"strict": True}, error=("missing value", 6, "age")),
    Case("blank_float_numeric_usual", write("t.csv", csv_text(put(base(), 0, "tenure", np.nan))), scored=6,
         note="missing values filled in by the model, not flagged (training had missing values there too, "
              "or its schema does not say): tenure 1"),
    Case("huge_value", write("t.csv", csv_text(far)), scored=6,
         counts={"'age' far above the training range (scored as is)": 1},
         flagged={"u3": "age: 1e+12 far above training range (max 90)"}),
    Case("huge_value_strict", write("t.csv", csv_text(far)), kwargs={"strict": True},
         error=("value far above the training range (max 90)", 4, "age")),
    Case("negative_count", write("t.csv", csv_text(put(base(), 5, "sessions", -4))), scored=6,
         counts={"'sessions' far below the training range (scored as is)": 1},
         flagged={"u6": "sessions: -4 far below training range (min 0)"}),
    Case("two_problems_one_row",
         write("t.csv", csv_text(put(put(base(), 0, "country", "ZZ"), 0, "age", 5000))), scored=6,
         counts={"'age' far above the training range (scored as is)": 1,
                 "unseen category in 'country' (scored as an unknown category)": 1},
         flagged={"u1": "age: 5000 far above training range (max 90); country: unseen category 'ZZ'"}),
    Case("missing_feature_column", write("t.csv", csv_text(base().drop(columns=["sessions"]))),
         error=("missing 1 feature column(s) the model needs: ['sessions']", None, "sessions")),
    Case("header_only_csv", write("t.csv", f"{ID},age,tenure,sessions,country,plan\n"),
         error=("no rows", None, None)),
    Case("empty_csv", write("t.csv", ""), error=("empty", None, None)),
    Case("truncated_gz", write("t.csv.gz", gz_full[: len(gz_full) // 2]),
         error=("truncated or corrupt gzip file", None, None)),
    Case("gzip_csv", write("t.csv.gz", csv_text(base())), scored=6),
    Case("bom_csv", write("t.csv", b"\xef\xbb\xbf" + csv_text(base()).encode()), scored=6),
    Case("latin1_byte_lenient", write("t.csv", csv_text(put(base(), 2, "plan", "caf\u00e9")).encode("latin-1")),
         scored=5, counts={"non-UTF-8 line": 1}),
    Case("latin1_byte_strict", write("t.csv", csv_text(put(base(), 2, "plan", "caf\u00e9")).encode("latin-1")),
         kwargs={"strict": True}, error=("not UTF-8", 4, None)),
    Case("parquet_numbers_as_text", write("t.parquet", base().astype({"sessions": str})), scored=6,
         counts={"numeric text converted": 6}),
    Case("parquet_numbers_as_text_strict", write("t.parquet", base().astype({"sessions": str})),
         kwargs={"strict": True}, error=("numbers stored as text", 1, "sessions")),
    Case("stacked_table_same_user_two_dates",
         write("t.parquet", pd.concat([base().assign(as_of=pd.Timestamp("2018-11-01", tz="UTC")),
                                       base().assign(as_of=pd.Timestamp("2018-11-08", tz="UTC"))])),
         scored=12),
    Case("all_cancelled_log", all_cancelled_log, kind="events",
         error=("no current users to score: all 2 user(s) in the log cancelled", None, None)),
    Case("empty_log", write("e.jsonl", ""), kind="events", error=("empty", None, None)),
]


def _run(case: Case, model_dir: Path, src: Path, out: Path):
    kw = {"events" if case.kind == "events" else "table": src, **case.kwargs}
    try:
        return scoring.score_command(model_dir, out=out, reasons=False, **kw)
    except DataValidationError:
        raise
    except Exception as exc:  # a library error escaping is the failure being tested for
        pytest.fail(f"{type(exc).__name__} escaped instead of DataValidationError: {exc}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_to_score(case, model_dir, tmp_path):
    src = case.build(tmp_path)
    out = tmp_path / "risk.csv"
    account = tmp_path / "risk.csv.quality.json"
    out.write_text(PREVIOUS)
    account.write_text("{}")
    if case.error is not None:
        fragment, line, column = case.error
        with pytest.raises(DataValidationError) as err:
            _run(case, model_dir, src, out)
        e = err.value
        assert fragment in e.message, e.message
        assert e.file is not None and Path(e.file).name == src.name
        if line is not None:
            assert e.line == line, str(e)
        if column is not None:
            assert e.column == column, str(e)
        assert out.read_text() == PREVIOUS and account.read_text() == "{}"  # a failed run changes nothing
        return
    scored = _run(case, model_dir, src, out)
    written = pd.read_csv(out, dtype={ID: str, "cid": str}, keep_default_na=False)
    assert len(scored) == len(written) == case.scored
    quality = scored.attrs["quality"]
    saved = json.loads(account.read_text())
    assert saved["rows_scored"] == case.scored and saved["rows_kept"] == quality.rows_kept == case.scored
    assert saved["source"] == str(src)
    counts = {**quality.dropped, **quality.repaired}
    for reason, n in case.counts.items():
        assert counts.get(reason) == n, (reason, counts)
        assert quality.locations.get(reason), reason  # every count says where it first happened
    checks = ("missing value", "unseen", "duplicate", "no id", "'")
    extra = {r for r in counts if r.startswith(checks)} - set(case.counts)
    assert not extra, extra  # no scoring check fired that the case does not expect
    key = case.kwargs.get("id_col", ID)
    warn = dict(zip(written[key], written[scoring.WARNINGS_COLUMN]))
    assert {k: v for k, v in warn.items() if v} == case.flagged
    if case.note:
        assert any(case.note in n for n in quality.notes), quality.notes


def test_flagged_rows_score_as_the_model_scores_them(model_dir, tmp_path):
    """Warnings change no probability: a flagged row gets the model's own score."""
    model = ChurnModel.load(model_dir)
    frame = put(put(base(), 2, "age", 1e12), 1, "country", "XX")
    scored = scoring.score_frame(model, frame, reasons=False)
    np.testing.assert_array_equal(scored["churn_probability"], model.churn_probability(frame))
    assert list(scored[scoring.WARNINGS_COLUMN] != "") == [False, True, True, False, False, False]


@pytest.mark.parametrize("strict", [False, True])
def test_numbers_as_text_in_memory(model_dir, strict):
    """An in-memory column of number strings is converted and counted; text that is no number is flagged."""
    model = ChurnModel.load(model_dir)
    frame = base().astype({"age": str})
    frame.loc[3, "age"] = "sixty"
    if strict:
        with pytest.raises(DataValidationError, match="numbers stored as text") as err:
            check_input(model, frame, strict=True, source="mem.csv", lines=np.arange(6) + 2)
        assert (err.value.line, err.value.column, err.value.file) == (2, "age", "mem.csv")
        return
    check = check_input(model, frame)
    assert check.repaired == {"numeric column 'age' read as text: converted to numbers": 5,
                              "'age': text that is not a number read as missing": 1}
    assert check.warnings.tolist() == ["", "", "", "age: 'sixty' is not a number (read as missing)", "", ""]
    before = base().astype({"age": str})
    before.loc[3, "age"] = "sixty"
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame unchanged
    assert check.frame["age"].dtype == "float64"
    assert check.frame["age"].isna().tolist() == [False, False, False, True, False, False]


def test_output_equal_to_the_table_is_refused_before_reading(model_dir, tmp_path):
    src = tmp_path / "t.csv"
    src.write_text(csv_text(base()))
    with pytest.raises(OutputError, match="is also the input"):
        scoring.score_command(model_dir, table=src, out=src)
    assert src.read_text() == csv_text(base())


def test_far_rule_and_positions_without_lines(model_dir):
    """Just inside three training ranges above the max is drift, not an error; ids locate rows without lines."""
    model = ChurnModel.load(model_dir)
    span = 90 - 18
    frame = put(put(base(), 0, "age", 90 + 3 * span), 1, "age", 90 + 3 * span + 1)
    check = check_input(model, frame)
    assert check.warnings.tolist()[:2] == ["", f"age: {90 + 3 * span + 1} far above training range (max 90)"]
    (issue,) = check.issues
    assert (issue.rows, issue.location, issue.line) == (1, "column 'age', id 'u2'", None)
    assert check.to_dict()["issues"][0]["example"] == str(90 + 3 * span + 1)
