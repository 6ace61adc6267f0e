"""The prediction service: a FastAPI app over one verified :class:`~churnlib.model.ChurnModel`.

``python -m churnlib serve --model models/`` runs :func:`serve`; tests and embedders use
:func:`create_app`. The app is a thin layer: the same loader rules and words
(:func:`churnlib.load.load_event_records`), the same feature code and checks
(:func:`churnlib.scoring.score_events`, :func:`churnlib.input_checks.check_input`) and the same
scorer as ``python -m churnlib score``, so the service, the command line and the notebooks give the
same probabilities for the same users and date.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

======================  ==================================================================================
``GET /health``         model loaded, its version, uptime, predictions served, store failures
``GET /model/info``     metrics with intervals, threshold, risk bands, feature schema, training-data
                        fingerprint, package versions (saved with and running)
``POST /predict``       one user: ``{"events": [...], "as_of": "2018-11-20"}`` (event models) or
                        ``{"rows": [{...}]}`` (one feature row) -> userId, churn_probability, churn_pred,
                        risk_band, reasons, input_warnings, as_of, model_version, inference_timestamp, notes
``POST /predict/batch`` many users: events of several users, or feature rows -> ``predictions: [...]``
======================  ==================================================================================

Which input a model takes: a model whose features are all event features
(:func:`churnlib.features.feature_columns`) takes raw ``events`` (features built as of ``as_of``,
default: midnight UTC after the last event, the rule of ``score --events``); any model takes
feature ``rows`` (the id column and the model's feature columns), the only input of a model trained
on a snapshot table.

Errors (never a traceback in a response):

* **422** ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``: ``loc`` names the field
  (``["body", "events", 3, "ts"]`` for the fourth event's ``ts``; ``["body", "as_of"]``;
  ``["body", "rows", 0, "age"]``) and ``msg`` is the loader's or the input check's own words
  (:class:`churnlib.load.DataValidationError`); body-shape errors found by FastAPI are answered in the
  same form, in plain words. Events of several users sent to ``/predict``: 422 pointing to
  ``/predict/batch``.
* **413**: the body is larger than :attr:`Limits.max_body_bytes` (by its ``Content-Length`` or, for a
  streamed body, as it arrives: the body is never read beyond the limit), or holds more events, users
  or rows than :class:`Limits` allows.
* **500** ``{"detail": "internal error ...", "request_id": ...}``: anything unexpected, logged with
  its traceback on the server (logger ``churnlib.service``) under the same request id.

Decisions:

* Events are loaded **strictly**: an event the command line would drop, or a value it would set to
  missing (a bad ``ts``, an unknown page, a negative length, ...), is refused with 422 naming the event
  and field, because a caller can fix and resend, and a dropped event changes that user's
  probability. Repairs that lose nothing (:data:`churnlib.load.LOSSLESS_REPAIRS`: a number sent as
  text such as ``"sessionId": "179"``, a missing ``itemInSession``) are made and said in ``notes``. What the loader
  drops in both modes without it being a defect (logged-out rows with an empty ``userId``) is
  dropped and said in ``notes``. ``create_app(..., strict_events=False)`` gives the command line's
  lenient rules instead (drops and repairs then appear in ``notes``). The feature rows built from the
  events are checked leniently, as ``score`` does: an unseen category (a new state) or a value far
  outside the training range is scored and flagged in ``input_warnings``, not refused.
* Unknown fields (in an event, a row, or the body) are ignored and named in ``notes``.
* The prediction store: every successful answer is appended once (one transaction per request),
  with the features the model saw. When the append fails, the answer is still given (the
  prediction is correct), with a note saying it was not recorded; the failure is logged with its
  traceback and counted in ``/health`` (``store_failures``): monitoring will miss those rows.
* Handlers are plain ``def`` functions: FastAPI runs them in its thread pool, so requests score in
  parallel. The model is set to one thread per request once, at start-up (no per-request change of
  shared state); the model, the feature code and the store are only read or are safe across threads
  (tested with concurrent requests).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from typing import Annotated, Any, Literal, Sequence

import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from churnlib import __version__ as churnlib_version
from churnlib import load, scoring
from churnlib.artifact import library_versions
from churnlib.features import feature_columns
from churnlib.input_checks import check_input
from churnlib.intervals import Interval
from churnlib.model import ChurnModel
from churnlib.schema import EVENT_COLUMNS
from churnlib.store import PredictionStore

__all__ = ["BatchRequest", "BatchResponse", "HealthResponse", "Limits", "ModelInfoResponse", "Prediction",
           "PredictRequest", "PredictResponse", "create_app", "serve"]

logger = logging.getLogger("churnlib.service")

_SERVER_PACKAGES = ("fastapi", "uvicorn", "pydantic", "starlette", "duckdb")
_EVENT_FIELDS = frozenset(EVENT_COLUMNS)


@dataclass(frozen=True)
class Limits:
    """Bounds on one request (beyond them: 413).

    Attributes
    ----------
    max_body_bytes : int, default 10_000_000
        Request body size (checked from ``Content-Length`` and while the body streams in).
    max_events : int, default 200_000
        Events in one request (``/predict`` and ``/predict/batch``).
    max_users : int, default 1_000
        Distinct users in one batch of events.
    max_rows : int, default 1_000
        Feature rows in one batch.
    """

    max_body_bytes: int = 10_000_000
    max_events: int = 200_000
    max_users: int = 1_000
    max_rows: int = 1_000


# --------------------------------------------------------------------------------------------
# Request and response models (what /docs shows)
# --------------------------------------------------------------------------------------------

_EXAMPLE_EVENT = {"ts": 1541106106796, "userId": "9", "sessionId": 1, "page": "NextSong", "auth": "Logged In",
                  "method": "PUT", "status": 200, "level": "paid", "itemInSession": 0,
                  "location": "Boston-Cambridge-Newton, MA-NH", "userAgent": "Mozilla/5.0 (Windows NT 6.1)",
                  "firstName": "Ann", "lastName": "Lee", "registration": 1540919166796, "gender": "F",
                  "artist": "Muse", "song": "Uprising", "length": 305.0}

#: ``as_of``: not validated by pydantic (its union errors are unreadable) but by
#: :func:`churnlib.scoring.parse_as_of`, whose words name the field.
AsOf = Annotated[Any, WithJsonSchema({
    "anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}],
    "title": "As Of",
    "description": "Observation date: '2018-11-20' (midnight UTC), an ISO-8601 datetime, or epoch milliseconds. "
                   "Events at or after it are ignored. Default: midnight (UTC) after the last event, as "
                   "`python -m churnlib score --events` does. Only with `events`.",
    "examples": ["2018-11-20"]})]

_EVENTS_DOC = ("Sparkify-schema events (" + ", ".join(EVENT_COLUMNS) + "); `ts` in epoch milliseconds or "
               "ISO-8601. Checked by the same loader as `python -m churnlib score --events`. Unknown fields "
               "are ignored (named in `notes`).")
_ROWS_DOC = ("Feature rows: the model's id column and feature columns (see `GET /model/info`, "
             "`feature_schema`). Checked as `python -m churnlib score --table` checks a table. Unknown "
             "columns are ignored (named in `notes`).")


class PredictRequest(BaseModel):
    """One user: that user's raw events (event models), or one feature row."""

    model_config = ConfigDict(extra="allow", json_schema_extra={
        "examples": [{"events": [_EXAMPLE_EVENT], "as_of": "2018-11-20"}]})

    events: list[dict[str, Any]] | None = Field(None, description=_EVENTS_DOC)
    rows: list[dict[str, Any]] | None = Field(None, description=_ROWS_DOC)
    as_of: AsOf = None


class BatchRequest(PredictRequest):
    """Many users: the events of several users (each scored as of ``as_of``), or many feature rows."""

    model_config = ConfigDict(extra="allow", json_schema_extra={
        "examples": [{"events": [_EXAMPLE_EVENT, {**_EXAMPLE_EVENT, "userId": "10", "sessionId": 7}],
                      "as_of": "2018-11-20"}]})


class Prediction(BaseModel):
    """One user's prediction."""

    userId: str = Field(description="The user's id (the model's id column for feature rows).")
    churn_probability: float = Field(ge=0, le=1, description="Calibrated probability of churning.")
    churn_pred: Literal[0, 1] = Field(description="1 when churn_probability reaches the model's threshold.")
    risk_band: Literal["low", "medium", "high"]
    reasons: list[str] = Field(description="Up to three features that raise this user's risk most, in plain "
                                           "words (empty when reasons are off or nothing raises it).")
    input_warnings: str = Field(description="Problems of this user's feature row in plain words "
                                            "(unseen category, value far outside training range, ...); "
                                            "empty when none. The same text as `score`'s input_warnings.")
    as_of: str | None = Field(None, description="Observation time (UTC, ISO-8601) the features describe.")


class PredictResponse(Prediction):
    """``/predict``'s answer: the prediction, the model that made it, and when."""

    model_version: str = Field(description="First 12 hex digits of the model artifact's SHA-256.")
    inference_timestamp: str = Field(description="When the prediction was made (UTC, ISO-8601).")
    notes: list[str] = Field(default_factory=list, description="Things worth knowing: ignored fields, dropped "
                                                               "events, store failures.")


class BatchResponse(BaseModel):
    """``/predict/batch``'s answer: one prediction per user (or row), in input order for rows."""

    model_version: str
    inference_timestamp: str
    n_predictions: int
    predictions: list[Prediction]
    left_out: dict[str, int] = Field(default_factory=dict,
                                     description="Users not scored, by reason (e.g. cancelled before as_of).")
    notes: list[str] = Field(default_factory=list)


class HealthResponse(BaseModel):
    """``/health``."""

    status: Literal["ok"]
    model_loaded: bool
    model_version: str
    model: str = Field(description="What the model is, e.g. 'logreg / none, no calibration, threshold 0.21'.")
    input: Literal["events", "rows"] = Field(description="What /predict takes for this model.")
    started_at: str
    uptime_seconds: float
    predictions_served: int
    store: str | None = Field(description="The prediction store's path (None: predictions not stored).")
    store_failures: int = Field(description="Answers given whose store append failed (logged).")


class ModelInfoResponse(BaseModel):
    """``/model/info``: what the model is, how well it did, and what it expects."""

    model_version: str
    sha256: str | None
    created: str | None
    description: str
    model: dict[str, Any]
    calibration: str | None
    threshold: float
    threshold_rule: str | None
    risk_bands: dict[str, Any]
    metrics: dict[str, dict[str, dict[str, Any]]] = Field(
        description="`holdout` and `cv`: metric -> value, low, high, level and text ('0.712 (0.690–0.735)').")
    signal_detected: bool | None
    input: Literal["events", "rows"]
    id_col: str
    feature_schema: list[dict[str, Any]]
    training_data: dict[str, Any] = Field(description="The training table's fingerprint, sizes and split.")
    versions: dict[str, dict[str, str | None]] = Field(
        description="`saved_with`: library versions the artifact was saved with; `running`: this server's.")


_ERRORS = {
    413: {"description": "Body, events, users or rows beyond the service's limits."},
    422: {"description": "Bad input: `detail` lists `loc` (the field) and `msg` (the problem, in plain words)."},
    500: {"description": "Unexpected failure (logged on the server under `request_id`; no traceback here)."},
}


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

def _detail(loc: Sequence[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": kind}


def _unprocessable(loc: Sequence[Any], msg: str, kind: str = "value_error") -> HTTPException:
    return HTTPException(status_code=422, detail=[_detail(loc, msg, kind)])


def _too_large(loc: Sequence[Any], msg: str) -> HTTPException:
    return HTTPException(status_code=413, detail=[_detail(loc, msg, "too_large")])


def _data_error(err: load.DataValidationError, field: str) -> HTTPException:
    """A loader or input-check error as 422: ``loc`` from the error's record number and column.

    An error about several absent columns (``column="a, b"``, no record) gives one entry per column.
    """
    base: list[Any] = ["body", field]
    if err.line is not None:
        base.append(err.line - 1)
    columns = [err.column] if err.line is not None or not err.column else err.column.split(", ")
    return HTTPException(status_code=422, detail=[_detail(base + ([c] if c else []), err.message, "invalid_data")
                                                  for c in columns])


def _plain(e: dict[str, Any]) -> str:
    """A FastAPI/pydantic validation error in plain words."""
    loc = [p for p in e.get("loc", ()) if p != "body"]
    kind = e.get("type", "")
    what = "the body" if not loc else (
        f"{loc[0]} item {loc[1]}" if len(loc) == 2 and isinstance(loc[1], int) else
        "field " + ".".join(str(p) for p in loc))
    if kind == "json_invalid":
        return f"the body is not valid JSON: {(e.get('ctx') or {}).get('error', e.get('msg', ''))}"
    if kind == "missing":
        return "the request needs a JSON body" if not loc else f"{what} is required"
    if kind in ("dict_type", "model_attributes_type"):
        return f"{what} must be a JSON object"
    if kind == "list_type":
        return f"{what} must be a JSON list"
    return f"{what}: {str(e.get('msg', 'invalid')).lower()}"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = [_detail(e.get("loc", ()), _plain(e), e.get("type", "value_error")) for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": raw})


class _Guard:
    """ASGI middleware: bounds the request body (413) and turns any unexpected exception into a 500
    without a traceback (logged here, with a request id)."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = int(max_body_bytes)

    def _too_large(self, size: str) -> dict[str, Any]:
        return {"detail": [_detail(["body"], f"request body too large: {size}; the limit is "
                                             f"{self.max_body_bytes:,} bytes (send fewer users per batch)",
                                   "too_large")]}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if scope.get("method") in ("POST", "PUT", "PATCH"):
                headers = dict(scope.get("headers") or ())
                length = headers.get(b"content-length")
                if length is not None:
                    try:
                        declared = int(length)
                    except ValueError:
                        declared = -1
                    if declared < 0:
                        await _send_json(send, 400, {"detail": [_detail(["header", "content-length"],
                                                                        "Content-Length is not a byte count",
                                                                        "bad_header")]})
                        return
                    if declared > self.max_body_bytes:
                        await _send_json(send, 413, self._too_large(f"Content-Length {declared:,} bytes"))
                        return
                chunks, size = [], 0
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # the client left: nobody to answer
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        await _send_json(send, 413, self._too_large(f"more than {self.max_body_bytes:,} bytes"))
                        return
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
                body, replayed = b"".join(chunks), False

                async def replay() -> dict[str, Any]:
                    nonlocal replayed
                    if not replayed:
                        replayed = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()  # after the body: wait for a disconnect as usual

                receive = replay
            await self.app(scope, receive, tracked_send)
        except Exception:
            request_id = uuid.uuid4().hex[:12]
            logger.exception("request %s %s failed (request id %s)", scope.get("method"), scope.get("path"),
                             request_id)
            if not started:
                await _send_json(send, 500, {"detail": "internal error: the request could not be answered; the "
                                                       "server log has the details under this request id",
                                             "request_id": request_id})


# --------------------------------------------------------------------------------------------
# The scoring path
# --------------------------------------------------------------------------------------------

def _iso_ms(ms: int | None) -> str | None:
    return None if ms is None else pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _unknown_fields(items: list[dict[str, Any]], known: frozenset[str] | set[str], what: str) -> list[str]:
    """A note naming the fields of ``items`` that are not in ``known`` (ignored), or nothing."""
    seen: dict[str, tuple[int, int]] = {}
    for i, item in enumerate(items):
        if item.keys() <= known:
            continue
        for k in item.keys() - known:
            first, n = seen.get(k, (i, 0))
            seen[k] = (first, n + 1)
    if not seen:
        return []
    parts = [f"{k!r} (in {n:,} {what}{'s' if n != 1 else ''}, first {what} {first + 1})"
             for k, (first, n) in sorted(seen.items(), key=lambda kv: kv[1][0])]
    return [f"ignored unknown {what} field(s): " + ", ".join(parts[:10])
            + (f" and {len(parts) - 10} more" if len(parts) > 10 else "")]


_PER_USER = " (users)"  # the suffix of the input checks' reasons in an event log's account


def _quality_notes(quality: load.DataQuality, *, single: bool) -> list[str]:
    """The account of a request's events in plain words: events dropped or repaired by the loader,
    users flagged by the input checks, and the notes (the users-in-the-log count only for batches)."""
    out = []
    for verb, counts in (("dropped", quality.dropped), ("repaired", quality.repaired)):
        for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            where = quality.locations.get(reason)
            if reason.endswith(_PER_USER):
                text = f"{n:,} user{'s' if n != 1 else ''}: {reason.removesuffix(_PER_USER)}"
            else:
                text = f"{verb} {n:,} event{'s' if n != 1 else ''}: {reason}"
            out.append(text + (f" (first at {where})" if where else ""))
    return out + [n for n in quality.notes if not (single and "users in the log;" in n)]


@dataclass
class _Scored:
    scores: pd.DataFrame  # userId, churn_probability, churn_label, risk_band[, reason_*], input_warnings
    features: pd.DataFrame  # userId + the model's features, as the model saw them, same order
    as_of: int | None
    notes: list[str]
    left_out: dict[str, int]


class _Service:
    """The state behind the endpoints: the model, the store, the limits and the counters."""

    def __init__(self, model: ChurnModel, store: PredictionStore | None, store_path: str | None, limits: Limits,
                 reasons: bool, strict_events: bool) -> None:
        self.model = model.set_threads(1)  # once: each request is one thread of the pool
        self.store, self.store_path = store, store_path
        self.limits, self.reasons, self.strict_events = limits, reasons, strict_events
        self.takes_events = set(model.feature_names) <= set(feature_columns())
        self.started = time.monotonic()
        self.started_at = _now()
        self.served = 0
        self.store_failures = 0
        self._count_lock = threading.Lock()  # the counters are updated from the handlers' threads

    # ---- input ---------------------------------------------------------------------------------
    def score(self, body: PredictRequest, *, single: bool) -> _Scored:
        notes = []
        if body.model_extra:
            notes.append("ignored unknown body field(s): " + ", ".join(repr(k) for k in body.model_extra))
        if body.events is not None and body.rows is not None:
            raise _unprocessable(["body"], "give either events or rows, not both")
        if body.rows is not None:
            if body.as_of is not None:
                raise _unprocessable(["body", "as_of"], "as_of is for events (the date features are built at); "
                                                        "feature rows already describe their date")
            return self._score_rows(body.rows, single, notes)
        if not self.takes_events:
            raise _unprocessable(["body", "rows"], (
                f"this model was trained on a table whose features are not event features "
                f"({', '.join(self.model.feature_names[:6])}{', ...' if len(self.model.feature_names) > 6 else ''}): "
                f"send feature rows (rows) with the id column {self.model.id_col!r} and those columns, not events"),
                "missing")
        if body.events is None:
            raise _unprocessable(["body", "events"], "events is required: the user's Sparkify events "
                                                     "(or feature rows as rows)", "missing")
        return self._score_events(body.events, body.as_of, single, notes)

    def _score_events(self, records: list[dict[str, Any]], as_of: Any, single: bool, notes: list[str]) -> _Scored:
        lim = self.limits
        if len(records) > lim.max_events:
            raise _too_large(["body", "events"], f"{len(records):,} events; the limit is {lim.max_events:,} per "
                                                 "request (send fewer users per batch)")
        if as_of is not None and (isinstance(as_of, bool) or not isinstance(as_of, (str, int))):
            raise _unprocessable(["body", "as_of"], f"as_of must be a date ('2018-11-20'), an ISO-8601 datetime or "
                                                    f"epoch milliseconds, not {as_of!r}")
        notes += _unknown_fields(records, _EVENT_FIELDS, "event")
        try:
            log = load.load_event_records(records, strict=self.strict_events, source="request", lossless_ok=True)
        except load.DataValidationError as err:
            raise _data_error(err, "events") from None
        users = pd.unique(log.events["userId"])
        if single and len(users) > 1:
            shown = ", ".join(repr(str(u)) for u in users[:5]) + (" ..." if len(users) > 5 else "")
            raise _unprocessable(["body", "events"], (
                f"events of {len(users):,} users ({shown}): /predict scores one user; send several users' "
                "events to /predict/batch"), "several_users")
        if len(users) > lim.max_users:
            raise _too_large(["body", "events"], f"events of {len(users):,} users; the limit is "
                                                 f"{lim.max_users:,} users per batch")
        try:
            as_of_ms = scoring.parse_as_of(as_of, log.events)
        except load.DataValidationError as err:
            raise _unprocessable(["body", "as_of"], err.message, "invalid_data") from None
        try:
            res = scoring.score_events(self.model, log, as_of_ms, reasons=self.reasons, strict=False, n_jobs=1,
                                       source="request")
        except load.DataValidationError as err:
            raise _data_error(err, "events") from None
        notes += _quality_notes(res.quality, single=single)
        return _Scored(res.scores, res.features, int(res.as_of), notes, dict(res.left_out))

    def _score_rows(self, rows: list[dict[str, Any]], single: bool, notes: list[str]) -> _Scored:
        lim, model = self.limits, self.model
        if not rows:
            raise _unprocessable(["body", "rows"], "no rows: the list is empty")
        if single and len(rows) > 1:
            raise _unprocessable(["body", "rows"], f"{len(rows):,} rows: /predict scores one user; send several "
                                                   "rows to /predict/batch", "several_users")
        if len(rows) > lim.max_rows:
            raise _too_large(["body", "rows"], f"{len(rows):,} rows; the limit is {lim.max_rows:,} per batch")
        notes += _unknown_fields(rows, {model.id_col, "as_of", *model.feature_names}, "row")
        frame = pd.DataFrame.from_records(rows)
        try:
            check = check_input(model, frame, id_col=model.id_col, source="request",
                                lines=np.arange(1, len(frame) + 1), unit="row")
        except load.DataValidationError as err:
            raise _data_error(err, "rows") from None
        scores = scoring.score_checked(model, check, n_jobs=1, reasons=self.reasons)
        notes += check.notes
        if check.dropped:
            notes += [f"dropped {n:,} row{'s' if n != 1 else ''}: {reason}" for reason, n in check.dropped.items()]
        feats = check.frame[[*check.key, *model.feature_names]]
        if model.id_col != "userId":
            scores = scores.rename(columns={model.id_col: "userId"})
            feats = feats.rename(columns={model.id_col: "userId"})
        return _Scored(scores, feats.reset_index(drop=True), None, notes, {})

    # ---- output --------------------------------------------------------------------------------
    def predictions(self, scored: _Scored) -> list[Prediction]:
        s = scored.scores
        reason_cols = [c for c in scoring.REASON_COLUMNS if c in s.columns]
        reasons = s[reason_cols].to_numpy(dtype=object) if reason_cols else np.empty((len(s), 0), dtype=object)
        if "as_of" in s.columns:
            as_of = [pd.Timestamp(t).isoformat() for t in s["as_of"]]
        else:
            as_of = [_iso_ms(scored.as_of)] * len(s)
        warn = s[scoring.WARNINGS_COLUMN] if scoring.WARNINGS_COLUMN in s.columns else pd.Series([""] * len(s))
        out = []
        for i, (uid, p, label, band, w) in enumerate(zip(s["userId"].astype(str), s["churn_probability"].to_numpy(),
                                                         s["churn_label"].to_numpy(), s["risk_band"], warn)):
            out.append(Prediction(userId=uid, churn_probability=float(p), churn_pred=int(label), risk_band=band,
                                  reasons=[str(r) for r in reasons[i] if isinstance(r, str) and r],
                                  input_warnings="" if w is None or (isinstance(w, float) and np.isnan(w)) else str(w),
                                  as_of=as_of[i]))
        return out

    def record(self, scored: _Scored, served_at: str) -> list[str]:
        """Append to the store (one transaction); a failure is logged, counted and noted, never raised."""
        with self._count_lock:
            self.served += len(scored.scores)
        if self.store is None:
            return []
        try:
            self.store.append(scored.scores, scored.features, model_version=self.model.version, as_of=scored.as_of,
                              source="service", served_at=served_at, id_col="userId",
                              columns=self.model.feature_names)
        except Exception as exc:  # the answer is right; losing the record must not lose the answer
            with self._count_lock:
                self.store_failures += 1
                failures = self.store_failures
            logger.exception("prediction store append failed (%d failures so far)", failures)
            return [f"this prediction was not recorded in the prediction store ({type(exc).__name__}); "
                    "the server log has the details"]
        return []

    # ---- endpoints -----------------------------------------------------------------------------
    def health(self) -> HealthResponse:
        return HealthResponse(status="ok", model_loaded=True, model_version=self.model.version,
                              model=self.model.describe(), input="events" if self.takes_events else "rows",
                              started_at=self.started_at, uptime_seconds=round(time.monotonic() - self.started, 3),
                              predictions_served=self.served, store=self.store_path,
                              store_failures=self.store_failures)

    def info(self) -> ModelInfoResponse:
        m, info = self.model, self.model.info
        metrics = {}
        for part in ("holdout", "cv"):
            table = info.get(part) or {}
            metrics[part] = {name: {**Interval.from_row(row).to_dict(), "text": Interval.from_row(row).text()}
                             for name, row in table.items() if isinstance(row, dict)}
        bands = {"medium_from": m.bands.medium_from, "high_from": m.bands.high_from,
                 "low": f"p < {m.bands.medium_from:.4f}",
                 "medium": f"{m.bands.medium_from:.4f} <= p < {m.bands.high_from:.4f}",
                 "high": f"p >= {m.bands.high_from:.4f}"}
        data = dict(info.get("data") or {})
        data["fingerprint"] = info.get("data_fingerprint") or data.get("fingerprint")
        running = {**library_versions(), "churnlib": churnlib_version}
        for pkg in _SERVER_PACKAGES:
            try:
                running[pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                running[pkg] = None
        described = info.get("model") if isinstance(info.get("model"), dict) else {}
        return ModelInfoResponse(
            model_version=m.version, sha256=info.get("sha256"), created=info.get("created"), description=m.describe(),
            model=described, calibration=m.calibration, threshold=m.threshold, threshold_rule=info.get("threshold_rule"),
            risk_bands=bands, metrics=metrics, signal_detected=info.get("signal_detected"),
            input="events" if self.takes_events else "rows", id_col=m.id_col, feature_schema=m.schema,
            training_data=data, versions={"saved_with": dict(info.get("versions") or {}), "running": running})


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------

def create_app(model: ChurnModel | str | os.PathLike, *, store: PredictionStore | str | os.PathLike | None = None,
               limits: Limits = Limits(), reasons: bool = True, strict_events: bool = True) -> FastAPI:
    """The FastAPI app serving ``model``.

    Parameters
    ----------
    model : churnlib.model.ChurnModel or path-like
        A loaded model, or an artifact (``.joblib``, its manifest, or the folder holding it): loaded and
        verified once, here.
    store : churnlib.store.PredictionStore or path-like, optional
        Where every prediction is appended (a path is opened here and closed when the app shuts
        down; a store passed in stays the caller's to close). None: predictions are not stored.
    limits : Limits
        Bounds on a request (413 beyond them).
    reasons : bool, default True
        Answer each user's top three risk-raising features in plain words.
    strict_events : bool, default True
        Refuse events the loader would drop or repair as defects (422 naming the event and field);
        False: the command line's lenient rules (drops and repairs said in ``notes``).

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    churnlib.artifact.ArtifactError
        The artifact does not verify (tampered, incomplete, incompatible).
    """
    loaded = model if isinstance(model, ChurnModel) else ChurnModel.load(model)
    own_store = store is not None and not isinstance(store, PredictionStore)
    opened = PredictionStore(store) if own_store else store
    store_path = None if opened is None else str(getattr(opened, "path", store))
    service = _Service(loaded, opened, store_path, limits, reasons, strict_events)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            if own_store:
                opened.close()

    app = FastAPI(title="churnlib prediction service", version=churnlib_version, lifespan=lifespan,
                  description=(f"Churn predictions from model {loaded.version} ({loaded.describe()}). "
                               + ("POST a user's raw Sparkify events to /predict. " if service.takes_events else
                                  "POST a user's feature row to /predict. ")
                               + "Bad input: 422 naming the field; too large: 413."))
    app.state.service = service
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(_Guard, max_body_bytes=limits.max_body_bytes)

    @app.get("/health", response_model=HealthResponse, summary="Model loaded, version, uptime")
    def health() -> HealthResponse:
        return service.health()

    @app.get("/model/info", response_model=ModelInfoResponse,
             summary="Metrics with intervals, threshold, risk bands, feature schema, data fingerprint, versions")
    def model_info() -> ModelInfoResponse:
        return service.info()

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS, summary="Score one user")
    def predict(body: PredictRequest) -> PredictResponse:
        scored = service.score(body, single=True)
        served_at = _now()
        notes = scored.notes + service.record(scored, served_at)
        (one,) = service.predictions(scored)
        return PredictResponse(**one.model_dump(), model_version=loaded.version, inference_timestamp=served_at,
                               notes=notes)

    @app.post("/predict/batch", response_model=BatchResponse, responses=_ERRORS, summary="Score many users")
    def predict_batch(body: BatchRequest) -> BatchResponse:
        scored = service.score(body, single=False)
        served_at = _now()
        notes = scored.notes + service.record(scored, served_at)
        preds = service.predictions(scored)
        return BatchResponse(model_version=loaded.version, inference_timestamp=served_at, n_predictions=len(preds),
                             predictions=preds, left_out=scored.left_out, notes=notes)

    return app


def serve(model: ChurnModel | str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8000,
          store: PredictionStore | str | os.PathLike | None = None, limits: Limits = Limits(),
          log_level: str = "warning", reasons: bool = True, strict_events: bool = True) -> None:
    """Run the service with uvicorn until interrupted; the model is verified before anything listens.

    Parameters
    ----------
    model, store, limits, reasons, strict_events
        See :func:`create_app`.
    host : str, default "127.0.0.1"
        Address to bind (loopback only by default: put a reverse proxy in front to expose it).
    port : int, default 8000
    log_level : str, default "warning"
        uvicorn's log level.

    Raises
    ------
    churnlib.artifact.ArtifactError
        The artifact does not verify: the server does not start.
    """
    app = create_app(model, store=store, limits=limits, reasons=reasons, strict_events=strict_events)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
