"""Exploratory data analysis: the numbers and figures of ``notebooks/01_eda.ipynb``.

Every figure's title states its finding, computed from the data (never typed in by hand), so the
stakeholder report reads correctly for whatever log or table it runs on.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats

from churnlib.labels import cancellation_labels
from churnlib.load import DataQuality
from churnlib.plotting import CLASS_PALETTE
from churnlib.schema import LABEL_PAGES, MS_PER_DAY

__all__ = ["Rate", "churn_rate", "churn_statement", "compare_groups", "daily_activity", "data_quality_table",
           "log_overview", "page_mix",
           "plot_category_churn", "plot_daily_activity", "plot_group_distributions", "plot_page_mix",
           "snapshot_overview", "strongest_correlation", "user_activity"]



@dataclass(frozen=True)
class Rate:
    """A proportion with its 95% Wilson interval."""

    count: int
    total: int

    @property
    def value(self) -> float:
        return self.count / self.total if self.total else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        if not self.total:
            return (float("nan"), float("nan"))
        ci = stats.binomtest(self.count, self.total).proportion_ci(confidence_level=0.95, method="wilson")
        return (float(ci.low), float(ci.high))

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{self.value:.1%} (95% CI {lo:.1%}–{hi:.1%}; {self.count:,} of {self.total:,})"


def churn_rate(labels: pd.Series) -> Rate:
    """Share of users with label 1, with a Wilson interval."""
    labels = pd.Series(labels).astype(int)
    return Rate(int(labels.sum()), int(labels.size))


def churn_statement(rate: Rate) -> str:
    """One plain sentence (Markdown) on the churn rate, saying so when a class is missing."""
    if rate.total == 0:
        return "The data holds no users: nothing to report on churn."
    if rate.count == 0:
        return (f"**No user churned** in this data (0 of {rate.total:,}; 95% CI up to {rate.interval[1]:.1%}): "
                "churn cannot be described or modelled from it.")
    if rate.count == rate.total:
        return f"**Every user churned** ({rate.total:,} of {rate.total:,}): there is no one to compare them with."
    return f"**{rate}** of users churned."


def data_quality_table(quality: DataQuality, not_features: dict[str, str] | None = None) -> pd.DataFrame:
    """The data-quality account as one table: kept, dropped, repaired, notes and non-feature columns.

    Parameters
    ----------
    quality : DataQuality
        The loader's account (``load_events(...).quality`` or ``load_snapshot(...).quality``).
    not_features : dict of str to str, optional
        ``SnapshotTable.not_features``: column -> why it must not become a feature.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome`` (``kept``, ``dropped``, ``repaired``, ``not a feature``, ``note``),
        ``reason``, ``rows`` (nullable integer; empty for notes and columns), ``share_of_read``
        and ``first_at`` (where the reason first happened, e.g. ``"line 17, column 'age'"``).
        Blank strings, numbers stored as text and label spellings appear as repairs under their
        own reasons.
    """
    out = quality.table()
    out["first_at"] = [quality.locations.get(r, "") if o != "kept" else "" for o, r in
                       zip(out["outcome"], out["reason"])]
    extra = [{"outcome": "not a feature", "reason": f"{col}: {why}", "first_at": ""}
             for col, why in (not_features or {}).items()]
    listed = {f"column {c!r} is not a feature: {w}" for c, w in (not_features or {}).items()}
    extra += [{"outcome": "note", "reason": n, "first_at": ""} for n in quality.notes if n not in listed]
    if extra:
        out = pd.concat([out, pd.DataFrame(extra)], ignore_index=True)
    out["rows"] = out["rows"].astype("Int64")
    return out[["outcome", "reason", "rows", "share_of_read", "first_at"]]


def log_overview(events: pd.DataFrame) -> pd.Series:
    """Size and span of a cleaned event log."""
    first, last = pd.to_datetime(events["ts"].min(), unit="ms"), pd.to_datetime(events["ts"].max(), unit="ms")
    return pd.Series({
        "events": len(events),
        "users": events["userId"].nunique(),
        "sessions": events[["userId", "sessionId"]].drop_duplicates().shape[0],
        "first event": first.strftime("%Y-%m-%d"),
        "last event": last.strftime("%Y-%m-%d"),
        "days covered": round((events["ts"].max() - events["ts"].min()) / MS_PER_DAY, 1),
    })


def page_mix(events: pd.DataFrame) -> pd.DataFrame:
    """Events per page with their share of the log, most frequent first."""
    counts = events["page"].value_counts()
    return pd.DataFrame({"events": counts, "share": counts / counts.sum()}).rename_axis("page")


def daily_activity(events: pd.DataFrame, complete_days_only: bool = True) -> pd.DataFrame:
    """Per UTC day: events, songs played and active users (DuckDB, one pass).

    With ``complete_days_only``, a first or last day that the log covers for less than 23 hours is
    left out: a log that ends at 00:40 would otherwise show a collapse that is only the cut-off.
    """
    daily = duckdb.sql(
        """
        SELECT CAST(to_timestamp(ts / 1000) AS DATE) AS day,
               count(*) AS events,
               count(*) FILTER (WHERE page = 'NextSong') AS songs,
               count(DISTINCT userId) AS active_users
        FROM events GROUP BY day ORDER BY day
        """
    ).df().set_index("day")
    if complete_days_only and len(daily) > 2:
        hour = 3_600_000
        first, last = int(events["ts"].min()), int(events["ts"].max())
        if first % MS_PER_DAY > hour:  # the log starts after 01:00 on its first day
            daily = daily.iloc[1:]
        if last % MS_PER_DAY < MS_PER_DAY - hour:  # ... or stops before 23:00 on its last day
            daily = daily.iloc[:-1]
    return daily


def user_activity(events: pd.DataFrame) -> pd.DataFrame:
    """Per-user activity, normalised by the days each user was observed, joined to the churn label.

    Churned users leave early, so raw totals would mostly measure how long they stayed; rates per
    active day and per song compare like with like. Label pages are excluded from every count.
    """
    label_pages = ", ".join(f"'{p}'" for p in sorted(LABEL_PAGES))
    per_user = duckdb.sql(
        f"""
        SELECT userId,
               count(*) AS events,
               count(DISTINCT sessionId) AS sessions,
               count(*) FILTER (WHERE page = 'NextSong') AS songs,
               count(DISTINCT CAST(to_timestamp(ts / 1000) AS DATE)) AS active_days,
               count(*) FILTER (WHERE page = 'Thumbs Down') AS thumbs_down,
               count(*) FILTER (WHERE page = 'Thumbs Up') AS thumbs_up,
               count(*) FILTER (WHERE page = 'Roll Advert') AS adverts,
               count(*) FILTER (WHERE page = 'Help') AS help,
               count(*) FILTER (WHERE page = 'Error') AS errors,
               bool_or(level = 'paid') AS ever_paid
        FROM events WHERE page NOT IN ({label_pages})
        GROUP BY userId
        """
    ).df()
    songs = per_user["songs"].where(per_user["songs"] > 0)
    per_user = per_user.assign(
        songs_per_active_day=per_user["songs"] / per_user["active_days"],
        songs_per_session=per_user["songs"] / per_user["sessions"],
        thumbs_down_per_100_songs=100 * per_user["thumbs_down"] / songs,
        adverts_per_100_songs=100 * per_user["adverts"] / songs,
        help_per_100_songs=100 * per_user["help"] / songs,
    )
    labels = cancellation_labels(events)[["userId", "churned"]]
    out = per_user.merge(labels, on="userId", how="left")
    out["churned"] = out["churned"].fillna(0).astype(int)
    out["group"] = np.where(out["churned"] == 1, "churned", "retained")
    return out.sort_values("userId").reset_index(drop=True)


def compare_groups(table: pd.DataFrame, columns: list[str], label_col: str = "churned") -> pd.DataFrame:
    """Churned vs retained medians per column, with a Mann–Whitney test and its rank-biserial effect size."""
    rows = []
    for col in columns:
        a = table.loc[table[label_col] == 1, col].dropna()
        b = table.loc[table[label_col] == 0, col].dropna()
        if len(a) and len(b):
            test = stats.mannwhitneyu(a, b, alternative="two-sided")
            effect = 2 * test.statistic / (len(a) * len(b)) - 1  # rank-biserial: P(a>b) - P(a<b)
            p = test.pvalue
        else:
            effect = p = float("nan")
        rows.append({"metric": col, "median churned": a.median(), "median retained": b.median(),
                     "effect (rank-biserial)": effect, "p-value": p, "n churned": len(a), "n retained": len(b)})
    return pd.DataFrame(rows).set_index("metric")


# ---------------------------------------------------------------------------------------- figures
def plot_page_mix(mix: pd.DataFrame) -> plt.Figure:
    """Horizontal bars of page shares (log scale, since NextSong dwarfs the rest)."""
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(mix) + 1.2))
    sns.barplot(x=mix["share"], y=mix.index, ax=ax, color="#4C72B0")
    ax.set_xscale("log")
    ax.set_xlabel("share of events (log scale)")
    ax.set_ylabel("")
    top = mix.index[0]
    ax.set_title(f"{top} is {mix['share'].iloc[0]:.0%} of all events; {len(mix) - 1} other pages share the rest")
    return fig


def plot_daily_activity(daily: pd.DataFrame) -> plt.Figure:
    """Daily active users and songs per active user over the log."""
    fig, ax = plt.subplots()
    ax.plot(daily.index, daily["active_users"], color="#4C72B0", label="active users")
    ax.set_ylabel("active users per day")
    ax2 = ax.twinx()
    ax2.plot(daily.index, daily["songs"] / daily["active_users"].clip(lower=1), color="#DD8452", alpha=0.8,
             label="songs per active user")
    ax2.set_ylabel("songs per active user")
    ax2.grid(False)
    week = min(7, len(daily))
    first, last = daily["active_users"].iloc[:week].mean(), daily["active_users"].iloc[-week:].mean()
    change = (last - first) / first if first else float("nan")
    direction = "grew" if change > 0.05 else "fell" if change < -0.05 else "held steady"
    ax.set_title(f"Daily active users {direction}: {first:,.0f} in the first week, {last:,.0f} in the last ({change:+.0%})")
    fig.autofmt_xdate()
    fig.legend(loc="lower left", bbox_to_anchor=(0.1, 0.15))
    return fig


def plot_group_distributions(table: pd.DataFrame, columns: list[str], comparison: pd.DataFrame,
                             group_col: str = "group") -> plt.Figure:
    """Box plots per metric, churned vs retained, titled with the largest difference found."""
    n = len(columns)
    ncols = min(3, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.2 * nrows), squeeze=False)
    for ax, col in zip(axes.flat, columns):
        sns.boxplot(data=table, x=group_col, y=col, hue=group_col, palette=CLASS_PALETTE, ax=ax,
                    order=["retained", "churned"], showfliers=False, legend=False)
        eff = comparison.loc[col, "effect (rank-biserial)"]
        ax.set_title(f"{col}\n(effect {eff:+.2f})", fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    effects = comparison["effect (rank-biserial)"].abs()
    if effects.isna().all():  # one group is empty: nothing to compare
        present = ", ".join(sorted(table[group_col].dropna().unique())) or "no"
        fig.suptitle(f"No comparison possible: the data holds only {present} users", fontweight="bold")
        fig.tight_layout()
        return fig
    lead = effects.idxmax()
    row = comparison.loc[lead]
    more = "higher" if row["median churned"] > row["median retained"] else "lower"
    if abs(row["effect (rank-biserial)"]) < 0.1:
        title = f"Churned and retained users look alike: the largest difference ({lead}) has effect {row['effect (rank-biserial)']:+.2f}"
    else:
        title = (f"Churned users have {more} {lead}: median {row['median churned']:.3g} vs {row['median retained']:.3g}")
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def plot_category_churn(table: pd.DataFrame, column: str, label_col: str) -> plt.Figure:
    """Churn rate per category of ``column`` with 95% Wilson intervals."""
    rows = []
    for value, grp in table.groupby(column, observed=True):
        r = churn_rate(grp[label_col])
        lo, hi = r.interval
        rows.append({"category": str(value), "rate": r.value, "lo": lo, "hi": hi, "n": r.total})
    df = pd.DataFrame(rows).sort_values("rate")
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(df) + 1.3))
    ax.errorbar(df["rate"], df["category"], xerr=[df["rate"] - df["lo"], df["hi"] - df["rate"]], fmt="o", capsize=3)
    overall = table[label_col].mean()
    ax.axvline(overall, color="grey", ls="--", lw=1)
    ax.set_xlabel("churn rate (95% CI)")
    overlap = (df["lo"] <= overall).all() and (df["hi"] >= overall).all()
    ax.set_title(
        f"Churn by {column}: every interval covers the overall {overall:.0%}" if overlap
        else f"Churn by {column} ranges from {df['rate'].min():.0%} to {df['rate'].max():.0%}"
    )
    return fig


def snapshot_overview(table: pd.DataFrame, id_col: str, label_col: str) -> tuple[list[str], list[str]]:
    """Numeric and categorical feature columns of a snapshot table (id and label excluded)."""
    features = table.drop(columns=[id_col, label_col])
    numeric = features.select_dtypes("number").columns.tolist()
    categorical = [c for c in features.columns if c not in numeric]
    return numeric, categorical


def strongest_correlation(table: pd.DataFrame, numeric: list[str], label_col: str) -> tuple[str, float]:
    """The numeric column most correlated (Pearson, absolute) with the label."""
    corr = table[numeric].corrwith(table[label_col].astype(float)).abs().sort_values(ascending=False)
    return str(corr.index[0]), float(corr.iloc[0])
