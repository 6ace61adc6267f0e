"""The feature table on Spark equals DuckDB's (issue 17).

One local Spark session (the ``spark`` fixture of ``conftest.py``: ``local[2]``) for the whole file;
small logs. Equality: same rows in the same order, same columns and dtypes (after pandas reads the
parquet that Spark wrote), integers and text exactly, floats within 1e-9 relative (NaN where NaN).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnlib import features, load
from churnlib.labels import LabelCensoredError
from churnlib.spark_features import build_features_spark, features_spark
from churnlib.spark_sql import to_spark, to_spark_stacked


def assert_same_table(spark_table: pd.DataFrame, duck_table: pd.DataFrame) -> None:
    """Spark's table equals DuckDB's: rows, columns, dtypes; ints/text exact, floats 1e-9 relative."""
    assert list(spark_table.columns) == list(duck_table.columns)
    assert dict(spark_table.dtypes) == dict(duck_table.dtypes)
    assert len(spark_table) == len(duck_table)
    for c in duck_table.columns:
        a, b = duck_table[c].to_numpy(), spark_table[c].to_numpy()
        if duck_table[c].dtype.kind == "f":
            assert np.array_equal(np.isnan(a), np.isnan(b)), f"{c}: NaN in different rows"
            ok = np.isnan(a) | np.isclose(b, a, rtol=1e-9, atol=0)
            assert ok.all(), f"{c}: {a[~ok][:3]} (DuckDB) vs {b[~ok][:3]} (Spark)"
        else:
            ok = a == b
            assert ok.all(), f"{c}: {a[~ok][:3]} (DuckDB) vs {b[~ok][:3]} (Spark)"


def _spark_table(spark, events_parquet, dates, horizon, inactivity, out) -> pd.DataFrame:
    sdf = spark.read.parquet(str(events_parquet))
    features_spark(spark, sdf, dates, horizon, inactivity).write.parquet(str(out))
    return pd.read_parquet(out)


@pytest.fixture(scope="module")
def small_sim(tmp_path_factory):
    """A small simulated log: guests, cancellations, 40 days."""
    from churnlib.simulate import write_event_log

    path = tmp_path_factory.mktemp("sparklog") / "sim.parquet"
    write_event_log(path, n_users=60, days=40, seed=5)
    return path


def test_to_spark_reads_decimals_as_doubles_and_renames():
    sql = to_spark("SELECT x / 86400000.0 AS d, $as_of AS t FROM events", tables={"events": "ev_1"})
    assert "CAST(86400000.0 AS DOUBLE)" in sql and ":as_of" in sql and "ev_1" in sql
    # a CTE of the same name is not renamed
    assert "FROM events" in to_spark("WITH events AS (SELECT 1 AS a) SELECT a FROM events",
                                     tables={"events": "ev_1"})


def test_to_spark_stacked_reads_the_date_from_the_key():
    sql = to_spark_stacked(features.feature_sql(), tables={"events": "st"})
    assert ":as_of" not in sql.replace(":as_of)", "")  # header comment only
    assert "SUBSTRING_INDEX(e.user_id, '#', -1)" in sql
    with pytest.raises(ValueError, match="without a table"):
        to_spark_stacked("SELECT $as_of AS t")


def test_real_sample_equals_duckdb(spark, event_sample, tmp_path):
    log = load.load_events(event_sample)
    src = tmp_path / "clean.parquet"
    log.events.to_parquet(src, index=False)
    dates = features.observation_dates(log.events, 7, every_days=2)
    assert len(dates) >= 3
    duck = features.build_features(log.events, dates, horizon_days=7)
    got = _spark_table(spark, src, dates, 7, None, tmp_path / "spark_out")
    assert_same_table(got, duck)


def test_simulated_log_equals_duckdb_end_to_end(spark, small_sim, tmp_path):
    """Spark's loader + features + parquet writer vs DuckDB's ``features_command``: same table and account;
    default dates as ``observation_dates`` chooses them; inactivity counted as churn."""
    dates = features.observation_dates(small_sim, 7 + 4, every_days=3)
    assert len(dates) >= 2
    duck = features.build_features(small_sim, dates, horizon_days=7, inactivity_days=4)
    assert duck["churned"].sum() > 0 and (duck["churned"] == 0).sum() > 0
    out = tmp_path / "features_spark.parquet"
    quality = build_features_spark(small_sim, None, 7, out=out, inactivity_days=4, every_days=3)
    got = pd.read_parquet(out)
    assert_same_table(got, duck)
    duck_quality = load.load_events(small_sim).quality
    assert quality.rows_read == duck_quality.rows_read and quality.rows_kept == duck_quality.rows_kept
    assert quality.rows_read > quality.rows_kept  # the guests were dropped
    account = json.loads((out.parent / f"{out.name}.quality.json").read_text())
    assert account["rows_kept"] == duck_quality.rows_kept


def test_features_spark_refuses_censored_dates(spark, small_sim):
    sdf = spark.read.parquet(str(small_sim))
    with pytest.raises(LabelCensoredError, match="need it to reach"):
        features_spark(spark, sdf, ["2018-11-05"], 14, log_end="2018-11-10")
