"""Interval: the one representation of an estimate with its uncertainty, and the bootstrap over users."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from churnlib.intervals import Interval, bootstrap_sampler, has_repeated_groups


def test_plain_text_form():
    iv = Interval(0.7123, 0.6901, 0.7349)
    assert iv.text() == "0.712 (0.690–0.735)" == str(iv) == f"{iv}"
    assert iv.text(2) == "0.71 (0.69–0.73)" == f"{iv:.2f}"
    assert Interval(5.4, 4.3, 6.3).text(1, unit="×") == "5.4× (4.3–6.3×)"


def test_signed_and_percent_forms():
    assert Interval(0.012, -0.004, 0.030).text(signed=True) == "+0.012 (-0.004 to +0.030)"
    assert Interval(0.216, 0.198, 0.234).text(1, percent=True) == "21.6% (19.8–23.4%)"
    assert Interval(0.02, -0.01, 0.05).text(1, signed=True, percent=True) == "+2.0% (-1.0% to +5.0%)"


def test_unknown_bounds_leave_the_interval_out():
    assert Interval(0.5).text() == "0.500"
    assert Interval(0.5, float("nan"), 0.6).text() == "0.500"
    assert Interval(0.25, None, None).text(1, percent=True) == "25.0%"
    assert Interval(0.01).text(signed=True, percent=True) == "+1.000%"
    assert Interval(float("nan")).text() == "n/a"
    assert not Interval(0.5).known and Interval(0.5, 0.4, 0.6).known
    assert math.isnan(Interval("not a number").value)


def test_from_row_reads_both_layouts():
    long = pd.Series({"value": 0.8, "low": 0.7, "high": 0.9, "level": 0.9})
    assert Interval.from_row(long) == Interval(0.8, 0.7, 0.9, 0.9)  # a level entry wins
    wide = {"roc_auc": 0.71, "roc_auc_low": 0.69, "roc_auc_high": 0.74, "pr_auc": 0.3}
    assert Interval.from_row(wide, "roc_auc") == Interval(0.71, 0.69, 0.74)
    assert Interval.from_row(wide, "roc_auc", level=0.9).level == 0.9
    only = Interval.from_row(wide, "pr_auc")
    assert only.value == 0.3 and not only.known
    frame = pd.DataFrame({"value": [0.8], "low": [0.7], "high": [0.9]}, index=["roc_auc"])
    assert Interval.from_row(frame.loc["roc_auc"]).text() == "0.800 (0.700–0.900)"


def test_from_value_accepts_the_older_representations():
    iv = Interval(0.5, 0.4, 0.6)
    assert Interval.from_value(iv) is iv and Interval.from_value(None) is None
    assert Interval.from_value({"value": 0.5, "low": 0.4, "high": 0.6}) == iv
    assert Interval.from_value((0.5, 0.4, 0.6)) == iv and Interval.from_value([0.5]).value == 0.5
    assert Interval.from_value(0.5).value == 0.5 and not Interval.from_value(0.5).known


def test_from_samples_is_the_percentile_interval():
    rng = np.random.default_rng(0)
    s = rng.normal(size=2000)
    iv = Interval.from_samples(0.1, s)
    assert iv.value == 0.1 and iv.level == 0.95
    assert (iv.low, iv.high) == pytest.approx(tuple(np.percentile(s, [2.5, 97.5])))
    iv90 = Interval.from_samples(0.1, s, level=0.9)
    assert (iv90.low, iv90.high) == pytest.approx(tuple(np.percentile(s, [5, 95])))
    assert iv90.low > iv.low and iv90.high < iv.high
    with_nan = Interval.from_samples(0.1, np.r_[s, np.nan, np.inf])  # non-finite samples left out
    assert (with_nan.low, with_nan.high) == (iv.low, iv.high)
    assert not Interval.from_samples(0.1, [np.nan]).known


def test_above_below_covers_and_overlaps():
    iv = Interval(0.6, 0.55, 0.65)
    assert iv.above(0.5) and not iv.above(0.55) and not iv.above(0.6)
    assert iv.below(0.7) and not iv.below(0.65)
    assert iv.covers(0.55) and iv.covers(0.65) and iv.covers(0.6) and not iv.covers(0.5)
    assert iv.overlaps(Interval(0.7, 0.64, 0.8)) and not iv.overlaps(Interval(0.7, 0.66, 0.8))
    unknown = Interval(0.6)  # no interval: no claim either way
    assert not (unknown.above(0) or unknown.below(1) or unknown.covers(0.6) or unknown.overlaps(iv))


def test_dict_and_tuple_forms_are_json_ready():
    assert Interval(0.5, 0.4, 0.6).as_tuple() == (0.5, 0.4, 0.6)
    d = Interval(0.5).to_dict()
    assert d == {"value": 0.5, "low": None, "high": None, "level": 0.95}
    json.dumps(d, allow_nan=False)
    assert Interval.from_value(Interval(0.5, 0.4, 0.6).to_dict()) == Interval(0.5, 0.4, 0.6)


def test_the_bootstrap_draws_whole_users_when_they_repeat():
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    assert has_repeated_groups(groups) and not has_repeated_groups(np.array(["a", "b"]))
    assert not has_repeated_groups(None)
    draw = bootstrap_sampler(groups, len(groups), np.random.default_rng(0))
    for _ in range(50):
        idx = draw()
        picked = pd.Series(groups[idx]).value_counts()
        sizes = pd.Series(groups).value_counts()
        assert all(picked[g] % sizes[g] == 0 for g in picked.index)  # a user's rows come together
    rows = bootstrap_sampler(None, 10, np.random.default_rng(0))()
    assert len(rows) == 10 and rows.min() >= 0 and rows.max() < 10
    a = bootstrap_sampler(groups, 6, np.random.default_rng(3))()
    b = bootstrap_sampler(groups, 6, np.random.default_rng(3))()
    np.testing.assert_array_equal(a, b)
