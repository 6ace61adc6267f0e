"""What the dashboard's pages 1-3 show, computed without Streamlit (so it is unit-tested).

Pages only render what these functions return:

* Overview (:func:`overview`): the stakeholder summary's own sections (:mod:`churnlib.summary`) and key
  numbers, so the dashboard says what the summary says, in the same words;
* At-risk users (:func:`risk_table`, :func:`filter_risk`, :func:`risk_csv`): the scored list with its
  filters, sort and search;
* One user (:func:`risk_history`, :func:`user_reasons`, :func:`activity_log`): risk over the
  observation dates (the saved model scoring the user's stored feature rows: no pipeline run), the
  reasons with the user's and the typical value, and the user's events from the log (a DuckDB query
  filtered by user, newest first, bounded).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import duckdb
import numpy as np
import pandas as pd

from churnlib import summary
from churnlib.dashboard.products import DEVICE_COLUMN, LEVEL_COLUMN, Products, report_parameters
from churnlib.explain import describe_reason
from churnlib.features import feature_dictionary
from churnlib.intervals import Interval
from churnlib.model import ChurnModel

__all__ = ["ACTIVITY_COLUMNS", "ActivityLog", "BAND_ORDER", "KIND_ORDER", "NEEDS", "Overview", "PAGE_KINDS",
           "RUN_REPORT", "SORT_KEYS", "activity_log", "band_counts", "filter_risk", "missing_message", "overview",
           "page_kind", "reason_feature", "risk_csv", "risk_history", "risk_table", "trend_intervals", "user_ids",
           "user_reasons"]

#: What a page tells the reader when a product is missing.
RUN_REPORT = "Run `make report` first (the dashboard reads what it writes, and recomputes nothing)."

#: Needs a page can declare (:func:`missing_message`) -> (test on the products, plain words).
NEEDS: dict[str, tuple[Any, str]] = {
    "risk": (lambda p: p.risk.empty, "risk scores"),
    "features": (lambda p: p.features.empty, "feature table"),
    "model": (lambda p: not (p.model_dir / "churn_model.joblib").exists(), "model"),
    "metrics": (lambda p: not p.metrics, "model metrics"),
    "drivers": (lambda p: p.drivers.empty, "drivers"),
    "monitoring": (lambda p: not p.monitoring, "monitoring results"),
    "summary": (lambda p: "09_summary" not in p.key_numbers, "stakeholder summary's key numbers"),
}

#: Risk bands from the highest.
BAND_ORDER: tuple[str, ...] = ("high", "medium", "low")

#: Sparkify page -> the kind of activity it is, for the activity log's filter.
PAGE_KINDS: dict[str, str] = {
    "Login": "login", "Logout": "login", "Register": "login", "Submit Registration": "login",
    "NextSong": "songs",
    "Thumbs Up": "thumbs", "Thumbs Down": "thumbs",
    "Help": "help/errors", "Error": "help/errors",
    "Upgrade": "upgrade/downgrade", "Submit Upgrade": "upgrade/downgrade",
    "Downgrade": "upgrade/downgrade", "Submit Downgrade": "upgrade/downgrade",
    "Cancel": "cancellation", "Cancellation Confirmation": "cancellation",
}
#: Activity kinds in the order the filter offers them (``"other"``: home, settings, playlists, adverts ...).
KIND_ORDER: tuple[str, ...] = ("login", "songs", "thumbs", "help/errors", "upgrade/downgrade", "cancellation", "other")
#: Columns of :attr:`ActivityLog.frame`.
ACTIVITY_COLUMNS: tuple[str, ...] = ("time", "kind", "page", "session", "level", "song", "artist", "seconds")

#: Sort choices of the at-risk list -> (columns, ascending).
SORT_KEYS: dict[str, tuple[tuple[str, ...], tuple[bool, ...]]] = {
    "churn probability (highest first)": (("churn_probability", "_id"), (False, True)),
    "churn probability (lowest first)": (("churn_probability", "_id"), (True, True)),
    "user id": (("_id",), (True,)),
    "risk band, then probability": (("_band_rank", "churn_probability", "_id"), (True, False, True)),
}

_REASONS = ("reason_1", "reason_2", "reason_3")


# --------------------------------------------------------------------------------------------
# Missing products
# --------------------------------------------------------------------------------------------

def missing_message(products: Products, needs: Iterable[str]) -> str | None:
    """The plain message a page shows when a product it needs is missing; None when all are there.

    Parameters
    ----------
    products : Products
    needs : iterable of str
        Keys of :data:`NEEDS`.

    Returns
    -------
    str or None
        E.g. ``"Not available yet: risk scores (`risk_scores.parquet` was not written). Run `make
        report` first ..."``, quoting :attr:`Products.missing` where it says why.
    """
    lacking = []
    for need in needs:
        test, words = NEEDS[need]
        if test(products):
            why = next((m for m in products.missing if m.startswith(words)), words)
            lacking.append(why)
    if not lacking:
        return None
    return f"Not available yet in `{products.root}`: {'; '.join(lacking)}. {RUN_REPORT}"


# --------------------------------------------------------------------------------------------
# Page 1: overview
# --------------------------------------------------------------------------------------------

@dataclass
class Overview:
    """What the overview page shows, in the stakeholder summary's words.

    Attributes
    ----------
    title : str
        The page headline: the finding (high-risk users, the trend).
    churn_rate : str or None
        The summary's key number (whole-log churn rate with its 95% interval).
    sections : dict of str to churnlib.summary.Section
        ``signal``, ``trend``, ``risk``, ``quality``, ``changes``, each from :mod:`churnlib.summary`.
    trend : churnlib.summary.Trend or None
        Churn per observation date (for the chart), None without dates.
    bands : pandas.DataFrame
        :func:`band_counts`.
    data_quality : str or None
        ``"Rows kept: 448,906 of 462,502 (97.1%)"`` (the summary's key number), None when absent.
    numbers : dict of str to str
        The summary's key numbers (``reports/key_numbers/09_summary.json``).
    """

    title: str
    churn_rate: str | None
    sections: dict[str, summary.Section]
    trend: summary.Trend | None
    bands: pd.DataFrame
    data_quality: str | None
    numbers: dict[str, str] = field(default_factory=dict)


def band_counts(risk: pd.DataFrame) -> pd.DataFrame:
    """Users per risk band, highest band first: ``band``, ``users``, ``share`` (of the scored users)."""
    counts = (risk["risk_band"].astype(str).value_counts() if "risk_band" in risk else pd.Series(dtype=int))
    users = [int(counts.get(b, 0)) for b in BAND_ORDER]
    total = sum(users)
    return pd.DataFrame({"band": list(BAND_ORDER), "users": users,
                         "share": [u / total if total else float("nan") for u in users]})


def overview(products: Products, *, seed: int | None = None, n_bootstrap: int = 200) -> Overview:
    """The overview page: the summary's sections on signal, trend, risk, model quality and drift.

    The trend is :func:`churnlib.summary.churn_trend` on the stored feature table with the report's
    seed (read from its executed notebook; default 7, the report's), so its interval is the summary's.

    Parameters
    ----------
    products : Products
    seed : int, optional
        Bootstrap seed of the trend's interval (default: the report's).
    n_bootstrap : int
        Bootstrap replicates (the summary's 200).

    Returns
    -------
    Overview
    """
    params = report_parameters(products.root)
    seed = int(params.get("seed", 7)) if seed is None else seed
    horizon = params.get("horizon_days")
    metrics = products.metrics or None
    numbers = dict(products.key_numbers.get("09_summary", {}))
    data = (products.metrics or {}).get("data", {})
    label_col = data.get("label_col", "churned")
    f = products.features
    trend = None
    if not f.empty and {"as_of", label_col, products.id_col} <= set(f.columns):
        trend = summary.churn_trend(f, "as_of", label_col, products.id_col, n_bootstrap=n_bootstrap, seed=seed)
    signal = summary.signal_detected(metrics)
    risk = products.risk
    scores = risk.drop(columns=[c for c in (LEVEL_COLUMN, DEVICE_COLUMN) if c in risk]) if not risk.empty else None
    sections = {
        "signal": summary.signal_section(metrics),
        "trend": summary.trend_section(trend, "the data has no observation dates", horizon),
        "risk": summary.top_users_section(scores, 10, actionable=signal is True),
        "quality": summary.model_quality_section(metrics),
        "changes": summary.changes_section(products.monitoring or None),
    }
    head = sections["risk"].title if sections["risk"].available else "No risk scores yet"
    if trend is not None and trend.direction != "unknown":
        head += "; " + sections["trend"].title[0].lower() + sections["trend"].title[1:]
    kept = numbers.get("Rows kept")
    return Overview(title=head, churn_rate=numbers.get("Churn rate"), sections=sections, trend=trend,
                    bands=band_counts(risk), data_quality=f"Rows kept: {kept}" if kept else None, numbers=numbers)


def trend_intervals(trend: summary.Trend) -> list[Interval]:
    """The churn rate of each observation date as an :class:`~churnlib.intervals.Interval` (Wilson 95%)."""
    return [Interval(float(r), float(lo), float(hi)) for r, lo, hi in
            trend.per_date[["rate", "low", "high"]].to_numpy()]



# --------------------------------------------------------------------------------------------
# Page 2: the at-risk list
# --------------------------------------------------------------------------------------------

def reason_feature(reason: Any) -> str | None:
    """The feature a reason names: ``"days since last login: 23 (raises risk)"`` -> ``"days since last login"``."""
    if not isinstance(reason, str) or ":" not in reason:
        return None
    return reason.split(":", 1)[0].strip()


def risk_table(products: Products) -> pd.DataFrame:
    """The at-risk list with what its filters need, computed once per products version.

    Returns
    -------
    pandas.DataFrame
        ``products.risk`` (highest probability first) plus ``segment`` (the summary's retention
        segment of the user's first recognised reason, :func:`churnlib.summary.reason_family`),
        ``_id`` (the id as text), ``_band_rank`` (0 high, 1 medium, 2 low) and ``_reasons`` (the
        features named by the reasons, a tuple).
    """
    risk = products.risk
    if risk.empty:
        return risk.copy()
    out = risk.copy()
    out["_id"] = out[products.id_col].astype(str)
    out["_band_rank"] = out["risk_band"].astype(str).map({b: i for i, b in enumerate(BAND_ORDER)}).fillna(3).astype(int)
    reasons = [r for r in _REASONS if r in out]
    names = {r: out[r].map(reason_feature) for r in reasons}
    out["_reasons"] = [tuple(x for x in row if x) for row in zip(*names.values())] if reasons else [()] * len(out)
    seg = pd.Series(summary.OTHER_SEGMENT[0], index=out.index)
    for r in reversed(reasons):  # the first recognised reason wins, as in summary.retention_actions
        fam = out[r].map(summary.reason_family)
        seg = seg.where(fam == summary.OTHER_SEGMENT[0], fam)
    out.insert(out.columns.get_loc("risk_band") + 1, "segment", seg.to_numpy())
    return out


def filter_risk(table: pd.DataFrame, *, bands: Sequence[str] | None = None, reasons: Sequence[str] | None = None,
                segments: Sequence[str] | None = None, levels: Sequence[str] | None = None,
                devices: Sequence[str] | None = None, search: str | None = None,
                sort: str = "churn probability (highest first)") -> pd.DataFrame:
    """The rows of :func:`risk_table` that pass every filter, sorted.

    An empty or None filter keeps everything; within a filter, any listed value matches.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`risk_table`.
    bands : list of str, optional
        Risk bands to keep.
    reasons : list of str, optional
        Features (:func:`reason_feature`): keep users with at least one of them among their reasons.
    segments : list of str, optional
        Retention segments (``segment`` column).
    levels, devices : list of str, optional
        ``"paid"``/``"free"``; device types.
    search : str, optional
        Keep ids containing this text (case-insensitive; surrounding spaces ignored).
    sort : str
        A key of :data:`SORT_KEYS`.

    Returns
    -------
    pandas.DataFrame
    """
    if table.empty:
        return table
    keep = np.ones(len(table), dtype=bool)
    if bands:
        keep &= table["risk_band"].astype(str).isin(list(bands)).to_numpy()
    if segments:
        keep &= table["segment"].isin(list(segments)).to_numpy()
    if levels:
        keep &= table[LEVEL_COLUMN].astype("string").isin(list(levels)).fillna(False).to_numpy(dtype=bool)
    if devices:
        keep &= table[DEVICE_COLUMN].astype("string").isin(list(devices)).fillna(False).to_numpy(dtype=bool)
    if reasons:
        wanted = set(reasons)
        keep &= np.fromiter((not wanted.isdisjoint(r) for r in table["_reasons"]), dtype=bool, count=len(table))
    text = (search or "").strip().lower()
    if text:
        keep &= table["_id"].str.lower().str.contains(text, regex=False).to_numpy()
    out = table[keep]
    cols, asc = SORT_KEYS[sort]
    return out.sort_values(list(cols), ascending=list(asc), kind="stable")


def risk_csv(rows: pd.DataFrame) -> bytes:
    """The listed users as CSV (UTF-8), without the helper columns (those starting with ``_``)."""
    return rows[[c for c in rows.columns if not str(c).startswith("_")]].to_csv(index=False).encode("utf-8")


def user_ids(products: Products) -> list[str]:
    """Every user the dashboard knows, as text: the scored ones (highest risk first), then the
    users of the feature table who are not scored (e.g. users who already cancelled)."""
    scored = products.risk[products.id_col].astype(str).tolist() if not products.risk.empty else []
    seen = set(scored)
    rest = []
    if not products.features.empty and products.id_col in products.features:
        rest = sorted(set(products.features[products.id_col].astype(str)) - seen)
    return scored + rest


# --------------------------------------------------------------------------------------------
# Page 3: one user
# --------------------------------------------------------------------------------------------

def _user_rows(products: Products, user: str) -> pd.DataFrame:
    f = products.features
    if f.empty or products.id_col not in f:
        return f.iloc[:0]
    rows = f[f[products.id_col].astype(str) == str(user)]
    return rows.sort_values("as_of", kind="stable") if "as_of" in rows else rows


def risk_history(products: Products, model: ChurnModel, user: str) -> pd.DataFrame:
    """The user's churn risk at each observation date: the saved model scoring the stored feature rows.

    Returns
    -------
    pandas.DataFrame
        ``as_of`` (absent for a snapshot table), ``churn_probability``, ``risk_band`` and the label
        observed after the date (``churned``: 1 if the user cancelled within the label window), one
        row per stored feature row of the user, oldest first. Empty when the user has none.
    """
    rows = _user_rows(products, user)
    if rows.empty:
        return pd.DataFrame(columns=["as_of", "churn_probability", "risk_band", "churned"])
    p = model.churn_probability(rows)
    out = pd.DataFrame({"churn_probability": p, "risk_band": model.risk_band(proba=p)})
    if "as_of" in rows:
        out.insert(0, "as_of", rows["as_of"].to_numpy())
    label_col = (products.metrics.get("data") or {}).get("label_col", "churned")
    if label_col in rows:
        out["churned"] = rows[label_col].to_numpy()
    return out


def user_reasons(products: Products, model: ChurnModel, user: str, k: int = 5) -> pd.DataFrame:
    """What raises (and lowers) the user's risk most at their latest observation date.

    SHAP values of the user's latest stored feature row (:meth:`churnlib.model.ChurnModel.shap`), summed
    per feature; the ``k`` largest in size.

    Returns
    -------
    pandas.DataFrame
        ``feature`` (plain name), ``meaning``, ``user's value``, ``typical value`` (the training median),
        ``effect`` (``"raises risk"``/``"lowers risk"``), ``push`` (the SHAP value), ``reason`` (the words
        of the risk list for a risk-raising feature, :func:`churnlib.explain.describe_reason`);
        strongest first. Empty when the user has no feature row.
    """
    cols = ["feature", "meaning", "user's value", "typical value", "effect", "push", "reason"]
    rows = _user_rows(products, user)
    if rows.empty:
        return pd.DataFrame(columns=cols)
    row = rows.iloc[[-1]]
    expl = model.shap(row)
    by = expl.by_feature().iloc[0]
    order = by.abs().sort_values(ascending=False, kind="stable").head(k).index
    info = feature_dictionary().set_index("name")
    typical = model.typical
    out = []
    for f in order:
        v = row[f].iloc[0] if f in row else None
        push = float(by[f])
        out.append({"feature": f.replace("_", " "),
                    "meaning": str(info["meaning"].get(f, "")) if f in info.index else "",
                    "user's value": _value_text(v),
                    "typical value": _value_text(typical.get(f)),
                    "effect": "raises risk" if push > 0 else "lowers risk" if push < 0 else "no effect",
                    "push": push,
                    "reason": describe_reason(f, v, typical=typical.get(f)) if push > 0 else ""})
    return pd.DataFrame(out, columns=cols)


def _value_text(v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "missing"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


@dataclass
class ActivityLog:
    """One user's events, newest first.

    Attributes
    ----------
    frame : pandas.DataFrame
        At most ``limit`` events: :data:`ACTIVITY_COLUMNS` (``time`` in UTC).
    total : int
        The user's events of the chosen kinds.
    counts : dict of str to int
        Events per kind (all kinds, before the kind filter).
    note : str
        ``"showing 500 of 2,316 events"``, or why there is no log.
    """

    frame: pd.DataFrame
    total: int
    counts: dict[str, int]
    note: str


def page_kind(page: str) -> str:
    """The activity kind of a Sparkify page (:data:`PAGE_KINDS`; ``"other"`` for the rest)."""
    return PAGE_KINDS.get(page, "other")


def _source_sql(path: Path) -> str:
    p = str(path).replace("'", "''")
    name = path.name.lower()
    if path.is_dir():
        parquet = any(path.rglob("*.parquet"))
        return (f"read_parquet('{p}/**/*.parquet', union_by_name=true)" if parquet else
                f"read_json_auto('{p}/**/*.json*', format='newline_delimited', union_by_name=true)")
    if name.endswith(".parquet"):
        return f"read_parquet('{p}')"
    return f"read_json_auto('{p}', format='newline_delimited')"


def activity_log(events_path: str | os.PathLike | None, user: str, *, kinds: Sequence[str] | None = None,
                 limit: int = 500) -> ActivityLog:
    """The user's events from the log the report read: a DuckDB query filtered by user, newest first.

    Parameters
    ----------
    events_path : path-like or None
        The event log (:attr:`Products.events_path`); None for a snapshot table.
    user : str
        User id (compared as text).
    kinds : list of str, optional
        Activity kinds to keep (:data:`KIND_ORDER`); None or empty keeps all.
    limit : int
        Events returned at most (the newest).

    Returns
    -------
    ActivityLog
    """
    empty = pd.DataFrame(columns=list(ACTIVITY_COLUMNS))
    if events_path is None:
        return ActivityLog(empty, 0, {}, "A snapshot table holds one row per user and no events: there is no "
                                         "activity log to show.")
    path = Path(events_path)
    if not path.exists():
        return ActivityLog(empty, 0, {}, f"The event log `{path}` is no longer there: {RUN_REPORT}")
    con = duckdb.connect()
    try:
        src = _source_sql(path)
        names = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        opt = {c: (f'"{c}"' if c in names else "NULL") for c in ("sessionId", "level", "song", "artist", "length")}
        user_rows = con.execute(
            f'SELECT ts, page, {opt["sessionId"]} AS session, {opt["level"]} AS level, {opt["song"]} AS song, '
            f'{opt["artist"]} AS artist, {opt["length"]} AS seconds '
            f'FROM {src} WHERE CAST("userId" AS VARCHAR) = ?', [str(user)]).df()
    finally:
        con.close()
    user_rows["kind"] = user_rows["page"].map(page_kind)
    counts = {k: int(n) for k, n in user_rows["kind"].value_counts().items()}
    counts = {k: counts[k] for k in KIND_ORDER if k in counts}
    if kinds:
        user_rows = user_rows[user_rows["kind"].isin(list(kinds))]
    ts = user_rows["ts"]
    if pd.api.types.is_numeric_dtype(ts):
        time = pd.to_datetime(ts, unit="ms", utc=True)
    else:
        time = pd.to_datetime(ts, utc=True, errors="coerce", format="mixed")
    user_rows = user_rows.assign(time=time).sort_values("time", ascending=False, kind="stable")
    total = len(user_rows)
    shown = user_rows.head(limit)[list(ACTIVITY_COLUMNS)].reset_index(drop=True)
    note = (f"showing {len(shown):,} of {total:,} events" if total else
            "no events for this user in the log" if not counts else "no events of these kinds")
    return ActivityLog(shown, total, counts, note)
