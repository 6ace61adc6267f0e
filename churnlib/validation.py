"""Feature validation: which features carry churn signal, which repeat each other, which to keep.

Used by ``notebooks/03_feature_validation.ipynb``. Every step runs on the **training part** of the
very table the modelling step uses (:func:`churnlib.training.training_table`), cut exactly as
:func:`churnlib.training.split_table` cuts it (same seed and holdout fraction), so no choice made here
has seen the holdout.

* :func:`feature_ladder` -- nested feature sets: baseline counts -> + windows -> + trends -> + contact
  signals (event tables), or original columns -> + synthetic features (snapshot tables).
* :func:`compare_feature_sets` -- every set in the same repeated, group-aware CV; ROC-AUC, PR-AUC and
  F1 with 95% intervals, and a paired comparison of consecutive sets on the same out-of-fold rows.
* :func:`univariate_tests` -- churned vs retained per feature: Mann-Whitney U with rank-biserial
  effect (numeric), chi-square with Cramer's V (categorical), Benjamini-Hochberg q-values.
* :func:`redundancy_clusters` -- Spearman correlation, complete-linkage clustering, one representative
  kept per cluster.
* :func:`importance` -- permutation importance on held-out folds and mutual information.
* :func:`select_features` -- the conservative rule: drop leakage suspects, constant columns and
  redundant duplicates; keep the rest.
* :func:`save_feature_set` / :func:`load_feature_set` -- ``data/processed/feature_set.json``, read by
  the modelling step.
* :func:`run_validation` -- all of the above on a table, as the notebook runs it.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.base import clone

from churnlib import evaluation as ev
from churnlib import thresholds as th
from churnlib.files import atomic_write_text
from churnlib.intervals import bootstrap_sampler

__all__ = [
    "FEATURE_SET_FILE",
    "LADDER_STEPS",
    "FeatureSelection",
    "ValidationResult",
    "cluster_table",
    "compare_feature_sets",
    "comparison_table",
    "feature_ladder",
    "importance",
    "ladder_statement",
    "load_feature_set",
    "plot_feature_sets",
    "plot_importance",
    "plot_univariate",
    "redundancy_clusters",
    "run_validation",
    "save_feature_set",
    "select_features",
    "table_kind",
    "univariate_tests",
]

#: File name of the chosen feature set under ``paths.processed_data_dir``.
FEATURE_SET_FILE = "feature_set.json"
#: Who writes the feature set (recorded in the file).
WRITTEN_BY = "03_feature_validation"

#: Step names of the event-table ladder, in order.
LADDER_STEPS: tuple[str, ...] = ("baseline counts", "+ windows", "+ trends", "+ contact signals")
#: Step names of the snapshot ladder.
SNAPSHOT_STEPS: tuple[str, ...] = ("original columns", "+ synthetic features")

#: Sparkify pages whose visits signal friction or contact: help, errors, adverts, thumbs down.
CONTACT_PAGES: tuple[str, ...] = ("help", "error", "roll_advert", "thumbs_down")
_WINDOW_SUFFIXES = ("_7d", "_14d", "_30d")
_RATE_SUFFIXES = ("_per_song", "_per_session_hour")


# --------------------------------------------------------------------------------------------
# Ladder
# --------------------------------------------------------------------------------------------

def table_kind(table: pd.DataFrame) -> str:
    """``"events"`` for a feature table built from an event log (``userId``, ``as_of``, ``churned``), else ``"snapshot"``."""
    from churnlib.features import KEY_COLUMNS

    return "events" if set(KEY_COLUMNS) <= set(table.columns) else "snapshot"


def _event_step(name: str, group: str | None) -> int:
    """Ladder step (0-3) of one event feature; see :func:`feature_ladder`."""
    if group == "trends":
        return 2
    stem = name
    for suffix in _RATE_SUFFIXES:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
    if group in ("support", "ratios") or (group == "pages" and stem in CONTACT_PAGES):
        return 3
    if (group in ("frequency", "recency", "sessions") or name.endswith(_WINDOW_SUFFIXES)
            or (group == "pages" and stem != name)):
        return 1
    if group is None:  # not in the feature dictionary: only in the full set
        return 3
    return 0


def feature_ladder(columns: Sequence[str], kind: str = "events", *,
                   synthetic: Sequence[str] = ()) -> dict[str, list[str]]:
    """Nested feature sets, each one the previous plus a family of features.

    Event tables (groups from :func:`churnlib.features.feature_dictionary`):

    1. ``baseline counts`` -- who the user is and how much they did overall: groups tenure,
       listening (totals), diversity, subscription and context, and the lifetime visit counts of
       the pages that are not contact signals (thumbs up, add friend, add to playlist, settings,
       save settings, upgrade, submit upgrade, downgrade, submit downgrade).
    2. ``+ windows`` -- time-resolved activity: groups frequency, recency and sessions, any column
       ending in ``_7d``/``_14d``/``_30d`` (e.g. ``listening_hours_7d``), and the per-song and
       per-session-hour rates of the non-contact pages.
    3. ``+ trends`` -- group trends (last period vs the one before, weekly slope, time-of-day shares).
    4. ``+ contact signals`` -- group support, group ratios (skips, thumbs-up share, adverts per
       song) and every count or rate of the Help, Error, Roll Advert and Thumbs Down pages.
       Columns not in the dictionary also enter here, so the last set is every column given.

    Snapshot tables: ``original columns`` -> ``+ synthetic features`` (the latter only when
    ``synthetic`` names columns present in ``columns``).

    Parameters
    ----------
    columns : sequence of str
        Candidate feature columns (ids and label already removed).
    kind : {"events", "snapshot"}
    synthetic : sequence of str
        Synthetic columns (drawn from the label; for the comparison only). For event tables they
        form an extra last step ``+ synthetic features`` when present.

    Returns
    -------
    dict of str to list of str
        Step name -> columns, in ladder order; every set contains the previous one. Steps that
        would add no column are left out.
    """
    if kind not in ("events", "snapshot"):
        raise ValueError(f"kind must be 'events' or 'snapshot', got {kind!r}")
    columns = list(columns)
    synth = [c for c in columns if c in set(synthetic)]
    real = [c for c in columns if c not in set(synth)]
    if kind == "snapshot":
        increments = [real]
        names = [SNAPSHOT_STEPS[0]]
    else:
        from churnlib.features import feature_dictionary

        groups = dict(feature_dictionary()[["name", "group"]].itertuples(index=False))
        increments = [[] for _ in LADDER_STEPS]
        for c in real:
            increments[_event_step(c, groups.get(c))].append(c)
        names = list(LADDER_STEPS)
    if synth:
        increments.append(synth)
        names.append(SNAPSHOT_STEPS[1])
    ladder: dict[str, list[str]] = {}
    current: list[str] = []
    for name, add in zip(names, increments):
        if not add:
            continue
        current = current + add
        ladder[name] = list(current)
    return ladder


# --------------------------------------------------------------------------------------------
# Comparison of feature sets
# --------------------------------------------------------------------------------------------

_COMPARED = ("roc_auc", "pr_auc", "f1")
_PAIRED = ("roc_auc", "pr_auc")


def _average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision as :func:`sklearn.metrics.average_precision_score` computes it (ties grouped)."""
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]  # end of each run of tied scores
    tp = np.cumsum(ys)[last]
    precision = tp / (last + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _auc_pair(y: np.ndarray, P: np.ndarray, idx) -> np.ndarray:
    """ROC-AUC and PR-AUC of probabilities ``P`` (repeats x rows) on rows ``idx``, averaged over repeats."""
    yy = y[idx]
    if len(np.unique(yy)) < 2:
        return np.full(2, np.nan)
    Q = P[:, idx]
    roc = _rank_auc(yy, Q).mean()
    pr = np.mean([_average_precision(yy, q) for q in Q])
    return np.array([roc, pr])


def compare_feature_sets(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None,
                         sets: Mapping[str, Sequence[str]], *, model: str = "logreg",
                         strategy: str = "class_weight", n_splits: int = 3, n_repeats: int = 1,
                         n_bootstrap: int = 200, seed: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Cross-validate one model on each feature set with the same splits, and compare consecutive sets.

    Parameters
    ----------
    X : pandas.DataFrame
        Training features (every column any set names).
    y : array of 0/1
        Labels.
    groups : array, optional
        User ids: folds and bootstrap keep a user's rows together.
    sets : mapping of str to sequence of str
        Set name -> columns, in the order to compare (e.g. :func:`feature_ladder`).
    model, strategy : str
        A :data:`churnlib.models.MODELS` x :data:`churnlib.models.STRATEGIES` pipeline
        (preprocessing inside the folds).
    n_splits, n_repeats : int
        Repeated stratified (group) K-fold, computed once and shared by every set.
    n_bootstrap : int
        Bootstrap replicates over users for every interval (the same draws for every set).
    seed, n_jobs : int

    Returns
    -------
    pandas.DataFrame
        One row per set (index ``set``): ``n_features``, ``added``; ``roc_auc``, ``pr_auc``, ``f1``
        each with ``_low``/``_high`` (95% intervals; F1 at a threshold chosen on the other folds);
        ``delta_roc_auc`` and ``delta_pr_auc`` with ``_low``/``_high`` -- the paired difference to
        the previous set on the same out-of-fold rows and bootstrap draws; ``folds_better`` -- in how
        many of the CV folds the ROC-AUC rose over the previous set (of ``n_folds``); ``gain_roc_auc``
        with ``_low``/``_high`` -- the same paired difference to the first set; ``verdict`` --
        ``"helps"``/``"hurts"`` when the ROC-AUC difference interval excludes 0, else
        ``"no clear change"`` (``"first"`` for the first set).
    """
    from churnlib.models import negatives_per_positive, make_pipeline

    if not sets:
        raise ValueError("no feature sets to compare")
    missing = sorted({c for cols in sets.values() for c in cols} - set(X.columns))
    if missing:
        raise KeyError(f"columns not in X: {missing}")
    y = np.asarray(y).astype(int)
    splits = ev.cv_splits(y, groups, n_splits, n_repeats, seed)
    pipe = make_pipeline(model, strategy, pos_weight=negatives_per_positive(y), seed=seed, n_jobs=1)
    names = list(sets)
    oofs: list[np.ndarray] = []
    rows = []
    prev: list[str] = []
    for name in names:
        cols = list(sets[name])
        if not cols:
            raise ValueError(f"feature set {name!r} is empty")
        oof = ev.oof_predict(clone(pipe), X[cols], y, splits, n_jobs=n_jobs)
        hard = th.cross_fitted_decisions(y, oof, splits)
        res = ev.evaluate_predictions(y, oof, hard, groups, n_bootstrap=n_bootstrap, seed=seed)
        row: dict[str, Any] = {"set": name, "n_features": len(cols), "added": len(set(cols) - set(prev))}
        for m in _COMPARED:
            row[m], row[f"{m}_low"], row[f"{m}_high"] = res.loc[m, ["value", "low", "high"]]
        rows.append(row)
        oofs.append(oof)
        prev = cols

    # paired comparison of consecutive sets: same out-of-fold rows, same bootstrap draws
    rng = np.random.default_rng(seed)
    draw = bootstrap_sampler(groups, len(y), rng)
    point = np.array([_auc_pair(y, P, slice(None)) for P in oofs])  # (sets, 2)
    reps = np.array([[_auc_pair(y, P, idx) for P in oofs] for idx in (draw() for _ in range(n_bootstrap))])
    folds = [(r, test) for r, part in enumerate(splits) for _, test in part]
    fold_auc = np.array([[_rank_auc(y[test], P[r, test][None, :])[0] for r, test in folds]
                         for P in oofs])  # (sets, folds)
    for k, row in enumerate(rows):
        row["n_folds"] = len(folds)
        if k == 0:
            for m in _PAIRED:
                row[f"delta_{m}"] = row[f"delta_{m}_low"] = row[f"delta_{m}_high"] = np.nan
            row["gain_roc_auc"] = row["gain_roc_auc_low"] = row["gain_roc_auc_high"] = np.nan
            row["folds_better"], row["verdict"] = np.nan, "first"
            continue
        for j, m in enumerate(_PAIRED):
            row[f"delta_{m}"] = point[k, j] - point[k - 1, j]
            if n_bootstrap:
                d = reps[:, k, j] - reps[:, k - 1, j]
                row[f"delta_{m}_low"], row[f"delta_{m}_high"] = np.nanpercentile(d, [2.5, 97.5])
            else:
                row[f"delta_{m}_low"] = row[f"delta_{m}_high"] = np.nan
        # cumulative gain over the first set, on the same draws
        row["gain_roc_auc"] = point[k, 0] - point[0, 0]
        if n_bootstrap:
            row["gain_roc_auc_low"], row["gain_roc_auc_high"] = np.nanpercentile(reps[:, k, 0] - reps[:, 0, 0],
                                                                               [2.5, 97.5])
        else:
            row["gain_roc_auc_low"] = row["gain_roc_auc_high"] = np.nan
        row["folds_better"] = int(np.sum(fold_auc[k] > fold_auc[k - 1]))
        lo, hi = row["delta_roc_auc_low"], row["delta_roc_auc_high"]
        row["verdict"] = "helps" if lo > 0 else "hurts" if hi < 0 else "no clear change"
    out = pd.DataFrame(rows).set_index("set")
    out.attrs.update(model=model, strategy=strategy, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
    return out


def _signed(v: float, digits: int = 3) -> str:
    return f"{v:+.{digits}f}"


def ladder_statement(comparison: pd.DataFrame) -> str:
    """Plain sentences on a :func:`compare_feature_sets` result: signal at all, and what each step adds."""
    first = comparison.iloc[0]
    best_name = comparison["roc_auc"].idxmax()
    best = comparison.loc[best_name]
    if (comparison["roc_auc_low"] <= 0.5).all():
        head = (f"No detectable signal: the ROC-AUC interval of every feature set covers 0.5 (best "
                f"{best_name}: {best['roc_auc']:.3f}, {best['roc_auc_low']:.3f}–{best['roc_auc_high']:.3f}); "
                "no set does better than chance.")
    else:
        head = (f"{comparison.index[0]} reach ROC-AUC {first['roc_auc']:.3f} "
                f"({first['roc_auc_low']:.3f}–{first['roc_auc_high']:.3f}); the best set, {best_name}, "
                f"{best['roc_auc']:.3f} ({best['roc_auc_low']:.3f}–{best['roc_auc_high']:.3f}).")
    steps = []
    for name, r in comparison.iloc[1:].iterrows():
        what = {"helps": "clearly helps", "hurts": "clearly hurts", "no clear change": "no clear change"}[r["verdict"]]
        steps.append(f"{name}: ROC-AUC {_signed(r['delta_roc_auc'])} ({_signed(r['delta_roc_auc_low'])} to "
                     f"{_signed(r['delta_roc_auc_high'])}), better in {int(r['folds_better'])} of "
                     f"{int(r['n_folds'])} folds -- {what}")
    tail = ""
    if len(comparison) > 2:
        last = comparison.iloc[-1]
        clear = last["gain_roc_auc_low"] > 0 or last["gain_roc_auc_high"] < 0
        tail = (f" All steps together, {comparison.index[-1]} vs {comparison.index[0]}: ROC-AUC "
                f"{_signed(last['gain_roc_auc'])} ({_signed(last['gain_roc_auc_low'])} to "
                f"{_signed(last['gain_roc_auc_high'])}) -- {'a clear change' if clear else 'no clear change'}.")
    return head + ("" if not steps else " Step by step: " + "; ".join(steps) + ".") + tail


def _iv(v: float, lo: float, hi: float, signed: bool = False) -> str:
    if not np.isfinite(v):
        return ""
    f = _signed if signed else (lambda x: f"{x:.3f}")
    return f"{f(v)} ({f(lo)} to {f(hi)})" if signed else f"{v:.3f} ({lo:.3f}–{hi:.3f})"


def comparison_table(comparison: pd.DataFrame, ladder: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """A :func:`compare_feature_sets` result for reading: intervals as text, one row per set.

    Parameters
    ----------
    comparison : pandas.DataFrame
    ladder : mapping, optional
        The compared sets, to list what each step adds (first few names).
    """
    rows = []
    prev: list[str] = []
    for name, r in comparison.iterrows():
        row = {"set": name, "features": int(r["n_features"])}
        if ladder is not None:
            added = [c for c in ladder[name] if c not in set(prev)]
            row["adds"] = ", ".join(added[:4]) + (f" … (+{len(added) - 4})" if len(added) > 4 else "")
            prev = list(ladder[name])
        for m, label in (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("f1", "F1")):
            row[label] = _iv(r[m], r[f"{m}_low"], r[f"{m}_high"])
        row["Δ ROC-AUC vs previous"] = _iv(r["delta_roc_auc"], r["delta_roc_auc_low"], r["delta_roc_auc_high"], True)
        row["Δ PR-AUC vs previous"] = _iv(r["delta_pr_auc"], r["delta_pr_auc_low"], r["delta_pr_auc_high"], True)
        row["folds better"] = "" if r["verdict"] == "first" else f"{int(r['folds_better'])}/{int(r['n_folds'])}"
        row["verdict"] = "" if r["verdict"] == "first" else r["verdict"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("set")


def cluster_table(clusters: pd.DataFrame) -> pd.DataFrame:
    """Clusters with more than one member: the representative kept, the duplicates dropped, the weakest |rho|."""
    rows = []
    for _, m in clusters[clusters["cluster_size"] > 1].groupby("cluster", sort=True):
        rep = m.loc[m["kept"], "feature"].iloc[0]
        dropped = m.loc[~m["kept"]]
        rows.append({"kept": rep, "dropped as duplicates": ", ".join(dropped["feature"]),
                     "members": len(m), "lowest |ρ| with kept": float(dropped["rho"].abs().min()),
                     "association of kept (|rank-biserial|)": float(m.loc[m["kept"], "association"].iloc[0])})
    return pd.DataFrame(rows, columns=["kept", "dropped as duplicates", "members", "lowest |ρ| with kept",
                                       "association of kept (|rank-biserial|)"])


def plot_feature_sets(comparison: pd.DataFrame):
    """ROC-AUC and PR-AUC of each feature set with 95% intervals; the title states the finding.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    names = list(comparison.index)
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 2), sharey=True)
    pos = np.arange(len(names))[::-1]
    for ax, m, label in ((axes[0], "roc_auc", "ROC-AUC"), (axes[1], "pr_auc", "PR-AUC")):
        v = comparison[m].to_numpy(float)
        err = np.vstack([v - comparison[f"{m}_low"].to_numpy(float), comparison[f"{m}_high"].to_numpy(float) - v])
        colors = ["#DD8452" if verdict == "helps" else "#4C72B0" for verdict in comparison["verdict"]]
        ax.errorbar(v, pos, xerr=err, fmt="none", ecolor="grey", capsize=3)
        ax.scatter(v, pos, c=colors, zorder=3)
        ax.set_xlabel(f"cross-validated {label} (95% interval)")
        if m == "roc_auc":
            ax.axvline(0.5, color="grey", ls="--", lw=1)
    axes[0].set_yticks(pos, [f"{n} ({k})" for n, k in zip(names, comparison["n_features"])])
    helps = [n for n in names if comparison.loc[n, "verdict"] == "helps"]
    if (comparison["roc_auc_low"] <= 0.5).all():
        title = "No feature set beats chance: every ROC-AUC interval covers 0.5"
    elif helps and comparison["roc_auc_low"].iloc[0] <= 0.5:
        title = (f"{names[0]} score at chance (ROC-AUC {comparison['roc_auc'].iloc[0]:.2f}); "
                 f"{' and '.join(helps)} raise{'s' if len(helps) == 1 else ''} it to {comparison['roc_auc'].iloc[-1]:.2f}")
    elif helps:
        title = (f"{' and '.join(helps)} clearly raise{'s' if len(helps) == 1 else ''} ROC-AUC; "
                 f"the full ladder reaches {comparison['roc_auc'].iloc[-1]:.2f}")
    elif len(names) > 1 and comparison["gain_roc_auc_low"].iloc[-1] > 0:
        title = (f"No single step is clearly better, but together they raise ROC-AUC from "
                 f"{comparison['roc_auc'].iloc[0]:.2f} to {comparison['roc_auc'].iloc[-1]:.2f}")
    else:
        title = (f"{names[0]} already reach ROC-AUC {comparison['roc_auc'].iloc[0]:.2f}; "
                 "no later step clearly adds to it")
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Univariate tests
# --------------------------------------------------------------------------------------------

def _is_numeric(s: pd.Series) -> bool:
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
        if _is_numeric(s):
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


def plot_univariate(tests: pd.DataFrame, top: int = 20):
    """Effect sizes of the numeric features with the smallest q-values; the title states how many differ.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from churnlib.plotting import CLASS_PALETTE

    num = tests[tests["kind"] == "numeric"].dropna(subset=["effect"]).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.3 * max(len(num), 1) + 1.6))
    colors = [CLASS_PALETTE["churned"] if s else "#BBBBBB" for s in num["significant"]]
    ax.barh(num["feature"], num["effect"], color=colors)
    ax.axvline(0, color="grey", lw=1)
    ax.set_xlim(-1, 1)
    ax.set_xlabel("rank-biserial effect: churned vs retained (coloured: q < "
                  f"{tests.attrs.get('alpha', 0.05):g})")
    n_sig, n = int(tests["significant"].sum()), len(tests)
    if n_sig:
        lead = tests.loc[tests["significant"]].iloc[0]
        title = (f"{n_sig} of {n} features differ between churned and retained (FDR q < "
                 f"{tests.attrs.get('alpha', 0.05):g}); strongest: {lead['feature']}")
    else:
        title = f"No feature differs clearly between churned and retained (all {n} q-values ≥ {tests.attrs.get('alpha', 0.05):g})"
    ax.set_title(title)
    return fig


# --------------------------------------------------------------------------------------------
# Redundancy
# --------------------------------------------------------------------------------------------

def _association(X: pd.DataFrame, y: np.ndarray | None) -> pd.Series:
    """|2 AUC - 1| of each numeric column against ``y`` (0 when not computable or no ``y``)."""
    from sklearn.metrics import roc_auc_score

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
    num = [c for c in X.columns if _is_numeric(X[c])]
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
    from sklearn.feature_selection import mutual_info_classif

    enc = {}
    discrete = []
    for c in X.columns:
        s = X[c]
        if _is_numeric(s):
            x = s.astype("float64")
            enc[c] = x.fillna(x.median() if x.notna().any() else 0.0).to_numpy()
            discrete.append(False)
        else:
            enc[c] = pd.factorize(s.astype("string").fillna("<missing>"), sort=True)[0].astype(float)
            discrete.append(True)
    M = pd.DataFrame(enc, index=X.index).to_numpy()
    mi = mutual_info_classif(M, y, discrete_features=np.array(discrete), random_state=seed)
    return pd.Series(mi, index=X.columns)


def _permutation_drops(fitted, X: pd.DataFrame, y: np.ndarray, n_permutations: int,
                       rng: np.random.Generator) -> np.ndarray:
    """ROC-AUC drop when each column of ``X`` is shuffled, shape ``(n_features, n_permutations)``.

    The definition of :func:`sklearn.inspection.permutation_importance` (baseline score minus the
    score with one column's values permuted across rows), batched: every permuted copy of ``X`` is
    stacked into one frame and scored in a single ``predict_proba`` call, which is ~50x faster than
    one call per shuffle for a pipeline with a column transformer.
    """
    n, cols = len(X), list(X.columns)
    blocks = len(cols) * n_permutations
    base_idx = np.tile(np.arange(n), blocks)
    stacked = {}
    perms = [[rng.permutation(n) for _ in range(n_permutations)] for _ in cols]
    for j, c in enumerate(cols):
        idx = base_idx.copy()
        for r in range(n_permutations):
            start = (j * n_permutations + r) * n
            idx[start:start + n] = perms[j][r]
        stacked[c] = X[c].take(idx).reset_index(drop=True)
    P = fitted.predict_proba(pd.DataFrame(stacked))[:, 1].reshape(blocks, n)
    base = _rank_auc(y, fitted.predict_proba(X)[:, 1][None, :])[0]
    return (base - _rank_auc(y, P)).reshape(len(cols), n_permutations)


def _rank_auc(y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row of ``P`` against ``y`` (Mann-Whitney form, ties averaged), vectorised."""
    pos = np.asarray(y) == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    ranks = stats.rankdata(P, axis=1)
    return (ranks[:, pos].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def importance(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *, model: str = "logreg",
               strategy: str = "class_weight", n_splits: int = 3, n_repeats: int = 1, n_permutations: int = 5,
               seed: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Permutation importance on held-out folds, and mutual information with the label.

    For every CV fold the pipeline is fitted on the training rows, then each feature is shuffled
    ``n_permutations`` times **on the fold's held-out rows** and the drop in ROC-AUC recorded (the
    definition of :func:`sklearn.inspection.permutation_importance`, batched into one prediction
    call per fold), so importance reflects what generalises, not what was memorised. Mutual information (:func:`sklearn.feature_selection.mutual_info_classif`;
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
    from churnlib.models import negatives_per_positive, make_pipeline

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
            drops = _permutation_drops(fitted, X.iloc[test], y[test], n_permutations,
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


def plot_importance(imp: pd.DataFrame, top: int = 15):
    """Permutation importance (with its spread over folds) next to mutual information, top features.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    shown = imp.head(top).iloc[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.3 * max(len(shown), 1) + 1.8), sharey=True)
    err = np.vstack([shown["perm_importance"] - shown["perm_low"], shown["perm_high"] - shown["perm_importance"]])
    axes[0].barh(shown["feature"], shown["perm_importance"], xerr=np.clip(err, 0, None), color="#4C72B0",
                 ecolor="grey", capsize=2)
    axes[0].axvline(0, color="grey", lw=1)
    axes[0].set_xlabel("ROC-AUC drop when shuffled (held-out folds)")
    axes[1].barh(shown["feature"], shown["mutual_info"], color="#55A868")
    axes[1].set_xlabel("mutual information with churn (nats)")
    positive = imp[(imp["perm_importance"] > 0) & (imp["folds_positive"] == 1)]
    if len(positive):
        lead = imp.iloc[0]
        title = (f"{len(positive)} features help on every held-out fold; shuffling {lead['feature']} "
                 f"costs {lead['perm_importance']:.3f} ROC-AUC")
    else:
        title = "No feature helps the model consistently on held-out folds"
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------

@dataclass
class FeatureSelection:
    """The chosen feature set and why each candidate was kept or dropped.

    Attributes
    ----------
    features : list of str
        Chosen columns, in the table's order.
    reasons : dict of str to str
        Every candidate column -> ``"kept..."`` or ``"dropped: ..."``.
    leakage : pandas.DataFrame
        :func:`churnlib.features.leakage_report` on the rows used.
    clusters : pandas.DataFrame
        :func:`redundancy_clusters` of the features left after removing suspects and constants.
    settings : dict
        Thresholds and seed.
    """

    features: list[str]
    reasons: dict[str, str]
    leakage: pd.DataFrame
    clusters: pd.DataFrame
    settings: dict = field(default_factory=dict)

    @property
    def dropped(self) -> dict[str, str]:
        """Dropped column -> reason (without the ``"dropped: "`` prefix)."""
        return {c: r.removeprefix("dropped: ") for c, r in self.reasons.items() if r.startswith("dropped")}

    def table(self) -> pd.DataFrame:
        """One row per candidate: ``feature``, ``decision`` (kept/dropped), ``reason``."""
        return pd.DataFrame([{"feature": c, "decision": "dropped" if r.startswith("dropped") else "kept",
                              "reason": r.removeprefix("dropped: ")} for c, r in self.reasons.items()])

    def summary(self) -> str:
        """One plain sentence: how many kept and why the others went."""
        kinds: dict[str, int] = {}
        for r in self.dropped.values():
            key = r.split(" (")[0].split(" with ")[0]
            kinds[key] = kinds.get(key, 0) + 1
        why = "; ".join(f"{n} {k}" for k, n in kinds.items())
        return (f"{len(self.features)} of {len(self.reasons)} candidate features kept"
                + (f"; dropped {len(self.dropped)}: {why}." if self.dropped else "; none dropped."))


def select_features(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *,
                    leakage: pd.DataFrame | None = None, redundancy_threshold: float = 0.9,
                    never: Mapping[str, str] | None = None, seed: int = 0) -> FeatureSelection:
    """The conservative rule: drop what is certainly harmful or duplicated, keep the rest.

    In order:

    1. columns in ``never`` (e.g. synthetic columns drawn from the label) -- dropped with the
       given reason;
    2. leakage suspects of :func:`churnlib.features.leakage_report` (computed on these rows as
       :func:`churnlib.training.split_table` computes it, unless given) -- dropped; as in
       ``split_table``, when every column is a suspect none is dropped;
    3. constant columns (at most one distinct value on these rows) -- dropped: no signal possible;
    4. redundant duplicates (:func:`redundancy_clusters` at ``redundancy_threshold`` on what is
       left) -- every cluster member but its representative dropped.

    Features with no significant univariate difference are **kept**: a few hundred users give the
    tests little power, and a feature may matter together with others.

    Parameters
    ----------
    X, y, groups
        Training features, labels and user ids (``groups`` is unused by the rule; accepted for a
        uniform signature).
    leakage : pandas.DataFrame, optional
        A precomputed leakage report on the same rows.
    redundancy_threshold : float, default 0.9
        |Spearman rho| from which features are duplicates.
    never : mapping of str to str, optional
        Column -> reason for columns that must never be chosen.
    seed : int
        Seed of the leakage report's categorical folds.

    Returns
    -------
    FeatureSelection
    """
    from churnlib.features import leakage_report

    y = np.asarray(y).astype(int)
    never = dict(never or {})
    reasons: dict[str, str] = {}
    for c in X.columns:
        if c in never:
            reasons[c] = f"dropped: {never[c]}"
    cand = [c for c in X.columns if c not in reasons]
    if leakage is None:
        leakage = leakage_report(X[cand].assign(__y=y), "__y", exclude=(), seed=seed)
    flagged = leakage.loc[leakage["suspect"] & leakage["feature"].isin(cand)]
    if len(flagged) < len(cand):  # as split_table: if everything is a suspect, nothing is dropped
        for _, r in flagged.iterrows():
            reasons[r["feature"]] = f"dropped: leakage suspect ({r['reason']})"
    cand = [c for c in cand if c not in reasons]
    for c in cand:
        if X[c].nunique(dropna=True) <= 1:
            reasons[c] = "dropped: constant on the training part (no signal possible)"
    cand = [c for c in cand if c not in reasons]
    clusters = redundancy_clusters(X[cand], redundancy_threshold, y=y)
    for _, r in clusters.iterrows():
        if not r["kept"]:
            reasons[r["feature"]] = (f"dropped: redundant with {r['duplicate_of']} "
                                     f"(Spearman ρ = {r['rho']:.2f})")
    sizes = clusters.loc[clusters["kept"] & (clusters["cluster_size"] > 1)]
    for c in cand:
        if c in reasons:
            continue
        big = sizes.loc[sizes["feature"] == c]
        if len(big):
            n = int(big["cluster_size"].iloc[0]) - 1
            reasons[c] = f"kept: represents {n} feature{'s' if n > 1 else ''} with |ρ| ≥ {redundancy_threshold:g}"
        else:
            reasons[c] = "kept"
    ordered = {c: reasons[c] for c in X.columns}
    chosen = [c for c in X.columns if not ordered[c].startswith("dropped")]
    if not chosen:
        raise ValueError("no feature left after selection")
    return FeatureSelection(chosen, ordered, leakage, clusters,
                            settings={"redundancy_threshold": redundancy_threshold, "seed": seed,
                                      "rule": "drop leakage suspects, constant columns and redundant duplicates; "
                                              "keep the rest"})


# --------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------

def save_feature_set(selection: FeatureSelection, *, id_col: str, label_col: str,
                     source_path: str | os.PathLike, output_dir: str | os.PathLike | None = None) -> Path:
    """Write ``processed_data_dir(output_dir)/feature_set.json`` atomically, for the modelling step.

    The file holds ``features``, ``id_col``, ``label_col``, ``fingerprint`` (of ``source_path``,
    :func:`churnlib.load.data_fingerprint`), ``source``, ``dropped`` (column -> reason) and
    ``written_by``.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from churnlib import paths
    from churnlib.load import data_fingerprint

    payload = {"features": list(selection.features), "id_col": id_col, "label_col": label_col,
               "fingerprint": data_fingerprint(source_path), "source": str(source_path),
               "dropped": dict(selection.dropped), "written_by": WRITTEN_BY}
    folder = paths.processed_data_dir(output_dir)
    out = folder / FEATURE_SET_FILE
    # readers see the old file or the new one, never half of one
    atomic_write_text(out, json.dumps(payload, indent=2, ensure_ascii=False))
    return out


def load_feature_set(output_dir: str | os.PathLike | None = None) -> dict | None:
    """The feature set written by :func:`save_feature_set`, or None when there is none.

    Raises
    ------
    ValueError
        When the file exists but is not a valid feature set (names the file).
    """
    from churnlib import paths

    path = paths.processed_data_dir(output_dir) / FEATURE_SET_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    need = {"features", "id_col", "label_col", "fingerprint", "source", "dropped", "written_by"}
    if not isinstance(data, dict) or not need <= set(data) or not isinstance(data["features"], list):
        raise ValueError(f"{path}: not a feature set (needs keys {sorted(need)})")
    return data


# --------------------------------------------------------------------------------------------
# The whole validation
# --------------------------------------------------------------------------------------------

@dataclass
class ValidationResult:
    """Everything :func:`run_validation` measured and decided, on the training part only.

    Attributes
    ----------
    kind : str
        ``"events"`` or ``"snapshot"``.
    X, y, groups
        Training part (candidate features before selection), labels and user ids.
    description : str
        How the holdout (never looked at) was drawn.
    ladder : dict
        The compared feature sets (leakage suspects left out).
    comparison : pandas.DataFrame
        :func:`compare_feature_sets` of the ladder.
    synthetic : list of str
        Synthetic columns used in the comparison only (snapshot tables).
    univariate, clusters, importance, leakage : pandas.DataFrame
    selection : FeatureSelection
    check : pandas.DataFrame
        The chosen set vs all candidate features (suspects out) in the same CV.
    settings : dict
    """

    kind: str
    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    description: str
    ladder: dict[str, list[str]]
    comparison: pd.DataFrame
    synthetic: list[str]
    univariate: pd.DataFrame
    clusters: pd.DataFrame
    importance: pd.DataFrame
    leakage: pd.DataFrame
    selection: FeatureSelection
    check: pd.DataFrame
    settings: dict

    @property
    def signal_detected(self) -> bool:
        """Some set without synthetic columns has a ROC-AUC interval above 0.5."""
        real = [n for n, cols in self.ladder.items() if not set(cols) & set(self.synthetic)]
        return bool((self.comparison.loc[real, "roc_auc_low"] > 0.5).any())

    def signal_statement(self) -> str:
        """Plain sentence: does the table's own data carry detectable signal?"""
        real = [n for n, cols in self.ladder.items() if not set(cols) & set(self.synthetic)]
        best = self.comparison.loc[real, "roc_auc"].idxmax()
        r = self.comparison.loc[best]
        auc = f"{r['roc_auc']:.3f} ({r['roc_auc_low']:.3f}–{r['roc_auc_high']:.3f})"
        if self.signal_detected:
            return f"Signal detected: the best set of real features ({best}) scores ROC-AUC {auc}, above chance."
        return (f"No detectable signal: even the best set of real features ({best}) scores ROC-AUC {auc}, "
                "an interval that covers 0.5. This table's columns do not tell churners from the others; "
                "no feature selection can change that.")

    def key_numbers(self) -> dict[str, str]:
        """Headline numbers for the report index."""
        c = self.comparison
        first, last = c.iloc[0], c.iloc[-1]
        sel = self.selection
        suspects = [f for f, r in sel.dropped.items() if r.startswith("leakage")]
        return {
            "Training rows validated": f"{len(self.y):,} ({len(pd.unique(self.groups)):,} users)",
            f"ROC-AUC, {c.index[0]}": f"{first['roc_auc']:.3f} ({first['roc_auc_low']:.3f}–{first['roc_auc_high']:.3f})",
            f"ROC-AUC, {c.index[-1]}": f"{last['roc_auc']:.3f} ({last['roc_auc_low']:.3f}–{last['roc_auc_high']:.3f})",
            "Steps that clearly help": ", ".join(c.index[c["verdict"] == "helps"]) or "none",
            "Features differing (FDR q < 0.05)": f"{int(self.univariate['significant'].sum())} of {len(self.univariate)}",
            "Chosen features": f"{len(sel.features)} of {len(sel.reasons)}",
            "Leakage suspects dropped": ", ".join(suspects) or "none",
            "Signal detected": "yes" if self.signal_detected else "no",
        }


def run_validation(table: pd.DataFrame, id_col: str, label_col: str, split_col: str | None = None, *,
                   kind: str | None = None, model: str = "logreg", strategy: str = "class_weight",
                   n_splits: int = 3, n_repeats: int = 1, n_bootstrap: int = 200,
                   holdout_fraction: float = 0.2, exclude: Sequence[str] = (), redundancy_threshold: float = 0.9,
                   n_permutations: int = 5, synthetic_effect_size: float | None = 0.7, alpha: float = 0.05,
                   seed: int = 0, n_jobs: int = 1) -> ValidationResult:
    """Validate the features of a table on its training part, as the modelling step will cut it.

    1. :func:`churnlib.training.split_table` with the same ``split_col``, ``holdout_fraction``,
       ``seed`` and ``exclude``: the holdout is set aside and never looked at;
    2. leakage report on the training part (as ``split_table`` screens it);
    3. the ladder (:func:`feature_ladder`, suspects left out) compared in one CV; for snapshot tables
       the synthetic features of :func:`churnlib.synthetic.add_synthetic_features` are added as a
       last step (comparison only -- they are drawn from the label);
    4. univariate tests, redundancy clusters, permutation importance + mutual information;
    5. :func:`select_features`, and the chosen set vs all candidates in the same CV.

    Parameters
    ----------
    table : pandas.DataFrame
        Feature table or snapshot table (as :func:`churnlib.training.training_table` returns it).
    id_col, label_col, split_col : str
        As in :func:`churnlib.training.run_training`.
    kind : {"events", "snapshot"}, optional
        Default: :func:`table_kind`.
    model, strategy : str
        Pipeline for the comparisons and the permutation importance.
    n_splits, n_repeats, n_bootstrap, holdout_fraction, exclude, seed, n_jobs
        As in :func:`churnlib.training.run_training`.
    redundancy_threshold : float
        |Spearman rho| from which features are duplicates.
    n_permutations : int
        Shuffles per feature and fold for permutation importance.
    synthetic_effect_size : float, optional
        Effect size of the synthetic features for snapshot tables (None: no synthetic step).
    alpha : float
        FDR level of the univariate tests.

    Returns
    -------
    ValidationResult
    """
    from churnlib.features import leakage_report
    from churnlib.training import split_table

    kind = kind or table_kind(table)
    parts = split_table(table, id_col, label_col, split_col, holdout_fraction=holdout_fraction, seed=seed,
                        exclude=exclude, drop_suspects=False)
    X, y, g = parts.X, parts.y, parts.groups
    leakage = leakage_report(X.assign(__y=y), "__y", exclude=(), seed=seed)  # exactly split_table's screen
    suspects = leakage.loc[leakage["suspect"], "feature"].tolist()
    if len(suspects) == X.shape[1]:
        suspects = []
    clean = [c for c in X.columns if c not in set(suspects)]

    synthetic: list[str] = []
    X_ladder = X[clean]
    if kind == "snapshot" and synthetic_effect_size is not None:
        from churnlib.synthetic import add_synthetic_features  # lazily: an optional study module

        lab = "__label__"
        with_synth = add_synthetic_features(X[clean].assign(**{lab: y}), lab, effect_size=synthetic_effect_size,
                                            seed=seed)
        synthetic = [c for c in with_synth.columns if c not in X.columns and c != lab]
        X_ladder = pd.concat([X[clean], with_synth[synthetic].set_axis(X.index)], axis=1)
    ladder = feature_ladder(list(X_ladder.columns), kind, synthetic=synthetic)
    budget = dict(model=model, strategy=strategy, n_splits=n_splits, n_repeats=n_repeats, seed=seed, n_jobs=n_jobs)
    comparison = compare_feature_sets(X_ladder, y, g, ladder, n_bootstrap=n_bootstrap, **budget)

    univariate = univariate_tests(X[clean], y, g, alpha=alpha, seed=seed)
    selection = select_features(X, y, g, leakage=leakage, redundancy_threshold=redundancy_threshold,
                                never={c: "synthetic column drawn from the label" for c in synthetic}, seed=seed)
    imp = importance(X[clean], y, g, n_permutations=n_permutations, **budget)
    check = compare_feature_sets(X, y, g, {"all candidates (suspects out)": clean, "chosen set": selection.features},
                                 n_bootstrap=n_bootstrap, **budget)
    settings = {**budget, "n_bootstrap": n_bootstrap, "holdout_fraction": holdout_fraction,
                "split_col": split_col, "exclude": list(exclude), "redundancy_threshold": redundancy_threshold,
                "n_permutations": n_permutations, "synthetic_effect_size": synthetic_effect_size, "alpha": alpha}
    return ValidationResult(kind=kind, X=X, y=y, groups=g, description=parts.description, ladder=ladder,
                            comparison=comparison, synthetic=synthetic, univariate=univariate,
                            clusters=selection.clusters, importance=imp, leakage=leakage, selection=selection,
                            check=check, settings=settings)
