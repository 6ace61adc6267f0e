"""One representation of an estimate with its uncertainty, and the bootstrap that makes most of them.

:class:`Interval` (value, low, high, level) is what every metric table and sentence in churnlib
reports; its text form is ``"0.712 (0.690–0.735)"`` everywhere. Tables keep intervals as the columns
``value``/``low``/``high`` (one metric per row) or ``<name>``/``<name>_low``/``<name>_high``;
:meth:`Interval.from_row` reads either.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

__all__ = ["Interval", "bootstrap_sampler", "has_repeated_groups"]


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class Interval:
    """An estimate and its ``level`` (e.g. 95%) interval.

    Attributes
    ----------
    value, low, high : float
        Point estimate and interval bounds (NaN when unknown).
    level : float, default 0.95
        Coverage of the interval.
    """

    value: float
    low: float = float("nan")
    high: float = float("nan")
    level: float = 0.95

    def __post_init__(self) -> None:
        for name in ("value", "low", "high", "level"):
            object.__setattr__(self, name, _num(getattr(self, name)))

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def from_row(cls, row: Mapping[str, Any] | pd.Series, name: str | None = None,
                 level: float = 0.95) -> "Interval":
        """From ``value``/``low``/``high`` entries, or ``name``/``name_low``/``name_high`` when ``name``
        is given; a ``level`` entry, when present, wins over the argument."""
        get = row.get if hasattr(row, "get") else (lambda k, d=None: row[k])
        if name is None:
            keys = ("value", "low", "high")
        else:
            keys = (name, f"{name}_low", f"{name}_high")
        lvl = get("level", None) if name is None else None
        return cls(get(keys[0], float("nan")), get(keys[1], float("nan")), get(keys[2], float("nan")),
                   level if lvl is None else lvl)

    @classmethod
    def from_samples(cls, value: float, samples: np.ndarray, level: float = 0.95) -> "Interval":
        """``value`` with the percentile interval of bootstrap (or permutation) ``samples``."""
        s = np.asarray(samples, dtype=float)
        s = s[np.isfinite(s)]
        if not len(s):
            return cls(value, float("nan"), float("nan"), level)
        tail = round((1 - level) / 2 * 100, 10)  # 2.5, not 2.5000000000000022
        low, high = np.percentile(s, [tail, 100 - tail])
        return cls(value, float(low), float(high), level)

    @classmethod
    def from_value(cls, value: Any) -> "Interval | None":
        """An Interval from another representation: an Interval, a ``{"value", "low", "high"}`` mapping,
        a ``(value, low, high)`` sequence or a bare number; None when ``value`` is None."""
        if value is None or isinstance(value, Interval):
            return value
        if isinstance(value, Mapping) or isinstance(value, pd.Series):
            return cls.from_row(value)
        if isinstance(value, (list, tuple, np.ndarray)):
            vals = list(value) + [float("nan")] * (3 - len(value))
            return cls(vals[0], vals[1], vals[2])
        return cls(value)

    # ---- questions ------------------------------------------------------------------------
    @property
    def known(self) -> bool:
        """Both bounds are finite numbers."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    def above(self, x: float) -> bool:
        """The whole interval lies above ``x``."""
        return self.known and self.low > x

    def below(self, x: float) -> bool:
        """The whole interval lies below ``x``."""
        return self.known and self.high < x

    def covers(self, x: float) -> bool:
        """``x`` lies inside the interval (bounds included)."""
        return self.known and self.low <= x <= self.high

    def overlaps(self, other: "Interval") -> bool:
        """The two intervals share at least one point."""
        return self.known and other.known and self.low <= other.high and other.low <= self.high

    # ---- forms ----------------------------------------------------------------------------
    def text(self, digits: int = 3, *, signed: bool = False, percent: bool = False, unit: str = "") -> str:
        """``"0.712 (0.690–0.735)"``; ``signed`` writes ``+0.012 (-0.004 to +0.030)`` for differences,
        ``percent`` writes ``21.6% (19.8–23.4%)``, ``unit="×"`` writes ``5.4× (4.3–6.3×)``; the bounds
        are left out when unknown."""
        scale, suffix = (100.0, "%") if percent else (1.0, unit)

        def f(x: float) -> str:
            if not math.isfinite(x):
                return "n/a"
            return f"{x * scale:+.{digits}f}" if signed else f"{x * scale:.{digits}f}"

        head = f(self.value) + ("" if signed else suffix)
        if not self.known:
            return head + (suffix if signed else "")
        if signed:
            return f"{head}{suffix} ({f(self.low)}{suffix} to {f(self.high)}{suffix})"
        return f"{head} ({f(self.low)}–{f(self.high)}{suffix})"

    def __str__(self) -> str:
        return self.text()

    def __format__(self, spec: str) -> str:
        if not spec:
            return self.text()
        digits = int(spec.rstrip("f").lstrip(".")) if spec.rstrip("f").lstrip(".").isdigit() else 3
        return self.text(digits)

    def as_tuple(self) -> tuple[float, float, float]:
        """``(value, low, high)``."""
        return (self.value, self.low, self.high)

    def to_dict(self) -> dict[str, float | None]:
        """``{"value", "low", "high", "level"}`` with non-finite numbers as None (JSON-ready)."""
        return {k: (v if math.isfinite(v) else None)
                for k, v in (("value", self.value), ("low", self.low), ("high", self.high),
                             ("level", self.level))}


# --------------------------------------------------------------------------------------------
# The bootstrap over users
# --------------------------------------------------------------------------------------------

def has_repeated_groups(groups: np.ndarray | None) -> bool:
    """True when some group (user) appears on more than one row."""
    return groups is not None and len(pd.unique(np.asarray(groups))) < len(groups)


def bootstrap_sampler(groups: np.ndarray | None, n: int, rng: np.random.Generator) -> Callable[[], np.ndarray]:
    """A function drawing one bootstrap sample of row indices: whole users when a user has several
    rows (``groups``), else single rows."""
    if not has_repeated_groups(groups):
        return lambda: rng.integers(0, n, size=n)
    codes, uniques = pd.factorize(pd.Series(groups))
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(uniques)))
    sizes = np.bincount(codes, minlength=len(uniques))

    def draw() -> np.ndarray:
        pick = rng.integers(0, len(uniques), size=len(uniques))
        lens = sizes[pick]  # the picked users' rows, in pick order, built in one step
        ends = np.cumsum(lens)
        return order[np.repeat(starts[pick] - (ends - lens), lens) + np.arange(ends[-1])]
    return draw
