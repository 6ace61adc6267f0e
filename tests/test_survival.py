"""Survival analysis (churnlib.survival): durations, Kaplan–Meier, cohorts, Cox, expected retention.

Truths are derived independently of the estimates under test: from a larger simulator run's own
cancellation times (users with full follow-up, a plain proportion), or analytically from synthetic
tables drawn with known hazards.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from churnlib import survival as sv
from churnlib.features import user_features
from churnlib.load import DataValidationError
from churnlib.schema import CHURN_PAGE, MS_PER_DAY
from churnlib.simulate import SimulatorConfig, simulate_events

# Short sessions: the leaving process (hazard_base, hazard_silent, leaving_days_*) is the
# simulator's own, with ~15x fewer events per user, so logs of 1,500 users x 120 days are quick.
LIGHT = dict(songs_per_session_median=4.0)
START = pd.Timestamp("2018-10-01", tz="UTC").value // 1_000_000


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _true_survival(events: pd.DataFrame, days: np.ndarray) -> np.ndarray:
    """P(cancel - registration > d) among users with full follow-up to d: a plain proportion from the
    simulator's own cancellation times (no Kaplan–Meier)."""
    u = events.loc[events["userId"] != ""]
    reg = u.groupby("userId")["registration"].min()
    canc = u.loc[u["page"] == CHURN_PAGE].groupby("userId")["ts"].min().reindex(reg.index)
    t = ((canc - reg) / MS_PER_DAY).to_numpy()
    end = u["ts"].max()
    out = []
    for d in days:
        full = (reg <= end - d * MS_PER_DAY).to_numpy()
        out.append(float(np.mean(~(t[full] <= d))))  # NaN (never cancelled) counts as surviving
    return np.array(out)


def _table(n: int, seed: int, *, beta: dict[str, float], nonprop: dict[str, float] | None = None,
           binary: tuple[str, ...] = (), rate: float = 0.1, follow: float = 30.0) -> pd.DataFrame:
    """Synthetic users with a known hazard: rate * exp(sum beta_k x_k) (per unit of x_k), and for
    ``nonprop`` covariates a coefficient that flips sign at day 5 (hazards not proportional).
    Censoring: uniform follow-up in (follow/2, follow)."""
    rng = np.random.default_rng(seed)
    cols = {k: (rng.integers(0, 2, n).astype(float) if k in binary else rng.standard_normal(n))
            for k in list(beta) + list(nonprop or {})}
    lp = sum(b * cols[k] for k, b in beta.items()) if beta else np.zeros(n)
    lp_late = lp.copy()
    for k, b in (nonprop or {}).items():
        lp = lp + b * cols[k]
        lp_late = lp_late - b * cols[k]
    t1 = rng.exponential(1.0 / (rate * np.exp(lp)))
    t2 = 5.0 + rng.exponential(1.0 / (rate * np.exp(lp_late)))
    t = np.where(t1 < 5.0, t1, t2)
    c = rng.uniform(follow / 2, follow, n)
    out = pd.DataFrame({"userId": [f"u{i}" for i in range(n)], "duration_days": np.minimum(t, c),
                        "churned": (t <= c).astype(int)})
    for k, v in cols.items():
        out[k] = v
    return out


@pytest.fixture(scope="module")
def new_user_logs():
    """Every user registers inside the window (no left truncation), with churn fast enough for the
    median to be reached: a 1,500-user log to estimate from, a 12,000-user log for the truth."""
    cfg = SimulatorConfig(**LIGHT, p_new_user=1.0, hazard_base=0.012)
    small = simulate_events(1500, 120, seed=5, config=cfg)
    big = simulate_events(12000, 120, seed=101, config=cfg)
    return small, big


@pytest.fixture(scope="module")
def two_arm_log():
    """Two populations of the same service, the second with 4x the hazard of deciding to leave;
    registered before the log mostly (delayed entry exercised)."""
    a = simulate_events(800, 90, seed=11, config=SimulatorConfig(**LIGHT))
    b = simulate_events(800, 90, seed=12, config=SimulatorConfig(**LIGHT, hazard_base=4 * 0.0027),
                        catalogue_seed=11, id_offset=10_000)
    return pd.concat([a, b], ignore_index=True).sort_values("ts", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# (a) Kaplan–Meier recovers the simulator's truth
# --------------------------------------------------------------------------------------------

def test_km_recovers_simulator_survival_and_median(new_user_logs):
    small, big = new_user_logs
    d = sv.durations_from_events(small)
    assert (d["entry_days"] == 0).all()  # registered inside the log: no delayed entry
    curve = sv.kaplan_meier(d)
    grid = np.arange(0, 110, 0.25)
    truth = _true_survival(big, grid)
    for day in (30, 60):
        iv = curve.at(day)
        assert iv.covers(truth[grid == day][0]), (day, iv, truth[grid == day][0])
    true_median = float(grid[np.flatnonzero(truth < 0.5)[0]])
    assert curve.median is not None
    assert curve.median.covers(true_median), (curve.median, true_median)
    # the interval is informative, not the whole window
    assert curve.median.high - curve.median.low < 25


# --------------------------------------------------------------------------------------------
# (b) a planted cohort difference
# --------------------------------------------------------------------------------------------

def test_planted_cohort_difference_is_detected(two_arm_log):
    d = sv.durations_from_events(two_arm_log)
    assert (d["entry_days"] > 0).mean() > 0.9  # mostly registered before the log: delayed entry
    d["arm"] = np.where(d["userId"].astype(int) > 10_000, "high hazard", "base")
    comps = sv.compare_many(d, ["arm", "gender"])
    arm = comps["arm"]
    assert bool(arm.overall["significant"]) and arm.overall["p_adjusted"] < 1e-4
    assert arm.soonest == "high hazard"
    assert arm.basis  # chosen by the median or by survival at a day both curves reach
    assert arm.curves["high hazard"].at(200).value < arm.curves["base"].at(200).value
    # gender plays no part in the simulator's leaving process: no cohort named
    g = comps["gender"]
    assert not bool(g.overall["significant"]) and g.soonest is None
    # FDR over both tables together (BH over the two overall tests, by hand)
    p_arm, p_g = arm.overall["p"], g.overall["p"]
    assert p_arm < p_g
    assert arm.overall["p_adjusted"] == pytest.approx(min(2 * p_arm, p_g))
    assert g.overall["p_adjusted"] == pytest.approx(p_g)
    alone = sv.compare_cohorts(d, "arm")
    assert alone.overall["p_adjusted"] == pytest.approx(p_arm)


def test_hazard_ratios_cover_the_planted_ratios():
    tab = _table(3000, 1, beta={"g": np.log(2.0), "z": np.log(1.5)}, binary=("g",))
    res = sv.fit_cox(tab, features=["g", "z"], seed=0)
    hr = res.hazard_ratios.set_index("feature")
    for f, planted in (("g", 2.0), ("z", 1.5)):
        per_unit_low = hr.loc[f, "low"] ** (1 / hr.loc[f, "sd"])
        per_unit_high = hr.loc[f, "high"] ** (1 / hr.loc[f, "sd"])
        assert per_unit_low <= planted <= per_unit_high, (f, per_unit_low, per_unit_high)
    assert res.strategy == "as is" and res.ph_ok
    assert res.concordance.above(0.55)


# --------------------------------------------------------------------------------------------
# (c) censoring
# --------------------------------------------------------------------------------------------

def _rows(user: str, days: list[float], pages: list[str] | None = None, reg: float | None = None,
          level: str = "free") -> list[dict]:
    pages = pages or ["NextSong"] * len(days)
    return [{"ts": int(START + x * MS_PER_DAY), "userId": user, "page": p, "level": level,
             "userAgent": "Mozilla/5.0 (Windows NT 6.1)", "location": "Austin, TX", "gender": "F",
             "registration": reg} for x, p in zip(days, pages)]


def test_active_at_the_end_is_censored_never_churned():
    ev = pd.DataFrame(
        _rows("a", [0, 5, 10], ["NextSong", "Cancel", CHURN_PAGE], reg=START)
        + _rows("b", [1, 20, 40], reg=START)                    # active at the very end
        + _rows("c", [2, 3], reg=START - 10 * MS_PER_DAY)        # silent, registered before the log
        + _rows("d", [4, 6], ["NextSong", "Cancel"], reg=START)  # Cancel without confirmation
    )
    d = sv.durations_from_events(ev).set_index("userId")
    assert d["churned"].to_dict() == {"a": 1, "b": 0, "c": 0, "d": 0}
    end = START + 40 * MS_PER_DAY
    assert (d.loc[["b", "c", "d"], "stop"] == end).all()
    assert d.loc["a", "duration_days"] == pytest.approx(10.0)
    assert d.loc["c", "duration_days"] == pytest.approx(50.0)
    assert d.loc["c", "entry_days"] == pytest.approx(12.0)  # enters the risk set at its first event
    assert d.loc["c", "device"] == "desktop" and d.loc["c", "state"] == "TX"
    # an earlier end: a cancellation after it is censored there
    d2 = sv.durations_from_events(ev, end=START + 8 * MS_PER_DAY).set_index("userId")
    assert d2.loc["a", "churned"] == 0 and d2.loc["a", "duration_days"] == pytest.approx(8.0)
    curve = sv.kaplan_meier(d.reset_index(), min_at_risk=1)
    assert curve.n_events == 1


def test_censored_users_count_as_at_risk_not_as_stayers(new_user_logs):
    small, _ = new_user_logs
    d = sv.durations_from_events(small)
    curve = sv.kaplan_meier(d)
    naive = 1 - d.loc[d["duration_days"] >= 0, "churned"].mean()  # censored counted as stayers
    assert curve.n_events == int(d["churned"].sum())
    # survival over the whole window is lower than "share who did not cancel"
    assert curve.at(min(100, curve.reach)).value < naive


# --------------------------------------------------------------------------------------------
# (d) snapshot tables with a duration column
# --------------------------------------------------------------------------------------------

def test_snapshot_with_duration_column_recovers_exponential_median():
    rate = 0.02
    tab = _table(4000, 3, beta={}, rate=rate, follow=200.0)
    tab = tab.rename(columns={"duration_days": "tenure", "churned": "is_churned", "userId": "id"})
    tab["plan"] = np.where(np.arange(len(tab)) % 2, "Free", "Premium")
    d = sv.durations_from_table(tab, duration_col="tenure", event_col="is_churned", id_col="id")
    assert list(d.columns[:4]) == ["userId", "duration_days", "churned", "entry_days"]
    assert "plan" in d.columns
    curve = sv.kaplan_meier(d)
    assert curve.median.covers(np.log(2) / rate), curve.median
    comp = sv.compare_cohorts(d, "plan")
    assert set(comp.curves) == {"Free", "Premium"} and not bool(comp.overall["significant"])


def test_durations_for_follows_the_kind_of_data():
    from types import SimpleNamespace

    tab = pd.DataFrame({"id": ["a", "b"], "tenure": [3.0, 5.0], "y": [0, 1]})
    snap = SimpleNamespace(table=tab)
    assert sv.durations_for(snap, "snapshot", label_col="y", id_col="id") is None  # no tenure: no durations
    d = sv.durations_for(snap, "snapshot", duration_col="tenure", label_col="y", id_col="id")
    pd.testing.assert_frame_equal(d, sv.durations_from_table(tab, duration_col="tenure", event_col="y", id_col="id"))
    ev = simulate_events(40, 20, seed=1)
    pd.testing.assert_frame_equal(sv.durations_for(SimpleNamespace(events=ev), "events"), sv.durations_from_events(ev))


def test_snapshot_bad_columns_are_named():
    tab = pd.DataFrame({"id": [1, 2, 3], "tenure": [3.0, -1.0, 2.0], "y": [0, 1, 0]})
    with pytest.raises(DataValidationError) as e:
        sv.durations_from_table(tab, duration_col="tenure", event_col="y", id_col="id")
    assert e.value.column == "tenure" and e.value.line == 2
    tab["tenure"] = 1.0
    tab["y"] = ["0", "maybe", "1"]
    with pytest.raises(DataValidationError) as e:
        sv.durations_from_table(tab, duration_col="tenure", event_col="y", id_col="id")
    assert e.value.column == "y" and e.value.line == 2
    with pytest.raises(DataValidationError):
        sv.durations_from_table(tab, duration_col="months", event_col="y")


def test_real_mini_table_tenure(mini_user_features):
    tab = pd.read_csv(mini_user_features)
    d = sv.durations_from_table(tab, duration_col="tenure_days", event_col="churn", id_col="userId")
    curve = sv.kaplan_meier(d)
    assert curve.n_users == 225 and curve.n_events == 52
    assert (curve.table["at_risk"].iloc[1:-1] >= 20).all()
    comp = sv.compare_cohorts(d, "gender")
    assert set(comp.curves) <= {"F", "M"} and len(comp.tests) == 1


# --------------------------------------------------------------------------------------------
# (e) the proportional-hazards check
# --------------------------------------------------------------------------------------------

def test_ph_test_quiet_on_proportional_covariates():
    tab = _table(2000, 4, beta={"z": 0.5, "x": 0.4, "noise": 0.0}, binary=("x",))
    res = sv.fit_cox(tab, features=["z", "x", "noise"])
    assert res.ph_ok and res.strategy == "as is" and res.ph_failing_first == []
    assert set(res.ph_test["feature"]) == {"z", "x", "noise", "GLOBAL"}


def test_ph_test_fires_and_stratifies_a_categorical_covariate():
    tab = _table(2000, 5, beta={"z": 0.5}, nonprop={"x": 1.2}, binary=("x",))
    res = sv.fit_cox(tab, features=["z", "x"])
    assert res.ph_failing_first == ["x"]
    assert res.strategy == "stratified by x" and res.strata == ["x"] and res.ph_ok
    assert res.features == ["z"] and "stratified" in res.dropped["x"]
    hr = res.hazard_ratios.set_index("feature")
    assert hr.loc["z", "low"] ** (1 / hr.loc["z", "sd"]) <= np.exp(0.5) <= hr.loc["z", "high"] ** (1 / hr.loc["z", "sd"])


def test_ph_test_fires_on_a_continuous_covariate_and_says_so():
    tab = _table(2000, 6, beta={"z": 0.5}, nonprop={"w": 0.8})
    res = sv.fit_cox(tab, features=["z", "w"])
    assert "w" in res.ph_failing and "z" not in res.ph_failing
    assert res.strategy == "assumption fails: said so" and not res.ph_ok
    assert any("w" in n for n in res.notes)
    rho = res.ph_test.set_index("feature").loc["w", "rho"]
    assert rho < 0  # the effect of w weakens then reverses with time


def test_cox_drops_constant_and_collinear_columns():
    tab = _table(800, 7, beta={"z": 0.5})
    tab["const"] = 3.0
    tab["z_twice"] = 2 * tab["z"] + 1
    tab["name"] = "a"
    res = sv.fit_cox(tab, features=["z", "const", "z_twice", "name"])
    assert res.features == ["z"]
    assert res.dropped["const"] == "constant"
    assert res.dropped["z_twice"].startswith("collinear")
    assert res.dropped["name"].startswith("not numeric")


# --------------------------------------------------------------------------------------------
# (f) too-small cohorts and the at-risk cut
# --------------------------------------------------------------------------------------------

def test_too_small_cohorts_named_and_curves_cut_at_min_at_risk():
    tab = _table(400, 8, beta={}, rate=0.05, follow=60.0)
    tab["cohort"] = ["A"] * 220 + ["B"] * 170 + ["C"] * 10
    comp = sv.compare_cohorts(tab, "cohort", min_users=30, min_at_risk=25)
    assert comp.too_small == {"C": 10}
    assert set(comp.curves) == {"A", "B"}
    assert not comp.tests["test"].str.contains("C").any()
    for c in comp.curves.values():
        t = c.table
        assert (t["at_risk"].iloc[:-1] >= 25).all()
        assert t["time"].max() == c.reach
        assert np.isnan(c.at(c.reach + 0.01).value) and np.isfinite(c.at(c.reach).value)
        assert np.isnan(c.survival(np.array([c.reach + 1.0]))[0])
        # nobody beyond the reach is drawn: fewer than 25 users are at risk just after it
        after = ((tab.loc[tab["cohort"] == c.label, "duration_days"]) > c.reach).sum()
        assert after < 25
    loose = sv.kaplan_meier(tab, min_at_risk=5)
    strict = sv.kaplan_meier(tab, min_at_risk=100)
    assert strict.reach < loose.reach


def test_median_not_reached_is_none():
    tab = _table(500, 9, beta={}, rate=0.005, follow=40.0)  # ~15% leave within 40 days
    curve = sv.kaplan_meier(tab)
    assert curve.median is None
    assert curve.at(10).value > 0.9


# --------------------------------------------------------------------------------------------
# concordance, expected retention, the observation table
# --------------------------------------------------------------------------------------------

def test_concordance_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    n = 120
    time = np.round(rng.exponential(10, n))  # ties in time
    event = rng.integers(0, 2, n)
    risk = np.round(rng.standard_normal(n), 1)  # ties in risk
    num = den = 0.0
    for i, j in itertools.permutations(range(n), 2):
        if event[i] == 1 and time[i] < time[j]:
            den += 1
            num += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    assert sv.concordance_index(time, event, risk) == pytest.approx(num / den)
    assert sv.concordance_index(time, event, -time) == pytest.approx(1.0)
    iv = sv.concordance_interval(time, event, risk, n_boot=100, seed=1)
    assert iv.low <= iv.value <= iv.high


def test_expected_retention_matches_memoryless_truth():
    rate = 0.01  # exponential: S(t+h)/S(t) = exp(-rate h) whatever the tenure
    tab = _table(3000, 10, beta={}, rate=rate, follow=300.0)
    tab["level_end"] = np.where(np.arange(len(tab)) % 3 == 0, "paid", "free")
    out = sv.expected_retention(tab, horizons=(30, 60, 90), n_boot=100, seed=0)
    assert set(out["group"]) == {"all", "paying"}
    for _, row in out.iterrows():
        assert row["share_low"] <= np.exp(-rate * row["horizon"]) <= row["share_high"], row.to_dict()
        assert row["users"] == row["estimable"] + row["not_estimable"]
        assert (row["reason"] == "") == (row["not_estimable"] == 0)
    # a horizon past every user's reach cannot be estimated: NaN with a reason
    far = sv.expected_retention(tab, horizons=(10_000,), n_boot=10)
    assert far["expected"].isna().all() and far["reason"].str.contains("cannot be estimated").all()


def test_observation_table_uses_only_the_past(two_arm_log):
    ev = two_arm_log
    as_of = START + 45 * MS_PER_DAY
    tab = sv.observation_table(ev, as_of)
    feats = user_features(ev.loc[ev["ts"] < as_of], as_of)
    cancelled_before = set(ev.loc[(ev["page"] == CHURN_PAGE) & (ev["ts"] < as_of), "userId"])
    assert not cancelled_before & set(tab["userId"])
    merged = tab.merge(feats, on="userId", suffixes=("", "_past"))
    assert len(merged) == len(tab)
    pd.testing.assert_series_equal(merged["events_30d"], merged["events_30d_past"], check_names=False)
    assert (tab["duration_days"] > 0).all()
    end = ev["ts"].max()
    cens = tab["churned"] == 0
    assert np.allclose(tab.loc[cens, "duration_days"], (end - as_of) / MS_PER_DAY)


def test_observation_table_accepts_precomputed_features(two_arm_log):
    as_of = START + 45 * MS_PER_DAY
    feats = user_features(two_arm_log, [as_of, as_of + 7 * MS_PER_DAY])
    a = sv.observation_table(two_arm_log, as_of)
    b = sv.observation_table(two_arm_log, as_of, features=feats)
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------------------------
# Conditional start: too few users at risk at day 0 (nearly everyone registered before the log)
# --------------------------------------------------------------------------------------------

def _true_conditional_survival(events: pd.DataFrame, t0: float, day: float) -> float:
    """P(T > day | T > t0) as a plain proportion from the simulator's own cancellation times: among
    the users already seen by tenure ``t0``, still customers then, and followed up to ``day``."""
    u = events.loc[events["userId"] != ""]
    reg = u.groupby("userId")["registration"].min()
    first = u.groupby("userId")["ts"].min().reindex(reg.index)
    canc = u.loc[u["page"] == CHURN_PAGE].groupby("userId")["ts"].min().reindex(reg.index)
    t = ((canc - reg) / MS_PER_DAY).to_numpy()
    entry = ((first - reg) / MS_PER_DAY).to_numpy()
    follow = ((u["ts"].max() - reg) / MS_PER_DAY).to_numpy()
    m = (entry <= t0) & ~(t <= t0) & (follow >= day)
    assert m.sum() >= 200  # the truth is a proportion over enough users
    return float(np.mean(~(t[m] <= day)))


@pytest.fixture(scope="module")
def registered_before_logs():
    """The CI-size default's design (300 users x 60 days, 4% registering inside the log) with short
    sessions, and an 8,000-user run of the same service for the truth."""
    cfg = SimulatorConfig(**LIGHT)
    return simulate_events(300, 60, seed=7, config=cfg), simulate_events(8000, 60, seed=101, config=cfg)


def test_curve_starts_where_enough_users_are_at_risk_and_is_conditional(registered_before_logs):
    small, big = registered_before_logs
    d = sv.durations_from_events(small)
    assert (d["entry_days"] > 0).mean() > 0.9
    ent, dur = d["entry_days"].to_numpy(), d["duration_days"].to_numpy()
    assert ((ent <= 0) & (dur > 0)).sum() < 20  # too few at risk on day 0
    curve = sv.kaplan_meier(d)
    t0 = curve.start
    assert t0 > 0 and curve.conditional and curve.reach > t0 + 60
    assert curve.table["time"].iloc[0] == t0 and curve.table["survival"].iloc[0] == 1.0
    assert curve.table["at_risk"].iloc[0] == ((ent <= t0) & (dur > t0)).sum() >= 20
    # just before t0 fewer than 20 users were at risk: t0 is the first tenure with enough
    before = np.nextafter(t0, 0)
    assert ((ent <= before) & (dur > before)).sum() < 20
    assert np.isnan(curve.at(t0 / 2).value) and np.isnan(curve.survival(np.array([t0 / 2]))[0])
    assert curve.median is not None and curve.median.value > t0
    # the conditional survival covers the truth, P(T > t0 + k | T > t0), from the larger run
    for k in (20, 30):
        truth = _true_conditional_survival(big, t0, t0 + k)
        iv = curve.at(t0 + k)
        assert iv.covers(truth), (k, iv, truth)
        assert iv.value < 1.0 or truth > 0.95


def test_conditional_at_given_matches_the_ratio(registered_before_logs):
    curve = sv.kaplan_meier(sv.durations_from_events(registered_before_logs[0]))
    g, x = curve.start + 40, curve.start + 120
    iv = curve.at(x, given=g)
    assert iv.value == pytest.approx(curve.at(x).value / curve.at(g).value)
    assert iv.low <= iv.value <= iv.high
    assert np.isnan(curve.at(x, given=curve.start / 2).value)  # before the curve starts: not estimated


def test_curves_that_start_at_zero_are_unchanged(new_user_logs):
    """Many in-log registrations: the curve starts at day 0 and is the plain product-limit fit, row for
    row (the table before the conditional start was added)."""
    from statsmodels.duration.survfunc import SurvfuncRight
    d = sv.durations_from_events(new_user_logs[0])
    curve = sv.kaplan_meier(d)
    assert curve.start == 0 and not curve.conditional
    sf = SurvfuncRight(d["duration_days"].to_numpy(), d["churned"].to_numpy())
    keep = np.asarray(sf.surv_times) <= curve.reach
    t = curve.table
    assert t["time"].iloc[0] == 0.0 and t["time"].iloc[-1] == curve.reach
    np.testing.assert_array_equal(t["time"].to_numpy()[1:-1], np.asarray(sf.surv_times)[keep])
    np.testing.assert_array_equal(t["survival"].to_numpy()[1:-1], np.asarray(sf.surv_prob)[keep])
    np.testing.assert_array_equal(t["at_risk"].to_numpy()[1:-1], np.asarray(sf.n_risk)[keep])
    assert curve.median.value == pytest.approx(sf.quantile(0.5))


def test_expected_retention_counts_users_below_the_start_as_not_estimable(registered_before_logs):
    d = sv.durations_from_events(registered_before_logs[0])
    t0 = sv.kaplan_meier(d).start
    # a current user at tenure t0/2 needs S(t0/2), which is not estimated
    young = d.loc[d["churned"] == 0].iloc[[0]].copy()
    young["userId"], young["duration_days"], young["entry_days"] = "young", t0 / 2, 0.0
    young["last_ts"] = d["stop"].max()
    er = sv.expected_retention(pd.concat([d, young], ignore_index=True), horizons=(30,), n_boot=20,
                               active_only=False)
    row = er.loc[er["group"] == "all"].iloc[0]
    assert row["start"] == pytest.approx(t0)
    assert row["not_estimable"] >= 1 and f"less than {t0:.0f} days" in row["reason"]
    assert 0 < row["share_low"] <= row["share"] <= row["share_high"] <= 1
    # the same users without the young one: one fewer not estimable
    er0 = sv.expected_retention(d, horizons=(30,), n_boot=20, active_only=False)
    assert int(er0.loc[er0["group"] == "all", "not_estimable"].iloc[0]) == int(row["not_estimable"]) - 1
