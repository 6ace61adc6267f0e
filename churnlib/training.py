"""The training flow: hold out, compare, tune, calibrate, set the threshold, refit, save.

Used by ``notebooks/05_models.ipynb`` and ``python -m churnlib train`` (:func:`train_command`), so
both produce the same ``metrics.json`` and artifact:

1. hold out a test part (a given split column, else a stratified, group-aware fraction);
2. compare models x imbalance strategies with repeated CV on the training part
   (:func:`churnlib.models.compare_models`: metrics with bootstrap intervals);
3. compare every candidate with the leader (highest cross-validated PR-AUC) on the same folds and
   choose by the one-standard-error rule (:func:`churnlib.selection.select_candidate`); tune it with
   a bounded search confirmed on training rows the search did not use
   (:func:`churnlib.selection.confirm_search`);
4. decide calibration and the threshold on out-of-fold predictions (:mod:`churnlib.thresholds`);
5. refit on the whole training part, score the holdout once, run the label-permutation test;
6. :meth:`TrainingResult.save` writes the model (:meth:`churnlib.model.ChurnModel.save`) and ``metrics.json``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from churnlib import evaluation as ev
from churnlib import paths
from churnlib import thresholds as th
from churnlib.selection import (
    BASELINE,
    Agreement,
    BaselineCheck,
    Selection,
    check_agreement,
    compare_with_baseline,
    confirm_search,
    select_candidate,
)
from churnlib.artifact import library_versions
from churnlib.calibration import CalibratedClassifier
from churnlib.datasets import default_event_log
from churnlib.files import atomic_write, write_json
from churnlib.intervals import Interval
from churnlib.leakage import LeakageScreen, screen_leaks
from churnlib.load import data_fingerprint as fingerprint_of
from churnlib.load import detect_kind, not_feature_columns
from churnlib.models import (
    Candidate,
    compare_models,
    evaluate_candidate,
    feature_frame,
    load_training_table,
    make_pipeline,
    negatives_per_positive,
)
from churnlib.model import ARTIFACT_NAME, ChurnModel, feature_schema
from churnlib.outputs import QUALITY_NAME, check_output, quality_path
from churnlib.pipeline import feature_table, product_key
from churnlib.store import REFERENCE_NAME, write_reference
from churnlib.whatif import MANIFEST_NAME as WHATIF_MANIFEST
from churnlib.whatif import SIGNALS as WHATIF_SIGNALS
from churnlib.whatif import WHATIF_NAME, WhatIfResult, fit_whatif, skip_reason

__all__ = ["ARTIFACT_NAME", "PREDICTIONS_NAME", "TrainTestParts", "TrainingResult", "run_training", "saved_model",
           "split_table", "train_command", "training_table"]

# --------------------------------------------------------------------------------------------

#: Out-of-fold (training part) and holdout probabilities of the final model, beside it in ``models/``.
PREDICTIONS_NAME = "predictions.parquet"


def _records(res: pd.DataFrame | None) -> dict | None:
    if res is None:
        return None
    return {m: {k: (float(v) if np.isfinite(v) else None) for k, v in r.items()} for m, r in res.iterrows()}


@dataclass
class TrainTestParts:
    """A table cut into model inputs for the training part and the holdout.

    Attributes
    ----------
    X, y, groups : training features, labels, user ids
    X_test, y_test, groups_test : the same for the holdout
    suspects : list of str
        Leakage suspects left out (screened on the training part): single columns and the columns of
        relations that give the label away (:func:`churnlib.leakage.screen_leaks`).
    description : str
        How the holdout was drawn.
    leakage : churnlib.leakage.LeakageScreen or None
        The screen (None when ``drop_suspects`` is off).
    not_features : dict of str to str
        Columns left out because they cannot be features (constant, empty, a unique text per row).
    keys : pandas.DataFrame or None
        The training part's id column (and ``as_of`` in a stacked feature table), aligned with ``X``.
    test : numpy.ndarray of bool or None
        The holdout mask over the table's rows (True: held out).
    """

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    groups_test: np.ndarray
    suspects: list[str]
    description: str
    leakage: LeakageScreen | None = None
    not_features: dict[str, str] | None = None
    keys: pd.DataFrame | None = None
    test: np.ndarray | None = None


def split_table(table: pd.DataFrame, id_col: str, label_col: str, split_col: str | None = None, *,
                holdout_fraction: float = 0.2, seed: int = 0, exclude: Sequence[str] = (),
                drop_suspects: bool = True) -> TrainTestParts:
    """Features, labels and ids of the training part and the holdout (see :func:`run_training`)."""
    if split_col is not None and split_col not in table.columns:
        raise ValueError(f"split column {split_col!r} not in the table; columns: {list(table.columns)}")
    # constant, empty and unique-text-per-row columns say nothing about churn (a second id, a file name)
    not_features = not_feature_columns(table.drop(columns=[c for c in (split_col, *exclude) if c]), id_col, label_col)
    X_all = feature_frame(table, id_col, label_col, drop=[c for c in (split_col, *exclude, *not_features) if c])
    y_all = table[label_col].to_numpy().astype(int)
    g_all = table[id_col].astype(str).to_numpy()
    test = ev.holdout_split(y_all, g_all, table[split_col] if split_col else None, holdout_fraction, seed)
    suspects: list[str] = []
    screen = None
    if drop_suspects:
        # screened on the training part only, so the holdout stays unseen; never drops every column
        screen = screen_leaks(X_all[~test], y_all[~test], g_all[~test], seed=seed)
        suspects = list(screen.dropped)
        X_all = X_all.drop(columns=suspects)
    if split_col is None:
        text = f"stratified group holdout of {test.mean():.0%} of rows (seed {seed})"
    else:
        text = f"split column {split_col!r}"
    keys = table.loc[~test, [c for c in (id_col, "as_of") if c in table.columns]].reset_index(drop=True)
    return TrainTestParts(X_all[~test].reset_index(drop=True), y_all[~test], g_all[~test],
                          X_all[test].reset_index(drop=True), y_all[test], g_all[test], suspects, text,
                          screen, not_features, keys, test)


@dataclass
class TrainingResult:
    """Everything :func:`run_training` decided and measured.

    Attributes
    ----------
    candidates : list of Candidate
        The comparison (CV on the training part, and each candidate once on the holdout).
    chosen : Candidate
        The final configuration (tuned when the search's gain was confirmed), cross-validated.
    reason : str
        Why it was chosen.
    search : dict
        Search method, budget, best parameters, their CV score on the search part, the
        confirmation on training rows the search did not use, the optimism, and whether they were
        kept (:meth:`churnlib.selection.SearchCheck.to_dict`).
    calibration : churnlib.thresholds.CalibrationChoice
    threshold : float
        The decision threshold (chosen on out-of-fold predictions).
    thresholds : dict
        ``{"f1": ..., "cost": ...}`` (cost only when both costs are given) and the rule used.
    bands : churnlib.thresholds.RiskBands
    model : churnlib.model.ChurnModel
        The final model refitted on all training rows (calibrated when that helped), with its
        threshold, risk bands and feature schema.
    holdout : pandas.DataFrame
        Headline metrics of ``model`` on the holdout, with intervals.
    holdout_proba, y_test : numpy.ndarray
        Holdout probabilities and labels (for curves).
    oof, y_train : numpy.ndarray
        Out-of-fold probabilities (calibrated when calibrating) and training labels.
    permutation : churnlib.evaluation.PermutationResult
    feature_schema : list of dict
    info : dict
        Data sizes, split description, settings.
    selection : churnlib.selection.Selection
        Every candidate compared to the leader on the same folds, and the rule that chose.
    agreement : churnlib.selection.Agreement
        The holdout against the CV estimate, and folds that stand apart.
    baseline : churnlib.selection.BaselineCheck
        The final model against a default gradient-boosting model on the holdout.
    train_rows : pandas.DataFrame or None
        The training part as the final model was fitted on it: id (and ``as_of``) and features; saved
        as the monitoring reference (``reference.parquet``).
    whatif : churnlib.whatif.WhatIfResult or None
        The six-signal what-if model, fitted on the same training part and scored on the same holdout.
    whatif_skipped : str or None
        Why no what-if model was trained (a snapshot table lacks the signals).
    row_keys : pandas.DataFrame or None
        Id (and ``as_of``) of the training rows then the holdout rows, aligned with ``oof`` then
        ``holdout_proba`` (:meth:`predictions`).
    """

    candidates: list[Candidate]
    chosen: Candidate
    reason: str
    search: dict
    calibration: th.CalibrationChoice
    threshold: float
    thresholds: dict
    bands: th.RiskBands
    model: ChurnModel
    holdout: pd.DataFrame
    holdout_proba: np.ndarray
    y_test: np.ndarray
    oof: np.ndarray
    y_train: np.ndarray
    permutation: ev.PermutationResult
    feature_schema: list[dict[str, str]]
    info: dict
    selection: Selection | None = None
    agreement: Agreement | None = None
    baseline: BaselineCheck | None = None
    train_rows: pd.DataFrame | None = None
    whatif: WhatIfResult | None = None
    whatif_skipped: str | None = None
    row_keys: pd.DataFrame | None = None

    def predictions(self) -> pd.DataFrame | None:
        """The final model's honest probabilities, one row per table row (``predictions.parquet``).

        Returns
        -------
        pandas.DataFrame or None
            The id column (and ``as_of``), ``part`` (``"oof"``: out-of-fold on the training part,
            calibrated as the model is; ``"holdout"``: the refitted model on the holdout), ``y`` (0/1)
            and ``p``; training rows first, in table order. None without :attr:`row_keys`.
        """
        if self.row_keys is None:
            return None
        n_train, n_test = len(self.y_train), len(self.y_test)
        return self.row_keys.reset_index(drop=True).assign(
            part=pd.Series(["oof"] * n_train + ["holdout"] * n_test, dtype="string").to_numpy(),
            y=np.r_[self.y_train, self.y_test].astype("int64"),
            p=np.r_[np.atleast_2d(self.oof).mean(axis=0), self.holdout_proba].astype("float64"))

    @property
    def signal_detected(self) -> bool:
        """The permutation test is significant and the holdout ROC-AUC interval lies above 0.5."""
        return self.permutation.significant and self.holdout.loc["roc_auc", "low"] > 0.5

    def signal_statement(self) -> str:
        """Plain sentence on whether the table carries a detectable churn signal."""
        auc = Interval.from_row(self.holdout.loc["roc_auc"]).text()
        p = self.permutation.p_value
        above = self.holdout.loc["roc_auc", "low"] > 0.5
        if self.signal_detected:
            return (f"Signal detected: holdout ROC-AUC {auc} lies above 0.5 and the permutation test is "
                    f"significant (p = {p:.3f}).")
        if self.permutation.significant or above:
            which = ("the permutation test on the training part is significant (p = {p:.3f}) but the holdout "
                     "ROC-AUC {auc} covers 0.5" if self.permutation.significant else
                     "the holdout ROC-AUC {auc} lies above 0.5 but the permutation test is not significant "
                     "(p = {p:.3f})").format(p=p, auc=auc)
            return (f"No detectable signal yet (inconclusive): {which}. The evidence is too thin to act on; "
                    "more users would settle it.")
        return (f"No detectable signal: holdout ROC-AUC {auc} covers 0.5 and the permutation test is not "
                f"significant (p = {p:.3f}). The models do no better than chance on this table; do not act "
                "on their scores.")

    def metrics(self) -> dict[str, Any]:
        """The content of ``metrics.json``."""
        c = self.chosen
        return {
            "data": self.info["data"],
            "settings": self.info["settings"],
            "candidates": [{"model": k.model, "strategy": k.strategy, "threshold_f1_oof": {"value": k.threshold, "low": k.threshold_interval[0],
                                                 "high": k.threshold_interval[1]},
                            "cv": _records(k.cv), "holdout": _records(k.holdout), "error": k.error,
                            "seconds": round(k.seconds, 2)} for k in self.candidates],
            "chosen": {
                "model": c.model, "strategy": c.strategy, "params": c.params, "reason": self.reason,
                "search": self.search,
                "calibration": {"method": self.calibration.method, "brier_oof": self.calibration.brier,
                                "why": self.calibration.reason()},
                "threshold": {"value": self.threshold, **self.thresholds},
                "risk_bands": {"low": f"p < {self.bands.medium_from:.4f}",
                               "medium": f"{self.bands.medium_from:.4f} <= p < {self.bands.high_from:.4f}",
                               "high": f"p >= {self.bands.high_from:.4f}",
                               "medium_from": self.bands.medium_from, "high_from": self.bands.high_from},
                "cv": _records(c.cv),
                "holdout": _records(self.holdout),
            },
            "permutation_test": {"roc_auc_cv": self.permutation.score, "p_value": self.permutation.p_value,
                                 "n_permutations": len(self.permutation.permuted),
                                 "mean_permuted_roc_auc": float(np.mean(self.permutation.permuted)),
                                 "significant": self.permutation.significant,
                                 "statement": self.permutation.statement()},
            "signal_detected": self.signal_detected,
            "signal_statement": self.signal_statement(),
            "selection": self.selection.to_dict() if self.selection is not None else None,
            "agreement": self.agreement.to_dict() if self.agreement is not None else None,
            "baseline": self.baseline.to_dict() if self.baseline is not None else None,
            "whatif": (self.whatif.to_dict() if self.whatif is not None else
                       {"skipped": self.whatif_skipped or "not trained"}),
        }

    def key_numbers(self) -> dict[str, str]:
        """Headline numbers for the report index."""
        h = self.holdout
        return {
            "Chosen model": f"{self.chosen.model} ({self.chosen.strategy})",
            "Holdout ROC-AUC": Interval.from_row(h.loc["roc_auc"]).text(),
            "Holdout PR-AUC": Interval.from_row(h.loc["pr_auc"]).text(),
            "Holdout F1": Interval.from_row(h.loc["f1"]).text(),
            "Threshold": f"{self.threshold:.3f} ({self.thresholds['rule']})",
            "Permutation p": f"{self.permutation.p_value:.3f}",
            "Signal detected": "yes" if self.signal_detected else "no",
            **_check_numbers(self.agreement, self.baseline),
        }

    def save(self, out_dir: str | os.PathLike, data_fingerprint: str | None = None, *,
             source: str | os.PathLike | None = None, reference: pd.DataFrame | None = None) -> dict[str, Path]:
        """Write the artifact, its manifest, ``metrics.json`` and the training reference into ``out_dir``.

        With ``source`` (the table or feature file trained on), its fingerprint and the models
        stage's key (:func:`churnlib.pipeline.product_key`: the table's fingerprint and the training
        settings) are recorded in both, so a later stage can tell which data and settings made the model.

        The training reference (``reference.parquet``, :func:`churnlib.store.write_reference`): the
        training rows' id, ``as_of`` (feature tables) and model features as the final model saw
        them, which ``python -m churnlib monitor --store`` compares served features with. Its
        SHA-256, rows and users are recorded under ``reference`` in ``metrics.json`` and the manifest.
        The rows are ``reference`` when given, else :attr:`train_rows`; without either, no reference
        is written and ``reference.why`` says so.

        Returns
        -------
        dict
            Paths under keys ``artifact``, ``manifest``, ``metrics`` (and ``reference`` when written).
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        key = None
        if source is not None:
            data_fingerprint = data_fingerprint or fingerprint_of(source)
            key = product_key("models", {"table": data_fingerprint}, self.info["settings"])
        metrics = self.metrics()
        metrics["data"]["fingerprint"] = data_fingerprint
        metrics["versions"] = library_versions()
        if key is not None:
            metrics["product_key"] = key
        data = self.info["data"]
        rows = reference if reference is not None else self.train_rows
        why = "trained without its rows at hand (no reference rows)"
        written_ref = {}
        if rows is not None:
            keys = [c for c in (data["id_col"], "as_of") if c in rows.columns]
            frame = pd.concat([rows[keys].reset_index(drop=True),
                               self.model.prepare(rows).reset_index(drop=True)], axis=1)
            ref_info = write_reference(frame, out / REFERENCE_NAME, id_col=data["id_col"],
                                       features=self.model.feature_names)
            written_ref = {"reference": out / REFERENCE_NAME}
        else:
            ref_info = {"file": None, "why": why}
        metrics["reference"] = ref_info
        chosen = metrics["chosen"]
        manifest = self.model.save(
            out / ARTIFACT_NAME,
            info={"model": {k: chosen[k] for k in ("model", "strategy", "params", "reason")},
                  "calibration": chosen["calibration"]["method"],
                  "threshold_rule": self.thresholds["rule"],
                  "holdout": chosen["holdout"], "cv": chosen["cv"],
                  "signal_detected": self.signal_detected,
                  "data_fingerprint": data_fingerprint, "data": metrics["data"], "reference": ref_info,
                  **({"product_key": key} if key is not None else {})})
        written_more = {}
        preds = self.predictions()
        if preds is not None:
            written_more["predictions"] = atomic_write(out / PREDICTIONS_NAME,
                                                       lambda tmp: preds.to_parquet(tmp, index=False))
            metrics["predictions"] = {"file": PREDICTIONS_NAME, "rows_oof": len(self.y_train),
                                      "rows_holdout": len(self.y_test)}
        if self.whatif is not None:
            written_more["whatif_manifest"] = self.whatif.model.save(
                out, info={**metrics["whatif"], "data_fingerprint": data_fingerprint})
            written_more["whatif"] = out / WHATIF_NAME
        else:  # a what-if model left by an earlier run on other data must not be read as this one's
            for name in (WHATIF_NAME, WHATIF_MANIFEST):
                (out / name).unlink(missing_ok=True)
        mpath = write_json(out / "metrics.json", metrics)
        return {"artifact": out / ARTIFACT_NAME, "manifest": manifest, "metrics": mpath, **written_ref,
                **written_more}


def run_training(table: pd.DataFrame, id_col: str, label_col: str, split_col: str | None = None, *,
                 models: Sequence[str] = ("dummy", "logreg", "random_forest", "lightgbm"),
                 strategies: Sequence[str] = ("none", "class_weight", "smote"),
                 n_splits: int = 3, n_repeats: int = 1, search_budget: int = 6, search_method: str = "random",
                 n_permutations: int = 19, n_bootstrap: int = 200, holdout_fraction: float = 0.2,
                 cost_fn: float | None = None, cost_fp: float | None = None, exclude: Sequence[str] = (),
                 drop_suspects: bool = True, alpha: float = 0.05, seed: int = 0,
                 n_jobs: int = 1, whatif_table: pd.DataFrame | None = None) -> TrainingResult:
    """Hold out, compare, tune, calibrate, set the threshold, refit, evaluate once, test for signal.

    The choice is made without a winner's curse (:mod:`churnlib.selection`): candidates are compared
    to the leader paired on the same folds and the simplest one within one standard error is
    chosen; a search's gain must be confirmed on rows it did not use. The final model is held
    against a default gradient-boosting baseline on the holdout, and the holdout estimate against
    the CV interval (with any fold that stands apart): all in ``metrics.json``.

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table (one row per user and date) or a snapshot table (one row per user).
    id_col, label_col : str
        User id (folds and holdout keep a user's rows together) and 0/1 label.
    split_col : str, optional
        Column marking rows ``train``/``test``; otherwise a stratified group holdout of
        ``holdout_fraction``.
    models, strategies : sequences of str
        Candidates (:data:`MODELS` x :data:`STRATEGIES`).
    n_splits, n_repeats : int
        Repeated stratified (group) K-fold on the training part.
    search_budget : int
        Parameter settings tried for the chosen model (0: no search), on two thirds of the training
        part; the tuned parameters are kept only when they beat the defaults on the other third by
        more than one standard error.
    search_method : {"random", "halving"}
    n_permutations : int
        Label permutations for the signal test.
    n_bootstrap : int
        Bootstrap replicates for every interval.
    holdout_fraction : float
        Held-out share when no split column is given.
    cost_fn, cost_fp : float, optional
        Cost of a missed churner and of a wasted retention offer; when both are given the threshold
        minimises the expected cost instead of maximising F1.
    exclude : sequence of str
        Further columns that must not be features (e.g. a known leak).
    drop_suspects : bool, default True
        Leave out features that :func:`churnlib.features.leakage_report` flags on the training part
        (a single feature separating the classes almost perfectly encodes the label or the future).
    alpha : float
        Significance level of the permutation test.
    seed, n_jobs : int
    whatif_table : pandas.DataFrame, optional
        The same rows as ``table`` in the same order with every feature, when ``table`` lost some of
        the what-if signals to the feature set (``05_models`` passes the features stage's table);
        default ``table``. The what-if model (:func:`churnlib.whatif.fit_whatif`) is fitted on the same
        training part and scored on the same holdout; without its six signals it is skipped and
        ``metrics.json`` says why.

    Returns
    -------
    TrainingResult
    """
    parts = split_table(table, id_col, label_col, split_col, holdout_fraction=holdout_fraction, seed=seed,
                        exclude=exclude, drop_suspects=drop_suspects)
    X, y, g, X_te, y_te, g_te = parts.X, parts.y, parts.groups, parts.X_test, parts.y_test, parts.groups_test
    suspects, split_text = parts.suspects, parts.description
    y_all, g_all = np.r_[y, y_te], np.r_[g, g_te]
    shared = sorted(set(g) & set(g_te))

    candidates = compare_models(X, y, g, models=models, strategies=strategies, n_splits=n_splits,
                                n_repeats=n_repeats, X_test=X_te, y_test=y_te, groups_test=g_te,
                                n_bootstrap=n_bootstrap, seed=seed, n_jobs=n_jobs)
    usable = [c for c in candidates if c.cv is not None and c.model != "dummy"]
    if not usable:
        errors = "; ".join(f"{c.name}: {c.error}" for c in candidates if c.error)
        raise ValueError(f"no model could be evaluated ({errors or 'only the dummy baseline was requested'})")
    sel = "pr_auc"
    splits = ev.cv_splits(y, g, n_splits, n_repeats, seed)
    # every candidate against the leader on the same folds; the one-standard-error rule chooses
    selection = select_candidate(candidates, y, splits, metric=sel)
    by_name = {c.name: c for c in candidates}
    leader, best = by_name[selection.leader], by_name[selection.chosen]
    dummy = next((c for c in candidates if c.model == "dummy" and c.cv is not None), None)

    # the search runs on part of the training rows and is confirmed on the rest
    pipe = make_pipeline(best.model, best.strategy, pos_weight=negatives_per_positive(y), seed=seed)
    check = confirm_search(pipe, best.model, X, y, g, n_splits=n_splits, budget=search_budget,
                           method=search_method, metric=sel, n_bootstrap=n_bootstrap, seed=seed, n_jobs=n_jobs)
    final, final_pipe = best, pipe
    if check.kept:
        tuned_pipe = clone(pipe).set_params(**check.params)
        tuned = evaluate_candidate(tuned_pipe, best.model, best.strategy, X, y, g, splits,
                                   n_bootstrap=n_bootstrap, seed=seed, n_jobs=n_jobs, params=check.params)
        if tuned.cv is not None:
            final, final_pipe = tuned, tuned_pipe
        else:
            check.kept, check.why = False, f"the tuned parameters fail on the whole training part ({tuned.error})"
    search = check.to_dict()
    reason = _selection_reason(selection, leader, best, dummy, len(usable), sel)

    calibration = th.choose_calibration(y, final.oof, seed=seed)
    p_oof = calibration.calibrated_oof
    thresholds = {"f1": th.f1_threshold(y, p_oof)}
    if cost_fn is not None and cost_fp is not None:
        thresholds["cost"] = th.cost_threshold(y, p_oof, cost_fn, cost_fp)
        thresholds.update(rule="cost", costs={"missed_churner": cost_fn, "wasted_offer": cost_fp},
                          why=f"minimises {cost_fn:g} x missed churners + {cost_fp:g} x wasted offers "
                              "on out-of-fold predictions of the training part")
    else:
        thresholds.update(rule="f1", why="maximises F1 on out-of-fold predictions of the training part "
                                         "(no costs given)")
    threshold = thresholds[thresholds["rule"]]

    if calibration.method is None:
        estimator = clone(final_pipe).fit(X, y)
    else:  # the calibration map is fitted on the out-of-fold probabilities already computed
        estimator = CalibratedClassifier(final_pipe, calibration.method).fit(X, y, oof_proba=final.oof)
    model = ChurnModel(estimator, threshold=threshold, schema=feature_schema(X), id_col=id_col,
                       info={"calibration": calibration.method, "threshold_rule": thresholds["rule"]},
                       oof_proba=p_oof)
    p_test = model.churn_probability(X_te)
    holdout = ev.evaluate_predictions(y_te, p_test, p_test >= threshold, g_te, n_bootstrap=n_bootstrap, seed=seed)
    permutation = ev.permutation_test(final_pipe, X, y, g, n_splits=n_splits, n_permutations=n_permutations,
                                      seed=seed, n_jobs=n_jobs, alpha=alpha)
    baseline = _baseline_check(candidates, final, X, y, X_te, y_te, g_te, p_test, metric=sel,
                               n_bootstrap=n_bootstrap, seed=seed)
    whatif, whatif_skipped = _train_whatif(
        table if whatif_table is None else whatif_table, table, id_col, label_col, parts, holdout,
        left_out={**{c: "excluded" for c in (split_col, *exclude) if c},
                  **{c: "a leakage suspect" for c in suspects}, **(parts.not_features or {})},
        n_splits=n_splits, n_bootstrap=n_bootstrap, seed=seed)
    agreement = check_agreement(final.cv, holdout, y, final.oof, splits, y_te, g, split_given=split_col is not None,
                                n_bootstrap=n_bootstrap, seed=seed)
    info = {
        "data": {"rows": int(len(y_all)), "rows_train": int(len(y)), "rows_test": int(len(y_te)),
                 "users": int(len(set(g_all))), "churn_rate_train": float(y.mean()),
                 "churn_rate_test": float(y_te.mean()), "id_col": id_col, "label_col": label_col,
                 "split": split_text, "users_in_both_parts": len(shared),
                 "features": int(X.shape[1]), "excluded_columns": [c for c in (split_col, *exclude) if c],
                 "leakage_suspects_dropped": suspects,
                 "leakage": parts.leakage.to_dict() if parts.leakage is not None else None,
                 "not_features": parts.not_features or {}},
        "settings": {"models": list(models), "strategies": list(strategies), "n_splits": n_splits,
                     "n_repeats": n_repeats, "group_aware": bool(len(set(g)) < len(g)),
                     "search_budget": search_budget, "search_method": search_method,
                     "n_permutations": n_permutations, "n_bootstrap": n_bootstrap,
                     "holdout_fraction": holdout_fraction if split_col is None else None,
                     "cost_fn": cost_fn, "cost_fp": cost_fp, "selection_metric": sel,
                     "selection_rule": "one_standard_error", "search_confirmation": "a third of the training part",
                     "alpha": alpha,
                     "drop_suspects": drop_suspects,
                     "seed": seed},
    }
    return TrainingResult(candidates=candidates, chosen=final, reason=reason, search=search,
                          calibration=calibration, threshold=threshold, thresholds=thresholds,
                          bands=model.bands, model=model, holdout=holdout,
                          holdout_proba=p_test, y_test=y_te, oof=p_oof, y_train=y, permutation=permutation,
                          feature_schema=model.schema, info=info, selection=selection, agreement=agreement,
                          baseline=baseline,
                          train_rows=pd.concat([parts.keys, X], axis=1) if parts.keys is not None else None,
                          whatif=whatif, whatif_skipped=whatif_skipped,
                          row_keys=(pd.concat([parts.keys, table.loc[parts.test, list(parts.keys.columns)]],
                                              ignore_index=True) if parts.keys is not None else None))


def _train_whatif(source: pd.DataFrame, table: pd.DataFrame, id_col: str, label_col: str,
                  parts: TrainTestParts, holdout: pd.DataFrame, *, left_out: dict[str, str], n_splits: int,
                  n_bootstrap: int, seed: int) -> tuple[WhatIfResult | None, str | None]:
    """The what-if model on the main model's split, or None and why not (``source``: rows of ``table``)."""
    why = skip_reason(source, left_out=left_out, like=table, id_col=id_col)
    if why is not None:
        return None, why
    rows = pd.concat([table[[id_col, label_col]].reset_index(drop=True),
                      source[list(WHATIF_SIGNALS)].reset_index(drop=True)], axis=1)
    try:
        return fit_whatif(rows, id_col, label_col, test=parts.test, main_holdout=holdout, n_splits=n_splits,
                          n_bootstrap=n_bootstrap, seed=seed), None
    except ValueError as exc:  # e.g. a fold with one class: the main model stands, the page says why
        return None, f"the what-if model could not be fitted ({exc})"


def _selection_reason(selection: Selection, leader: Candidate, best: Candidate, dummy: Candidate | None,
                      n_usable: int, metric: str) -> str:
    """Why ``best`` was chosen (``metrics.json``: ``chosen.reason``; printed by ``churnlib train``)."""
    noise = selection.within_noise
    lead = Interval.from_row(leader.cv.loc[metric]).text()
    if n_usable == 1:
        reason = f"the only candidate: cross-validated PR-AUC {lead}"
    elif selection.rule == "leader":
        reason = f"highest cross-validated PR-AUC among {n_usable} candidates: {lead}"
        reason += ("; clearly ahead of every other candidate on the same folds" if not noise else
                   f"; {len(noise)} other candidate(s) within noise of it on the same folds, none of them simpler "
                   "and within one standard error")
    else:
        reason = (f"the leader {leader.name} ({lead}) is not clearly better than {len(noise)} of the other "
                  f"{n_usable - 1} candidates on the same folds; by the one-standard-error rule the simplest "
                  f"candidate within one standard error of it, {best.name}: {Interval.from_row(best.cv.loc[metric]).text()}")
    if dummy is not None:
        base = dummy.cv.loc[metric, "value"]
        reason += f"; no-skill baseline (churn rate) {base:.3f}"
        if best.cv.loc[metric, "low"] <= base:
            reason += " -- not clearly better than the baseline: its interval includes it"
    return reason


def _baseline_check(candidates: Sequence[Candidate], final: Candidate, X: pd.DataFrame, y: np.ndarray,
                    X_te: pd.DataFrame, y_te: np.ndarray, g_te: np.ndarray, p_test: np.ndarray, *,
                    metric: str, n_bootstrap: int, seed: int) -> BaselineCheck:
    """The final model against default gradient boosting on the holdout (reused when it was a candidate)."""
    ranking = ["roc_auc", "pr_auc", "brier"]
    cand = next((c for c in candidates if (c.model, c.strategy) == BASELINE and not c.params
                 and c.holdout_proba is not None), None)
    if cand is not None:
        p_base, base_holdout = cand.holdout_proba, cand.holdout.loc[ranking]
    else:
        pipe = make_pipeline(*BASELINE, pos_weight=negatives_per_positive(y), seed=seed)
        p_base = clone(pipe).fit(X, y).predict_proba(X_te)[:, 1]
        base_holdout = ev.evaluate_predictions(y_te, p_base, p_base >= 0.5, g_te, n_bootstrap=n_bootstrap,
                                               seed=seed).loc[ranking]
    same = (final.model, final.strategy) == BASELINE and not final.params
    return compare_with_baseline(y_te, p_test, p_base, g_te, baseline_holdout=base_holdout, metric=metric,
                                 same_model=same, n_bootstrap=n_bootstrap, seed=seed)


def _check_numbers(agreement: Agreement | None, baseline: BaselineCheck | None) -> dict[str, str]:
    """Short key-number lines of the selection checks."""
    out = {}
    if agreement is not None:
        out["CV vs holdout"] = ("agree" if agreement.agree else
                                f"holdout {agreement.direction} CV" if agreement.direction else
                                "a CV fold stands apart")
    if baseline is not None:
        out["vs default gradient boosting"] = baseline.verdict
    return out


def train_command(table: str | os.PathLike, id_col: str, label_col: str, split_col: str | None = None,
                  out: str | os.PathLike | None = None, *, strict: bool = False, tracking: bool | None = None,
                  **budget: Any) -> TrainingResult:
    """``python -m churnlib train``: the model comparison of ``05_models`` on a table, saved to ``out``.

    The output folder is checked before any work (:func:`churnlib.outputs.check_output`: not the
    table, not a file, not under a file). The table's data-quality account
    (:class:`churnlib.load.DataQuality`) goes into ``metrics.json`` (``data.quality``: why rows
    went) and beside it as ``quality.json``.

    Parameters
    ----------
    table : path-like
        A ``churnlib features`` parquet file or a snapshot table (CSV/parquet).
    id_col, label_col : str
        Id and label columns (``userId``/``churned`` for feature tables).
    split_col : str, optional
        Column marking rows train/test.
    out : path-like, optional
        Folder for ``churn_model.joblib``, its manifest and ``metrics.json`` (default: ``models/``
        under the output root).
    strict : bool, default False
        Refuse the table at its first defect instead of repairing or dropping rows.
    tracking : bool, optional
        Record one MLflow run after saving (:func:`churnlib.tracking.log_training`: parameters,
        metrics, the model registered with alias ``champion``). None follows ``CHURNLIB_TRACKING`` (on
        by default); False records nothing. The model is saved first, so a tracking failure never
        loses it.
    **budget
        Any keyword of :func:`run_training` (``models``, ``strategies``, ``n_splits``,
        ``n_repeats``, ``search_budget``, ``n_permutations``, ``n_bootstrap``, ``cost_fn``,
        ``cost_fp``, ``seed``, ``n_jobs`` ...).

    Returns
    -------
    TrainingResult
        ``info["quality"]`` holds the :class:`~churnlib.load.DataQuality`, ``info["written"]`` the
        paths written, ``info["tracking"]`` the :class:`~churnlib.tracking.TrackedRun` (None when
        tracking is off) and ``info["tracking_text"]`` one line saying where the run went.
    """
    out = Path(out) if out is not None else paths.models_dir()
    check_output(out, inputs=[table], folder=True, names=(ARTIFACT_NAME, "metrics.json", QUALITY_NAME,
                                                          PREDICTIONS_NAME, WHATIF_NAME, WHATIF_MANIFEST))
    mlflow_tracking = None
    if paths.tracking_enabled(tracking):  # MLflow is imported only when tracking is on
        from churnlib import tracking as mlflow_tracking

        mlflow_tracking.check_store()  # a wrong MLFLOW_TRACKING_URI stops here, before any training
    frame = load_training_table(table, id_col, label_col, strict=strict)
    quality = frame.attrs.pop("quality", None)
    result = run_training(frame, id_col, label_col, split_col, **budget)
    if quality is not None:
        result.info["data"]["quality"] = quality.to_dict()
    written = result.save(out, source=table)
    if quality is not None:
        written["quality"] = write_json(quality_path(out, folder=True), quality.to_dict())
        result.info["quality"] = quality
    result.info["written"] = {k: str(v) for k, v in written.items()}
    result.info["tracking"], result.info["tracking_text"] = None, "not recorded in MLflow (tracking off)"
    if mlflow_tracking is not None:
        try:  # after saving: a store that fails now costs the record, never the model
            tracked = mlflow_tracking.log_training(result, written, data=table, params={
                "id_col": id_col, "label_col": label_col, "split_col": split_col, "strict": strict, **budget})
        except mlflow_tracking.TrackingError as exc:
            result.info["tracking_text"] = f"warning: not recorded in MLflow (the model is saved): {exc}"
        else:
            result.info["tracking"] = tracked
            result.info["tracking_text"] = (
                f"recorded in MLflow run {tracked.run_id} ({tracked.tracking_uri})"
                + (f"; registered as {tracked.model_uri} (alias champion)" if tracked.model_version else ""))
    return result


def training_table(data: str | os.PathLike | None = None, data_kind: str | None = None,
                   id_col: str = "user_id", label_col: str = "is_churned", *, n_users: int = 300,
                   days: int = 60, seed: int = 7, as_of: Sequence[str] | None = None,
                   horizon_days: float = 14, inactivity_days: float | None = None,
                   output_dir: str | os.PathLike | None = None,
                   feature_set: bool = True) -> tuple[pd.DataFrame, str, str, str, Path]:
    """The table the modelling notebooks work on, with its id and label columns.

    With ``feature_set`` (the default), the features that ``03_feature_validation`` left out of this
    very table (``processed_data_dir(output_dir)/feature_set.json``, matched by the table's
    fingerprint) are dropped; see :func:`apply_feature_set`.

    * ``data`` None or an event log (None: the simulated default log): the features stage's product
      (:func:`churnlib.pipeline.feature_table`): the table ``02_features`` wrote when its key (the
      log's fingerprint, ``as_of``, ``horizon_days``, ``inactivity_days``) matches, else rebuilt
      with these settings (and re-stamped).
    * a snapshot table (or a ``churnlib features`` parquet): read as it is.

    Returns
    -------
    (table, id_col, label_col, description, source)
        Feature tables use ``userId``/``churned``; ``source`` is the file read (for its fingerprint).
    """
    table, id_col, label_col, text, source = _training_table(
        data, data_kind, id_col, label_col, n_users=n_users, days=days, seed=seed, as_of=as_of,
        horizon_days=horizon_days, inactivity_days=inactivity_days, output_dir=output_dir)
    if feature_set:
        table, note = apply_feature_set(table, source, label_col, output_dir)
        text += note
    return table, id_col, label_col, text, source


def apply_feature_set(table: pd.DataFrame, source: str | os.PathLike, label_col: str,
                      output_dir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, str]:
    """Drop the features ``03_feature_validation`` left out, when it validated this very table.

    The chosen set is read from ``processed_data_dir(output_dir)/feature_set.json``; it applies only
    when its fingerprint is that of ``source`` and its label column is ``label_col`` (a set chosen on
    another table is ignored, and the note says so).

    Returns
    -------
    (table, note)
        The table without the dropped features, and a sentence for the notebook ("" when no set exists).
    """
    path = paths.processed_data_dir(output_dir) / "feature_set.json"
    if not path.exists():
        return table, ""
    chosen = json.loads(path.read_text())
    if chosen.get("label_col") != label_col or chosen.get("fingerprint") != fingerprint_of(source):
        return table, (f"; the feature set in `{path.name}` was chosen on another table "
                       f"(`{chosen.get('source')}`), so every feature is kept")
    dropped = [c for c in chosen.get("dropped", {}) if c in table.columns and c != label_col]
    kept = [c for c in chosen.get("features", []) if c in table.columns]
    if not kept:
        return table, f"; `{path.name}` keeps none of this table's features, so every feature is kept"
    return (table.drop(columns=dropped),
            f"; the feature set chosen by 03_feature_validation ({len(kept)} features, "
            f"{len(dropped)} left out)")


def _training_table(data, data_kind, id_col, label_col, *, n_users, days, seed, as_of, horizon_days,
                    inactivity_days, output_dir) -> tuple[pd.DataFrame, str, str, str, Path]:
    if data is None:
        path, kind = default_event_log(n_users, days, seed, output_dir=output_dir), "events"
    else:
        path = Path(data)
        kind = data_kind or detect_kind(path)
    if kind != "events":
        return (load_training_table(path, id_col, label_col), id_col, label_col,
                f"the table `{path}` (id `{id_col}`, label `{label_col}`)", path)
    product = feature_table(path, as_of=as_of, horizon_days=horizon_days, inactivity_days=inactivity_days,
                            output_dir=output_dir)
    return (product.table, "userId", "churned", f"{product.description}, from the event log `{path.name}`",
            product.path)


def saved_model(source: str | os.PathLike, model_path: str | os.PathLike | None = None,
                output_dir: str | os.PathLike | None = None) -> tuple[ChurnModel | None, str]:
    """The model ``05_models`` saved, when it was trained on ``source`` as it is now.

    Parameters
    ----------
    source : path-like
        The table (or feature file) the caller works on.
    model_path : path-like, optional
        An artifact chosen by the user: loaded and verified, used whatever it was trained on.
    output_dir : path-like, optional
        Output root whose ``models/`` holds the saved model.

    Returns
    -------
    (model, note)
        The verified model and where it comes from; or None and why it cannot be used (absent,
        unverifiable, or trained on other data: a stale product is never used silently).
    """
    if model_path is not None:
        return ChurnModel.load(model_path), f"the model at `{model_path}`"
    path = paths.models_dir(output_dir) / ARTIFACT_NAME
    if not path.exists():
        return None, f"no saved model at `{path}`"
    try:
        model = ChurnModel.load(path)
    except ValueError as exc:
        return None, f"the saved model cannot be used ({exc})"
    trained_on = model.info.get("data_fingerprint")
    here = fingerprint_of(source)
    if trained_on != here:
        return None, (f"the saved model at `{path}` was trained on another table (fingerprint "
                      f"{str(trained_on)[:12]}, this one {here[:12]})")
    return model, f"the final model saved by 05_models (`{path}`)"
