"""Retention in words and pictures: sentences, titles and figures of churnlib.survival_report, and the
summary's "How long users stay" section, on small hand-made results and on a simulated log."""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from churnlib import summary, survival_report as sr  # noqa: E402
from churnlib.intervals import Interval  # noqa: E402


# --------------------------------------------------------------------------------------------
# Hand-made results in the shape of churnlib.survival's
# --------------------------------------------------------------------------------------------

@dataclass
class Curve:
    table: pd.DataFrame
    median: Interval | None
    min_at_risk: int = 20
    n_users: int = 100
    n_events: int = 40

    def at(self, days: float) -> Interval:
        row = self.table[self.table["time"] <= days].iloc[-1]
        return Interval(row["survival"], row["low"], row["high"])


def _curve(last_day: float = 50, rate: float = 0.02, n: int = 100) -> Curve:
    t = np.arange(1, last_day + 1, dtype=float)
    s = np.exp(-rate * t)
    table = pd.DataFrame({"time": t, "survival": s, "low": s - 0.05, "high": np.minimum(s + 0.05, 1),
                          "at_risk": np.linspace(n, 21, len(t)).astype(int)})
    m = np.log(2) / rate
    median = Interval(m, m * 0.85, m * 1.2) if m <= last_day else None
    return Curve(table, median, n_users=n)


@dataclass
class Comparison:
    curves: dict
    too_small: dict
    tests: pd.DataFrame
    soonest: str | None
    alpha: float = 0.05
    min_users: int = 30


def _comparison(p_adjusted: float, too_small: dict | None = None) -> Comparison:
    curves = {"free": _curve(40, 0.03), "paid": _curve(60, 0.01)}
    tests = pd.DataFrame({"comparison": ["overall", "free vs paid"], "statistic": [9.0, 9.0],
                          "p": [p_adjusted / 2, p_adjusted / 2], "p_adjusted": [p_adjusted, p_adjusted]})
    return Comparison(curves, too_small or {}, tests, "free")


@dataclass
class Cox:
    hazard_ratios: pd.DataFrame
    ph_test: pd.DataFrame
    ph_ok: bool
    strategy: str
    concordance: Interval


def _cox(ph_ok: bool = True, strategy: str = "as is") -> Cox:
    hr = pd.DataFrame({"feature": ["songs_7d", "error_per_song", "level_paid"],
                       "hazard_ratio": [0.75, 1.40, 1.02], "low": [0.65, 1.20, 0.90], "high": [0.86, 1.60, 1.15],
                       "p": [0.001, 0.002, 0.7]})
    ph = pd.DataFrame({"feature": ["songs_7d", "error_per_song", "level_paid"], "p": [0.5, 0.01 if not ph_ok else 0.4, 0.3]})
    return Cox(hr, ph, ph_ok, strategy, Interval(0.71, 0.65, 0.77))


def _expected() -> pd.DataFrame:
    rows = []
    for group, n, base in (("active", 200, 0.9), ("paying", 80, 0.95)):
        for h in (30, 60, 90):
            v = base ** (h / 30)
            rows.append({"group": group, "horizon_days": h, "users": n, "value": v, "low": v - 0.04, "high": v + 0.03})
    return pd.DataFrame(rows)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------

def test_censoring_sentence_counts_still_subscribed_users_as_so_far():
    d = pd.DataFrame({"churned": [1, 0, 0, 1, 0]})
    s = sr.censoring_sentence(d)
    assert "Of 5 users, 2 cancelled" in s and "other 3" in s
    assert "still here so far" in s and "not that they stay forever" in s
    assert s.count(".") == 1  # one sentence


def test_median_sentence_reached_and_not_reached():
    reached = _curve(60, 0.02)  # median ln2/0.02 = 34.7 days
    s = sr.median_sentence(reached)
    assert "35 days (29–42 days)" in s
    not_reached = _curve(25, 0.02)
    s = sr.median_sentence(not_reached)
    assert "not reached within 25 days" in s and "Half" not in s


def test_retention_at_names_only_days_the_curve_reaches():
    c = _curve(45, 0.02)
    s = sr.retention_at_sentence(c, (30, 60))
    assert "after 30 days" in s and "after 60 days" not in s
    assert c.at(30).text(0, percent=True) in s
    assert "stops at day 10" in sr.retention_at_sentence(_curve(10), (30,))


def test_cohort_lines_name_soonest_only_when_fdr_says_they_differ():
    differ = sr.cohort_lines(_comparison(0.01), "level")
    assert "**free** users leave soonest" in differ[0] and "FDR-adjusted 0.010" in differ[0]
    same = sr.cohort_lines(_comparison(0.20), "level")
    assert "no cohort leaves sooner" in same[0] and "**free**" not in same[0]
    assert sr.soonest_cohort(_comparison(0.20)) is None and sr.soonest_cohort(_comparison(0.01)) == "free"
    unnamed = _comparison(0.01)
    unnamed.soonest = None  # significant, but no common stretch of tenure to name one on
    line = sr.cohort_lines(unnamed, "registration_month")[0]
    assert "differ beyond the noise" in line and "no cohort can be named" in line


def test_too_small_cohorts_are_named_not_drawn():
    comp = _comparison(0.01, too_small={"Alaska": 4, "Wyoming": 7})
    lines = sr.cohort_lines(comp, "state")
    assert lines[-1] == "Too few users for a curve (fewer than 30 users), so not drawn: Alaska (4) and Wyoming (7)."
    table = sr.cohort_table(comp)
    assert list(table.index) == ["free", "paid"]  # named in the sentence, not listed as if measured
    fig = sr.plot_cohorts(comp, "state")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2  # two curves drawn, the small cohorts not
    assert any("Alaska" in t.get_text() and "Wyoming" in t.get_text() for t in ax.texts)


def test_cohort_table_medians_and_not_reached():
    table = sr.cohort_table(_comparison(0.01))
    assert table.loc["free", "median days to cancel"].startswith("23 days")
    assert table.loc["paid", "median days to cancel"] == "not reached within 60 days"


def test_hazard_ratio_sentence_in_words():
    s = sr.hazard_ratio_sentence("error_per_song", Interval(1.4, 1.2, 1.6), meaning="errors per song")
    assert s == ("each extra SD of errors per song multiplies the daily risk of cancelling by 1.40 (1.20–1.60): "
                 "raises it")
    assert sr.hazard_ratio_sentence("x", Interval(0.9, 0.7, 1.1)).endswith("no clear effect (the interval covers 1)")
    assert sr.hazard_ratio_sentence("x", Interval(0.7, 0.6, 0.8)).endswith("lowers it")


def test_cox_lines_only_clear_effects_and_the_ph_and_concordance_words():
    lines = sr.cox_lines(_cox(), Interval(0.80, 0.75, 0.85), horizon_days=14)
    effects = [l for l in lines if l.startswith("Each extra SD")]
    assert len(effects) == 2  # level_paid's interval covers 1: not worded as an effect
    assert "1.40 (1.20–1.60)" in effects[0]  # the largest effect on the log scale first
    assert any("used as it is" in l for l in lines)
    assert any("0.710 (0.650–0.770)" in l and "14-day classifier's holdout ROC-AUC is 0.800 (0.750–0.850)" in l
               for l in lines)


def test_ph_sentence_says_what_was_done():
    assert "stratified by level_paid" in sr.ph_sentence(_cox(False, "stratified by level_paid"))
    fails = sr.ph_sentence(_cox(False, "assumption fails: said so"))
    assert "failed for error_per_song" in fails and "read them with care" in fails


def test_concordance_beside_missing_classifier():
    s = sr.concordance_sentence(_cox(), sr.classifier_roc_auc(None))
    assert "not available" in s
    metrics = {"chosen": {"holdout": {"roc_auc": {"value": 0.8, "low": 0.7, "high": 0.9}}}}
    assert sr.classifier_roc_auc(metrics) == Interval(0.8, 0.7, 0.9)


def test_expected_retention_words_and_table():
    e = _expected()
    lines = sr.expected_retention_lines(e)
    assert lines[0].startswith("Of the 200 active users of today") and "after 90 days" in lines[0]
    assert "80 paying" in lines[1]
    table = sr.expected_retention_table(e)
    v = 0.9 ** 3
    assert table.loc[("active", 90), "expected users (95% interval)"] == Interval(v * 200, (v - .04) * 200, (v + .03) * 200).text(0)


def test_key_numbers():
    k = sr.key_numbers(_curve(25), {"level": _comparison(0.01), "device": _comparison(0.5)}, _cox(), _expected())
    assert k["Median days to cancel"] == "not reached within 25 days"
    assert k["Cohorts that leave soonest"] == "free (plan at start)"
    assert k["Cox concordance (held out)"] == "0.710 (0.650–0.770)"
    assert k["Paying users still here after 30 days"] == "95% (91–98%)"


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def test_km_plot_title_is_computed_and_the_cut_curve_is_not_extended():
    c = _curve(40, 0.03)
    fig = sr.plot_km(c)
    ax = fig.axes[0]
    assert ax.get_title() == f"Half of users cancel within {c.median.value:.0f} days"
    line = ax.get_lines()[0]
    assert line.get_xdata().max() == 40  # the curve ends where it was cut
    assert ax.collections  # the band
    fig2 = sr.plot_km(_curve(20, 0.01))
    assert fig2.axes[0].get_title() == "More than half of users are still subscribed after 20 days"
    assert fig2.axes[0].get_lines()[0].get_xdata().max() == 20


def test_cohort_plots_each_curve_stops_at_its_own_cut():
    comp = _comparison(0.01)
    fig = sr.plot_cohorts(comp, "level")
    ax = fig.axes[0]
    assert ax.get_title() == "Plan at start: free users leave soonest"
    assert sorted(l.get_xdata().max() for l in ax.get_lines()) == [40, 60]
    quiet = sr.plot_cohorts(_comparison(0.5), "device").axes[0].get_title()
    assert quiet == "Device: no cohort leaves sooner beyond the noise"
    grid = sr.plot_cohort_grid({"level": comp, "device": _comparison(0.5), "gender": _comparison(0.5)})
    assert sum(a.get_visible() for a in grid.axes) == 3
    assert "free (plan at start)" in grid._suptitle.get_text()


def test_forest_plot_and_expected_retention_bars():
    fig = sr.plot_hazard_ratios(_cox())
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_title() == "error per song raises the risk of cancelling most (×1.40 per SD)"
    fig.savefig(__import__("io").BytesIO(), format="png")  # renders
    e = _expected()
    fig = sr.plot_expected_retention(e)
    assert fig.axes[0].get_title() == f"About {0.95 ** 3:.0%} of today's paying users are expected to stay 90 more days"
    assert len(fig.axes[0].patches) == 6
    fig.savefig(__import__("io").BytesIO(), format="png")  # renders


# --------------------------------------------------------------------------------------------
# The summary section
# --------------------------------------------------------------------------------------------

def test_retention_section_for_an_event_log():
    d = pd.DataFrame({"churned": [1] * 40 + [0] * 60})
    sec = summary.retention_section(_curve(60, 0.02), {"level": _comparison(0.01), "device": _comparison(0.4)}, d)
    assert sec.available
    assert sec.title == "Half of users cancel within 35 days; free users (plan at start) leave soonest"
    assert "still here so far" in sec.text and "35 days (29–42 days)" in sec.text
    assert "**free** users leave soonest" in sec.text and "Device" not in sec.text
    assert sec.numbers["Median days to cancel"] == "35 (29–42)"


def test_retention_section_without_a_difference_or_a_median():
    sec = summary.retention_section(_curve(20, 0.01), {"level": _comparison(0.3)})
    assert sec.title == "More than half of users are still subscribed after 20 days"
    assert "No cohort (plan at start) leaves sooner" in sec.text
    assert "not reached within 20 days" in sec.text


def test_retention_section_for_a_snapshot_without_duration():
    sec = summary.retention_section(None, reason="the table has no duration column")
    assert not sec.available
    assert sec.text == ("Not available in this run: how long users stay (retention curves) "
                        "(the table has no duration column).")
    assert "Survival cannot be estimated" in sr.no_duration_text()


# --------------------------------------------------------------------------------------------
# On the real statistics (churnlib.survival) of a small simulated log
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_durations(tmp_path_factory):
    from churnlib import load, survival
    from churnlib.datasets import default_event_log
    path = default_event_log(300, 60, 11, output_dir=tmp_path_factory.mktemp("retention"))
    return survival.durations_from_events(load.load_events(path).events)


def test_real_curve_words_and_plots_agree(real_durations):
    from churnlib import survival
    curve = survival.kaplan_meier(real_durations, min_at_risk=20)
    fig = sr.plot_km(curve)
    ax = fig.axes[0]
    assert ax.get_title() == sr.km_title(curve)
    assert ax.get_lines()[0].get_xdata().max() <= curve.reach + 1e-9  # never drawn past the cut
    comps = survival.compare_many(real_durations, survival.COHORT_COLUMNS)
    sec = summary.retention_section(curve, comps, real_durations)
    assert sec.available and "still here so far" in sec.text
    n_churned = int(real_durations["churned"].sum())
    assert f"{n_churned:,} cancelled" in sec.text
    grid = sr.plot_cohort_grid(comps)
    assert len([a for a in grid.axes if a.get_visible()]) == len(comps)
    for f in (fig, grid):
        f.savefig(__import__("io").BytesIO(), format="png")  # renders
    for by, comp in comps.items():
        for name, n in comp.too_small.items():
            assert any(f"{name} ({n:,})" in line for line in sr.cohort_lines(comp, by))


def test_real_snapshot_with_and_without_duration():
    from churnlib import survival
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"user_id": range(200), "tenure_days": rng.exponential(40, 200).round(1),
                          "is_churned": rng.integers(0, 2, 200), "plan": rng.choice(["a", "b"], 200)})
    d = survival.durations_from_table(table, duration_col="tenure_days", event_col="is_churned", id_col="user_id")
    curve = survival.kaplan_meier(d)
    sec = summary.retention_section(curve, survival.compare_many(d, ["plan"]), d)
    assert sec.available and sec.title == sr.km_title(curve)
    assert not summary.retention_section(None, reason="no duration column").available


def test_conditional_curve_words_and_figures_name_its_start(real_durations):
    """CI-size log: nearly every user registered before it, so the curve starts at t0 > 0 and every
    sentence, title and figure says it is about users who had stayed t0 days."""
    from churnlib import survival
    curve = survival.kaplan_meier(real_durations, min_at_risk=20)
    assert curve.start > 0 and curve.reach > curve.start
    t0 = f"{curve.start:.0f}"
    given = f"Of users who had been subscribed for {t0} days"
    med = sr.median_sentence(curve)
    assert med.startswith(given) and f"starts at day {t0}" in med
    if curve.median is not None:
        assert f"by day **{curve.median.text(0)}**" in med
    days = [d for d in (30, 60, 90) if curve.start <= d <= curve.reach]
    at = sr.retention_at_sentence(curve, (30, 60, 90))
    assert at.startswith(given)
    for d in days:
        assert f"{curve.at(d).text(0, percent=True)} at day {d}" in at
    assert f"subscribed for {t0} days" in sr.km_title(curve)
    assert f"of those subscribed {t0} days" in sr.key_numbers(curve)["Median days to cancel"]
    fig = sr.plot_km(curve)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == pytest.approx(curve.start)
    assert ax.get_lines()[0].get_xdata().min() == pytest.approx(curve.start)  # not drawn from day 0
    assert any(f"starts at day {t0}" in t.get_text() for t in ax.texts)
    sec = summary.retention_section(curve, None, real_durations)
    assert given in sec.text and sec.title == sr.km_title(curve)
    plt.close(fig)
    # a curve that starts at day 0 keeps its words
    zero = survival.kaplan_meier(real_durations.assign(entry_days=0.0))
    assert zero.start == 0 and sr.median_sentence(zero).startswith(("Half of users", "Fewer than half"))
    assert sr.start_note(zero) == ""
