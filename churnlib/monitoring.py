"""Monitoring a deployed churn model: performance on new users, scenarios, retraining decisions.

A *reference window* (the users the model was trained on) is compared with a *new window*:

* drift statistics (PSI, KS, the drift rule) live in :mod:`churnlib.drift`; simulated new windows,
  the reference window and the false-alarm rate in :mod:`churnlib.scenarios`;
* :func:`performance_check` -- the model's metrics with 95% intervals on newly labelled users next to
  the same metrics on users of the reference process it never saw;
* :func:`recommend` -- retrain, investigate or no action, from both (worded by
  :func:`churnlib.monitoring_report.recommendation_text`);
* :func:`run_scenarios` -- every scenario's simulated window through drift, performance and the
  recommendation;
* :func:`challenge` / :func:`challenge_window` -- refit the champion
  (:meth:`churnlib.model.ChurnModel.refit`) on reference + newly labelled users and compare both
  models on the *same* held-out new users; :func:`record_decision` appends the decision to
  ``champion_history.json``; :func:`monitoring_summary` is the content of ``monitoring.json``.

A one-row-per-user (snapshot) table has no later window to simulate: :func:`plan_monitoring` decides
what is compared, :func:`compare_tables` compares two tables the user gives (feature drift, score
drift, performance on the current table when it has labels, false alarms on random halves of the
reference) and :func:`monitor_command` is ``python -m churnlib monitor``. Without a second table
monitoring is not run (:func:`not_run_summary`): simulated music-service users are never put in
place of a user's own table.

Plain-words text and plots are in :mod:`churnlib.monitoring_report`.
"""
from __future__ import annotations

import csv
import gzip
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import average_precision_score, roc_auc_score

from churnlib import evaluation as ev
from churnlib import paths
from churnlib.artifact import ArtifactError
from churnlib.drift import KS_THRESHOLD, MIN_ROWS, PSI_THRESHOLD, DriftReport, drift_report, latest_rows
from churnlib.eda import Rate
from churnlib.files import atomic_write, write_json
from churnlib.intervals import Interval, bootstrap_sampler
from churnlib.load import DataValidationError, SnapshotTable, data_fingerprint, detect_kind, load_table
from churnlib.model import ARTIFACT_NAME, ChurnModel
from churnlib.models import feature_frame, make_pipeline
from churnlib.pipeline import product_key, write_product
from churnlib.scenarios import SCENARIOS, FalseAlarmResult, scenario_window
from churnlib.outputs import check_output
from churnlib.simulate import SimulatorConfig
from churnlib.store import PredictionStore, read_reference, reference_path

__all__ = [
    "ChallengeResult",
    "HOW_TO_MONITOR_TABLES",
    "METRIC_LABELS",
    "MonitoringPlan",
    "Recommendation",
    "ScenarioResult",
    "STORE_OUTPUTS",
    "ScenarioRun",
    "StoreMonitoring",
    "TableComparison",
    "challenge",
    "challenge_window",
    "compare_files",
    "compare_tables",
    "load_champion",
    "monitor_command",
    "monitor_store",
    "monitoring_summary",
    "not_run_summary",
    "performance_check",
    "plan_monitoring",
    "read_table",
    "recommend",
    "record_decision",
    "run_scenarios",
    "save_challenger",
    "scenario_names",
    "table_false_alarms",
    "table_summary",
    "write_monitoring",
    "write_summary",
]

#: Metrics a challenge can be decided on, and their names in words.
METRIC_LABELS = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC"}


# --------------------------------------------------------------------------------------------
# Performance on newly labelled users
# --------------------------------------------------------------------------------------------

def _window_metrics(model: ChurnModel, X: pd.DataFrame, y: Sequence, groups: Sequence | None, threshold: float,
                    n_bootstrap: int, seed: int) -> pd.DataFrame:
    y = np.asarray(y).astype(int)
    p = model.churn_probability(X)
    return ev.evaluate_predictions(y, p, p >= threshold, None if groups is None else np.asarray(groups),
                                   n_bootstrap=n_bootstrap, seed=seed)


def _performance_table(reference: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for name, m in (("reference", reference), ("current", current)):
        out[name], out[f"{name}_low"], out[f"{name}_high"] = m["value"], m["low"], m["high"]
    df = pd.DataFrame(out)
    df["change"] = df["current"] - df["reference"]
    return df


def performance_check(model: ChurnModel, reference_frame: pd.DataFrame, y_ref: Sequence, new_frame: pd.DataFrame,
                      y_new: Sequence, *, groups_ref: Sequence | None = None, groups_new: Sequence | None = None,
                      threshold: float | None = None, n_bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """The model's metrics on the reference and on newly labelled users, with 95% intervals.

    Parameters
    ----------
    model : churnlib.model.ChurnModel
        Its feature columns are picked from the frames (:meth:`~churnlib.model.ChurnModel.prepare`).
    reference_frame, y_ref : DataFrame, array of 0/1
        Users of the reference process the model never saw, and their labels.
    new_frame, y_new : DataFrame, array of 0/1
        Newly labelled users of the new window.
    groups_ref, groups_new : arrays, optional
        User ids: the bootstrap resamples users (a user's rows at several dates stay together).
    threshold : float, optional
        Decision threshold for F1/precision/recall (default: the model's).
    n_bootstrap, seed : int
        Bootstrap replicates and seed of the intervals.

    Returns
    -------
    pandas.DataFrame
        Index :data:`churnlib.evaluation.METRICS`; columns ``reference``, ``reference_low``,
        ``reference_high``, ``current``, ``current_low``, ``current_high`` and ``change``
        (current minus reference); :meth:`churnlib.intervals.Interval.from_row` reads a window's
        interval (``Interval.from_row(table.loc["roc_auc"], "current")``).
    """
    t = model.threshold if threshold is None else float(threshold)
    ref = _window_metrics(model, reference_frame, y_ref, groups_ref, t, n_bootstrap, seed)
    cur = _window_metrics(model, new_frame, y_new, groups_new, t, n_bootstrap, seed)
    return _performance_table(ref, cur)


@dataclass(frozen=True)
class Recommendation:
    """What to do about the model, from the drift report and the performance check.

    Attributes
    ----------
    action : str
        ``"retrain"`` (the model is measurably worse on newly labelled users, whether or not inputs
        drifted), ``"investigate"`` (inputs drifted; performance holds or cannot be measured yet) or
        ``"no action"``.
    metric : str
        The metric judged.
    drift : DriftReport
    reference, current : Interval or None
        The metric on the reference and on the new window (None when not measurable).
    unmeasured_because : str
        Why the metric could not be measured on new users (when ``current`` is None).
    """

    action: str
    metric: str
    drift: DriftReport
    reference: Interval | None
    current: Interval | None
    unmeasured_because: str = "no labels, or only one class"

    @property
    def measured(self) -> bool:
        """Newly labelled users gave a value of the metric."""
        return self.current is not None

    @property
    def degraded(self) -> bool:
        """The reference's point estimate lies above the new window's whole 95% interval."""
        return self.measured and self.current.below(self.reference.value)


def recommend(drift: DriftReport, performance: pd.DataFrame | None, *, metric: str = "roc_auc",
              unmeasured_because: str = "no labels, or only one class") -> Recommendation:
    """Retrain, investigate or no action.

    Retrain when the model is measurably worse on newly labelled users (the reference's value lies
    above the new window's 95% interval), whether or not inputs drifted; investigate when inputs
    drifted but performance holds (or cannot be measured yet); otherwise no action.

    Parameters
    ----------
    drift : churnlib.drift.DriftReport
    performance : pandas.DataFrame or None
        From :func:`performance_check`; None when no labels are available yet.
    metric : str, default "roc_auc"
        The metric judged (ROC-AUC does not move with the churn rate itself, PR-AUC does).
    unmeasured_because : str
        Why there is no performance to judge, in plain words (when ``performance`` is None).

    Returns
    -------
    Recommendation
    """
    if performance is None or not np.isfinite(performance.loc[metric, "current"]):
        return Recommendation("investigate" if drift.fired else "no action", metric, drift, None, None,
                              unmeasured_because)
    row = performance.loc[metric]
    ref, cur = Interval.from_row(row, "reference"), Interval.from_row(row, "current")
    if cur.below(ref.value):
        action = "retrain"
    else:
        action = "investigate" if drift.fired else "no action"
    return Recommendation(action, metric, drift, ref, cur)


# --------------------------------------------------------------------------------------------
# Scenarios: every simulated window through drift, performance and the recommendation
# --------------------------------------------------------------------------------------------

def scenario_names(scenarios: Sequence[str], current: str, baseline: str = "same_process") -> list[str]:
    """The windows to simulate: the baseline, the current scenario, then the others (no repeats)."""
    return list(dict.fromkeys([baseline, current, *scenarios]))


@dataclass
class ScenarioResult:
    """One simulated new window and what the monitor and its labels say about it.

    Attributes
    ----------
    name, description : str
    window : pandas.DataFrame
        Labelled features at the window's weekly observation dates.
    drift : DriftReport
        Against the reference window, one row per user at the latest observation date.
    performance : pandas.DataFrame
        :func:`performance_check` of the champion: ``reference`` is the baseline window (new users of
        the unchanged process), ``current`` this window.
    recommendation : Recommendation
    """

    name: str
    description: str
    window: pd.DataFrame
    drift: DriftReport
    performance: pd.DataFrame
    recommendation: Recommendation

    @property
    def latest(self) -> pd.DataFrame:
        """One row per user at the window's latest observation date."""
        return latest_rows(self.window)


@dataclass
class ScenarioRun:
    """The scenarios of one monitoring run (see :func:`run_scenarios`).

    Attributes
    ----------
    results : dict of str to ScenarioResult
        Every simulated window, in :func:`scenario_names` order.
    reported : list of str
        The scenarios reported (the requested ones and the current one).
    current, baseline : str
        The scenario presented as the new window, and the unchanged-process window that performance
        is compared with.
    window_seed : int
        Seed of the simulated users (the same users in every scenario).
    n_users : int
        Users simulated per window.
    start : str
        First day of the windows.
    """

    results: dict[str, ScenarioResult]
    reported: list[str]
    current: str
    baseline: str
    window_seed: int
    n_users: int
    start: str

    @property
    def reports(self) -> dict[str, DriftReport]:
        """Drift report per reported scenario."""
        return {n: self.results[n].drift for n in self.reported}

    @property
    def fired(self) -> list[str]:
        """The reported scenarios in which some feature drifted."""
        return [n for n in self.reported if self.results[n].drift.fired]

    def __getitem__(self, name: str) -> ScenarioResult:
        return self.results[name]


def run_scenarios(reference: pd.DataFrame, champion: ChurnModel, scenarios: Sequence[str], *, current: str,
                  n_users: int = 300, days: float = 60, window_seed: int = 8, catalogue_seed: int = 7,
                  start: str = "2018-12-03", horizon_days: float = 14, id_offset: int = 10**7,
                  baseline: str = "same_process", features: Sequence[str] | None = None,
                  psi_threshold: float = PSI_THRESHOLD, ks_threshold: float = KS_THRESHOLD,
                  metric: str = "roc_auc", n_bootstrap: int = 200, seed: int = 0,
                  base: SimulatorConfig | None = None, n_jobs: int = 1) -> ScenarioRun:
    """Simulate every scenario's new window and measure drift, performance and the recommendation.

    Every scenario simulates the same new users (``window_seed``) over the reference catalogue, so
    the scenarios differ only by their change. Drift compares each window's latest observation date
    with ``reference``; performance compares the champion on each window with the ``baseline``
    window (users of the unchanged process it never saw), whose metrics are computed once.

    Parameters
    ----------
    reference : pandas.DataFrame
        The reference window, one row per user (:attr:`ReferenceWindow.latest`).
    champion : churnlib.model.ChurnModel
    scenarios : sequence of str
        Scenarios to report (names of :data:`SCENARIOS`).
    current : str
        The scenario presented as the new window (always simulated and reported).
    n_users, days, window_seed, catalogue_seed, start, horizon_days, id_offset, base
        As for :func:`scenario_window` (``window_seed`` is its ``seed``).
    n_jobs : int, default 1
        Windows simulated and featurised at the same time (the result does not depend on it).
    baseline : str, default "same_process"
        The window performance is compared with (always simulated; reported only when requested).
    features, psi_threshold, ks_threshold
        As for :func:`churnlib.drift.drift_report`.
    metric : str, default "roc_auc"
        The metric the recommendation judges.
    n_bootstrap, seed : int
        Bootstrap of the performance intervals.

    Returns
    -------
    ScenarioRun
    """
    names = scenario_names(scenarios, current, baseline)
    reported = [n for n in names if n in scenarios or n == current]

    def window(name: str) -> pd.DataFrame:
        return scenario_window(name, n_users=n_users, days=days, seed=window_seed, catalogue_seed=catalogue_seed,
                               start=start, horizon_days=horizon_days, base=base, all_dates=True,
                               id_offset=id_offset)

    # the windows are independent: n_jobs of them at a time (the simulator releases the GIL)
    with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
        windows = dict(zip(names, pool.map(window, names)))
    t = champion.threshold
    same = windows[baseline]
    ref_metrics = _window_metrics(champion, same, same["churned"], same["userId"], t, n_bootstrap, seed)
    results = {}
    for n, w in windows.items():
        cur_metrics = ref_metrics if n == baseline else _window_metrics(champion, w, w["churned"], w["userId"], t,
                                                                        n_bootstrap, seed)
        perf = _performance_table(ref_metrics, cur_metrics)
        rep = drift_report(reference, latest_rows(w), features=features, psi_threshold=psi_threshold,
                           ks_threshold=ks_threshold)
        results[n] = ScenarioResult(n, SCENARIOS[n][0], w, rep, perf, recommend(rep, perf, metric=metric))
    return ScenarioRun(results, reported, current, baseline, window_seed, n_users, start)


# --------------------------------------------------------------------------------------------
# Champion / challenger
# --------------------------------------------------------------------------------------------

def load_champion(table: pd.DataFrame, *, model_path: str | os.PathLike | None = None,
                  output_dir: str | os.PathLike | None = None, id_col: str = "userId", label_col: str = "churned",
                  fallback_model: str = "lightgbm", seed: int = 0, n_jobs: int = 1) -> tuple[ChurnModel, str]:
    """The champion: the model ``05_models`` saved, else a small one trained on ``table``.

    Parameters
    ----------
    table : pandas.DataFrame
        The reference window's feature table (the champion's training data).
    model_path : path-like, optional
        An artifact to use (default: ``models/churn_model.joblib`` under the output root).
    output_dir : path-like, optional
        Output root (see :func:`churnlib.paths.output_root`).
    id_col, label_col : str
        Columns of ``table``.
    fallback_model : str, default "lightgbm"
        Registry model of the fallback champion.
    seed, n_jobs : int
        For the fallback training.

    Returns
    -------
    (ChurnModel, str)
        The model and a plain description of where it came from. When the artifact is missing,
        unreadable or needs columns ``table`` lacks (e.g. a model trained on a snapshot table), a
        CI-sized champion is fitted on ``table`` (:meth:`ChurnModel.fit`: the registry pipeline
        ``fallback_model`` with defaults, no calibration, F1 threshold from group-aware out-of-fold
        predictions). It is kept in memory only: nothing is written over the report's final model.
    """
    path = Path(model_path) if model_path is not None else paths.models_dir(output_dir) / ARTIFACT_NAME
    why = f"no model at `{path}`"
    if path.exists():
        try:
            model = ChurnModel.load(path)
        except ArtifactError as exc:
            why = f"the model at `{path}` cannot be used ({exc})"
        else:
            lacking = [c for c in model.feature_names if c not in table.columns]
            if not lacking:
                m = model.info.get("model", {})
                return model, (f"the champion saved by 05_models (`{path}`: {m.get('model', '?')} / "
                               f"{m.get('strategy', '?')}, calibration {model.calibration})")
            why = f"the model at `{path}` needs {len(lacking)} column(s) the event-log features lack"
    X = feature_frame(table, id_col, label_col)
    y = table[label_col].to_numpy().astype(int)
    g = table[id_col].astype(str).to_numpy()
    pipe = make_pipeline(fallback_model, "none", seed=seed, n_jobs=n_jobs)
    model = ChurnModel.fit(pipe, X, y, groups=g, calibration=None, n_splits=3, seed=seed, id_col=id_col,
                           info={"model": {"model": fallback_model, "strategy": "none"}})
    return model, (f"a CI-sized champion trained here on the reference window ({fallback_model}, registry defaults, "
                   f"F1 threshold {model.threshold:.3f} from out-of-fold predictions; kept in memory only), "
                   f"because {why}")


@dataclass
class ChallengeResult:
    """The champion and a refitted challenger scored on the same held-out users.

    Attributes
    ----------
    decision : str
        ``"replaced"`` or ``"kept champion"``.
    metric : str
        The deciding metric.
    champion, challenger : Interval
        The metric on the held-out users (95% bootstrap over users).
    difference : Interval
        Challenger minus champion, from a paired bootstrap (the same resampled users score both models).
    rule : str
        The replacement rule in words.
    reason : str
        Why the decision was taken.
    champion_metrics, challenger_metrics : pandas.DataFrame
        Every metric with intervals on the held-out users.
    challenger_model : churnlib.model.ChurnModel
        The fitted challenger (calibrated like the champion when the champion was).
    challenger_threshold : float
        Its F1-optimal threshold on out-of-fold predictions of its training rows.
    n_train, n_holdout : int
        Rows the challenger was fitted on and rows both were scored on.
    """

    decision: str
    metric: str
    champion: Interval
    challenger: Interval
    difference: Interval
    rule: str
    reason: str
    champion_metrics: pd.DataFrame
    challenger_metrics: pd.DataFrame
    challenger_model: ChurnModel
    challenger_threshold: float
    n_train: int
    n_holdout: int
    info: dict = field(default_factory=dict)

    @property
    def replaced(self) -> bool:
        """The challenger replaces the champion."""
        return self.decision == "replaced"

    def record(self, when: str, context: dict | None = None) -> dict[str, Any]:
        """The entry appended to ``champion_history.json`` (intervals as ``[value, low, high]``)."""
        return {"when": when, "decision": self.decision, "metric": self.metric, "rule": self.rule,
                "champion": list(self.champion.as_tuple()), "challenger": list(self.challenger.as_tuple()),
                "difference": list(self.difference.as_tuple()), "reason": self.reason,
                "challenger_threshold": self.challenger_threshold,
                "n_train": self.n_train, "n_holdout": self.n_holdout, **(context or {})}


def _paired_bootstrap(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, groups: np.ndarray | None, metric: str,
                      n_bootstrap: int, seed: int) -> np.ndarray:
    score = {"roc_auc": roc_auc_score, "pr_auc": average_precision_score}[metric]
    draw = bootstrap_sampler(groups, len(y), np.random.default_rng(seed))
    diffs = []
    for _ in range(n_bootstrap):
        idx = draw()
        if 0 < y[idx].sum() < len(idx):
            diffs.append(score(y[idx], p_b[idx]) - score(y[idx], p_a[idx]))
    return np.asarray(diffs)


def challenge(champion: ChurnModel, X_train: pd.DataFrame, y_train: Sequence, X_holdout: pd.DataFrame,
              y_holdout: Sequence, *, groups_train: Sequence | None = None, groups_holdout: Sequence | None = None,
              challenger: ChurnModel | None = None, metric: str = "pr_auc", rule: str = "paired", n_splits: int = 3,
              n_bootstrap: int = 200, seed: int = 0) -> ChallengeResult:
    """Refit the champion as a challenger and decide which model to keep.

    Parameters
    ----------
    champion : churnlib.model.ChurnModel
        The model in use.
    X_train, y_train : DataFrame, array of 0/1
        The challenger's training rows: the reference window plus the newly labelled users that are
        not held out.
    X_holdout, y_holdout : DataFrame, array of 0/1
        Held-out new users that neither model was fitted on; both are scored on them.
    groups_train, groups_holdout : arrays, optional
        User ids (group-aware folds for the challenger's out-of-fold threshold; bootstrap over users).
    challenger : churnlib.model.ChurnModel, optional
        An already fitted challenger to judge instead of ``champion.refit(X_train, y_train, ...)``.
    metric : {"pr_auc", "roc_auc"}, default "pr_auc"
        The deciding metric (PR-AUC chooses the champion in ``05_models``; both models are scored on
        the same users, so the churn rate that sets PR-AUC's baseline is the same for both).
    rule : {"paired", "point"}, default "paired"
        ``"paired"``: replace only when the 95% paired-bootstrap interval of challenger minus
        champion lies above 0 (a swap has costs -- re-validation, scores that change for users
        already contacted -- so a win within the noise does not justify one). ``"point"``: replace
        on a strictly higher point estimate.
    n_splits : int
        Folds of the out-of-fold predictions that set the challenger's threshold (and calibration).
    n_bootstrap, seed : int

    Returns
    -------
    ChallengeResult
    """
    if rule not in ("paired", "point"):
        raise ValueError(f"rule must be 'paired' or 'point', got {rule!r}")
    if metric not in METRIC_LABELS:
        raise ValueError(f"metric must be 'pr_auc' or 'roc_auc', got {metric!r}")
    y_tr = np.asarray(y_train).astype(int)
    y_ho = np.asarray(y_holdout).astype(int)
    if challenger is None:
        challenger = champion.refit(X_train, y_tr, groups=None if groups_train is None else np.asarray(groups_train),
                                    n_splits=n_splits, seed=seed)
    p_champ = champion.churn_probability(X_holdout)
    p_chal = challenger.churn_probability(X_holdout)
    t_champ, t_chal = champion.threshold, challenger.threshold
    g = None if groups_holdout is None else np.asarray(groups_holdout)
    m_champ = ev.evaluate_predictions(y_ho, p_champ, p_champ >= t_champ, g, n_bootstrap=n_bootstrap, seed=seed)
    m_chal = ev.evaluate_predictions(y_ho, p_chal, p_chal >= t_chal, g, n_bootstrap=n_bootstrap, seed=seed)
    diffs = _paired_bootstrap(y_ho, p_champ, p_chal, g, metric, n_bootstrap, seed)
    d = float(m_chal.loc[metric, "value"] - m_champ.loc[metric, "value"])
    # the 2.5 and 97.5 percentiles exactly (Interval.from_samples computes its tail as (1 - 0.95) / 2 * 100,
    # 2.5000000000000022, which moves the bound in the last digit of champion_history.json)
    diff = (Interval(d, float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))) if len(diffs)
            else Interval(d))
    label = METRIC_LABELS[metric]
    if rule == "paired":
        better = diff.above(0)
        rule_text = (f"replace only when the paired-bootstrap 95% interval of the {label} gain on the same "
                     "held-out users lies above 0")
    else:
        better = diff.value > 0
        rule_text = f"replace when the challenger's {label} on the same held-out users is strictly higher"
    gain = f"{label} gain {diff.value:+.3f} (95% interval {diff.low:+.3f} to {diff.high:+.3f}) on {len(y_ho)} held-out rows"
    reason = (f"the challenger is better: {gain}" if better else
              f"the challenger is not clearly better: {gain}")
    return ChallengeResult(decision="replaced" if better else "kept champion", metric=metric,
                           champion=Interval.from_row(m_champ.loc[metric]),
                           challenger=Interval.from_row(m_chal.loc[metric]), difference=diff, rule=rule_text,
                           reason=reason, champion_metrics=m_champ, challenger_metrics=m_chal,
                           challenger_model=challenger, challenger_threshold=float(t_chal), n_train=int(len(y_tr)),
                           n_holdout=int(len(y_ho)),
                           info={"calibration": challenger.calibration, "champion_threshold": t_champ})


def challenge_window(champion: ChurnModel, reference_table: pd.DataFrame, window: pd.DataFrame, *,
                     holdout_share: float = 0.5, id_col: str = "userId", label_col: str = "churned",
                     metric: str = "pr_auc", rule: str = "paired", n_splits: int = 3, n_bootstrap: int = 200,
                     seed: int = 0) -> ChallengeResult:
    """:func:`challenge` on a newly labelled window: part of its users held out, the rest added to the reference.

    A stratified group holdout (:func:`churnlib.evaluation.holdout_split`, ``holdout_share`` of the
    window's users) is what both models are scored on; the challenger is refitted on the reference
    table plus the window's other users.

    Parameters
    ----------
    champion : churnlib.model.ChurnModel
    reference_table : pandas.DataFrame
        The champion's training table (labelled, with ``id_col``).
    window : pandas.DataFrame
        The new window's labelled feature table.
    holdout_share : float, default 0.5
    id_col, label_col : str
    metric, rule, n_splits, n_bootstrap, seed
        As for :func:`challenge`.

    Returns
    -------
    ChallengeResult
        ``info`` also holds ``n_reference`` (reference rows), ``n_new_train`` (new rows in the
        challenger's training data) and ``n_holdout_users``.
    """
    y_new, g_new = window[label_col].to_numpy(), window[id_col].to_numpy()
    held = ev.holdout_split(y_new, g_new, fraction=holdout_share, seed=seed)
    train = pd.concat([reference_table, window[~held]], ignore_index=True)
    holdout = window[held].reset_index(drop=True)
    result = challenge(champion, train, train[label_col], holdout, holdout[label_col], groups_train=train[id_col],
                       groups_holdout=holdout[id_col], metric=metric, rule=rule, n_splits=n_splits,
                       n_bootstrap=n_bootstrap, seed=seed)
    result.info.update(n_reference=int(len(reference_table)), n_new_train=int((~held).sum()),
                       n_holdout_users=int(holdout[id_col].nunique()))
    return result


def record_decision(result: ChallengeResult, path: str | os.PathLike, *, when: str,
                    context: dict | None = None) -> list[dict]:
    """Append the decision and both scores to a JSON history file (a list of entries).

    Parameters
    ----------
    result : ChallengeResult
    path : path-like
        ``champion_history.json`` (created when absent).
    when : str
        When the decision applies -- take it from the data (e.g. the new window's last observation
        date), so the same data give the same file.
    context : dict, optional
        Anything else to keep (scenario, data descriptions, model names).

    Returns
    -------
    list of dict
        The whole history after appending.
    """
    path = Path(path)
    history = json.loads(path.read_text()) if path.exists() else []
    if not isinstance(history, list):
        raise ValueError(f"{path}: expected a JSON list of decisions")
    history.append(result.record(when, context))
    write_json(path, history)
    return history


def save_challenger(result: ChallengeResult, out_dir: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Save the challenger as an artifact (``churn_model.joblib`` + manifest) in ``out_dir``.

    The manifest records the challenge (``"challenge"``: :meth:`ChallengeResult.record`) and
    ``metadata``; the feature schema and id column are the challenger's own.

    Returns
    -------
    pathlib.Path
        The artifact file.
    """
    path = Path(out_dir) / ARTIFACT_NAME
    result.challenger_model.save(path, info={"challenge": result.record(str((metadata or {}).get("when", ""))),
                                             **(metadata or {})})
    return path


# --------------------------------------------------------------------------------------------
# Summary for the stakeholder report
# --------------------------------------------------------------------------------------------

def monitoring_summary(*, reference: str, current: str, drift: DriftReport, performance: pd.DataFrame | None,
                       recommendation: str, false_alarms: FalseAlarmResult | None,
                       challenge_result: ChallengeResult | None, scenarios: dict[str, DriftReport]) -> dict:
    """The content of ``monitoring.json`` (read by the stakeholder summary).

    Returns
    -------
    dict
        Keys ``status`` (``"run"``), ``mode`` (``"scenarios"``), ``reference``, ``current``, ``drifted_features`` (feature, psi, ks), ``n_features_checked``,
        ``performance`` (reference/current: roc_auc and pr_auc as ``[value, low, high]``),
        ``recommendation``, ``false_alarm_rate`` (``[rate, low, high]``), ``n_false_alarm_samples``,
        ``challenger`` (decision, metric, champion, challenger) and ``scenarios`` (per name:
        ``n_drifted``, ``fired``).
    """
    perf = None
    if performance is not None:
        perf = {w: {m: list(Interval.from_row(performance.loc[m], w).as_tuple()) for m in ("roc_auc", "pr_auc")}
                for w in ("reference", "current")}
    return {
        "status": "run",
        "mode": "scenarios",
        "reference": reference,
        "current": current,
        "drifted_features": [{"feature": r.feature, "psi": round(float(r.psi), 4),
                              "ks": None if not np.isfinite(r.ks) else round(float(r.ks), 4)}
                             for r in drift.drifted.itertuples()],
        "n_features_checked": drift.n_checked,
        "performance": perf,
        "recommendation": recommendation,
        "false_alarm_rate": None if false_alarms is None else false_alarms.as_list(),
        "n_false_alarm_samples": None if false_alarms is None else false_alarms.n_pairs,
        "challenger": None if challenge_result is None else {
            "decision": challenge_result.decision, "metric": challenge_result.metric,
            "champion": list(challenge_result.champion.as_tuple()),
            "challenger": list(challenge_result.challenger.as_tuple())},
        "scenarios": {name: {"n_drifted": int(len(rep.drifted)), "fired": rep.fired}
                      for name, rep in scenarios.items()},
    }


def write_summary(summary: dict, path: str | os.PathLike) -> Path:
    """Write :func:`monitoring_summary` output as JSON (NaN becomes null)."""
    return write_json(path, summary)


# --------------------------------------------------------------------------------------------
# Two tables: monitoring one-row-per-user (snapshot) data
# --------------------------------------------------------------------------------------------

#: What a snapshot user is told when monitoring has no second table to compare with.
HOW_TO_MONITOR_TABLES = (
    "give a second table with the same columns, taken later (the *current* users), as "
    "`make report DATA=<reference table> CURRENT=<current table> ID_COL=... LABEL_COL=...`, or run "
    "`python -m churnlib monitor --reference <reference table> --current <current table> --model models/`")


@dataclass(frozen=True)
class MonitoringPlan:
    """What ``07_monitoring`` compares (see :func:`plan_monitoring`).

    Attributes
    ----------
    mode : str
        ``"scenarios"`` (an event log: simulated new windows of the same service), ``"tables"`` (two
        tables the user gave) or ``"not run"`` (a snapshot table and no second table).
    reference, current : pathlib.Path or None
        The two tables of the ``"tables"`` mode.
    reason : str
        Why monitoring was not run (``""`` otherwise).
    how : str
        How to give the second table (``""`` unless not run).
    """

    mode: str
    reference: Path | None = None
    current: Path | None = None
    reason: str = ""
    how: str = ""

    @property
    def run(self) -> bool:
        """Monitoring runs (scenarios or two tables)."""
        return self.mode != "not run"


def plan_monitoring(data: str | os.PathLike | None = None, data_kind: str | None = None, *,
                    reference: str | os.PathLike | None = None,
                    current: str | os.PathLike | None = None) -> MonitoringPlan:
    """Decide what the monitoring notebook compares; it never puts simulated data in place of a user's table.

    * ``current`` given: the two tables ``reference`` (default: ``data``) and ``current``; both
      must be one-row-per-user tables.
    * no ``current``, and ``data`` (or ``reference``) is a snapshot table: not run, with the reason
      and how to give the second table (:data:`HOW_TO_MONITOR_TABLES`).
    * otherwise (an event log, or the simulated default log): simulated scenarios over that log.

    Parameters
    ----------
    data, data_kind
        The report's data and its kind (None: the simulated default log / detect from the file).
    reference, current : path-like, optional
        The two tables to compare.

    Returns
    -------
    MonitoringPlan

    Raises
    ------
    churnlib.load.DataValidationError
        ``current`` without a reference table, or either of them an event log.
    """
    ref = reference if reference is not None else data
    if current is not None:
        if ref is None:
            raise DataValidationError("monitoring two tables needs the reference table too (the `reference` "
                                      "parameter, or `data`)", file=current)
        for what, path, kind in (("reference", ref, data_kind if reference is None else None),
                                 ("current", current, None)):
            if (kind or detect_kind(Path(path))) != "snapshot":
                raise DataValidationError(f"the {what} table must be a one-row-per-user table (CSV or parquet), "
                                          "not an event log: monitoring an event log compares windows of that "
                                          "log", file=path)
        return MonitoringPlan("tables", Path(ref), Path(current))
    kind = None if ref is None else ((data_kind if reference is None else None) or detect_kind(Path(ref)))
    if kind == "snapshot":
        return MonitoringPlan(
            "not run", Path(ref), None,
            reason=(f"`{Path(ref).name}` is one table of users at one time, and drift monitoring compares the users "
                    "of one time with those of a later time: it needs a second table (no simulated data is put "
                    "in its place: simulated music-service users say nothing about this table's users)"),
            how=HOW_TO_MONITOR_TABLES)
    return MonitoringPlan("scenarios")


def read_table(path: str | os.PathLike, *, id_col: str, label_col: str | None = None,
               strict: bool = False) -> SnapshotTable:
    """Load a table to monitor; its label column is optional (a current table may have no labels yet).

    Parameters
    ----------
    path : path-like
        CSV(.gz) or parquet.
    id_col : str
    label_col : str, optional
        Used when the file has this column; otherwise the table is read without labels.
    strict : bool, default False
        Stop at the first defect (see :func:`churnlib.load.load_table`).

    Returns
    -------
    churnlib.load.SnapshotTable
        ``label_col`` None when the file has no label column.
    """
    has_label = label_col is not None and label_col in _header(Path(path))
    return load_table(path, id_col=id_col, label_col=label_col if has_label else None, strict=strict)


def _header(path: Path) -> list[str]:
    """Column names of a CSV(.gz) or parquet file (without reading its rows)."""
    if not path.exists():
        raise DataValidationError("file not found", file=path)
    if path.is_dir():
        raise DataValidationError("a table must be one file, not a folder", file=path)
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return list(pq.read_schema(path).names)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:
            first = next(csv.reader(fh), [])
    except (OSError, EOFError, pa.ArrowInvalid) as exc:
        raise DataValidationError(f"cannot read the header: {exc}", file=path) from None
    return [c.strip() for c in first]


@dataclass
class TableComparison:
    """Two tables of users compared: feature drift, score drift and, with labels, performance.

    Attributes
    ----------
    reference, current : str
        What each table is (file, users, churn rate when labelled).
    drift : churnlib.drift.DriftReport
        Every feature the two tables share.
    score_drift : churnlib.drift.DriftReport or None
        The model's churn probability (one row, ``"churn probability"``), with a model.
    performance : pandas.DataFrame or None
        As :func:`performance_check` (``reference``/``current`` with intervals, ``change``) when the
        current table has labels and the model was scored: the reference is the model's own
        holdout (users of its training data it never saw), else the reference table.
    performance_reference : str
        Where ``performance``'s reference comes from, in words.
    recommendation : Recommendation
    false_alarms : FalseAlarmResult or None
        The monitor on pairs of random halves of the reference (one population: any alarm is false).
    model : str
        The model scored, in words ("" without one).
    model_sha256 : str or None
        Its artifact digest (what ``monitoring.json`` is stamped with).
    notes : list of str
        Columns only one table has, columns left out, and other remarks.
    n_reference, n_current : int
        Users in each table.
    quality : dict of str to churnlib.load.DataQuality
        ``"reference"`` / ``"current"``: how each file was read (:func:`compare_files`; empty for frames).
    """

    reference: str
    current: str
    drift: DriftReport
    score_drift: DriftReport | None
    performance: pd.DataFrame | None
    performance_reference: str
    recommendation: Recommendation
    false_alarms: FalseAlarmResult | None
    model: str
    model_sha256: str | None
    notes: list[str]
    n_reference: int
    n_current: int
    quality: dict[str, Any] = field(default_factory=dict)


def _holdout_table(holdout: dict | None) -> pd.DataFrame | None:
    """``model.info["holdout"]`` (metric -> value/low/high) as a metrics frame; None when absent."""
    if not holdout:
        return None
    rows = {m: {k: (np.nan if (r or {}).get(k) is None else float(r[k])) for k in ("value", "low", "high")}
            for m, r in holdout.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame if {"roc_auc", "pr_auc"} <= set(frame.index) else None


def table_false_alarms(table: pd.DataFrame, n_samples: int = 10, *, features: Sequence[str] | None = None,
                       psi_threshold: float = PSI_THRESHOLD, ks_threshold: float = KS_THRESHOLD,
                       min_rows: int = MIN_ROWS, seed: int = 0) -> FalseAlarmResult:
    """Run the monitor on ``n_samples`` pairs of random halves of one table and count alarms.

    Both halves come from the same users at the same time, so every alarm is false: the rate is how
    often the drift rule fires by chance on tables of half this size (tables of the full size fire
    somewhat less often).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per user.
    n_samples : int
        Random splits.
    features, psi_threshold, ks_threshold, min_rows
        As for :func:`churnlib.drift.drift_report`.
    seed : int

    Returns
    -------
    churnlib.scenarios.FalseAlarmResult
    """
    rng = np.random.default_rng(seed)
    n = len(table)
    counts, flagged, n_r, n_c = [], {}, [], []
    for _ in range(n_samples):
        idx = rng.permutation(n)
        a, b = table.iloc[np.sort(idx[: n // 2])], table.iloc[np.sort(idx[n // 2:])]
        rep = drift_report(a, b, features=features, psi_threshold=psi_threshold, ks_threshold=ks_threshold,
                           min_rows=min_rows)
        counts.append(len(rep.drifted))
        n_r.append(len(a))
        n_c.append(len(b))
        for f in rep.drifted["feature"]:
            flagged[f] = flagged.get(f, 0) + 1
    counts = np.array(counts, dtype=int)
    by = pd.Series(flagged, dtype="int64").sort_values(ascending=False, kind="mergesort")
    return FalseAlarmResult(Rate(int((counts > 0).sum()), n_samples), counts, by, n_r, n_c)


def _describe(name: str, frame: pd.DataFrame, label_col: str | None) -> str:
    text = f"`{name}`: {len(frame):,} users"
    if label_col is not None and label_col in frame:
        y = frame[label_col].dropna()
        if len(y):
            text += f", {int(y.sum()):,} labelled as churned ({y.mean():.1%})"
    else:
        text += ", no labels"
    return text


def compare_tables(reference: pd.DataFrame, current: pd.DataFrame, *, model: ChurnModel | None = None,
                   id_col: str = "user_id", label_col: str | None = "is_churned",
                   exclude: Sequence[str] = (), reference_name: str = "reference",
                   current_name: str = "current", psi_threshold: float = PSI_THRESHOLD,
                   ks_threshold: float = KS_THRESHOLD, metric: str = "roc_auc", n_bootstrap: int = 200,
                   n_false_alarm_samples: int = 10, seed: int = 0) -> TableComparison:
    """Compare a current table of users with a reference table: what drifted, and how the model fares.

    Every column both tables hold except the id, the label and ``exclude`` is checked with the drift
    rule of :func:`churnlib.drift.drift_report` (PSI and KS; text columns as categories). With a
    model, its churn probability is compared the same way; when the current table has labels, the
    model's metrics on it (95% bootstrap intervals over users) are set beside its own holdout metrics
    (``model.info["holdout"]``: users of its training data it never saw) or, for a model without
    them, beside the reference table's (optimistic when that is the training table), and
    :func:`recommend` decides.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        One row per user.
    model : churnlib.model.ChurnModel, optional
    id_col : str
    label_col : str or None
        Label column; a table without it is unlabelled.
    exclude : sequence of str
        Columns that are not features (e.g. ``SnapshotTable.not_features``).
    reference_name, current_name : str
        How the tables are named in the text (their file names).
    psi_threshold, ks_threshold : float
        The drift rule.
    metric : str, default "roc_auc"
        The metric the recommendation judges.
    n_bootstrap : int
        Bootstrap replicates of the performance intervals.
    n_false_alarm_samples : int
        Random splits of the reference for :func:`table_false_alarms` (0: none).
    seed : int

    Returns
    -------
    TableComparison
    """
    keys = {id_col, label_col, *exclude} - {None}
    ref_cols = [c for c in reference.columns if c not in keys]
    features = [c for c in ref_cols if c in current.columns]
    notes = []
    only_ref = [c for c in ref_cols if c not in current.columns]
    only_cur = [c for c in current.columns if c not in keys and c not in reference.columns]
    if only_ref:
        notes.append(f"{len(only_ref)} column(s) only in the reference table, not checked: {', '.join(only_ref[:10])}"
                     + (" ..." if len(only_ref) > 10 else ""))
    if only_cur:
        notes.append(f"{len(only_cur)} column(s) only in the current table, not checked: {', '.join(only_cur[:10])}"
                     + (" ..." if len(only_cur) > 10 else ""))
    left_out = [c for c in exclude if c in reference.columns and c not in (id_col, label_col)]
    if left_out:
        notes.append(f"left out as not features: {', '.join(left_out)}")
    if not features:
        raise DataValidationError("the two tables share no feature column to compare")
    drift = drift_report(reference, current, features=features, psi_threshold=psi_threshold,
                         ks_threshold=ks_threshold)
    labelled = label_col is not None and label_col in current and current[label_col].notna().any()
    score_drift = performance = None
    perf_ref = model_text = ""
    sha = None
    if model is not None:
        sha = model.info.get("sha256")
        model_text = model.describe()
        p_ref, p_cur = model.churn_probability(reference), model.churn_probability(current)
        score_drift = drift_report(pd.DataFrame({"churn probability": p_ref}),
                                   pd.DataFrame({"churn probability": p_cur}),
                                   psi_threshold=psi_threshold, ks_threshold=ks_threshold)
        if labelled:
            y = current[label_col].to_numpy().astype(int)
            cur = ev.evaluate_predictions(y, p_cur, p_cur >= model.threshold,
                                          current[id_col].astype(str).to_numpy(), n_bootstrap=n_bootstrap, seed=seed)
            ref = _holdout_table(model.info.get("holdout"))
            if ref is not None:
                ref = ref.reindex(cur.index)
                perf_ref = "the model's own holdout (users of its training data it never saw)"
            elif label_col in reference and reference[label_col].notna().all():
                y_ref = reference[label_col].to_numpy().astype(int)
                ref = ev.evaluate_predictions(y_ref, p_ref, p_ref >= model.threshold,
                                              reference[id_col].astype(str).to_numpy(), n_bootstrap=n_bootstrap,
                                              seed=seed)
                perf_ref = ("the reference table (the model has no holdout figures; if it was trained on this "
                            "table they are optimistic)")
            if ref is not None:
                performance = _performance_table(ref, cur)
            else:
                performance = _performance_table(cur * np.nan, cur)
                perf_ref = "nothing (the model has no holdout figures and the reference table no labels)"
    if model is None:
        notes.append("no model was given: only the inputs are compared, not the scores or the performance")
    elif not labelled:
        notes.append("the current table has no labels yet: the model's performance on it cannot be measured")
    fa = (table_false_alarms(reference, n_false_alarm_samples, features=features, psi_threshold=psi_threshold,
                             ks_threshold=ks_threshold, seed=seed) if n_false_alarm_samples else None)
    rec_perf = performance if performance is not None and performance["reference"].notna().any() else None
    return TableComparison(
        reference=_describe(reference_name, reference, label_col if label_col in reference else None),
        current=_describe(current_name, current, label_col if labelled else None),
        drift=drift, score_drift=score_drift, performance=performance, performance_reference=perf_ref,
        recommendation=recommend(drift, rec_perf, metric=metric,
                                 unmeasured_because="no model was given" if model is None else
                                 "the current table has no labels" if not labelled else
                                 "no reference figure to compare with"),
        false_alarms=fa, model=model_text,
        model_sha256=sha, notes=notes, n_reference=len(reference), n_current=len(current))


def not_run_summary(plan: MonitoringPlan) -> dict:
    """The content of ``monitoring.json`` when monitoring was not run: ``status`` ``"not run"``, the
    reason and how to run it (no drift numbers)."""
    return {"status": "not run", "mode": plan.mode, "reason": plan.reason, "how": plan.how,
            "reference": None if plan.reference is None else str(plan.reference)}


def table_summary(result: TableComparison, recommendation: str) -> dict:
    """The content of ``monitoring.json`` for two tables (the keys of :func:`monitoring_summary`, plus
    ``status``, ``mode``, ``score_drift``, ``performance_reference``, ``model`` and ``notes``).

    Parameters
    ----------
    result : TableComparison
    recommendation : str
        The recommendation in words (:func:`churnlib.monitoring_report.recommendation_text`).
    """
    out = monitoring_summary(reference=result.reference, current=result.current, drift=result.drift,
                             performance=result.performance, recommendation=recommendation,
                             false_alarms=result.false_alarms, challenge_result=None, scenarios={})
    sd = None
    if result.score_drift is not None:
        r = result.score_drift.table.iloc[0]
        sd = {"psi": None if not np.isfinite(r["psi"]) else round(float(r["psi"]), 4),
              "ks": None if not np.isfinite(r["ks"]) else round(float(r["ks"]), 4),
              "drifted": bool(r["drifted"]), "reference_mean": float(r["reference_mean"]),
              "current_mean": float(r["current_mean"])}
    out.update(mode="tables", score_drift=sd, performance_reference=result.performance_reference,
               model=result.model, notes=list(result.notes),
               quality={k: q.to_dict() for k, q in result.quality.items()})
    if result.performance is not None and not result.performance["reference"].notna().any():
        out["performance"] = {"reference": None, "current": out["performance"]["current"]}
    return out


def _resolve_model(model: ChurnModel | str | os.PathLike | None) -> ChurnModel | None:
    if model is None or isinstance(model, ChurnModel):
        return model
    path = Path(model)
    if path.is_dir():
        path = path / ARTIFACT_NAME
    try:
        return ChurnModel.load(path)
    except (OSError, ArtifactError, ValueError) as exc:
        raise DataValidationError(f"cannot use the model: {exc}", file=path) from None


def compare_files(reference: str | os.PathLike, current: str | os.PathLike, *,
                  model: ChurnModel | str | os.PathLike | None = None, id_col: str = "user_id",
                  label_col: str | None = "is_churned", strict: bool = False,
                  psi_threshold: float = PSI_THRESHOLD, ks_threshold: float = KS_THRESHOLD,
                  n_bootstrap: int = 200, n_false_alarm_samples: int = 10, seed: int = 0) -> TableComparison:
    """Load two table files (:func:`read_table`) and compare them (:func:`compare_tables`).

    Parameters
    ----------
    reference, current : path-like
        CSV(.gz) or parquet tables, one row per user, with the same columns (``current`` may lack
        the label: performance is then not measured).
    model : ChurnModel or path-like, optional
        A model, a saved artifact or the folder holding ``churn_model.joblib``; without one only the
        inputs are compared.
    id_col, label_col : str
    strict : bool, default False
        Stop at the first defect of either table instead of repairing or dropping it.
    psi_threshold, ks_threshold, n_bootstrap, n_false_alarm_samples, seed
        As for :func:`compare_tables`.

    Returns
    -------
    TableComparison
        ``quality`` holds both tables' data-quality accounts; columns either table marks as not
        features (``SnapshotTable.not_features``) are left out.

    Raises
    ------
    churnlib.load.DataValidationError
        A table that cannot be read, an unusable model, or tables without a common feature column.
    """
    ref_t = read_table(reference, id_col=id_col, label_col=label_col, strict=strict)
    cur_t = read_table(current, id_col=id_col, label_col=label_col, strict=strict)
    exclude = sorted(set(ref_t.not_features) | set(cur_t.not_features))
    result = compare_tables(ref_t.table, cur_t.table, model=_resolve_model(model), id_col=id_col,
                            label_col=label_col, exclude=exclude, reference_name=Path(reference).name,
                            current_name=Path(current).name, psi_threshold=psi_threshold,
                            ks_threshold=ks_threshold, n_bootstrap=n_bootstrap,
                            n_false_alarm_samples=n_false_alarm_samples, seed=seed)
    result.quality = {"reference": ref_t.quality, "current": cur_t.quality}
    return result


def write_monitoring(summary: dict, path: str | os.PathLike, *, model_sha256: str | None,
                     params: dict[str, Any]) -> Path:
    """Write ``monitoring.json`` atomically, stamped with the model it judged (its key file beside it).

    Parameters
    ----------
    summary : dict
        :func:`monitoring_summary`, :func:`table_summary` or :func:`not_run_summary`.
    path : path-like
    model_sha256 : str or None
        The model's artifact digest (``"not saved"`` is recorded for a model never saved); None
        when no model was judged (monitoring not run), so the file goes with any model.
    params : dict
        What else the product depends on (scenario, or the two tables' fingerprints).
    """
    model = None if model_sha256 is None and summary.get("status") == "not run" else (model_sha256 or "not saved")
    key = product_key("monitoring", {"model": model}, params)
    return write_product(Path(path), lambda tmp: write_summary(summary, tmp), key)


def monitor_command(reference: str | os.PathLike, current: str | os.PathLike, out: str | os.PathLike, *,
                    model: ChurnModel | str | os.PathLike | None = None, id_col: str = "user_id",
                    label_col: str | None = "is_churned", strict: bool = False,
                    psi_threshold: float = PSI_THRESHOLD, ks_threshold: float = KS_THRESHOLD,
                    n_bootstrap: int = 200, n_false_alarm_samples: int = 10, seed: int = 0,
                    wording: Callable[[Recommendation], str] | None = None) -> TableComparison:
    """``python -m churnlib monitor``: compare two tables of users and write ``monitoring.json``.

    Parameters
    ----------
    reference, current, model, id_col, label_col, strict
        As for :func:`compare_files`.
    out : path-like
        The JSON file to write (atomically; stamped with the model's digest like the notebook's
        ``monitoring.json``, with a key file beside it).
    psi_threshold, ks_threshold, n_bootstrap, n_false_alarm_samples, seed
        As for :func:`compare_tables`.
    wording : callable, optional
        The recommendation in words for the file (the command line passes
        :func:`churnlib.monitoring_report.recommendation_text`); default: its action ("Investigate").

    Returns
    -------
    TableComparison
        What the command prints (:func:`churnlib.monitoring_report.command_text`).

    Raises
    ------
    churnlib.load.DataValidationError
        A table that cannot be read, an unusable model, or tables without a common feature column.
    """
    result = compare_files(reference, current, model=model, id_col=id_col, label_col=label_col, strict=strict,
                           psi_threshold=psi_threshold, ks_threshold=ks_threshold, n_bootstrap=n_bootstrap,
                           n_false_alarm_samples=n_false_alarm_samples, seed=seed)
    words = wording(result.recommendation) if wording is not None else result.recommendation.action.capitalize()
    summary = table_summary(result, words)
    write_monitoring(summary, out, model_sha256=result.model_sha256,
                     params={"mode": "tables", "reference": data_fingerprint(reference),
                             "current": data_fingerprint(current)})
    return result


# --------------------------------------------------------------------------------------------
# Served features: the prediction store against the model's training reference
# --------------------------------------------------------------------------------------------

#: Files :func:`monitor_store` writes into its output folder, by role.
STORE_OUTPUTS = {"drift": "drift.csv", "figure": "drift.png", "summary": "monitoring_summary.json"}


@dataclass
class StoreMonitoring:
    """Served features of one model over a rolling window, against its training reference.

    Attributes
    ----------
    status : str
        ``"ok"``, or ``"too few rows"`` when the window (or the reference) holds fewer than
        :data:`churnlib.drift.MIN_ROWS` users: nothing is judged then.
    store : str
        The prediction store read.
    model_version, model : str
        :attr:`churnlib.model.ChurnModel.version` and :meth:`~churnlib.model.ChurnModel.describe`.
    window_start, window_end : pandas.Timestamp
        The window ``[end - window_days, end]`` on ``served_at`` (UTC, both ends included).
    window_days : float
    rows : int
        Predictions of this model version served in the window.
    users : int
        Users among them: drift is measured on each user's latest prediction in the window.
    other_versions : dict of str to int
        Predictions of other model versions in the window, left out.
    reference : str
        Where the reference came from (``reference.parquet`` beside the model, or the table given).
    n_reference : int
        Reference rows compared (one per user at the reference's latest ``as_of``).
    drift : churnlib.drift.DriftReport
        Every model feature, served against reference.
    score_drift : churnlib.drift.DriftReport
        The served churn probabilities against the model's probabilities on the reference rows.
    psi_threshold, ks_threshold : float
    files : dict of str to str
        What was written (role to path).
    notes : list of str
        Plain remarks (e.g. other model versions left out).
    words : str or None
        The plain-words text (``wording`` of :func:`monitor_store`).
    """

    status: str
    store: str
    model_version: str
    model: str
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    window_days: float
    rows: int
    users: int
    other_versions: dict[str, int]
    reference: str
    n_reference: int
    drift: DriftReport
    score_drift: DriftReport
    psi_threshold: float
    ks_threshold: float
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    words: str | None = None

    @property
    def enough(self) -> bool:
        """Both the window and the reference hold enough users to judge drift."""
        return self.status == "ok"

    @property
    def fired(self) -> bool:
        """Some feature (or the churn probability) drifted."""
        return self.enough and (self.drift.fired or self.score_drift.fired)

    @property
    def drifted(self) -> list[str]:
        """The features that drifted, largest PSI first."""
        return self.drift.drifted["feature"].tolist()

    def text(self) -> str:
        """The plain words (:func:`churnlib.monitoring_report.store_text`, given as ``wording``), else
        the status and the drifted features."""
        if self.words is not None:
            return self.words
        return f"{self.status}: {len(self.drifted)} feature(s) drifted ({', '.join(self.drifted) or 'none'})"

    def to_dict(self) -> dict[str, Any]:
        """The content of ``monitoring_summary.json``."""
        def records(report: DriftReport) -> list[dict]:
            cols = ["feature", "kind", "psi", "ks", "reference_mean", "current_mean", "drifted", "reason"]
            return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
                    for r in report.table[cols].to_dict("records")]
        return {
            "status": self.status, "mode": "store", "store": self.store,
            "model": {"version": self.model_version, "description": self.model},
            "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat(),
                       "days": self.window_days},
            "served": {"predictions": self.rows, "users": self.users, "rows_compared": "latest prediction per user",
                       "other_model_versions": dict(self.other_versions)},
            "reference": {"source": self.reference, "rows": self.n_reference},
            "thresholds": {"psi": self.psi_threshold, "ks": self.ks_threshold, "min_rows": MIN_ROWS},
            "fired": self.fired,
            "drifted": self.drifted if self.enough else [],
            "features_checked": self.drift.n_checked,
            "drift": records(self.drift),
            "score_drift": records(self.score_drift)[0] if len(self.score_drift.table) else None,
            "notes": list(self.notes),
            "text": self.words,
            "files": dict(self.files),
        }


def _window_end(end: str | pd.Timestamp | None, last: pd.Timestamp | None) -> pd.Timestamp:
    if end is None:
        return last if last is not None else pd.Timestamp.now(tz="UTC")
    try:
        ts = pd.Timestamp(end)
    except (ValueError, TypeError):
        raise DataValidationError(f"end must be a date or a time (e.g. 2018-11-20 or 2018-11-20T12:00Z), "
                                  f"not {end!r}", column="end") from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if isinstance(end, str) and len(end.strip()) == 10:  # a date alone: the whole day counts
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)
    return ts


def _store_reference(model: ChurnModel, model_path: Path | None,
                     reference: pd.DataFrame | str | os.PathLike | None) -> tuple[pd.DataFrame, str]:
    """The reference rows (one per user at the latest ``as_of``), and where they came from."""
    if reference is None:
        if model_path is None:
            raise DataValidationError("a model given in memory has no training reference beside it: "
                                      "pass the table it was trained on as reference")
        table, where = read_reference(model_path, model.info), str(reference_path(model_path))
    elif isinstance(reference, pd.DataFrame):
        table, where = reference, "the reference table given"
    else:
        table, where = load_table(reference).table, str(reference)
    table = latest_rows(table) if "as_of" in table.columns else table.reset_index(drop=True)
    try:
        model.prepare(table)
    except ValueError as exc:
        raise DataValidationError(f"the reference cannot be compared with the model's inputs: {exc}",
                                  file=None if isinstance(reference, pd.DataFrame) else where) from None
    return table, where


def monitor_store(store: str | os.PathLike, model: ChurnModel | str | os.PathLike, *,
                  reference: pd.DataFrame | str | os.PathLike | None = None, window_days: float = 7,
                  end: str | pd.Timestamp | None = None, psi_threshold: float = PSI_THRESHOLD,
                  ks_threshold: float = KS_THRESHOLD, out_dir: str | os.PathLike,
                  plot: Callable[[DriftReport, Path], Any] | None = None,
                  wording: Callable[[StoreMonitoring], str] | None = None) -> StoreMonitoring:
    """``python -m churnlib monitor --store``: drift of served features against the training reference.

    The predictions the model (its :attr:`~churnlib.model.ChurnModel.version`) served in the window
    ``[end - window_days, end]`` are read from the store; each user counts once, with their latest
    prediction in the window (a user scored daily by a CRM would otherwise weigh seven times as much
    as one scored once, and repeated rows of a user are not independent). Their features are compared
    with the model's training reference -- one row per user at its latest observation date, as
    ``07_monitoring`` compares windows -- by :func:`churnlib.drift.drift_report` (PSI and KS with the
    given thresholds); the served churn probabilities are compared the same way with the model's
    probabilities on the reference rows. Predictions of other model versions are left out and counted.

    Everything is computed before anything is written; ``drift.csv``, the figure (when ``plot`` is
    given) and ``monitoring_summary.json`` (:data:`STORE_OUTPUTS`) are then each replaced atomically,
    the summary last. A window (or reference) with fewer than :data:`churnlib.drift.MIN_ROWS` users
    is not judged: the result's ``status`` is ``"too few rows"`` (no figure), which the command line
    reports.

    Parameters
    ----------
    store : path-like
        The prediction store (:class:`churnlib.store.PredictionStore`), opened read-only.
    model : ChurnModel or path-like
        The artifact, its manifest or their folder (a model in memory needs ``reference``).
    reference : DataFrame or path-like, optional
        The table the model was trained on (id, ``as_of`` for feature tables, the model's features);
        default: ``reference.parquet`` beside the artifact, checked against the manifest.
    window_days : float, default 7
        Length of the rolling window.
    end : str or Timestamp, optional
        End of the window (a date alone: the end of that day, UTC); default: the model's latest
        prediction in the store.
    psi_threshold, ks_threshold : float
        The drift rule.
    out_dir : path-like
        Output folder (created; checked first by :func:`churnlib.outputs.check_output`).
    plot : callable, optional
        ``plot(drift, path)`` draws the drift figure into ``path`` (the command line passes
        :func:`churnlib.monitoring_report.write_store_figure`); None: no figure.
    wording : callable, optional
        ``wording(result)`` gives the plain words of :meth:`StoreMonitoring.text` and the summary
        (the command line passes :func:`churnlib.monitoring_report.store_text`).

    Returns
    -------
    StoreMonitoring

    Raises
    ------
    churnlib.load.DataValidationError
        An unusable store (:class:`churnlib.store.StoreError`), model or reference -- including a
        model without ``reference.parquet`` and no ``reference`` (the message says how to get one) --
        or a bad ``end``.
    churnlib.outputs.OutputError
        ``out_dir`` cannot be written, or would overwrite an input.
    """
    if not window_days > 0:
        raise DataValidationError(f"the window must be longer than 0 days, not {window_days!r}", column="window_days")
    ref_input = reference if isinstance(reference, (str, os.PathLike)) else None
    out = check_output(out_dir, inputs=[store, None if isinstance(model, ChurnModel) else model, ref_input],
                       folder=True, names=STORE_OUTPUTS.values(), sidecar=False)
    model_path = None if isinstance(model, ChurnModel) else Path(model)
    champion = _resolve_model(model)
    ref, ref_source = _store_reference(champion, model_path, reference)
    version = champion.version
    with PredictionStore(store, readonly=True) as st:
        span = st.span(version)
        hi = _window_end(end, span[1] if span else (st.span() or (None, None))[1])
        lo = hi - pd.Timedelta(days=float(window_days))
        served = st.read(since=lo, until=hi, model_version=version)
        others = {v: n for v, n in st.versions(since=lo, until=hi).items() if v != version}
    notes = []
    if others:
        notes.append(f"{sum(others.values()):,} prediction(s) of other model versions in the window left out "
                     f"({', '.join(f'{v}: {n:,}' for v, n in others.items())})")
    if span is None:
        notes.append(f"the store holds no prediction of model {version}")
    latest = served.drop_duplicates("user_id", keep="last").reset_index(drop=True)  # read is oldest first
    try:
        current = champion.prepare(latest) if len(latest) else champion.prepare(
            pd.DataFrame({c: pd.Series(dtype="float64") for c in champion.feature_names}))
    except ValueError as exc:
        raise DataValidationError(f"the stored predictions of model {version} lack its features: {exc}",
                                  file=store) from None
    features = champion.feature_names
    drift = drift_report(champion.prepare(ref), current, features=features, psi_threshold=psi_threshold,
                         ks_threshold=ks_threshold)
    p_ref = champion.churn_probability(ref)
    score_drift = drift_report(pd.DataFrame({"churn probability": p_ref}),
                               pd.DataFrame({"churn probability": latest["churn_probability"].to_numpy(float)}),
                               psi_threshold=psi_threshold, ks_threshold=ks_threshold)
    ok = len(latest) >= MIN_ROWS and len(ref) >= MIN_ROWS
    result = StoreMonitoring(
        status="ok" if ok else "too few rows", store=str(store), model_version=version, model=champion.describe(),
        window_start=lo, window_end=hi, window_days=float(window_days), rows=len(served), users=len(latest),
        other_versions=others, reference=ref_source, n_reference=len(ref), drift=drift, score_drift=score_drift,
        psi_threshold=psi_threshold, ks_threshold=ks_threshold, notes=notes)
    files = {"drift": out / STORE_OUTPUTS["drift"], "summary": out / STORE_OUTPUTS["summary"]}
    if plot is not None and ok:
        files["figure"] = out / STORE_OUTPUTS["figure"]
    result.files = {k: str(v) for k, v in files.items()}
    if wording is not None:
        result.words = wording(result)
    table = pd.concat([drift.table, score_drift.table], ignore_index=True)
    atomic_write(files["drift"], lambda tmp: table.to_csv(tmp, index=False))
    if "figure" in files:
        atomic_write(files["figure"], lambda tmp: plot(drift, Path(tmp)))
    write_json(files["summary"], result.to_dict())
    return result
