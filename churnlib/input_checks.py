"""Check a table to be scored against a model's feature schema, row by row, without printing.

:func:`check_input` is what ``python -m churnlib score`` (and later the prediction service) runs on
its input before the model sees it. It returns an :class:`InputCheck`: the rows to score (text
numbers converted, duplicate or id-less rows removed when that is allowed), one plain-words warning
text per row (``input_warnings`` in the risk file) and the structured list of :class:`InputIssue`.
:meth:`InputCheck.apply_to` adds the counts to a :class:`churnlib.load.DataQuality` account.

Rules (lenient outcome; ``strict=True`` raises :class:`~churnlib.load.DataValidationError` naming
the file, line and column of the first such row instead):

==========================================  ===============================================================
input                                       outcome
==========================================  ===============================================================
no id column                                error (both modes): the file and the missing column
row with an empty id                        dropped and counted (``"no id: row dropped"``)
id seen on an earlier row (same ``as_of``)  error naming the first repeated id and its lines; with
                                            ``allow_duplicates=True`` the first row of each id is
                                            scored, later ones are dropped and counted, and the
                                            kept row is flagged
missing feature columns                     error (both modes) naming them
numeric feature read as text                converted to numbers and counted; text that is not a
                                            number becomes missing, counted and flagged
unseen category                             counted and flagged (the model treats it as unknown)
missing value                               counted and flagged where training had none
                                            (:func:`never_missing`); elsewhere (engineered ratios
                                            are often missing) left to the model, in a note
value far outside the training range        counted and flagged (see :data:`FAR_RANGES`)
==========================================  ===============================================================

A stacked feature table (``churnlib features``: one row per user and observation date) holds a
user once per date: when the table has an ``as_of`` column, a row's key is ``(id, as_of)``.

*Far outside the training range* (numeric features with a recorded min and max): above
``max + FAR_RANGES * (max - min)``, below ``min - FAR_RANGES * (max - min)``, or negative where
every training value was at least zero; a constant training column uses ``max(|value|, 1)`` as its
range; ``inf`` is always far. New data drifts a little beyond the training range all the time
(more songs than anyone played before); three whole ranges beyond it is a unit or entry error
(an age of ``1e12``), not drift.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from churnlib.load import DataQuality, DataValidationError

__all__ = ["FAR_RANGES", "MAX_FLAGS_PER_ROW", "InputCheck", "InputIssue", "check_input", "never_missing", "row_key"]

#: A value is *far* outside the training range beyond this many training ranges past min or max.
FAR_RANGES = 3.0
#: At most this many problems are spelled out in one row's ``input_warnings`` (then "and N more").
MAX_FLAGS_PER_ROW = 4
_AS_OF = "as_of"


@dataclass
class InputIssue:
    """One kind of problem in one column, over all the rows that have it.

    Attributes
    ----------
    check : str
        ``"no id"``, ``"duplicate id"``, ``"numeric text"``, ``"not a number"``,
        ``"unseen category"``, ``"missing value"`` or ``"far outside range"``.
    column : str
        The column concerned.
    reason : str
        The account's reason in plain words (a key of ``DataQuality.repaired`` or ``.dropped``).
    rows : int
        Rows concerned.
    location : str
        The first one, e.g. ``"line 7, column 'age' (id 'u3')"``.
    line : int or None
        Its line (CSV) or row (parquet) number, when known.
    example : str or None
        Its value, as text.
    flagged : bool
        The rows carry a warning in ``input_warnings``.
    dropped : bool
        The rows were left out of scoring.
    """

    check: str
    column: str
    reason: str
    rows: int
    location: str
    line: int | None = None
    example: str | None = None
    flagged: bool = True
    dropped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return {"check": self.check, "column": self.column, "reason": self.reason, "rows": int(self.rows),
                "location": self.location, "line": self.line, "example": self.example,
                "flagged": self.flagged, "dropped": self.dropped}


@dataclass
class InputCheck:
    """What :func:`check_input` found.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows to score (index 0..n-1): dropped rows left out, numeric text converted. The
        caller's frame is never changed.
    id_col : str
        Its id column (ids as text).
    key : list of str
        Columns that identify a row: ``[id_col]``, plus ``as_of`` for a stacked feature table.
    warnings : pandas.Series
        Per row of :attr:`frame`: ``""`` or the problems in plain words, e.g.
        ``"country: unseen category 'XX'; age: 1e+12 far above training range (max 90)"``.
    issues : list of InputIssue
        One entry per (check, column), in column order.
    notes : list of str
        Things worth knowing that are not row counts.
    rows_in : int
        Rows given.
    usual_missing : dict of str to int
        Feature -> rows (scored) missing a value where that is not unusual (see :func:`never_missing`):
        left to the model, in a note rather than counted as repairs, not flagged.
    """

    frame: pd.DataFrame
    id_col: str
    key: list[str]
    warnings: pd.Series
    issues: list[InputIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows_in: int = 0
    usual_missing: dict[str, int] = field(default_factory=dict)

    @property
    def rows_out(self) -> int:
        """Rows to score."""
        return len(self.frame)

    @property
    def rows_flagged(self) -> int:
        """Rows with a warning."""
        return int((self.warnings != "").sum())

    @property
    def dropped(self) -> dict[str, int]:
        """Reason -> rows left out."""
        return {i.reason: i.rows for i in self.issues if i.dropped}

    @property
    def repaired(self) -> dict[str, int]:
        """Reason -> rows scored with a problem (converted, flagged or counted)."""
        return {i.reason: i.rows for i in self.issues if not i.dropped}

    def apply_to(self, quality: DataQuality, *, per: str | None = None) -> DataQuality:
        """Add these checks to a load account (in place) and return it.

        Drops move rows from kept to dropped; every other issue is a repair with its first
        location; a note gives the number of flagged rows.

        Parameters
        ----------
        quality : churnlib.load.DataQuality
            The account of the rows checked.
        per : str, optional
            When the checked rows are not the account's rows (users built from an event log:
            ``per="users"``), the counts are added with ``" (users)"`` after each reason and
            nothing is dropped from the account's rows.
        """
        suffix = f" ({per})" if per else ""
        for issue in self.issues:
            reason = issue.reason + suffix
            if issue.dropped and not per:
                quality.dropped[reason] = quality.dropped.get(reason, 0) + int(issue.rows)
                quality.rows_kept -= int(issue.rows)
                quality.locations.setdefault(reason, issue.location)
            else:
                quality.add_repair(reason, issue.rows, issue.location)
        for note in self.notes:
            quality.add_note(note)
        if self.rows_flagged:
            quality.add_note(f"{self.rows_flagged:,} of {self.rows_out:,} scored {per or 'rows'} flagged in "
                             "input_warnings")
        return quality

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no rows): counts, issues and notes."""
        return {"rows_in": int(self.rows_in), "rows_out": self.rows_out, "rows_flagged": self.rows_flagged,
                "id_col": self.id_col, "key": list(self.key), "issues": [i.to_dict() for i in self.issues],
                "notes": list(self.notes), "usual_missing": dict(self.usual_missing)}


def never_missing(feature: dict[str, Any]) -> bool:
    """Whether training had no missing value in this feature, so that a missing one is worth a flag.

    Read from the schema's ``n_missing`` when it records one; otherwise only an integer or boolean
    training dtype (``int64``, ``bool``: NumPy types that cannot hold a missing value) says so.
    Engineered ratios (``skip_rate_7d``) are legitimately missing for many users: without this
    rule a third of all rows would carry a warning.
    """
    if feature.get("n_missing") is not None:
        return int(feature["n_missing"]) == 0
    dtype = str(feature.get("dtype", ""))
    return dtype in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def row_key(frame: pd.DataFrame, id_col: str) -> list[str]:
    """Columns identifying a row: the id, plus ``as_of`` when the table has one (a stacked feature table)."""
    return [id_col] + ([_AS_OF] if _AS_OF in frame.columns and id_col != _AS_OF else [])


def _schema_of(model_or_schema: Any) -> tuple[list[dict[str, Any]], str | None]:
    schema = getattr(model_or_schema, "schema", model_or_schema)
    return list(schema), getattr(model_or_schema, "id_col", None)


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return str(v)


def _ids_as_text(s: pd.Series) -> pd.Series:
    """Ids as strings; integral floats (ids read from a column with gaps) without their ``.0``."""
    if pd.api.types.is_float_dtype(s):
        integral = s.notna() & np.isfinite(s) & (s % 1 == 0)
        if integral[s.notna()].all():
            s = s.astype("Int64")
    out = s.astype("string").str.strip()
    return out.mask(out == "", pd.NA)


class _Collector:
    """Gathers issues and per-row flags while the checks run (positions are in the input frame)."""

    def __init__(self, n: int, source: str | None, lines: np.ndarray | None, unit: str, ids: pd.Series,
                 strict: bool) -> None:
        self.n, self.source, self.lines, self.unit, self.ids, self.strict = n, source, lines, unit, ids, strict
        self.issues: list[InputIssue] = []
        self.flags: dict[int, list[str]] = {}
        self.first_strict: tuple[int, str, str] | None = None

    def line(self, pos: int) -> int | None:
        return None if self.lines is None else int(self.lines[pos])

    def where(self, pos: int, column: str | None = None) -> str:
        parts = [] if self.lines is None else [f"{self.unit} {self.line(pos)}"]
        if column:
            parts.append(f"column {column!r}")
        ident = self.ids.iloc[pos]
        if pd.notna(ident):
            parts.append(f"id {ident!r}")
        return ", ".join(parts) or f"row {pos + 1}"

    def error(self, message: str, pos: int | None, column: str | None) -> DataValidationError:
        return DataValidationError(message, file=self.source, line=None if pos is None else self.line(pos),
                                   column=column)

    def add(self, check: str, column: str, reason: str, mask: np.ndarray, *, values: pd.Series | None = None,
            words: Callable[[Any], str] | str | None = None, dropped: bool = False,
            refuse: str | None = None) -> None:
        """Record the rows of ``mask`` for ``check``.

        ``words`` is the row's flag text (a str, or a function of the row's value in ``values``;
        None: not flagged); ``values`` also gives the example. ``refuse`` is the strict-mode error
        (None: never an error).
        """
        pos = np.flatnonzero(mask)
        if not len(pos):
            return
        first = int(pos[0])
        value = None if values is None else _fmt(values.iloc[first])
        if self.strict and refuse is not None:
            if self.first_strict is None or first < self.first_strict[0]:
                self.first_strict = (first, column, f"{refuse}; value {value!r} ({len(pos):,} such row(s); "
                                                    "strict mode)" if value is not None else
                                     f"{refuse} ({len(pos):,} such row(s); strict mode)")
        self.issues.append(InputIssue(check=check, column=column, reason=reason, rows=len(pos),
                                      location=self.where(first, column), line=self.line(first), example=value,
                                      flagged=words is not None, dropped=dropped))
        if words is None:
            return
        if isinstance(words, str):
            texts = [words] * len(pos)
        else:
            texts = [words(v) for v in values.iloc[pos].tolist()]
        for p, text in zip(pos.tolist(), texts):
            self.flags.setdefault(p, []).append(f"{column}: {text}")

    def raise_strict(self) -> None:
        if self.first_strict is not None:
            pos, column, message = self.first_strict
            raise self.error(message, pos, column)


def check_input(model_or_schema: Any, frame: pd.DataFrame, *, id_col: str | None = None,
                allow_duplicates: bool = False, strict: bool = False, source: str | None = None,
                lines: Sequence[int] | np.ndarray | None = None, unit: str = "line") -> InputCheck:
    """Check rows to be scored against a model's feature schema (see the module text for the rules).

    Parameters
    ----------
    model_or_schema : churnlib.model.ChurnModel or list of dict
        A model (its ``schema`` and ``id_col`` are used) or a
        :func:`~churnlib.model.feature_schema` list.
    frame : pandas.DataFrame
        The rows, with the id column and the model's feature columns (others are ignored).
    id_col : str, optional
        Id column (default: the model's).
    allow_duplicates : bool, default False
        Score the first row of a repeated id (or ``(id, as_of)``) and drop the others, counted,
        instead of refusing the input.
    strict : bool, default False
        Raise on the first row with any problem instead of counting and flagging it.
    source : str, optional
        The file the rows come from (named in errors and in the account).
    lines : sequence of int, optional
        Each row's line (CSV) or row (parquet) number in ``source``; when absent, problems are
        located by id.
    unit : str, default "line"
        What ``lines`` count: ``"line"`` or ``"row"``.

    Returns
    -------
    InputCheck

    Raises
    ------
    churnlib.load.DataValidationError
        No id column, no rows, missing feature columns, repeated ids (unless allowed); in strict mode
        also the first row with text numbers, an unseen category, a flagged missing value or a value
        far outside the training range.
    """
    schema, model_id = _schema_of(model_or_schema)
    id_col = id_col or model_id
    if not id_col:
        raise ValueError("check_input needs id_col when given a schema rather than a model")
    n = len(frame)
    if id_col not in frame.columns:
        raise DataValidationError(
            f"no id column {id_col!r} (columns present: {_some(frame.columns)}); name the id column "
            "(--id-col): rows are never numbered in its place", file=source, column=id_col)
    if n == 0:
        raise DataValidationError("no rows to score", file=source)
    names = [f["name"] for f in schema]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"missing {len(missing)} feature column(s) the model needs: {_some(missing)} "
            f"(columns present: {_some(frame.columns)})", file=source, column=", ".join(missing[:10]))
    line_arr = None if lines is None else np.asarray(lines)
    if line_arr is not None and len(line_arr) != n:
        raise ValueError(f"lines has {len(line_arr)} entries for {n} rows")
    ids = _ids_as_text(frame[id_col])
    col = _Collector(n, source, line_arr, unit, ids, strict)
    key = row_key(frame, id_col)

    # ---- ids ----------------------------------------------------------------------------------
    no_id = ids.isna().to_numpy()
    if no_id.any() and strict:
        raise col.error(f"empty id ({int(no_id.sum()):,} such row(s); strict mode)", int(np.flatnonzero(no_id)[0]),
                        id_col)
    col.add("no id", id_col, "no id: row dropped", no_id, dropped=True)
    keyed = pd.DataFrame({"__id": ids, **{c: frame[c] for c in key[1:]}})
    dup_later = keyed.duplicated(keep="first").to_numpy() & ~no_id
    if dup_later.any():
        first_of = keyed.duplicated(keep=False).to_numpy() & ~dup_later & ~no_id
        p0 = int(np.flatnonzero(first_of)[0])
        same = np.flatnonzero((keyed == keyed.iloc[p0]).all(axis=1).to_numpy())
        where = (f"{unit}s " + ", ".join(str(col.line(int(p))) for p in same[:5]) if line_arr is not None
                 else f"rows {', '.join(str(int(p) + 1) for p in same[:5])} of the table")
        what = "id" + (" and as_of" if len(key) > 1 else "")
        if not allow_duplicates:
            raise col.error(
                f"duplicate {what}: {ids.iloc[p0]!r} appears on {where}"
                f"{' ...' if len(same) > 5 else ''} ({int(first_of.sum()):,} repeated id(s), "
                f"{int(dup_later.sum()):,} extra row(s)); each user must appear once "
                "(allow duplicates (--allow-duplicates) to score the first row of each)",
                p0, id_col)
        col.add("duplicate id", id_col, f"duplicate {what}: later row dropped (first kept)", dup_later,
                values=ids, dropped=True)
        size = keyed.assign(__one=1).groupby(list(keyed.columns), sort=False, dropna=False)["__one"]
        extra = size.transform("size") - 1
        col.add("duplicate id", id_col, f"duplicate {what}: first row scored, flagged", first_of, values=extra,
                words=lambda k: f"{int(k)} later row(s) with this {what} dropped")
    keep = ~(no_id | dup_later)

    # ---- features -----------------------------------------------------------------------------
    converted: dict[str, pd.Series] = {}
    usual_missing: dict[str, int] = {}
    block = _NumericBlock(schema, frame, keep)
    for f in schema:
        c = f["name"]
        if c in block.index:  # numbers already: range and missing values from one pass over the block
            block.check(col, f)
            miss = block.missing(c)
        else:
            orig = frame[c]
            if f.get("kind") == "numeric":
                s = _check_numeric_text(col, c, orig, keep)
                if s is not orig:
                    converted[c] = s
                _check_range(col, f, s, keep)
                miss = _missing(orig) & keep
            else:
                texts = _short_texts(orig)
                if texts is None:
                    _check_categories(col, f, orig, keep)
                    miss = _missing(orig) & keep
                else:  # few plain-ASCII values: the same masks without pandas' string machinery
                    miss = np.fromiter((t is None or t.strip(" ") == "" for t in texts), dtype=bool, count=n) & keep
                    if _may_be_unseen(f, texts, keep):
                        _check_categories(col, f, orig, keep)
        if never_missing(f):
            col.add("missing value", c, f"missing value in {c!r} (none in training; filled in by the model)", miss,
                    words="missing", refuse="missing value, and training had none in this column")
        elif miss.any():
            usual_missing[c] = int(miss.sum())
    col.raise_strict()

    notes = []
    if usual_missing:
        top = sorted(usual_missing.items(), key=lambda kv: -kv[1])
        notes.append("missing values filled in by the model, not flagged (training had missing values there too, "
                     "or its schema does not say): " + ", ".join(f"{c} {k:,}" for c, k in top[:8])
                     + (f" and {len(top) - 8} more feature(s)" if len(top) > 8 else ""))
    out = frame.copy(deep=False) if converted else frame
    for c, s in converted.items():
        out[c] = s
    if id_col in out.columns:
        if out is frame:
            out = frame.copy(deep=False)
        out[id_col] = ids.astype(object).where(ids.notna(), None)
    warn = np.full(n, "", dtype=object)
    for p, texts in col.flags.items():
        shown = texts[:MAX_FLAGS_PER_ROW]
        more = len(texts) - len(shown)
        warn[p] = "; ".join(shown) + (f"; and {more} more" if more else "")
    if keep.all():
        out = out.reset_index(drop=True)
        warnings = pd.Series(warn, dtype=object)
    else:
        out = out[keep].reset_index(drop=True)
        warnings = pd.Series(warn[keep], dtype=object)
    if len(out) == 0:
        raise DataValidationError(f"no rows left to score: all {n:,} rows dropped "
                                  f"({', '.join(f'{k}: {v}' for k, v in _drops(col.issues).items())})", file=source)
    return InputCheck(frame=out, id_col=id_col, key=key, warnings=warnings, issues=col.issues, notes=notes,
                      rows_in=n, usual_missing=usual_missing)


def _drops(issues: Iterable[InputIssue]) -> dict[str, int]:
    return {i.reason: i.rows for i in issues if i.dropped}


def _some(items: Iterable[Any], k: int = 10) -> str:
    items = [str(i) for i in items]
    return str(items[:k])[:-1] + (f", ... ({len(items) - k} more)]" if len(items) > k else "]")


def _missing(s: pd.Series) -> np.ndarray:
    """Missing values, blank text included."""
    miss = s.isna().to_numpy()
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        text = s.astype("string").str.strip()
        miss = miss | (text == "").fillna(False).to_numpy(dtype=bool)
    return miss


def _check_numeric_text(col: _Collector, c: str, s: pd.Series, keep: np.ndarray) -> pd.Series:
    """A numeric feature held as text: converted (counted); values that are not numbers -> missing (flagged)."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return s
    text = s.astype("string").str.strip()
    num = pd.to_numeric(text.mask(text == "", pd.NA), errors="coerce").astype("float64")
    has = (text.notna() & (text != "")).to_numpy()
    bad = has & num.isna().to_numpy() & keep
    col.add("numeric text", c, f"numeric column {c!r} read as text: converted to numbers", has & ~bad & keep,
            values=s, refuse="numbers stored as text in a numeric column")
    col.add("not a number", c, f"{c!r}: text that is not a number read as missing", bad,
            values=s, words=lambda v: f"{str(v)[:30]!r} is not a number (read as missing)",
            refuse="text that is not a number in a numeric column")
    return num


def _far_limits(f: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """``(lo, hi, far_below, far_above)`` of a numeric feature, or None without a recorded range."""
    lo, hi = f.get("min"), f.get("max")
    if lo is None or hi is None:
        return None
    lo, hi = float(lo), float(hi)
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    return lo, hi, lo - FAR_RANGES * span, hi + FAR_RANGES * span


def _check_range(col: _Collector, f: dict[str, Any], s: pd.Series, keep: np.ndarray) -> None:
    limits = _far_limits(f)
    if limits is None:
        return
    x = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
    with np.errstate(invalid="ignore"):
        above = (x > limits[3]) & keep
        below = ((x < limits[2]) | ((limits[0] >= 0) & (x < 0))) & keep
    _add_range(col, f, x, above, below)


def _add_range(col: _Collector, f: dict[str, Any], x: np.ndarray, above: np.ndarray, below: np.ndarray) -> None:
    if not (above.any() or below.any()):
        return
    lo, hi = float(f["min"]), float(f["max"])
    c = f["name"]
    vals = pd.Series(x)
    col.add("far outside range", c, f"{c!r} far above the training range (scored as is)", above,
            values=vals, words=lambda v: f"{v:g} far above training range (max {hi:g})",
            refuse=f"value far above the training range (max {hi:g})")
    col.add("far outside range", c, f"{c!r} far below the training range (scored as is)", below,
            values=vals, words=lambda v: f"{v:g} far below training range (min {lo:g})",
            refuse=f"value far below the training range (min {lo:g})")


class _NumericBlock:
    """The numeric features already held as NumPy numbers, checked in one pass over one 2-D array.

    Gives, per column, exactly what :func:`_check_range` and :func:`_missing` give column by
    column (``float64`` values, the same limits), without a pandas call per feature: for one
    user's row the per-column pandas overhead was most of :func:`check_input`'s time.
    """

    def __init__(self, schema: list[dict[str, Any]], frame: pd.DataFrame, keep: np.ndarray) -> None:
        dtypes = frame.dtypes.to_dict() if frame.columns.is_unique else {}
        feats = [f for f in schema if f.get("kind") == "numeric" and _plain_number(dtypes.get(f["name"]))]
        names = list(dict.fromkeys(f["name"] for f in feats))
        self.index = {c: j for j, c in enumerate(names)}
        if not names:
            return
        self.x = np.empty((len(frame), len(names)), dtype="float64", order="F")
        for j, c in enumerate(names):
            self.x[:, j] = frame[c].to_numpy()  # float64, int64 or bool -> float64, as pd.to_numeric(...).astype
        lo = np.full(len(names), np.nan)
        far_lo, far_hi = lo.copy(), lo.copy()
        ranged = np.zeros(len(names), dtype=bool)
        for f in feats:
            limits = _far_limits(f)
            if limits is not None:
                j = self.index[f["name"]]
                lo[j], _, far_lo[j], far_hi[j] = limits
                ranged[j] = True
        keep2 = keep[:, None] & ranged[None, :]
        with np.errstate(invalid="ignore"):
            self.above = (self.x > far_hi) & keep2
            self.below = ((self.x < far_lo) | ((lo >= 0) & (self.x < 0))) & keep2
        self.miss = np.isnan(self.x) & keep[:, None]

    def check(self, col: _Collector, f: dict[str, Any]) -> None:
        j = self.index[f["name"]]
        _add_range(col, f, self.x[:, j], self.above[:, j], self.below[:, j])

    def missing(self, c: str) -> np.ndarray:
        return self.miss[:, self.index[c]]


def _plain_number(dtype: Any) -> bool:
    """A NumPy float, integer or bool dtype (no missing-value mask, no text)."""
    return isinstance(dtype, np.dtype) and dtype.kind in "fiub"


#: Up to this many rows a categorical column of plain text may take :func:`_short_texts`.
_SHORT_ROWS = 256


def _short_texts(s: pd.Series) -> list[str | None] | None:
    """Each value as ``str`` (None when missing), for a short text column of plain ASCII.

    Only where stripping them with ``str.strip(" ")`` is exactly what pandas does
    (``astype("string").str.strip()``): text or object columns of at most :data:`_SHORT_ROWS` rows
    whose values are missing or ``str`` of printable ASCII (no control characters, so that every
    whitespace rule agrees: only ``" "`` is stripped). Otherwise None (take the general path).
    """
    if len(s) > _SHORT_ROWS or not (isinstance(s.dtype, pd.StringDtype) or s.dtype == object):
        return None
    out: list[str | None] = []
    for v in s.tolist():
        if type(v) is str:
            if not (v.isascii() and v.isprintable()):
                return None
            out.append(v)
        elif v is None or v is pd.NA or (type(v) is float and v != v):
            out.append(None)
        else:
            return None
    return out


def _may_be_unseen(f: dict[str, Any], texts: list[str | None], keep: np.ndarray) -> bool:
    """Whether :func:`_check_categories` could find an unseen category among kept ``texts`` (False: it would not)."""
    cats = f.get("categories")
    if cats is None or int(f.get("n_categories", len(cats))) > len(cats):
        return False  # not checked at all
    if not all(type(c) is str for c in cats):
        return True  # let the general path decide
    known = set(cats)  # as _check_categories: blank is not unseen; membership of the value as given
    return any(k and t is not None and t.strip(" ") != "" and t not in known for t, k in zip(texts, keep.tolist()))


def _category_text(s: pd.Series) -> pd.Series:
    """Categories as the model reads them (:meth:`churnlib.model.ChurnModel.prepare`): integral float codes as ints."""
    if pd.api.types.is_float_dtype(s) and (s.dropna() % 1 == 0).all():
        s = s.astype("Int64")
    return s.astype("string")


def _check_categories(col: _Collector, f: dict[str, Any], s: pd.Series, keep: np.ndarray) -> None:
    cats = f.get("categories")
    if cats is None or int(f.get("n_categories", len(cats))) > len(cats):
        return  # the schema lists only some of them: an unseen one cannot be told
    text = _category_text(s)
    blank = text.str.strip() == ""
    unseen = (text.notna() & ~blank & ~text.isin(set(cats))).fillna(False).to_numpy(dtype=bool) & keep
    c = f["name"]
    col.add("unseen category", c, f"unseen category in {c!r} (scored as an unknown category)", unseen,
            values=text, words=lambda v: f"unseen category {str(v)[:30]!r}",
            refuse=f"category not seen in training (known: {_some(cats, 5)})")
