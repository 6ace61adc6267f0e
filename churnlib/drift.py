"""Drift statistics: how far a new window of users has moved from the reference window.

Per feature, the population stability index (:func:`psi`, quantile bins from the reference;
categories for text columns) and the two-sample Kolmogorov-Smirnov statistic (:func:`ks`, numeric
columns); :func:`drift_report` applies the rule -- a feature drifts when PSI > ``psi_threshold``
(default 0.25) or KS > ``ks_threshold`` (default 0.2) -- to every feature of two windows. Windows,
scenarios, performance and decisions are in :mod:`churnlib.monitoring`; the plain-words text and
the plots in :mod:`churnlib.monitoring_report`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "DriftReport",
    "KS_THRESHOLD",
    "MIN_ROWS",
    "PSEUDO_COUNT",
    "PSI_THRESHOLD",
    "drift_report",
    "feature_names",
    "ks",
    "latest_rows",
    "psi",
    "stable_floats",
]

#: Defaults of the drift rule: a feature drifts when PSI > 0.25 (the usual "significant shift"
#: level) or KS > 0.2.
PSI_THRESHOLD = 0.25
KS_THRESHOLD = 0.2
#: A feature is judged only when both windows hold at least this many rows: below it PSI and KS
#: are mostly sampling noise.
MIN_ROWS = 50
#: Pseudo-count added to every bin of both windows before PSI's logarithm (empty bins would give
#: log(0)); at 300 rows it moves a bin share by under 0.2 points.
PSEUDO_COUNT = 0.5
_KEYS = ("userId", "as_of", "churned")
_MISSING = "(missing)"
_OTHER = "(other)"


# --------------------------------------------------------------------------------------------
# Drift statistics
# --------------------------------------------------------------------------------------------

def _is_categorical(s: pd.Series) -> bool:
    return getattr(s.dtype, "kind", "O") not in "iufb"


def _psi_from_counts(ref: np.ndarray, cur: np.ndarray, pseudo_count: float) -> float:
    ref = np.asarray(ref, float) + pseudo_count
    cur = np.asarray(cur, float) + pseudo_count
    p, q = ref / ref.sum(), cur / cur.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def psi(reference: Sequence | pd.Series, current: Sequence | pd.Series, *, bins: int = 10,
        categorical: bool = False, pseudo_count: float = PSEUDO_COUNT) -> float:
    """Population stability index of ``current`` against ``reference``.

    ``PSI = sum_b (q_b - p_b) * ln(q_b / p_b)`` over bins ``b``, with ``p`` the reference and ``q``
    the current share of rows in each bin. 0 means identical binned distributions; 0.1-0.25 is
    usually read as a moderate shift, above 0.25 as a significant one.

    Parameters
    ----------
    reference, current : array-like
        The feature's values in the reference and the new window.
    bins : int, default 10
        Numeric: quantile bins with edges from the reference (ties merge bins, so a feature that is
        mostly 0 gets fewer). Categorical: the ``bins - 1`` most frequent reference categories, the
        rest (and categories never seen in the reference) pooled into one "other" bin, so that the
        statistic's noise does not grow with the number of categories.
    categorical : bool, default False
        Treat the values as categories.
    pseudo_count : float, default 0.5
        Added to every bin's count in both windows (empty bins would make the logarithm infinite).

    Returns
    -------
    float
        NaN when either window is empty. Missing values form a bin of their own, so a change in
        the share of missing values counts as drift.
    """
    ref = pd.Series(reference)
    cur = pd.Series(current)
    if ref.empty or cur.empty:
        return float("nan")
    if categorical:
        r = ref.astype(object).where(ref.notna(), _MISSING).astype(str)
        c = cur.astype(object).where(cur.notna(), _MISSING).astype(str)
        keep = r.value_counts().index[:max(1, bins - 1)]
        levels = [*keep, _OTHER]
        r = r.where(r.isin(keep), _OTHER)
        c = c.where(c.isin(keep), _OTHER)
        rc = r.value_counts().reindex(levels, fill_value=0).to_numpy()
        cc = c.value_counts().reindex(levels, fill_value=0).to_numpy()
        return _psi_from_counts(rc, cc, pseudo_count)
    return _psi_numeric(_as_float(ref), _as_float(cur), bins, pseudo_count)


def _as_float(x) -> np.ndarray:
    s = x if isinstance(x, pd.Series) else pd.Series(x)
    if getattr(s.dtype, "kind", "O") not in "iufb":
        s = pd.to_numeric(s, errors="coerce")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable NA -> NaN


def _psi_numeric(r: np.ndarray, c: np.ndarray, bins: int, pseudo_count: float) -> float:
    r_ok, c_ok = r[~np.isnan(r)], c[~np.isnan(c)]
    edges = np.unique(np.quantile(r_ok, np.linspace(0, 1, bins + 1)[1:-1])) if len(r_ok) else np.array([])
    k = len(edges) + 1
    # bin i holds edges[i-1] <= x < edges[i]; the extra last bin counts missing values
    rc = np.bincount(np.searchsorted(edges, r_ok, side="right"), minlength=k)
    cc = np.bincount(np.searchsorted(edges, c_ok, side="right"), minlength=k)
    rc = np.r_[rc, len(r) - len(r_ok)]
    cc = np.r_[cc, len(c) - len(c_ok)]
    if rc[-1] == 0 and cc[-1] == 0:
        rc, cc = rc[:-1], cc[:-1]
    return _psi_from_counts(rc, cc, pseudo_count)


def _ks_numeric(r: np.ndarray, c: np.ndarray) -> float:
    r, c = np.sort(r[~np.isnan(r)]), np.sort(c[~np.isnan(c)])
    if not len(r) or not len(c):
        return float("nan")
    # the statistic as ks_2samp computes it, without its p-value (an exact p-value is slow and
    # unused: the rule thresholds the statistic)
    both = np.concatenate([r, c])
    gap = np.searchsorted(r, both, side="right") / len(r) - np.searchsorted(c, both, side="right") / len(c)
    return float(np.max(np.abs(gap)))


def ks(reference: Sequence | pd.Series, current: Sequence | pd.Series) -> float:
    """Two-sample Kolmogorov-Smirnov statistic of the non-missing values.

    The largest gap between the two empirical distribution functions
    (as :func:`scipy.stats.ks_2samp`), 0 to 1; NaN when either window has no value.
    """
    return _ks_numeric(_as_float(reference), _as_float(current))


def feature_names(frame: pd.DataFrame) -> list[str]:
    """The columns :func:`drift_report` checks by default: all but ``userId``, ``as_of``, ``churned`` and
    date/duration columns."""
    return [c for c in frame.columns if c not in _KEYS
            and not pd.api.types.is_datetime64_any_dtype(frame[c])
            and not pd.api.types.is_timedelta64_dtype(frame[c])]


@dataclass
class DriftReport:
    """Per-feature drift between a reference and a new window.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per feature: ``feature``, ``kind`` (numeric/categorical), ``psi``, ``ks`` (NaN for
        categories), ``reference_mean``, ``current_mean`` (numeric), ``drifted`` (bool), ``reason``;
        drifted features first, by PSI.
    psi_threshold, ks_threshold : float
    n_reference, n_current : int
        Rows in each window.
    """

    table: pd.DataFrame
    psi_threshold: float
    ks_threshold: float
    n_reference: int
    n_current: int

    @property
    def drifted(self) -> pd.DataFrame:
        """The rows of the features that drifted."""
        return self.table[self.table["drifted"]]

    @property
    def fired(self) -> bool:
        """True when any feature drifted."""
        return bool(self.table["drifted"].any())

    @property
    def n_checked(self) -> int:
        """Features judged (enough rows in both windows)."""
        return int(self.table["psi"].notna().sum())


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, *, features: Sequence[str] | None = None,
                 psi_threshold: float = PSI_THRESHOLD, ks_threshold: float = KS_THRESHOLD, bins: int = 10,
                 min_rows: int = MIN_ROWS) -> DriftReport:
    """Compare every feature of a new window with the reference window.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        One row per user (e.g. the features as of one observation date: :func:`latest_rows`).
    features : sequence of str, optional
        Columns to check (default: every column of ``reference`` but ``userId``, ``as_of``,
        ``churned`` and date columns). Text columns are compared as categories (PSI only).
    psi_threshold, ks_threshold : float
        A feature drifts when its PSI exceeds ``psi_threshold`` or its KS statistic exceeds
        ``ks_threshold``.
    bins : int, default 10
        PSI bins (see :func:`psi`).
    min_rows : int, default 50
        Windows with fewer rows are not judged (PSI and KS are NaN, nothing drifts).

    Returns
    -------
    DriftReport
    """
    names = list(features) if features is not None else feature_names(reference)
    missing = [c for c in names if c not in current.columns]
    if missing:
        raise ValueError(f"the new window lacks {len(missing)} feature(s): {missing[:10]}")
    enough = len(reference) >= min_rows and len(current) >= min_rows
    rows = []
    for name in names:
        r, c = reference[name], current[name]
        cat = _is_categorical(r)
        rm = cm = p = k = float("nan")
        if cat:
            if enough:
                p = psi(r, c, bins=bins, categorical=True)
        else:
            ra, ca = _as_float(r), _as_float(c)
            with np.errstate(all="ignore"):
                rm = float(np.nanmean(ra)) if (~np.isnan(ra)).any() else float("nan")
                cm = float(np.nanmean(ca)) if (~np.isnan(ca)).any() else float("nan")
            if enough:
                p, k = _psi_numeric(ra, ca, bins, PSEUDO_COUNT), _ks_numeric(ra, ca)
        why = []
        if np.isfinite(p) and p > psi_threshold:
            why.append(f"PSI {p:.2f} > {psi_threshold:g}")
        if np.isfinite(k) and k > ks_threshold:
            why.append(f"KS {k:.2f} > {ks_threshold:g}")
        rows.append({"feature": name, "kind": "categorical" if cat else "numeric", "psi": p, "ks": k,
                     "reference_mean": rm, "current_mean": cm, "drifted": bool(why),
                     "reason": "; ".join(why) if why else ("too few rows" if not enough else "")})
    table = pd.DataFrame(rows, columns=["feature", "kind", "psi", "ks", "reference_mean", "current_mean",
                                        "drifted", "reason"])
    table = table.sort_values(["drifted", "psi"], ascending=[False, False], kind="mergesort",
                              na_position="last").reset_index(drop=True)
    return DriftReport(table, psi_threshold, ks_threshold, len(reference), len(current))


def stable_floats(table: pd.DataFrame, digits: int = 7) -> pd.DataFrame:
    """A copy with every float column rounded to ``digits`` significant digits.

    Two builds of the same log by :func:`churnlib.features.build_features` can differ in the last
    digits of some float features (``listening_hours_*`` and ``listening_time_trend_7d`` by up to
    ~1e-9 relative; the DuckDB sums depend on thread scheduling), and tree models bin on exact values,
    so they then fit different trees. Rounding far below any meaningful precision (seven digits: 0.04
    s in 100 listening hours) removes almost all of that; a value that sits on a rounding boundary can
    still flip, so this is a mitigation, not a guarantee. The fix belongs in the feature SQL.
    """
    out = table.copy()
    for c in out.columns:
        if out[c].dtype == np.float64:
            a = out[c].to_numpy()
            with np.errstate(all="ignore"):
                mag = np.floor(np.log10(np.abs(np.where(np.isfinite(a) & (a != 0), a, 1.0))))
                scale = 10.0 ** (digits - 1 - mag)
                out[c] = np.where(np.isfinite(a), np.round(a * scale) / scale, a)
    return out


def latest_rows(table: pd.DataFrame, date_col: str = "as_of") -> pd.DataFrame:
    """The rows of a stacked feature table at its latest observation date (one row per user).

    Drift is measured on one row per user: rows of the same user at several dates are not
    independent, which would make PSI and KS look more certain than they are.
    """
    if date_col not in table.columns:
        return table.reset_index(drop=True)
    return table[table[date_col] == table[date_col].max()].reset_index(drop=True)
