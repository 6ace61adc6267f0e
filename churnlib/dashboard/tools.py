"""What the dashboard's tool pages compute (score a file, what-if, model), without Streamlit.

Pages 4 to 6 of the retention dashboard (``churnlib/dashboard/screens/4_score_file.py``,
``5_what_if.py``, ``6_model.py``) only render what these functions return, so every figure they show
is tested here.

* **Score a file** (:func:`score_upload`): an uploaded event log or feature/snapshot table goes
  through :func:`churnlib.scoring.score_command`, the function behind ``python -m churnlib score``:
  the same checks, the same data-quality account (:meth:`churnlib.load.DataQuality.text`) and, for
  bad input, the same one-line error (file, line, column) the command prints after ``error:``. The
  upload lives in a temporary folder only while it is scored; the texts name the upload, not the
  temporary path.
* **What-if** (:func:`whatif_status`, :func:`user_signals`, :func:`slider_ranges`,
  :func:`whatif_figures`; the probability itself is :func:`churnlib.whatif.whatif_probability`): the
  six-signal monotone model of :mod:`churnlib.whatif`, its holdout figures beside the main model's.
* **Model** (:func:`metrics_table`, :func:`reliability`, :func:`cost_choice`): metrics with their
  intervals, the reliability curve of the holdout predictions, and the threshold that minimises the
  cost of missed churners and wasted offers, chosen on the out-of-fold predictions of the training
  part only (:func:`churnlib.thresholds.cost_threshold`) and judged on the holdout.
"""
from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from churnlib.errors import error_message
from churnlib.intervals import Interval, bootstrap_sampler
from churnlib.load import DataQuality, detect_kind
from churnlib.model import ARTIFACT_NAME
from churnlib.model_report import whatif_sentence
from churnlib.scoring import score_command
from churnlib.thresholds import cost_threshold, reliability_table
from churnlib.whatif import MANIFEST_NAME, WHATIF_NAME

__all__ = ["CostChoice", "METRIC_NAMES", "PREDICTIONS_FILE", "ScoredFile", "UPLOAD_TYPES",
           "WHATIF_FILE", "cost_choice", "error_line", "load_predictions", "metrics_table",
           "reliability", "score_upload", "scores_csv", "slider_ranges", "user_signals", "whatif_directions",
           "whatif_figures", "whatif_statement", "whatif_status"]

#: File types the upload accepts (the extension before an optional ``.gz``): what
#: :func:`churnlib.load.load_events` and :func:`churnlib.load.load_table` read.
UPLOAD_TYPES: tuple[str, ...] = ("parquet", "pq", "json", "jsonl", "ndjson", "csv", "gz")
#: The models stage's predictions (``userId, as_of, part, y, p``; ``part`` is ``oof`` or ``holdout``).
PREDICTIONS_FILE = "predictions.parquet"
#: The what-if model's artifact in ``models/`` (:mod:`churnlib.whatif`).
WHATIF_FILE = WHATIF_NAME
#: Metrics shown on the model page, in plain words.
METRIC_NAMES: dict[str, str] = {
    "roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "brier": "Brier score", "f1": "F1", "precision": "precision",
    "recall": "recall", "lift_top_decile": "lift in the top decile"}


# --------------------------------------------------------------------------------------------
# Score a file
# --------------------------------------------------------------------------------------------

@dataclass
class ScoredFile:
    """An uploaded file scored as ``python -m churnlib score`` scores it (:func:`score_upload`).

    Attributes
    ----------
    name : str
        The upload's file name (what the texts call it).
    kind : str
        ``"events"`` (scored with ``--events``) or ``"table"`` (``--table``).
    scores : pandas.DataFrame or None
        What the command writes to ``risk.csv``; None when scoring failed.
    account : str
        The data-quality account as the command prints it (:meth:`churnlib.load.DataQuality.text`);
        empty when scoring failed.
    summary : str
        ``"245 users scored with their top three reasons by model <version>"``.
    error : str or None
        The command's one-line error (what follows ``error:``), when the input was refused.
    quality : churnlib.load.DataQuality or None
        The account itself, naming the upload.
    """

    name: str
    kind: str
    scores: pd.DataFrame | None = None
    account: str = ""
    summary: str = ""
    error: str | None = None
    quality: DataQuality | None = None

    @property
    def ok(self) -> bool:
        """Scoring succeeded."""
        return self.error is None


def _safe_name(name: str) -> str:
    base = Path(str(name).replace("\\", "/")).name.strip()
    return base if base not in ("", ".", "..") else "upload"


def _renamed(text: str, tmp: Path, name: str) -> str:
    """``text`` with the temporary copy's path replaced by the upload's name."""
    text = text.replace(str(tmp / name), name)
    return text.replace(str(tmp), ".")


def error_line(exc: BaseException, files: Sequence[str] = ()) -> str:
    """The one-line message ``python -m churnlib score`` prints after ``error:`` (:func:`churnlib.errors.error_message`).

    Same words as the command line: bad input (:class:`churnlib.load.DataValidationError` and other
    ``ValueError``, a truncated compressed file, text that is not UTF-8, an unreadable file) is
    described as it is; anything else is an internal error that asks to be reported.

    Parameters
    ----------
    exc : BaseException
        What the command raised.
    files : sequence of str
        The files the command was given, named when the message does not name one.

    Returns
    -------
    str
        One line (never a traceback).
    """
    return error_message(exc, files, "score", internal_hint="please report it with the file you uploaded")[1]


def score_upload(model_dir: str | os.PathLike, name: str, data: bytes, *, kind: str | None = None,
                 as_of: str | None = None, strict: bool = False, reasons: bool = True,
                 n_jobs: int = 1) -> ScoredFile:
    """Score an uploaded file with the saved model, as ``python -m churnlib score`` would.

    The bytes are written under their own name to a temporary folder, scored by
    :func:`churnlib.scoring.score_command` (``--events`` or ``--table``) and removed; every text
    (account, error) names the upload rather than the temporary copy.

    Parameters
    ----------
    model_dir : path-like
        The artifact's folder (``models/``: its ``churn_model.joblib``), or the artifact itself.
    name : str
        The upload's file name; its extension says how it is read (``.parquet``, ``.json``/``.jsonl``/
        ``.ndjson``, ``.csv``, each optionally ``.gz``).
    data : bytes
        The file's content.
    kind : {"events", "table"}, optional
        How to read it; default: :func:`churnlib.load.detect_kind` (NDJSON and parquet with a
        ``page`` column are event logs, CSV and other parquet are feature/snapshot tables).
    as_of : str, optional
        Event logs only: the observation date (``--as-of``); default: midnight after the last event.
    strict : bool, default False
        ``--strict``: refuse the input at its first defect.
    reasons : bool, default True
        Each user's top three reasons (slower).
    n_jobs : int, default 1
        Threads for the model.

    Returns
    -------
    ScoredFile
        With ``error`` set (and no scores) when the command would have refused the input.
    """
    name = _safe_name(name)
    model_path = Path(model_dir)
    if model_path.is_dir() and (model_path / ARTIFACT_NAME).is_file():  # the main model, not whatif.joblib
        model_path = model_path / ARTIFACT_NAME
    as_of = as_of.strip() if isinstance(as_of, str) and as_of.strip() else None
    with tempfile.TemporaryDirectory(prefix="churnlib-upload-") as tmp_dir:
        tmp = Path(tmp_dir)
        path = tmp / name
        path.write_bytes(data)
        out = tmp / "out" / "risk.csv"
        out.parent.mkdir()
        chosen = kind or ""
        try:
            if not chosen:
                chosen = "events" if detect_kind(path) == "events" else "table"
            if chosen not in ("events", "table"):
                raise ValueError(f"kind must be 'events' or 'table', not {kind!r}")
            scored = score_command(model_path, events=path if chosen == "events" else None,
                                   table=path if chosen == "table" else None, out=out, reasons=reasons,
                                   strict=strict, as_of=as_of if chosen == "events" else None, n_jobs=n_jobs)
        except Exception as exc:  # noqa: BLE001 - shown as the command's one line, never a traceback
            return ScoredFile(name, chosen or "unknown", error=_renamed(error_line(exc, [str(path)]), tmp, name))
        quality = copy.deepcopy(scored.attrs.get("quality"))
        if quality is not None:
            quality.source = name
            quality.notes = [_renamed(n, tmp, name) for n in quality.notes]
            quality.locations = {k: _renamed(v, tmp, name) for k, v in quality.locations.items()}
        account = _renamed(quality.text(), tmp, name) if quality is not None else ""
    summary = (f"{len(scored):,} users scored" + (" with their top three reasons" if reasons else "")
               + f" by model {scored.attrs.get('model_version', '?')}")
    scores = scored.copy()
    scores.attrs = {}
    return ScoredFile(name, chosen, scores=scores, account=account, summary=summary, quality=quality)


def scores_csv(scores: pd.DataFrame) -> bytes:
    """The scores as the command writes ``risk.csv`` (no index, six decimals), UTF-8."""
    return scores.to_csv(index=False, float_format="%.6f").encode("utf-8")


# --------------------------------------------------------------------------------------------
# What-if
# --------------------------------------------------------------------------------------------

def whatif_status(model_dir: str | os.PathLike, metrics: Mapping[str, Any]) -> str | None:
    """Why there is no what-if model to use, in plain words; None when there is one.

    Parameters
    ----------
    model_dir : path-like
        ``models/``.
    metrics : mapping
        ``models/metrics.json``; its ``"whatif"`` entry says why training skipped the model
        (``{"skipped": reason}``), e.g. for a snapshot table without the six event signals.
    """
    entry = metrics.get("whatif") if isinstance(metrics, Mapping) else None
    if isinstance(entry, Mapping) and entry.get("skipped"):
        return whatif_sentence(dict(entry)) + " The main model's scores are on the other pages."
    if not (Path(model_dir) / WHATIF_FILE).is_file():
        return (f"No what-if model in {Path(model_dir)} ({WHATIF_FILE} is absent): run `make report` on an "
                "event log to train it beside the main model.")
    return None


def user_signals(features: pd.DataFrame, id_col: str, user: Any, signals: Sequence[str]) -> dict[str, float]:
    """The user's values of the what-if signals on their latest feature row (latest ``as_of``).

    Raises
    ------
    KeyError
        The user has no feature row.
    """
    rows = features[features[id_col].astype(str) == str(user)]
    if rows.empty:
        raise KeyError(f"user {user!r} has no feature row")
    if "as_of" in rows.columns:
        rows = rows.sort_values("as_of", kind="stable")
    last = rows.iloc[-1]
    return {s: float(last[s]) if pd.notna(last[s]) else float("nan") for s in signals}


def _is_count(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(len(finite)) and bool(np.all(finite == np.round(finite)))


def slider_ranges(features: pd.DataFrame, signals: Sequence[str], start: Mapping[str, float] | None = None,
                  coverage: float = 0.99) -> dict[str, tuple[float, float, float]]:
    """``(low, high, step)`` per signal for the sliders: the central ``coverage`` of the feature
    table's values, widened to include the user's ``start`` value; whole steps for counts.

    Parameters
    ----------
    features : pandas.DataFrame
        The feature table (all users and observation dates).
    signals : sequence of str
        The what-if signals.
    start : mapping, optional
        The user's values (always inside the range).
    coverage : float, default 0.99
        Share of the values the range covers (the rest are outliers).
    """
    out: dict[str, tuple[float, float, float]] = {}
    tail = (1 - coverage) / 2
    for s in signals:
        v = pd.to_numeric(features[s], errors="coerce").to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        low, high = (float(np.quantile(v, tail)), float(np.quantile(v, 1 - tail))) if len(v) else (0.0, 1.0)
        x = (start or {}).get(s)
        if x is not None and math.isfinite(x):
            low, high = min(low, x), max(high, x)
        count = _is_count(v)
        if count:
            low, high = math.floor(low), math.ceil(high)
        if high <= low:
            high = low + 1.0
        step = 1.0 if count else float(10 ** math.floor(math.log10((high - low) / 100)))
        if not count:
            low, high = math.floor(low / step) * step, math.ceil(high / step) * step
        out[s] = (float(low), float(high), step)
    return out


def whatif_directions(model: Any) -> dict[str, str]:
    """Signal -> ``"raises risk"`` / ``"lowers risk"`` as it rises (the model's monotone constraints)."""
    dirs = getattr(model, "directions_", {})
    if not isinstance(dirs, Mapping):
        dirs = dict(zip(getattr(model, "signals_", ()), dirs))
    return {s: ("raises risk" if d > 0 else "lowers risk" if d < 0 else "either way") for s, d in dirs.items()}


def _whatif_entry(metrics: Mapping[str, Any], model_dir: str | os.PathLike | None) -> Mapping[str, Any]:
    entry = metrics.get("whatif") if isinstance(metrics, Mapping) else None
    if isinstance(entry, Mapping) and entry.get("holdout"):
        return entry
    if model_dir is not None:
        side = Path(model_dir) / MANIFEST_NAME
        if side.is_file():
            try:
                return json.loads(side.read_text())
            except (OSError, ValueError):
                return {}
    return entry if isinstance(entry, Mapping) else {}


def whatif_statement(metrics: Mapping[str, Any], model_dir: str | os.PathLike | None = None) -> str | None:
    """Plain words on the what-if model, what it is for and its holdout ROC-AUC against the main model's
    (:func:`churnlib.model_report.whatif_sentence`); None when there is none."""
    entry = _whatif_entry(metrics, model_dir)
    return whatif_sentence(dict(entry)) if entry.get("holdout") else None


def whatif_figures(metrics: Mapping[str, Any], model_dir: str | os.PathLike | None = None,
                   names: Sequence[str] = ("roc_auc", "pr_auc", "brier")) -> pd.DataFrame:
    """The what-if model's holdout figures beside the main model's (same holdout rows).

    Parameters
    ----------
    metrics : mapping
        ``models/metrics.json`` (the main model's under ``chosen.holdout``; the what-if model's under
        ``whatif.holdout``, else in ``models/whatif.json``).
    model_dir : path-like, optional
        Where ``whatif.json`` is.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric``, ``main model``, ``what-if model`` (interval texts); one row per metric
        either model reports.
    """
    main = (metrics.get("chosen") or {}).get("holdout") or {}
    what = _whatif_entry(metrics, model_dir).get("holdout") or {}
    rows = []
    for m in names:
        if m not in main and m not in what:
            continue
        rows.append({"metric": METRIC_NAMES.get(m, m),
                     "main model": Interval.from_value(main[m]).text() if m in main else "n/a",
                     "what-if model": Interval.from_value(what[m]).text() if m in what else "n/a"})
    return pd.DataFrame(rows, columns=["metric", "main model", "what-if model"])


# --------------------------------------------------------------------------------------------
# Model: metrics, calibration, cost threshold
# --------------------------------------------------------------------------------------------

def metrics_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """The chosen model's metrics with their 95% intervals, cross-validated and on the holdout.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric``, ``cross-validated (training part)``, ``holdout`` (interval texts,
        :meth:`churnlib.intervals.Interval.text`), in :data:`METRIC_NAMES` order.
    """
    chosen = metrics.get("chosen") or {}
    cv, hold = chosen.get("cv") or {}, chosen.get("holdout") or {}
    rows = []
    for m in [*METRIC_NAMES, *sorted((set(cv) | set(hold)) - set(METRIC_NAMES))]:
        if m not in cv and m not in hold:
            continue
        digits = 2 if m == "lift_top_decile" else 3
        rows.append({"metric": METRIC_NAMES.get(m, m),
                     "cross-validated (training part)": Interval.from_value(cv[m]).text(digits) if m in cv else "n/a",
                     "holdout": Interval.from_value(hold[m]).text(digits) if m in hold else "n/a"})
    return pd.DataFrame(rows, columns=["metric", "cross-validated (training part)", "holdout"])


def load_predictions(model_dir: str | os.PathLike) -> pd.DataFrame | None:
    """``models/predictions.parquet`` (``userId, as_of, part, y, p``), None when absent."""
    path = Path(model_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    return pd.read_parquet(path)


def reliability(predictions: pd.DataFrame, part: str = "holdout", n_bins: int = 10) -> pd.DataFrame:
    """Reliability curve of one part of the predictions (:func:`churnlib.thresholds.reliability_table`).

    Returns
    -------
    pandas.DataFrame
        Columns ``predicted`` (mean probability per quantile bin) and ``observed`` (churn rate).
    """
    rows = predictions[predictions["part"] == part]
    if rows.empty or rows["y"].nunique() < 2:
        return pd.DataFrame({"predicted": [], "observed": []})
    return reliability_table(rows["y"].to_numpy(), rows["p"].to_numpy(), n_bins=n_bins)


@dataclass(frozen=True)
class CostChoice:
    """The cost-minimising threshold and what it means (:func:`cost_choice`).

    Attributes
    ----------
    threshold : float
        Contact users with ``p >= threshold``; chosen on the out-of-fold predictions only.
    cost_fn, cost_fp : float
        Cost of a missed churner, of an offer to a user who would have stayed.
    cost_per_user : Interval
        Expected cost per scored user on the holdout at ``threshold``, 95% bootstrap interval over users.
    cost_nobody, cost_everyone : Interval
        The same when nobody / everybody is contacted (the baselines).
    cost_model_threshold : Interval or None
        The same at the model's own threshold.
    holdout_flagged : float
        Share of holdout rows at or above the threshold.
    holdout_recall : float
        Share of the holdout's churners at or above the threshold.
    contacted : int
        Currently scored users (``risk_scores``) at or above the threshold.
    scored : int
        Currently scored users.
    n_oof, n_holdout : int
        Rows of each part used.
    model_threshold : float or None
        The model's own threshold (costed in ``cost_model_threshold``).
    """

    threshold: float
    cost_fn: float
    cost_fp: float
    cost_per_user: Interval
    cost_nobody: Interval
    cost_everyone: Interval
    cost_model_threshold: Interval | None
    holdout_flagged: float
    holdout_recall: float
    contacted: int
    scored: int
    n_oof: int
    n_holdout: int
    model_threshold: float | None = None

    def table(self) -> pd.DataFrame:
        """The expected cost per user on the holdout of each way to decide, with 95% intervals.

        Returns
        -------
        pandas.DataFrame
            Columns ``contact``, ``threshold``, ``cost per user (holdout)``; rows: this threshold, the
            model's own (when known), nobody, everybody.
        """
        rows = [("users at or above the cost-minimising threshold", f"{self.threshold:.3f}", self.cost_per_user)]
        if self.cost_model_threshold is not None:
            rows.append(("users at or above the model's threshold", f"{self.model_threshold:.3f}",
                         self.cost_model_threshold))
        rows += [("nobody", "", self.cost_nobody), ("everybody", "", self.cost_everyone)]
        return pd.DataFrame([(a, b, c.text(2)) for a, b, c in rows],
                            columns=["contact", "threshold", "cost per user (holdout)"])

    def text(self) -> str:
        """One plain sentence: the threshold, its holdout cost and how many users it contacts."""
        return (f"Contact users whose churn probability is at least {self.threshold:.3f} (chosen on out-of-fold "
                f"predictions of the training part): on the holdout that costs {self.cost_per_user.text(2)} per "
                f"user, against {self.cost_nobody.text(2)} contacting nobody and {self.cost_everyone.text(2)} "
                f"contacting everyone; {self.contacted:,} of the {self.scored:,} users scored now would be "
                "contacted.")


def _costs(y: np.ndarray, p: np.ndarray, t: float, cost_fn: float, cost_fp: float) -> np.ndarray:
    flag = p >= t
    return cost_fn * (y == 1) * ~flag + cost_fp * (y == 0) * flag


def cost_choice(predictions: pd.DataFrame, cost_fn: float, cost_fp: float,
                scored_p: np.ndarray | pd.Series | None = None, *, model_threshold: float | None = None,
                n_bootstrap: int = 200, seed: int = 0, id_col: str = "userId") -> CostChoice:
    """The threshold that minimises ``cost_fn * missed churners + cost_fp * wasted offers``.

    Chosen by :func:`churnlib.thresholds.cost_threshold` on the ``oof`` rows (out-of-fold predictions
    of the training part) only; the ``holdout`` rows never take part in choosing it, they only judge it:
    the expected cost per user there, with a 95% bootstrap interval over users
    (:func:`churnlib.intervals.bootstrap_sampler`), against contacting nobody or everybody.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``models/predictions.parquet``: ``part`` (``"oof"`` / ``"holdout"``), ``y`` (0/1), ``p``, and
        the id column (whole users are resampled).
    cost_fn : float
        Cost of a missed churner (> 0).
    cost_fp : float
        Cost of an offer sent to a user who would have stayed (> 0).
    scored_p : array, optional
        Churn probabilities of the users scored now (``risk_scores.churn_probability``): how many
        would be contacted.
    model_threshold : float, optional
        The model's own threshold, costed the same way for comparison.
    n_bootstrap : int, default 200
    seed : int, default 0

    Returns
    -------
    CostChoice

    Raises
    ------
    ValueError
        Costs not positive, or a part without both classes.
    """
    if not (cost_fn > 0 and cost_fp > 0):
        raise ValueError(f"costs must be positive (missed churner {cost_fn}, wasted offer {cost_fp})")
    oof = predictions[predictions["part"] == "oof"]
    hold = predictions[predictions["part"] == "holdout"]
    for label, part in (("out-of-fold", oof), ("holdout", hold)):
        if part["y"].nunique() < 2:
            raise ValueError(f"the {label} predictions need both churners and non-churners ({len(part):,} rows)")
    t = cost_threshold(oof["y"].to_numpy(), oof["p"].to_numpy(), cost_fn, cost_fp)

    y, p = hold["y"].to_numpy().astype(int), hold["p"].to_numpy(dtype=float)
    groups = hold[id_col].astype(str).to_numpy() if id_col in hold.columns else None
    draw = bootstrap_sampler(groups, len(y), np.random.default_rng(seed))
    samples = [draw() for _ in range(n_bootstrap)]

    def judged(costs: np.ndarray) -> Interval:
        return Interval.from_samples(float(costs.mean()), np.array([costs[i].mean() for i in samples]))

    at_model = None
    if model_threshold is not None and math.isfinite(model_threshold):
        at_model = judged(_costs(y, p, model_threshold, cost_fn, cost_fp))
    flagged = p >= t
    scored = np.asarray(scored_p if scored_p is not None else [], dtype=float)
    return CostChoice(
        threshold=float(t), cost_fn=float(cost_fn), cost_fp=float(cost_fp),
        cost_per_user=judged(_costs(y, p, t, cost_fn, cost_fp)),
        cost_nobody=judged(cost_fn * (y == 1).astype(float)),
        cost_everyone=judged(cost_fp * (y == 0).astype(float)),
        cost_model_threshold=at_model,
        holdout_flagged=float(flagged.mean()), holdout_recall=float(flagged[y == 1].mean()),
        contacted=int((scored >= t).sum()), scored=int(len(scored)), n_oof=len(oof), n_holdout=len(hold),
        model_threshold=None if at_model is None else float(model_threshold))
