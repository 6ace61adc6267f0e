"""Leakage screen across columns: labels that are an exact or near-exact function of a few columns.

:func:`churnlib.features.leakage_report` scores each feature on its own. A label can also hide in
a *combination* of columns that are each unremarkable: on a real Sparkify table,
``count_items - next_song_count - non_song_interaction_count`` is 1 for every churner and 0 for every
other user (one count keeps the Cancellation Confirmation page, the others leave it out).
:func:`screen_leaks` runs the single-column screen and then

1. **linear relations** of 2-3 numeric columns: the squared multiple correlation of the label on
   *every* subset of 2 and 3 columns, from one correlation matrix computed once (small systems
   solved in a batch); the strongest subsets are refitted out of fold, and a subset is a finding
   when its out-of-fold ROC-AUC reaches ``identity_auc`` (exact or near-exact) -- the relation is
   then written with the smallest integer coefficients and checked on every row;
2. **ratios and products**: the same search on the logarithms of strictly positive columns
   (``A / B`` or ``A * B`` is linear in log space; a ratio whose numerator is zero for a class is
   already a single-column suspect);
3. only **minimal** subsets are kept: after a finding its columns leave the search, which is rerun
   (so a second relation is also found), at most ``max_relations`` times;
4. a **probe** on the columns left: a flexible model (HistGradientBoosting) and logistic
   regression with and without regularisation, scored per fold. It fires when the flexible model
   separates the classes almost perfectly, a fold is near-perfect, or removing regularisation
   jumps the score -- a leak the searches above did not name. The probe **reports only** (it
   names the columns the flexible model relies on most); it never drops a column on its own,
   because a probe that fires names no relation to check.

Single suspects and the columns of every relation are dropped by default (never all columns).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from churnlib import evaluation as ev
from churnlib.features import leakage_report
from churnlib.rank_metrics import rank_auc

__all__ = ["LeakageScreen", "probe_models", "relation_search", "screen_leaks"]

_COMBINATION_COLUMNS = ["columns", "relation", "kind", "auc", "r2", "exact"]


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------

@dataclass
class LeakageScreen:
    """What :func:`screen_leaks` found and decided.

    Attributes
    ----------
    single : pandas.DataFrame
        :func:`churnlib.features.leakage_report` of the table (one row per feature).
    combinations : pandas.DataFrame
        One row per relation across columns: ``columns`` (tuple of str), ``relation`` (plain
        words), ``kind`` (``"linear"``, ``"log-linear"`` for ratios/products of positive columns,
        ``"linear, wide"`` for an exact identity among more count columns), ``auc`` (out-of-fold ROC-AUC of the
        combination), ``r2`` (squared multiple correlation of the label on the columns),
        ``exact`` (each class takes a single value of the combination).
    probe : dict or None
        Per-fold ROC-AUC of the probe models, whether it fired and why (None when not run).
    dropped : list of str
        Columns to leave out: single suspects, then the columns of each relation (never all).
    reasons : dict of str to str
        Every dropped (or flagged but kept) column -> why.
    settings : dict
        Thresholds, caps and seed.
    """

    single: pd.DataFrame
    combinations: pd.DataFrame
    probe: dict | None
    dropped: list[str]
    reasons: dict[str, str]
    settings: dict = field(default_factory=dict)

    @property
    def single_suspects(self) -> list[str]:
        """Features the single-column screen flags."""
        return self.single.loc[self.single["suspect"], "feature"].tolist()

    @property
    def found(self) -> bool:
        """Any single suspect, relation across columns, or a probe that fired."""
        return bool(self.single_suspects or len(self.combinations) or (self.probe or {}).get("fired"))

    def statement(self) -> str:
        """The findings in plain words (one paragraph, no markup)."""
        parts = []
        singles = self.single.loc[self.single["suspect"]]
        if len(singles):
            parts.append(f"{len(singles)} column(s) separate the classes on their own: "
                         + "; ".join(f"{r.feature} ({r.reason})" for r in singles.itertuples()) + ".")
        else:
            parts.append(f"No column separates the classes on its own (of {len(self.single)}).")
        if len(self.combinations):
            parts.append(f"{len(self.combinations)} relation(s) across columns encode the label: "
                         + "; ".join(f"{r.relation} (out-of-fold ROC-AUC {r.auc:.3f})"
                                     for r in self.combinations.itertuples()) + ".")
        else:
            parts.append("No combination of 2-3 numeric columns encodes the label.")
        if self.probe is not None:
            parts.append(self.probe["why"])
        if self.dropped:
            parts.append("Dropped: " + ", ".join(self.dropped) + ".")
        elif self.settings.get("kept_all"):
            parts.append("Nothing dropped: every column was flagged, which says more about the label than "
                         "about the columns.")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for ``metrics.json``."""
        comb = [{"columns": list(r.columns), "relation": r.relation, "kind": r.kind, "auc": float(r.auc),
                 "r2": float(r.r2), "exact": bool(r.exact)} for r in self.combinations.itertuples()]
        single = [{"feature": r.feature, "kind": r.kind, "auc": _num(r.auc), "corr": _num(r.corr),
                   "reason": r.reason} for r in self.single.loc[self.single["suspect"]].itertuples()]
        return {"single_suspects": single, "combinations": comb, "probe": self.probe,
                "dropped": list(self.dropped), "reasons": dict(self.reasons), "settings": dict(self.settings),
                "statement": self.statement()}


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


# --------------------------------------------------------------------------------------------
# Linear relations in 2-3 columns
# --------------------------------------------------------------------------------------------

def _stratified_rows(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted positions of a stratified random subsample of about ``n`` rows (at least 10 of each class)."""
    rng = np.random.default_rng(seed)
    parts = []
    for v in (0, 1):
        pos = np.flatnonzero(y == v)
        parts.append(rng.choice(pos, size=min(len(pos), max(10, round(n * len(pos) / len(y)))), replace=False))
    return np.sort(np.concatenate(parts))


def _numeric_block(X: pd.DataFrame, max_missing: float) -> pd.DataFrame:
    """Numeric/boolean, non-constant columns with few missing values, as float."""
    cols = {}
    for c in X.columns:
        s = X[c]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            v = s.astype("float64").replace([np.inf, -np.inf], np.nan)
            if v.isna().mean() <= max_missing and v.nunique(dropna=True) > 1:
                cols[c] = v
    return pd.DataFrame(cols, index=X.index)


def _subset_r2(Z: np.ndarray, y: np.ndarray, k: int, chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """R² of ``y`` on every ``k``-subset of the columns of ``Z`` (with intercept), from one Gram matrix."""
    n, p = Z.shape
    if p < k:
        return np.empty((0, k), int), np.empty(0)
    Zc = Z - Z.mean(0)
    Zc /= np.sqrt((Zc ** 2).mean(0))
    yc = (y - y.mean()) / y.std()
    R = Zc.T @ Zc / n
    r = Zc.T @ yc / n
    idx = np.array(list(itertools.combinations(range(p), k)), dtype=np.int32).reshape(-1, k)
    out = np.empty(len(idx))
    for a in range(0, len(idx), chunk):
        ii = idx[a:a + chunk]
        S = R[ii[:, :, None], ii[:, None, :]]
        s = r[ii]
        try:
            b = np.linalg.solve(S, s[..., None])[..., 0]
        except np.linalg.LinAlgError:  # a subset of exactly dependent columns: least norm solution
            b = (np.linalg.pinv(S, rcond=1e-13) @ s[..., None])[..., 0]
        out[a:a + chunk] = (b * s).sum(1)
    return idx, np.clip(out, 0.0, 1.0)


def _lstsq(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Coefficients (intercept first) of the least-squares fit of ``y`` on ``A``, columns scaled for stability."""
    scale = np.abs(A).max(0)
    scale[scale == 0] = 1.0
    D = np.column_stack([np.ones(len(A)), A / scale])
    coef = np.linalg.lstsq(D, y, rcond=None)[0]
    return np.concatenate([[coef[0]], coef[1:] / scale])


def _oof_auc(A: np.ndarray, y: np.ndarray, splits) -> float:
    """Out-of-fold ROC-AUC of the least-squares combination of the columns of ``A``."""
    pred = np.empty(len(y))
    for train, test in splits:
        b = _lstsq(A[train], y[train])
        pred[test] = b[0] + A[test] @ b[1:]
    return float(rank_auc(y, pred[None, :])[0])


def _integer_form(b: np.ndarray, max_multiplier: int = 12, tol: float = 1e-3) -> np.ndarray | None:
    """The smallest integer vector proportional to ``b`` (within ``tol``), or None."""
    nz = np.abs(b) > 0
    if not nz.all():
        return None
    base = b / np.abs(b).min()
    for m in range(1, max_multiplier + 1):
        v = base * m
        if np.all(np.abs(v - np.round(v)) <= tol * np.maximum(1.0, np.abs(v))):
            c = np.round(v).astype(int)
            g = math.gcd(*[abs(int(x)) for x in c])
            return c // g
    return None


def _value(v: float) -> str:
    if abs(v - round(v)) < 1e-9 * max(1.0, abs(v)):
        return f"{int(round(v))}"
    return f"{v:.4g}"


def _linear_text(names: list[str], coef: np.ndarray) -> str:
    out = ""
    for i, (n, c) in enumerate(zip(names, coef)):
        mag = abs(c)
        term = (n if mag == 1 else f"{_value(mag)} * {n}")
        if i == 0:
            out = term if c > 0 else f"-{term}"
        else:
            out += f" {'+' if c > 0 else '-'} {term}"
    return out


def _power_text(names: list[str], coef: np.ndarray) -> str:
    def factor(n, c):
        return n if abs(c) == 1 else f"{n}^{_value(abs(c))}"
    num = [factor(n, c) for n, c in zip(names, coef) if c > 0]
    den = [factor(n, c) for n, c in zip(names, coef) if c < 0]
    text = " * ".join(num) if num else "1"
    if den:
        text += " / " + (den[0] if len(den) == 1 else "(" + " * ".join(den) + ")")
    return text


def _describe(z: np.ndarray, y: np.ndarray, expr: str, words: tuple[str, str]) -> tuple[str, bool]:
    """Plain words for how the combination ``z`` (named ``expr``) follows the label, and whether it is exact."""
    pos, neg = words
    tol = 1e-6 * max(1.0, float(np.nanmax(np.abs(z))))
    z1, z0 = z[y == 1], z[y == 0]
    v1, v0 = pd.Series(z1).round(9).mode().iloc[0], pd.Series(z0).round(9).mode().iloc[0]
    f1, f0 = float(np.mean(np.abs(z1 - v1) <= tol)), float(np.mean(np.abs(z0 - v0) <= tol))
    if abs(v1 - v0) > tol and f1 == 1.0 and f0 == 1.0:
        return f"{expr} equals {_value(v1)} for every {pos} and {_value(v0)} for every {neg}", True
    if abs(v1 - v0) > tol and min(f1, f0) >= 0.9:
        return (f"{expr} equals {_value(v1)} for {f1:.1%} of {pos}s and {_value(v0)} for {f0:.1%} of "
                f"{neg}s"), False
    for fv, vv, zo, name, other_name in ((f0, v0, z1, neg, pos), (f1, v1, z0, pos, neg)):
        off = np.abs(zo - vv) > tol
        if fv >= 0.99 and off.mean() >= 0.9:  # constant within one class, the other class departs from it
            every = f"every {name}" if fv == 1.0 else f"{fv:.1%} of {name}s"
            others = f"every {other_name}" if off.all() else f"{off.mean():.1%} of {other_name}s"
            return (f"{expr} equals {_value(vv)} for {every} and differs from it for {others} "
                    f"(from {zo[off].min():.4g} to {zo[off].max():.4g})"), bool(fv == 1.0 and off.all())
    # a threshold: the cut that classifies most rows correctly
    upper = np.median(z1) > np.median(z0)
    s = np.sort(np.unique(z))
    cuts = (s[:-1] + s[1:]) / 2 if len(s) > 1 else s
    if len(cuts) > 2000:
        cuts = np.quantile(z, np.linspace(0.001, 0.999, 2000))
    hi1 = (z1[:, None] > cuts[None, :]).mean(0) if upper else (z1[:, None] <= cuts[None, :]).mean(0)
    lo0 = (z0[:, None] <= cuts[None, :]).mean(0) if upper else (z0[:, None] > cuts[None, :]).mean(0)
    j = int(np.argmax(hi1 + lo0))
    word, other = ("above", "at or below") if upper else ("at or below", "above")
    return (f"{expr} is {word} {cuts[j]:.4g} for {hi1[j]:.1%} of {pos}s and {other} it for {lo0[j]:.1%} of "
            f"{neg}s"), False


def _relation(block: pd.DataFrame, cols: list[str], y: np.ndarray, family: str,
              words: tuple[str, str], method: str | int = "fit") -> tuple[str, bool]:
    """The relation of ``cols`` to the label in plain words (integer coefficients when they exist)."""
    A = block[cols].to_numpy(float)
    if family == "log-linear":
        A = np.log(A)
    b = _lstsq(A, y)[1:] if method == "fit" else _constant_direction(A, y, int(method))
    c = _integer_form(b)
    if c is None:
        c = b / np.abs(b).min()
    if family == "log-linear":  # a product or ratio reads best with more factors above the line
        if (c < 0).sum() > (c > 0).sum():
            c = -c
    elif (A @ c)[y == 1].mean() < (A @ c)[y == 0].mean():  # churners take the larger value
        c = -c
    if c[0] < 0 and family.startswith("linear") and (c > 0).any():  # a positive term first
        order = np.argsort(c < 0, kind="stable")
        cols, c, A = [cols[i] for i in order], c[order], A[:, order]
    z = A @ c
    if family == "log-linear":
        return _describe(np.exp(z), y, _power_text(cols, c), words)
    return _describe(z, y, _linear_text(cols, c), words)


def relation_search(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *, max_size: int = 3,
                    identity_auc: float = 0.99, r2_exact: float = 0.999, top: int = 10, max_relations: int = 5,
                    max_columns: int = 80, max_missing: float = 0.05, wide: bool = True, max_rows: int = 5000,
                    seed: int = 0,
                    words: tuple[str, str] = ("churner", "other user")) -> pd.DataFrame:
    """Labels that are an exact or near-exact function of 2-3 numeric columns.

    Parameters
    ----------
    X : pandas.DataFrame
        Features (non-numeric columns are ignored; so are columns with more than ``max_missing``
        missing values; rows missing any remaining column are left out).
    y : array of 0/1
        Labels.
    groups : array, optional
        User ids: the out-of-fold checks keep each user's rows together.
    max_size : int, default 3
        Largest subset searched.
    identity_auc : float, default 0.99
        Out-of-fold ROC-AUC of a combination from which it is a finding.
    r2_exact : float, default 0.999
        R² of the label on a subset from which it is a finding regardless of the AUC.
    top : int, default 10
        Subsets of each size and family checked out of fold (highest R² first).
    max_relations : int, default 5
        Searches rerun after removing a finding's columns.
    max_columns : int, default 80
        Cap on the columns searched (those most correlated with the label in absolute value kept);
        C(80, 3) = 82,160 subsets per family.
    max_missing : float
        Largest share of missing values of a searched column.
    max_rows : int, default 5000
        Larger tables are searched on a stratified subsample of this many rows (the relation found
        is then stated and checked on every row).
    wide : bool, default True
        When no small subset is found, also look for an exact linear identity among *all*
        integer-valued (count) columns at once: the label fitted on them out of fold with zero
        error; the identity is then shrunk to a minimal set of columns by backward elimination
        (kind ``"linear, wide"``).
    seed : int
        Seed of the out-of-fold splits.
    words : (str, str)
        How a positive and a negative row are called in the relation text.

    Returns
    -------
    pandas.DataFrame
        Columns ``columns``, ``relation``, ``kind``, ``auc``, ``r2``, ``exact``; one row per finding,
        in the order found.
    """
    y = np.asarray(y).astype(float)
    block = _numeric_block(X, max_missing)
    ok = block.notna().all(axis=1).to_numpy()
    block, y = block.loc[ok], y[ok]
    g = None if groups is None else np.asarray(groups)[ok]
    full_block, full_y = block, y
    if len(y) > max_rows:  # search on a stratified subsample; relations are stated and checked on every row
        keep = _stratified_rows(y.astype(int), max_rows, seed)
        block, y = block.iloc[keep], y[keep]
        g = None if g is None else g[keep]
    rows: list[dict] = []
    if block.shape[1] < 2 or len(np.unique(y)) < 2 or min(y.sum(), (1 - y).sum()) < 3:
        return pd.DataFrame(rows, columns=_COMBINATION_COLUMNS)
    if block.shape[1] > max_columns:
        Zs = (block - block.mean()) / block.std()
        corr = np.abs(Zs.T.to_numpy() @ (y - y.mean())) / len(y)
        block = block.iloc[:, np.sort(np.argsort(-corr, kind="stable")[:max_columns])]
    splits = ev.cv_splits(y.astype(int), g, n_splits=5, seed=seed)[0]
    remaining = list(block.columns)
    for _ in range(max_relations):
        found = _best_relation(block[remaining], y, splits, max_size, identity_auc, r2_exact, top)
        if found is None and wide:
            found = _wide_relation(block[remaining], y, splits)
        if found is None:
            break
        cols, family, auc, r2, method = found
        text, exact = _relation(full_block, cols, full_y, family, words, method)
        rows.append({"columns": tuple(cols), "relation": text, "kind": family, "auc": auc, "r2": r2,
                     "exact": exact})
        remaining = [c for c in remaining if c not in cols]
        if len(remaining) < 2:
            break
    return pd.DataFrame(rows, columns=_COMBINATION_COLUMNS)


def _wide_relation(block: pd.DataFrame, y: np.ndarray, splits, tol: float = 1e-6):
    """An exact linear identity of the label among all integer-valued columns, shrunk to a minimal set."""
    V = block.to_numpy(float)
    counts = [c for j, c in enumerate(block.columns) if np.all(V[:, j] == np.round(V[:, j]))]
    if not counts or 3 * (len(counts) + 1) > len(y):
        return None
    A = block[counts].to_numpy(float)
    for train, test in splits:  # exact out of fold, not a fit to noise
        b = _lstsq(A[train], y[train])
        if np.abs(b[0] + A[test] @ b[1:] - y[test]).max() > tol:
            return None
    b = _lstsq(A, y)
    keep = list(range(len(counts)))
    for j in sorted(keep, key=lambda j: abs(b[1 + j]) * A[:, j].std()):
        trial = [i for i in keep if i != j]
        if not trial:
            continue
        bt = _lstsq(A[:, trial], y)
        if np.abs(bt[0] + A[:, trial] @ bt[1:] - y).max() <= tol:
            keep = trial
    if len(keep) < 2:
        return None
    return [counts[i] for i in keep], "linear, wide", 1.0, 1.0, "fit"


def _families(block: pd.DataFrame) -> dict[str, pd.DataFrame]:
    positive = [c for c in block.columns if (block[c] > 0).all()]
    return {"linear": block, "log-linear": np.log(block[positive])}


def _subset_constancy(Z: np.ndarray, y: np.ndarray, k: int, eps: float = 1e-12,
                      chunk: int = 100_000) -> np.ndarray:
    """For every ``k``-subset and each class v: the smallest share of a combination's variance left within class v.

    ``min_c c'C_v c / c'C c`` (C: covariance of all rows, C_v: scatter of class v around its mean, both
    divided by n; a small ridge keeps directions in which the columns are exactly dependent neutral).
    Near 0: some combination is (almost) constant within class v but varies across the classes.
    Returns an array of shape ``(n_subsets, 2)`` in the order of ``itertools.combinations``.
    """
    n, p = Z.shape
    Zc = Z - Z.mean(0)
    sd = np.sqrt((Zc ** 2).mean(0))
    Zc = Zc / sd
    C = Zc.T @ Zc / n
    Cv = []
    for v in (0, 1):
        W = Zc[y == v] - Zc[y == v].mean(0)
        Cv.append(W.T @ W / n)
    idx = np.array(list(itertools.combinations(range(p), k)), dtype=np.int32).reshape(-1, k)
    out = np.empty((len(idx), 2))
    I = eps * np.eye(k)
    for a in range(0, len(idx), chunk):
        ii = idx[a:a + chunk]
        L = np.linalg.cholesky(C[ii[:, :, None], ii[:, None, :]] + I)
        Li = np.linalg.inv(L)
        for v in (0, 1):
            M = Li @ (Cv[v][ii[:, :, None], ii[:, None, :]] + I) @ np.swapaxes(Li, 1, 2)
            out[a:a + chunk, v] = np.linalg.eigvalsh(M)[:, 0]
    return out


def _constant_direction(A: np.ndarray, y: np.ndarray, v: int, eps: float = 1e-12) -> np.ndarray:
    """Raw coefficients of the combination of the columns of ``A`` that varies least within class ``v``."""
    from scipy.linalg import eigh

    Ac = A - A.mean(0)
    sd = np.sqrt((Ac ** 2).mean(0))
    sd[sd == 0] = 1.0
    Zc = Ac / sd
    W = Zc[y == v] - Zc[y == v].mean(0)
    I = eps * np.eye(A.shape[1])
    _, vecs = eigh(W.T @ W / len(y) + I, Zc.T @ Zc / len(y) + I)
    return vecs[:, 0] / sd


def _oof_constancy_auc(A: np.ndarray, y: np.ndarray, v: int, splits) -> float:
    """Out-of-fold ROC-AUC of the distance from the class-``v`` value of its most constant combination."""
    score = np.empty(len(y))
    for train, test in splits:
        c = _constant_direction(A[train], y[train], v)
        z = A @ c
        score[test] = np.abs(z[test] - np.median(z[train][y[train] == v]))
    target = y if v == 0 else 1 - y
    return float(rank_auc(target, score[None, :])[0])


def _best_relation(block, y, splits, max_size, identity_auc, r2_exact, top, constant_share=0.01):
    """The smallest, strongest subset whose combination encodes the label, or None.

    Returns ``(columns, family, auc, r2, method)``: ``method`` is ``"fit"`` (least squares of the
    label) or ``0``/``1`` (the combination is constant within that class).
    """
    for k in range(2, max_size + 1):
        hits = []
        for family, F in _families(block).items():
            F = F.loc[:, F.nunique() > 1]
            if F.shape[1] < k:
                continue
            A = F.to_numpy(float)
            idx, r2 = _subset_r2(A, y, k)
            lam = _subset_constancy(A, y, k)
            checks = [(i, "fit") for i in np.argsort(-r2, kind="stable")[:top]]
            for v in (0, 1):
                checks += [(i, v) for i in np.argsort(lam[:, v], kind="stable")[:top] if lam[i, v] <= constant_share]
            for i, method in checks:
                cols = [F.columns[j] for j in idx[i]]
                auc = (_oof_auc(A[:, idx[i]], y, splits) if method == "fit"
                       else _oof_constancy_auc(A[:, idx[i]], y, method, splits))
                if auc >= identity_auc or (method == "fit" and r2[i] >= r2_exact):
                    hits.append((auc, float(r2[i]), family == "linear", method == "fit", cols, family, method))
        if hits:
            auc, r2, _, _, cols, family, method = max(hits, key=lambda h: (round(h[0], 6), h[1], h[2], h[3]))
            return cols, family, auc, r2, method
    return None


# --------------------------------------------------------------------------------------------
# Probe
# --------------------------------------------------------------------------------------------

def probe_models(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *, seed: int = 0,
                 n_splits: int = 5, max_rows: int = 3000, flexible_auc: float = 0.98, fold_auc: float = 0.99,
                 jump: float = 0.05, top: int = 5) -> dict:
    """Flexible and plain models per fold: does something separate the classes too well?

    Models (numeric and boolean columns; missing values imputed by the median for the linear ones):
    ``HistGradientBoostingClassifier`` (60 trees, learning rate 0.15), standardised logistic regression at ``C=1`` and almost
    unregularised (``C=1e4``). Rules -- the probe fires when

    * the flexible model's mean fold ROC-AUC is at least ``flexible_auc``, or
    * any fold of any model reaches ``fold_auc``, or
    * the unregularised logistic model beats ``C=1`` by at least ``jump`` in mean fold ROC-AUC
      (a model that gains by trusting extreme coefficients: a linear identity among large counts).

    Parameters
    ----------
    X, y, groups
        Features, 0/1 labels, user ids (folds keep a user's rows together).
    seed, n_splits : int
        Folds (stratified, group-aware).
    max_rows : int
        Larger tables are subsampled (stratified) to this many rows.
    flexible_auc, fold_auc, jump : float
        The rules above.
    top : int
        Columns named by permutation importance when the probe fires.

    Returns
    -------
    dict
        ``rows``, ``columns``, ``folds`` (model -> list of fold ROC-AUCs), ``mean`` (model -> mean),
        ``fired`` (bool), ``rules`` (the rules that fired), ``top_columns`` (when fired) and ``why``
        (one plain sentence).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline as sk_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y).astype(int)
    block = _numeric_block(X, max_missing=1.0)
    keep = _stratified_rows(y, max_rows, seed) if len(y) > max_rows else np.arange(len(y))
    A, yy = block.to_numpy(float)[keep], y[keep]
    g = None if groups is None else np.asarray(groups)[keep]
    result: dict[str, Any] = {"rows": int(len(yy)), "columns": int(A.shape[1]), "folds": {}, "mean": {},
                              "fired": False, "rules": [], "top_columns": []}
    if A.shape[1] == 0 or min(yy.sum(), (1 - yy).sum()) < n_splits:
        result["why"] = "Probe not run (no numeric column, or too few rows of a class)."
        return result
    models = {
        "gradient boosting": HistGradientBoostingClassifier(max_iter=60, learning_rate=0.15, random_state=seed),
        "logistic C=1": sk_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                                    LogisticRegression(C=1.0, max_iter=2000)),
        "logistic C=1e4": sk_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                                      LogisticRegression(C=1e4, max_iter=5000)),
    }
    splits = ev.cv_splits(yy, g, n_splits=n_splits, seed=seed)[0]
    with threadpool_limits(1):  # small fits: threads cost more than they save on a shared machine
        fitted = _probe_folds(models, A, yy, splits, result)
    mean, folds = result["mean"], result["folds"]
    if mean["gradient boosting"] >= flexible_auc:
        result["rules"].append(f"gradient boosting reaches mean fold ROC-AUC {mean['gradient boosting']:.3f} "
                               f">= {flexible_auc:g} (logistic C=1: {mean['logistic C=1']:.3f})")
    best = max(((max(a), n) for n, a in folds.items()))
    if best[0] >= fold_auc:
        result["rules"].append(f"a fold of {best[1]} reaches ROC-AUC {best[0]:.3f} >= {fold_auc:g}")
    gain = mean["logistic C=1e4"] - mean["logistic C=1"]
    if gain >= jump:
        result["rules"].append(f"removing regularisation lifts logistic regression from {mean['logistic C=1']:.3f} "
                               f"to {mean['logistic C=1e4']:.3f}")
    result["fired"] = bool(result["rules"])
    scores = (f"gradient boosting {mean['gradient boosting']:.3f}, logistic C=1 {mean['logistic C=1']:.3f}, "
              f"C=1e4 {mean['logistic C=1e4']:.3f}")
    if result["fired"]:
        m, test = fitted
        with threadpool_limits(1):
            imp = permutation_importance(m, A[test], yy[test], scoring="roc_auc", n_repeats=3,
                                         random_state=seed)
        order = np.argsort(-imp.importances_mean, kind="stable")[:top]
        result["top_columns"] = [str(block.columns[i]) for i in order]
        result["why"] = (f"Probe fired ({'; '.join(result['rules'])}; mean fold ROC-AUC {scores}) but no relation "
                         f"is named; the flexible model relies most on {', '.join(result['top_columns'])} -- "
                         "inspect them (not dropped on the probe alone).")
    else:
        result["why"] = f"Probe quiet on the columns kept (mean fold ROC-AUC {scores})."
    return result


def _probe_folds(models: dict, A: np.ndarray, y: np.ndarray, splits, result: dict):
    """Fold ROC-AUCs of each probe model into ``result``; the last gradient-boosting fit and its test rows."""
    from sklearn.base import clone

    fitted = None
    for name, model in models.items():
        aucs = []
        for train, test in splits:
            m = clone(model).fit(A[train], y[train])
            aucs.append(float(rank_auc(y[test], m.predict_proba(A[test])[:, 1][None, :])[0]))
            if name == "gradient boosting":
                fitted = (m, test)
        result["folds"][name] = aucs
        result["mean"][name] = float(np.mean(aucs))
    return fitted


# --------------------------------------------------------------------------------------------
# The screen
# --------------------------------------------------------------------------------------------

def screen_leaks(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *, seed: int = 0,
                 auc_threshold: float = 0.80, corr_threshold: float = 0.70, max_size: int = 3,
                 identity_auc: float = 0.99, max_relations: int = 5, max_columns: int = 80, probe: bool = True,
                 probe_rows: int = 3000, drop_relations: bool = True,
                 words: tuple[str, str] = ("churner", "other user")) -> LeakageScreen:
    """Single-column screen, relations across 2-3 columns and a model probe, with what to drop.

    Parameters
    ----------
    X : pandas.DataFrame
        Features only (no id or label column).
    y : array
        Binary labels (0/1 or bool).
    groups : array, optional
        User ids; out-of-fold checks keep a user's rows together.
    seed : int
        Seed of every fold split and subsample.
    auc_threshold, corr_threshold : float
        Single-column suspect thresholds (:func:`churnlib.features.leakage_report`).
    max_size, identity_auc, max_relations, max_columns
        See :func:`relation_search` (run on the columns that are not single suspects).
    probe : bool, default True
        Run :func:`probe_models` on the columns left after the drops.
    probe_rows : int
        Row cap of the probe.
    drop_relations : bool, default True
        Drop the columns of each relation (single suspects are always listed in ``dropped``).
    words : (str, str)
        How a positive and a negative row are called in relation texts.

    Returns
    -------
    LeakageScreen
    """
    with threadpool_limits(1):  # small dense algebra: BLAS threads cost more than they save
        return _screen(X, y, groups, seed=seed, auc_threshold=auc_threshold, corr_threshold=corr_threshold,
                       max_size=max_size, identity_auc=identity_auc, max_relations=max_relations,
                       max_columns=max_columns, probe=probe, probe_rows=probe_rows,
                       drop_relations=drop_relations, words=words)


def _screen(X, y, groups, *, seed, auc_threshold, corr_threshold, max_size, identity_auc, max_relations,
            max_columns, probe, probe_rows, drop_relations, words) -> LeakageScreen:
    y = np.asarray(y).astype(int)
    X = X.reset_index(drop=True)
    single = leakage_report(X.assign(__y=y), "__y", exclude=(), auc_threshold=auc_threshold,
                            corr_threshold=corr_threshold, seed=seed)
    reasons: dict[str, str] = {}
    for r in single.loc[single["suspect"]].itertuples():
        reasons[r.feature] = f"single-column suspect: {r.reason}"
    rest = [c for c in X.columns if c not in reasons]
    combos = relation_search(X[rest], y, groups, max_size=max_size, identity_auc=identity_auc,
                             max_relations=max_relations, max_columns=max_columns, seed=seed, words=words)
    for r in combos.itertuples():
        for c in r.columns:
            reasons[c] = f"part of a relation across columns: {r.relation}"
    flagged = [c for c in X.columns if c in reasons and (drop_relations or reasons[c].startswith("single"))]
    kept_all = len(flagged) >= X.shape[1]
    dropped = [] if kept_all else flagged
    left = [c for c in X.columns if c not in set(dropped)]
    probe_result = probe_models(X[left], y, groups, seed=seed, max_rows=probe_rows) if probe and left else None
    settings = {"auc_threshold": auc_threshold, "corr_threshold": corr_threshold, "max_size": max_size,
                "identity_auc": identity_auc, "max_relations": max_relations, "max_columns": max_columns,
                "probe": probe, "probe_rows": probe_rows, "drop_relations": drop_relations, "seed": seed,
                "kept_all": kept_all,
                "rule": "drop single-column suspects and the columns of each relation across columns "
                        "(never all columns); the probe reports only"}
    return LeakageScreen(single=single, combinations=combos, probe=probe_result, dropped=dropped,
                         reasons=reasons, settings=settings)
