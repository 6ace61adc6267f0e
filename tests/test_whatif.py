"""The what-if model: monotone directions, the main model's holdout, its files, and predictions.parquet."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from churnlib import evaluation as ev
from churnlib import features
from churnlib import model_report
from churnlib import whatif as wi
from churnlib.artifact import ArtifactError
from churnlib.intervals import Interval
from churnlib.model import ARTIFACT_NAME, ChurnModel
from churnlib.training import PREDICTIONS_NAME, run_training, split_table

BUDGET = dict(models=("logreg",), strategies=("none",), search_budget=0, n_permutations=1, n_bootstrap=10)


@pytest.fixture(scope="module")
def table(sim_log):
    """The event features of the session's simulated log (every signal present)."""
    return features.build_features(sim_log, features.observation_dates(sim_log, 14), horizon_days=14)


@pytest.fixture(scope="module")
def trained(table, tmp_path_factory):
    """A training run with its what-if model, saved. On this small log the leakage screen flags most activity
    columns (single-column ROC-AUC >= 0.8), which would skip the what-if model; it is switched off here and
    the skip is tested on its own."""
    result = run_training(table, "userId", "churned", drop_suspects=False, **BUDGET)
    out = tmp_path_factory.mktemp("whatif_model")
    written = result.save(out)
    return result, out, written


def test_directions_cover_the_signals_and_the_signals_are_documented_features():
    assert set(wi.MONOTONE) == set(wi.SIGNALS) and set(wi.MONOTONE.values()) <= {1, -1}
    assert set(wi.SIGNALS) <= {f.name for f in features.FEATURE_DICTIONARY}


def test_probability_moves_only_in_each_signals_direction(trained, table):
    result, _, _ = trained
    model = result.whatif.model
    assert model.directions_ == wi.MONOTONE and model.signals_ == wi.SIGNALS
    users = table.sample(60, random_state=1).reset_index(drop=True)
    moved = {}
    for s in wi.SIGNALS:
        spec = next(e for e in model.schema_ if e["name"] == s)
        grid = np.linspace(spec["min"] - 1, spec["max"] + 1, 30)  # beyond the training range too
        frame = users.loc[np.repeat(users.index, len(grid))].assign(**{s: np.tile(grid, len(users))})
        p = model.predict_proba(frame)[:, 1].reshape(len(users), len(grid))  # a row per user, the grid across
        assert (np.diff(p, axis=1) * wi.MONOTONE[s] >= -1e-12).all(), s
        moved[s] = int((np.ptp(p, axis=1) > 1e-6).sum())
        # the functions the dashboard calls agree with it
        values = {k: users.loc[3, k] for k in wi.SIGNALS}
        np.testing.assert_allclose(wi.whatif_curve(model, values, s, grid)["probability"], p[3])
        assert wi.whatif_probability(model, {**values, s: grid[7]}) == pytest.approx(p[3, 7])
    # not satisfied by a flat model: the strong signals move the probability for most users
    assert moved["days_since_last_login"] > 45 and moved["login_frequency_30d"] > 45, moved


def test_the_constraint_is_what_sets_the_direction(trained, table):
    """Refitted with one direction reversed, the same signal's curve reverses: the directions are imposed."""
    result, _, _ = trained
    parts = split_table(table, "userId", "churned", drop_suspects=False)
    rows = table.loc[~parts.test]
    flipped = wi.WhatIfModel(directions={**wi.MONOTONE, "days_since_last_login": -1}).fit(rows, rows["churned"])
    values = {s: float(table[s].median()) for s in wi.SIGNALS}
    up = wi.whatif_curve(result.whatif.model, values, "days_since_last_login", np.linspace(0, 40, 20))
    down = wi.whatif_curve(flipped, values, "days_since_last_login", np.linspace(0, 40, 20))
    assert (np.diff(down["probability"]) <= 1e-12).all() and (np.diff(up["probability"]) >= -1e-12).all()
    assert up["probability"].iloc[-1] > up["probability"].iloc[0]


def test_holdout_figures_come_from_the_main_models_held_out_rows(trained, table):
    result, out, _ = trained
    w = result.whatif
    parts = split_table(table, "userId", "churned", drop_suspects=False)
    assert (w.n_train, w.n_test) == (len(parts.y), len(parts.y_test)) == (len(result.y_train), len(result.y_test))
    assert sorted(w.groups_test) == sorted(parts.groups_test)
    np.testing.assert_array_equal(w.y_test, result.y_test)
    # the same figures again from the saved model on the rows predictions.parquet marks as holdout
    preds = pd.read_parquet(out / PREDICTIONS_NAME)
    held = preds[preds["part"] == "holdout"].merge(table, on=["userId", "as_of"], how="left", validate="1:1")
    p = wi.WhatIfModel.load(out).predict_proba(held)[:, 1]
    again = ev.evaluate_predictions(held["y"].to_numpy(), p, p >= 0.5, held["userId"].to_numpy(), n_bootstrap=10)
    assert again.loc["roc_auc", "value"] == pytest.approx(w.holdout["roc_auc"].value)
    assert again.loc["brier", "value"] == pytest.approx(w.holdout["brier"].value)
    # the main model's figures beside it are the main model's own holdout figures
    assert w.main_holdout["roc_auc"].as_tuple() == tuple(result.holdout.loc["roc_auc", ["value", "low", "high"]])
    # drawn on its own, the split is the main model's
    alone = wi.fit_whatif(table, "userId", "churned", n_bootstrap=10, seed=0)
    assert sorted(alone.groups_test) == sorted(parts.groups_test)
    assert alone.holdout["roc_auc"].as_tuple() == w.holdout["roc_auc"].as_tuple()


def test_metrics_json_and_manifest_carry_the_side_by_side(trained):
    result, out, written = trained
    metrics = json.loads((out / "metrics.json").read_text())
    entry = metrics["whatif"]
    assert entry["holdout"]["roc_auc"]["value"] == pytest.approx(result.whatif.holdout["roc_auc"].value)
    assert {k: entry["main_holdout"]["roc_auc"][k] for k in ("value", "low", "high")} == \
        metrics["chosen"]["holdout"]["roc_auc"]
    assert entry["statement"].startswith("A simplified six-signal model for what-if questions")
    assert Interval.from_row(entry["holdout"]["roc_auc"]).text() in entry["statement"]
    assert Interval.from_row(entry["main_holdout"]["roc_auc"]).text() in entry["statement"]
    manifest = json.loads((out / wi.MANIFEST_NAME).read_text())
    assert manifest["holdout"] == entry["holdout"] and manifest["signals"] == list(wi.SIGNALS)
    assert written["whatif"] == out / wi.WHATIF_NAME and written["whatif_manifest"] == out / wi.MANIFEST_NAME
    table = model_report.whatif_table(entry)
    assert list(table.index) == ["ROC-AUC", "PR-AUC", "Brier score"] and table.shape == (3, 2)


def test_save_load_round_trip_and_tamper_detection(trained, table, tmp_path):
    result, out, _ = trained
    folder = tmp_path / "m"
    shutil.copytree(out, folder)
    loaded = wi.WhatIfModel.load(folder)
    assert wi.WhatIfModel.load(folder / wi.WHATIF_NAME).signals_ == wi.SIGNALS
    np.testing.assert_array_equal(loaded.predict_proba(table), result.whatif.model.predict_proba(table))
    assert loaded.manifest_["statement"] == result.whatif.statement
    assert "manifest_" not in loaded.__getstate__()
    # one byte changed in the pickle: refused before unpickling
    data = bytearray((folder / wi.WHATIF_NAME).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / wi.WHATIF_NAME).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256 does not match"):
        wi.WhatIfModel.load(folder)
    shutil.copy(out / wi.WHATIF_NAME, folder / wi.WHATIF_NAME)
    manifest = json.loads((folder / wi.MANIFEST_NAME).read_text())
    (folder / wi.MANIFEST_NAME).write_text(json.dumps({**manifest, "versions": {**manifest["versions"],
                                                                                "lightgbm": "0.1.0"}}))
    with pytest.raises(ArtifactError, match="incompatible library versions: lightgbm"):
        wi.WhatIfModel.load(folder)
    (folder / wi.MANIFEST_NAME).unlink()
    with pytest.raises(ArtifactError, match="manifest not found"):
        wi.WhatIfModel.load(folder)


def test_predictions_parquet_holds_every_training_and_holdout_row_with_its_label(trained, table):
    result, out, _ = trained
    preds = pd.read_parquet(out / PREDICTIONS_NAME)
    assert list(preds.columns) == ["userId", "as_of", "part", "y", "p"]
    assert len(preds) == len(table) == len(result.y_train) + len(result.y_test)
    assert (preds["part"] == "oof").sum() == len(result.y_train) and preds["part"].iloc[-1] == "holdout"
    labels = preds.merge(table[["userId", "as_of", "churned"]], on=["userId", "as_of"], validate="1:1")
    assert len(labels) == len(table) and (labels["y"] == labels["churned"]).all()
    assert preds["p"].between(0, 1).all()
    parts = split_table(table, "userId", "churned", drop_suspects=False)
    held = preds[preds["part"] == "holdout"]
    assert sorted(held["userId"].unique()) == sorted(set(parts.groups_test))
    # holdout p: the saved final model on those rows; oof p: the calibrated out-of-fold probabilities
    rows = held.merge(table, on=["userId", "as_of"], how="left")
    np.testing.assert_allclose(held["p"], ChurnModel.load(out / ARTIFACT_NAME).churn_probability(rows))
    np.testing.assert_allclose(preds.loc[preds["part"] == "oof", "p"], result.oof)


def test_snapshot_table_is_skipped_with_the_reason_and_stale_files_go(trained, table, tmp_path):
    _, out, _ = trained
    snap = (table.sort_values("as_of").groupby("userId").tail(1)
            .drop(columns=["as_of", *wi.SIGNALS]).rename(columns={"userId": "user_id"}))
    result = run_training(snap, "user_id", "churned", drop_suspects=False, **BUDGET)
    assert result.whatif is None and "lacks the what-if signals" in result.whatif_skipped
    folder = tmp_path / "m"
    shutil.copytree(out, folder)  # a what-if model from an earlier run on other data
    written = result.save(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["whatif"] == {"skipped": result.whatif_skipped}
    assert not (folder / wi.WHATIF_NAME).exists() and not (folder / wi.MANIFEST_NAME).exists()
    assert "whatif" not in written
    assert model_report.whatif_sentence(metrics["whatif"]).startswith("No what-if model: the table lacks")
    preds = pd.read_parquet(folder / PREDICTIONS_NAME)
    assert list(preds.columns) == ["user_id", "part", "y", "p"] and len(preds) == len(snap)


def test_signals_the_main_model_left_out_skip_it_and_a_fuller_table_supplies_dropped_signals(trained, table,
                                                                                             tmp_path):
    result, out, _ = trained
    assert "leakage suspect" in wi.skip_reason(table, left_out={"days_since_last_login": "a leakage suspect"})
    assert wi.skip_reason(table, left_out={"songs_7d": "excluded"}) is None
    # the feature set dropped two signals as redundant: they come from the features file, same rows
    path = tmp_path / "features.parquet"
    table.to_parquet(path)
    slim = table.drop(columns=["days_since_last_login", "login_frequency_30d"])
    source = wi.signal_table(slim, path, "userId")
    assert set(wi.SIGNALS) <= set(source.columns) and len(source) == len(slim)
    assert wi.signal_table(table, path, "userId") is table and wi.signal_table(slim, None, "userId") is slim
    r = run_training(slim, "userId", "churned", drop_suspects=False, whatif_table=source, **BUDGET)
    # the same rows and split give the same what-if model as the run on the full table, byte for byte
    r.save(tmp_path / "slim")
    assert (tmp_path / "slim" / wi.WHATIF_NAME).read_bytes() == (out / wi.WHATIF_NAME).read_bytes()
    assert r.whatif.holdout == result.whatif.holdout
    # rows out of order are refused (never paired with the wrong labels)
    assert wi.skip_reason(source, like=slim, id_col="userId") is None
    assert "rows in order" in wi.skip_reason(source.iloc[::-1], like=slim, id_col="userId")
    assert "rows in order" in wi.skip_reason(source.iloc[1:], like=slim, id_col="userId")


def test_same_seed_gives_identical_files(trained, table, tmp_path):
    result, out, _ = trained
    result.save(tmp_path)  # nothing time-stamped: the same result writes the same bytes
    for name in (wi.WHATIF_NAME, wi.MANIFEST_NAME, PREDICTIONS_NAME):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    a = wi.fit_whatif(table, "userId", "churned", n_bootstrap=10, seed=0)
    b = wi.fit_whatif(table, "userId", "churned", n_bootstrap=10, seed=0)
    a.model.save(tmp_path / "a", info=a.to_dict())
    b.model.save(tmp_path / "b", info=b.to_dict())
    for name in (wi.WHATIF_NAME, wi.MANIFEST_NAME):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    c = wi.fit_whatif(table, "userId", "churned", n_bootstrap=10, seed=1)  # another seed: another split
    assert sorted(c.groups_test) != sorted(a.groups_test)


def test_whatif_probability_names_unknown_signals_and_treats_absent_ones_as_missing(trained):
    model = trained[0].whatif.model
    with pytest.raises(ValueError, match="not what-if signals: songs_7d"):
        wi.whatif_probability(model, {"songs_7d": 3})
    p = wi.whatif_probability(model, {"days_since_last_login": 2.0})
    row = pd.DataFrame({s: [2.0 if s == "days_since_last_login" else np.nan] for s in wi.SIGNALS})
    assert p == pytest.approx(model.predict_proba(row)[0, 1]) and 0 < p < 1


def test_whatif_sentence_words_chance_and_skips():
    base = {"holdout": {"roc_auc": {"value": 0.6, "low": 0.45, "high": 0.75}},
            "main_holdout": {"roc_auc": {"value": 0.8, "low": 0.7, "high": 0.9}}, "rows_test": 100, "users_test": 40}
    text = model_report.whatif_sentence(base)
    assert "0.600 (0.450–0.750) against the main model's 0.800 (0.700–0.900)" in text
    assert "100 held-out rows (40 users)" in text and "better than chance" in text
    good = {**base, "holdout": {"roc_auc": {"value": 0.7, "low": 0.6, "high": 0.8}}}
    assert "which way the risk moves" in model_report.whatif_sentence(good)
    assert "(the intervals overlap: neither ranks users clearly better)." in model_report.whatif_sentence(good)
    apart = {**base, "holdout": {"roc_auc": {"value": 0.6, "low": 0.55, "high": 0.65}}}
    assert "overlap" not in model_report.whatif_sentence(apart)
    assert model_report.whatif_sentence({"skipped": "no signals"}) == "No what-if model: no signals."
    assert model_report.whatif_table({"skipped": "x"}).empty
