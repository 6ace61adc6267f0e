"""Feature statistics: each feature against the label, features against each other, the model's reliance.

Used by :mod:`churnlib.validation` (and through it ``03_feature_validation``); plain-words text and
plots of these tables are in :mod:`churnlib.validation_report`.

* :func:`univariate_tests` -- churned vs retained per feature: Mann-Whitney U with rank-biserial
  effect (numeric), chi-square with Cramer's V (categorical), Benjamini-Hochberg q-values.
* :func:`redundancy_clusters` -- Spearman correlation, complete-linkage clustering, one representative
  kept per cluster.
* :func:`importance` -- permutation importance on held-out folds and mutual information;
  :func:`consistent_features` -- the features whose shuffling hurts on every held-out fold.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.base import clone
from sklearn.feature_selection import mutual_info_classif
from sklearn.metrics import roc_auc_score

from churnlib import evaluation as ev
from churnlib.models import make_pipeline, negatives_per_positive
from churnlib.rank_metrics import rank_auc

__all__ = [
    "consistent_features",
    "importance",
    "is_numeric",
    "permutation_drops",
    "redundancy_clusters",
    "univariate_tests",
]


# --------------------------------------------------------------------------------------------
# Univariate tests
# --------------------------------------------------------------------------------------------

def is_numeric(s: pd.Series) -> bool:
    """Numeric or boolean column (tested and clustered as numbers)."""
    return pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s)


def _one_row_per_group(groups: np.ndarray | None, n: int, seed: int) -> np.ndarray:
    """Row indices keeping one randomly chosen row per user (all rows when ids do not repeat)."""
    if groups is None or len(pd.unique(groups)) == len(groups):
        return np.arange(n)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    first = pd.Series(np.asarray(groups)[order]).duplicated().to_numpy()
    return np.sort(order[~first])


def univariate_tests(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *,
                     alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Churned vs retained, one feature at a time, with false-discovery-rate control.

    Numeric (and boolean) features: two-sided Mann-Whitney U, effect = rank-biserial correlation
    ``P(churned > retained) - P(churned < retained)`` (-1 to 1), medians per class. Categorical
    features: chi-square test of independence (no continuity correction; missing is a category),
    effect = Cramer's V (0 to 1). All p-values get Benjamini-Hochberg q-values together
    (:func:`scipy.stats.false_discovery_control`). Missing values are left out per feature.

    Parameters
    ----------
    X : pandas.DataFrame
        Features (datetime columns are skipped).
    y : array of 0/1
        Labels.
    groups : array, optional
        User ids. When a user has several rows (a stacked feature table), one row per user is
        drawn at random (``seed``) so the tests see independent observations; otherwise all rows.
    alpha : float, default 0.05
        Level for the ``significant`` column (on q-values).
    seed : int

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``feature``, ``kind``, ``test``, ``n_churned``, ``n_retained``,
        ``median_churned``, ``median_retained``, ``effect``, ``effect_measure``, ``p_value``,
        ``q_value``, ``significant``; sorted by q-value, then by decreasing |effect|, then name.
    """
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) != 2:
        raise ValueError("univariate tests need both classes in y")
    keep = _one_row_per_group(groups, len(y), seed)
    Xs, ys = X.iloc[keep], y[keep]
    rows = []
    for col in Xs.columns:
        s = Xs[col]
        if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
            continue
        row: dict[str, Any] = {"feature": col}
        if is_numeric(s):
            x = s.astype("float64").to_numpy()
            a, b = x[(ys == 1) & ~np.isnan(x)], x[(ys == 0) & ~np.isnan(x)]
            p = effect = np.nan
            if len(a) and len(b):
                if np.ptp(np.r_[a, b]) == 0:  # constant: no difference to test
                    p, effect = 1.0, 0.0
                else:
                    t = stats.mannwhitneyu(a, b, alternative="two-sided")
                    p, effect = float(t.pvalue), float(2 * t.statistic / (len(a) * len(b)) - 1)
            row.update(kind="numeric", test="Mann-Whitney U", n_churned=len(a), n_retained=len(b),
                       median_churned=float(np.median(a)) if len(a) else np.nan,
                       median_retained=float(np.median(b)) if len(b) else np.nan,
                       effect=effect, effect_measure="rank-biserial", p_value=p)
        else:
            cat = s.astype("string").fillna("<missing>").to_numpy(dtype=object)
            tab = pd.crosstab(cat, ys)
            p = effect = np.nan
            if tab.shape[0] >= 2 and tab.shape[1] == 2:
                chi2, p, _, _ = stats.chi2_contingency(tab.to_numpy(), correction=False)
                effect = float(np.sqrt(chi2 / tab.to_numpy().sum()))  # Cramer's V for a k x 2 table
                p = float(p)
            elif tab.shape[0] < 2:
                p, effect = 1.0, 0.0
            row.update(kind="categorical", test="chi-square", n_churned=int((ys == 1).sum()),
                       n_retained=int((ys == 0).sum()), median_churned=np.nan, median_retained=np.nan,
                       effect=effect, effect_measure="Cramér's V", p_value=p)
        rows.append(row)
    cols = ["feature", "kind", "test", "n_churned", "n_retained", "median_churned", "median_retained",
            "effect", "effect_measure", "p_value", "q_value", "significant"]
    out = pd.DataFrame(rows, columns=[c for c in cols if c not in ("q_value", "significant")])
    ok = out["p_value"].notna().to_numpy()
    q = np.full(len(out), np.nan)
    if ok.any():
        q[ok] = stats.false_discovery_control(out.loc[ok, "p_value"].to_numpy(float), method="bh")
    out["q_value"] = q
    out["significant"] = out["q_value"] < alpha
    out["abs_effect"] = out["effect"].abs()
    out = out.sort_values(["q_value", "abs_effect", "feature"], ascending=[True, False, True],
                          kind="mergesort", na_position="last").drop(columns="abs_effect")
    out.attrs.update(rows_tested=len(keep), rows=len(y), alpha=alpha)
    return out.reset_index(drop=True)[cols]



# --------------------------------------------------------------------------------------------
# Redundancy
# --------------------------------------------------------------------------------------------

def _association(X: pd.DataFrame, y: np.ndarray | None) -> pd.Series:
    """|2 AUC - 1| of each numeric column against ``y`` (0 when not computable or no ``y``)."""
    out = {}
    for c in X.columns:
        val = 0.0
        if y is not None:
            x = X[c].astype("float64").to_numpy()
            ok = ~np.isnan(x)
            if len(np.unique(y[ok])) == 2 and np.ptp(x[ok]) > 0:
                val = abs(2 * roc_auc_score(y[ok], x[ok]) - 1)
        out[c] = val
    return pd.Series(out, dtype=float)


def redundancy_clusters(X: pd.DataFrame, threshold: float = 0.9, *, y: np.ndarray | None = None) -> pd.DataFrame:
    """Groups of numeric features that measure the same thing, with one representative each.

    Spearman correlation (pairwise complete rows) gives the distance ``1 - |rho|``; complete-linkage
    hierarchical clustering cut at ``1 - threshold`` puts features in one cluster only when
    **every** pair among them correlates at ``|rho| >= threshold``. The representative is the member
    most associated with the label (``|2 AUC - 1|``, i.e. |rank-biserial|), ties by name; without
    ``y`` the first name. Categorical columns are not clustered (not listed).

    Parameters
    ----------
    X : pandas.DataFrame
        Features; numeric and boolean columns are clustered.
    threshold : float, default 0.9
        |Spearman rho| from which features count as duplicates.
    y : array of 0/1, optional
        Labels, to choose representatives.

    Returns
    -------
    pandas.DataFrame
        One row per numeric feature: ``feature``, ``cluster`` (1, 2, ... in column order),
        ``cluster_size``, ``representative``, ``kept`` (bool), ``duplicate_of`` (the representative
        for dropped members, else empty), ``rho`` (Spearman with the representative), ``association``;
        ordered by cluster, representative first.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    num = [c for c in X.columns if is_numeric(X[c])]
    cols = ["feature", "cluster", "cluster_size", "representative", "kept", "duplicate_of", "rho", "association"]
    if not num:
        return pd.DataFrame(columns=cols)
    Xn = X[num].astype("float64")
    rho = Xn.corr(method="spearman").fillna(0.0).to_numpy(copy=True)  # constant / no overlap: unrelated
    np.fill_diagonal(rho, 1.0)
    if len(num) == 1:
        labels = np.array([1])
    else:
        dist = np.clip(1 - np.abs(rho), 0, 1)
        dist = (dist + dist.T) / 2
        np.fill_diagonal(dist, 0.0)
        labels = fcluster(linkage(squareform(dist, checks=False), method="complete"),
                          t=1 - threshold + 1e-12, criterion="distance")
    # renumber clusters in column order so the output does not depend on scipy's labelling
    first_seen: dict[int, int] = {}
    for lab in labels:
        first_seen.setdefault(int(lab), len(first_seen) + 1)
    cluster = np.array([first_seen[int(lab)] for lab in labels])
    assoc = _association(Xn, None if y is None else np.asarray(y).astype(int))
    pos = {c: i for i, c in enumerate(num)}
    rows = []
    for k in sorted(set(cluster)):
        members = [c for c, lab in zip(num, cluster) if lab == k]
        rep = sorted(members, key=lambda c: (-round(assoc[c], 12), c))[0]
        for c in sorted(members, key=lambda c: (c != rep, c)):
            rows.append({"feature": c, "cluster": k, "cluster_size": len(members), "representative": rep,
                         "kept": c == rep, "duplicate_of": "" if c == rep else rep,
                         "rho": float(rho[pos[c], pos[rep]]), "association": float(assoc[c])})
    return pd.DataFrame(rows, columns=cols)



# --------------------------------------------------------------------------------------------
# Importance
# --------------------------------------------------------------------------------------------

def _mutual_information(X: pd.DataFrame, y: np.ndarray, seed: int) -> pd.Series:
    enc = {}
    discrete = []
    for c in X.columns:
        s = X[c]
        if is_numeric(s):
            x = s.astype("float64")
            enc[c] = x.fillna(x.median() if x.notna().any() else 0.0).to_numpy()
            discrete.append(False)
        else:
            enc[c] = pd.factorize(s.astype("string").fillna("<missing>"), sort=True)[0].astype(float)
            discrete.append(True)
    M = pd.DataFrame(enc, index=X.index).to_numpy()
    mi = mutual_info_classif(M, y, discrete_features=np.array(discrete), random_state=seed)
    return pd.Series(mi, index=X.columns)


def _column_blocks(prep, columns: list[str]) -> list[np.ndarray] | None:
    """Output columns of a fitted :class:`~sklearn.compose.ColumnTransformer` that each input column feeds.

    Read from the transformer's public ``output_indices_`` and each block's ``get_feature_names_out``:
    an output belongs to input ``c`` when it is named ``c``, ``missingindicator_c`` or ``c_<category>``.
    None when some output cannot be assigned to exactly one input (the caller then falls back).
    """
    try:
        blocks: dict[str, list[int]] = {c: [] for c in columns}
        for name, trans, cols in prep.transformers_:
            out = prep.output_indices_[name]
            if trans == "drop" or out.stop == out.start:
                continue
            cols = [columns[i] for i in cols] if not isinstance(cols[0], str) else list(cols)
            names = list(cols) if trans == "passthrough" else list(trans.get_feature_names_out())
            if len(names) != out.stop - out.start:
                return None
            for k, o in enumerate(names):
                exact = [c for c in cols if o in (c, f"missingindicator_{c}")]
                owners = exact or [c for c in cols if o.startswith(f"{c}_")]
                if len(owners) != 1:
                    return None
                blocks[owners[0]].append(out.start + k)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    return [np.asarray(blocks[c], dtype=int) for c in columns]


def _column_wise_parts(fitted, columns: list[str]):
    """``(transform, model, blocks)`` when ``fitted`` is a :func:`churnlib.models.make_pipeline` pipeline
    whose preprocessing works column by column (so shuffling an input column shuffles exactly its output
    columns), else None."""
    steps = getattr(fitted, "steps", None)
    if not steps or "prep" not in dict(steps) or set(dict(steps)) - {"coerce", "prep", "resample", "model"}:
        return None
    blocks = _column_blocks(dict(steps)["prep"], columns)
    if blocks is None or not all(len(b) for b in blocks):
        return None
    front = [est for name, est in steps[:-1] if name != "resample"]  # resamplers act only in fit

    def transform(X: pd.DataFrame) -> np.ndarray:
        for est in front:
            X = est.transform(X)
        return np.asarray(X, dtype=float)
    return transform, steps[-1][1], blocks


def permutation_drops(fitted, X: pd.DataFrame, y: np.ndarray, n_permutations: int,
                      rng: np.random.Generator) -> np.ndarray:
    """ROC-AUC drop when each column of ``X`` is shuffled, shape ``(n_features, n_permutations)``.

    The definition of :func:`sklearn.inspection.permutation_importance` (baseline score minus the
    score with one column's values permuted across rows; permutations drawn column by column, in
    order). For a :func:`churnlib.models.make_pipeline` pipeline the rows are preprocessed once and
    each shuffle permutes the preprocessed columns its input feeds (imputation, scaling, missing
    flags and one-hot coding act row by row, so the model sees exactly the rows it would see after
    preprocessing the shuffled frame); other estimators score every permuted copy of ``X`` stacked
    into one frame.

    Parameters
    ----------
    fitted
        A fitted classifier with ``predict_proba``.
    X : pandas.DataFrame
        Held-out rows.
    y : array of 0/1
        Their labels (both classes present).
    n_permutations : int
        Shuffles per column.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
    """
    n, cols = len(X), list(X.columns)
    perms = [[rng.permutation(n) for _ in range(n_permutations)] for _ in cols]
    parts = _column_wise_parts(fitted, cols)
    if parts is not None:
        transform, model, blocks = parts
        Xt = transform(X)
        base = rank_auc(y, model.predict_proba(Xt)[:, 1][None, :])[0]
        P = np.empty((len(cols) * n_permutations, n))
        for j, out in enumerate(blocks):
            shuffled = np.tile(Xt, (n_permutations, 1))
            for r in range(n_permutations):
                shuffled[r * n:(r + 1) * n, out] = Xt[perms[j][r]][:, out]
            P[j * n_permutations:(j + 1) * n_permutations] = model.predict_proba(shuffled)[:, 1].reshape(
                n_permutations, n)
        return (base - rank_auc(y, P)).reshape(len(cols), n_permutations)
    blocks_n = len(cols) * n_permutations
    base_idx = np.tile(np.arange(n), blocks_n)
    stacked = {}
    for j, c in enumerate(cols):
        idx = base_idx.copy()
        for r in range(n_permutations):
            start = (j * n_permutations + r) * n
            idx[start:start + n] = perms[j][r]
        stacked[c] = X[c].take(idx).reset_index(drop=True)
    P = fitted.predict_proba(pd.DataFrame(stacked))[:, 1].reshape(blocks_n, n)
    base = rank_auc(y, fitted.predict_proba(X)[:, 1][None, :])[0]
    return (base - rank_auc(y, P)).reshape(len(cols), n_permutations)


def importance(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *, model: str = "logreg",
               strategy: str = "class_weight", n_splits: int = 3, n_repeats: int = 1, n_permutations: int = 5,
               seed: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Permutation importance on held-out folds, and mutual information with the label.

    For every CV fold the pipeline is fitted on the training rows, then each feature is shuffled
    ``n_permutations`` times **on the fold's held-out rows** and the drop in ROC-AUC recorded (the
    definition of :func:`sklearn.inspection.permutation_importance`, batched: :func:`permutation_drops`),
    so importance reflects what generalises, not what was memorised. Mutual information
    (:func:`sklearn.feature_selection.mutual_info_classif`;
    numeric median-imputed, categories as discrete codes) is model-free and catches non-monotone
    relations a linear model misses.

    Parameters
    ----------
    X, y, groups
        Training features, labels and user ids (group-aware folds when ids repeat).
    model, strategy : str
        Pipeline from :func:`churnlib.models.make_pipeline`.
    n_splits, n_repeats : int
        CV folds and repeats.
    n_permutations : int
        Shuffles per feature and fold.
    seed, n_jobs : int

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``feature``, ``perm_importance`` (mean ROC-AUC drop over folds),
        ``perm_std`` (over folds and shuffles), ``perm_low``/``perm_high`` (2.5/97.5 percentiles of
        the per-fold means), ``folds_positive`` (share of folds with a positive mean drop),
        ``mutual_info`` (nats), ``perm_rank``, ``mi_rank``; sorted by ``perm_importance`` then name.
    """
    y = np.asarray(y).astype(int)
    splits = ev.cv_splits(y, groups, n_splits, n_repeats, seed)
    pipe = make_pipeline(model, strategy, pos_weight=negatives_per_positive(y), seed=seed, n_jobs=1)
    per_fold, raw = [], []
    k = 0
    for part in splits:
        for train, test in part:
            k += 1
            if len(np.unique(y[test])) < 2:
                continue
            fitted = clone(pipe).fit(X.iloc[train], y[train])
            drops = permutation_drops(fitted, X.iloc[test], y[test], n_permutations,
                                       np.random.default_rng([seed, k]))
            per_fold.append(drops.mean(axis=1))
            raw.append(drops)
    F = np.array(per_fold)  # (folds, features)
    R = np.concatenate(raw, axis=1)
    mi = _mutual_information(X, y, seed)
    out = pd.DataFrame({
        "feature": list(X.columns),
        "perm_importance": F.mean(axis=0),
        "perm_std": R.std(axis=1),
        "perm_low": np.percentile(F, 2.5, axis=0),
        "perm_high": np.percentile(F, 97.5, axis=0),
        "folds_positive": (F > 0).mean(axis=0),
        "mutual_info": mi.to_numpy(),
    })
    out["perm_rank"] = out["perm_importance"].rank(ascending=False, method="min").astype(int)
    out["mi_rank"] = out["mutual_info"].rank(ascending=False, method="min").astype(int)
    out = out.sort_values(["perm_importance", "feature"], ascending=[False, True], kind="mergesort")
    out.attrs.update(model=model, strategy=strategy, n_folds=len(per_fold), n_permutations=n_permutations)
    return out.reset_index(drop=True)




def consistent_features(imp: pd.DataFrame) -> list[str]:
    """Features whose shuffling lowers ROC-AUC on average and on every held-out fold.

    Parameters
    ----------
    imp : pandas.DataFrame
        :func:`importance` result.

    Returns
    -------
    list of str
        In the order of ``imp`` (most important first).
    """
    keep = (imp["perm_importance"] > 0) & (imp["folds_positive"] == 1)
    return imp.loc[keep, "feature"].tolist()
