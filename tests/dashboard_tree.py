"""The dashboard tests' products tree: what ``make report`` writes, made by the project's own functions.

One tree per test session (fixture ``dashboard_tree`` in ``tests/conftest.py``): the session's model
(``sim_trained``) as 05_models saves it, risk scores and drivers as 06_explanations makes them
(:func:`churnlib.scoring.score_frame` on :func:`churnlib.explain.risk_population`), the summary's key
numbers as 09_summary records them, the simulated log under ``data/raw/``, and the what-if model. Monitoring
is left out on purpose: a missing product the pages must handle. Tests that change the tree copy it first.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from churnlib import explain, pipeline, report, summary
from churnlib.labels import cancellation_labels
from churnlib.load import load_events
from churnlib.model import ChurnModel
from churnlib.scoring import REASON_COLUMNS, score_frame
from churnlib.whatif import WHATIF_NAME, fit_whatif

__all__ = ["LOG_NAME", "add_whatif", "build_products_tree"]

LOG_NAME = "simulated_u150_d45_s3_test.parquet"


def build_products_tree(root: Path, sim_log: Path, model_dir: Path, table: pd.DataFrame) -> Path:
    """A report's products tree: what 05_models, 06_explanations and 09_summary write, made with their
    functions (monitoring is left out: a missing product the pages must handle)."""
    shutil.copytree(model_dir, root / "models")
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    shutil.copy2(sim_log, raw / LOG_NAME)
    processed = root / "data" / "processed"
    processed.mkdir(parents=True)
    features = processed / "features.parquet"
    table.to_parquet(features, index=False)
    model = ChurnModel.load(root / "models")
    population = explain.risk_population(table, "churned")
    scored = score_frame(model, population.frame, id_col="userId", reasons=True)
    scored = scored.sort_values(["churn_probability", "userId"], ascending=[False, True], kind="stable")
    scored = scored[["userId", "churn_probability", "churn_label", "risk_band", *REASON_COLUMNS]].reset_index(drop=True)
    key = pipeline.product_key("explanations", {"model": model.info["sha256"], "table": features}, {"max_rows": 2000})
    pipeline.write_product(processed / "risk_scores.parquet", scored, key)
    importance = explain.global_importance(model.shap(population.frame))
    pipeline.write_product(processed / "drivers.csv", importance[["feature", "mean_abs_shap", "direction", "meaning"]],
                           key)
    log = load_events(raw / LOG_NAME)
    metrics = json.loads((root / "models" / "metrics.json").read_text())
    trend = summary.churn_trend(table, "as_of", "churned", "userId", seed=7)
    sections = [summary.churn_rate_section(cancellation_labels(log.events)["churned"], "users in the log"),
                summary.trend_section(trend, horizon_days=14), summary.model_quality_section(metrics),
                summary.top_users_section(scored), summary.data_quality_section(log.quality)]
    report.record_key_numbers(summary.key_numbers(sections), "09_summary", root)
    if not (root / "models" / WHATIF_NAME).is_file():
        add_whatif(root, table)
    return root


def add_whatif(root: Path, table: pd.DataFrame) -> None:
    """Fit and save the what-if model beside the main one, as training does when it keeps the six signals
    (on the session's small table it drops some as leakage suspects, so it writes none)."""
    metrics_path = root / "models" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    fitted = fit_whatif(table, "userId", "churned", seed=metrics["settings"]["seed"], n_bootstrap=20)
    metrics["whatif"] = fitted.to_dict()
    fitted.model.save(root / "models", info=metrics["whatif"])
    metrics_path.write_text(json.dumps(metrics))
