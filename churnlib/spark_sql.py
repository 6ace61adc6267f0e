"""The one place where churnlib's DuckDB SQL becomes Spark SQL.

churnlib's SQL (the feature definitions ``churnlib/sql/features.sql``, the label query of
:mod:`churnlib.spark_features`) is written once, in DuckDB's dialect, and DuckDB runs it as written.
Spark runs the translation that :func:`to_spark` makes with sqlglot (``read="duckdb"``,
``write="spark"``), plus the rules below, which sqlglot leaves to the caller because they are about
*types*, not syntax:

* **Numbers with a decimal point are doubles.** ``86400000.0`` is a DECIMAL literal in both engines,
  but DuckDB divides by a DECIMAL in DOUBLE arithmetic, while Spark divides in DECIMAL arithmetic and
  rounds the quotient to 6 decimal places. Every such literal becomes ``CAST(86400000.0 AS DOUBLE)``
  (the same value, exactly), so that Spark computes what DuckDB computes.
* **Parameters.** DuckDB's ``$as_of`` becomes Spark's named parameter marker ``:as_of``; bind it with
  ``spark.sql(text, args={"as_of": ...})``.
* **Three DuckDB functions sqlglot does not carry over** (the loader's cleaning query uses them) are
  first rewritten as DuckDB expressions of the same meaning that it does translate:
  ``epoch_ms(<timestamp>)`` (milliseconds of a timestamp; sqlglot reads ``epoch_ms`` as the inverse) ->
  ``date_diff('millisecond', TIMESTAMPTZ '1970-01-01 00:00:00', <timestamp>)``; ``isfinite(x)`` (no
  Spark function) -> ``(x BETWEEN -1.797...e308 AND 1.797...e308)`` (NaN and the infinities fall
  outside, NULL stays NULL); ``regexp_full_match(x, 'p')`` -> ``regexp_matches(x, '^(?:p)\\z')``.
* **Relations** can be renamed (``tables={"events": "churnlib_events_3"}``), so that a query runs on a
  uniquely named temporary view rather than on whatever ``events`` means in the session.

Everything else (``max_by``/``min_by``, ``median``, ``lag``/``lead``, ``least``/``greatest``,
``VALUES`` lists, ``instr``/``substr``, ``LIKE``, integer ``/`` giving a double) means the same in
both engines as used here; ``tests/test_spark_features.py`` checks the two engines' tables agree.
Translations are cached per (text, renames).
"""
from __future__ import annotations

import functools
import re
from typing import Mapping

import sqlglot
from sqlglot import exp

__all__ = ["STACK_SEPARATOR", "to_spark", "to_spark_stacked"]

_EPOCH_MS = re.compile(r"epoch_ms\((TRY_CAST\([^()]* AS TIMESTAMPTZ\))\)")
_FULL_MATCH = re.compile(r"regexp_full_match\(([^,]*?), '([^']*)'\)")
_MAX_DOUBLE = "1.7976931348623157e308"

#: Separator of ``<userId><sep><as_of ms>``, the per-(user, date) key of :func:`to_spark_stacked`.
STACK_SEPARATOR = "#"


def _double_literals(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Literal) and not node.is_string:
        text = node.this
        if any(ch in text for ch in ".eE"):
            return exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE"))
    return node


def _isfinite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "isfinite":
        (arg,) = node.expressions
        return exp.paren(exp.Between(this=arg.copy(), low=exp.Neg(this=exp.Literal.number(_MAX_DOUBLE)),
                                     high=exp.Literal.number(_MAX_DOUBLE)))
    return node


def _portable(sql: str) -> str:
    """The DuckDB functions sqlglot would mistranslate, rewritten in DuckDB terms it translates (module notes)."""
    sql = _EPOCH_MS.sub(r"date_diff('millisecond', TIMESTAMPTZ '1970-01-01 00:00:00', \1)", sql)
    return _FULL_MATCH.sub(lambda m: f"regexp_matches({m.group(1)}, '^(?:{m.group(2)})\\z')", sql)


def _stack_parameter(tree: exp.Expression, param: str, input_name: str) -> exp.Expression:
    """Replace each ``$param`` by the date carried in the key of the rows of its SELECT (see
    :func:`to_spark_stacked`)."""
    for node in list(tree.find_all(exp.Placeholder)):
        if node.name != param:
            continue
        select = node.find_ancestor(exp.Select)
        source = select.args.get("from_") if select is not None else None
        table = source.this if source is not None else None
        if not isinstance(table, exp.Table):
            raise ValueError(f"to_spark_stacked: ${param} is used in a SELECT without a table to read "
                             f"the date from: {select.sql(dialect='duckdb')[:200] if select else node}")
        if table.name == input_name:
            key = exp.column("userId")
        else:
            key = exp.column("user_id", table=table.alias_or_name)
        date = exp.Anonymous(this="substring_index",
                             expressions=[key, exp.Literal.string(STACK_SEPARATOR), exp.Literal.number(-1)])
        node.replace(exp.Cast(this=date, to=exp.DataType.build("BIGINT")))
    return tree


@functools.lru_cache(maxsize=64)
def _translate(sql: str, renames: tuple[tuple[str, str], ...], stacked: bool = False) -> str:
    mapping = dict(renames)
    statements = []
    for tree in sqlglot.parse(_portable(sql), read="duckdb"):
        if tree is None:
            continue
        tree = tree.transform(_isfinite).transform(_double_literals)
        if stacked:
            tree = _stack_parameter(tree, "as_of", "events")
        if mapping:
            ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
            for table in tree.find_all(exp.Table):
                if table.name in mapping and table.name not in ctes and not table.args.get("db"):
                    table.set("this", exp.to_identifier(mapping[table.name]))
        text = tree.sql(dialect="spark", pretty=True)
        for gone in ("epoch_ms(", "isfinite(", "regexp_full_match("):
            if gone in text.lower():
                raise ValueError(f"to_spark: {gone[:-1]} is left untranslated (a form the rewrite does not know)")
        statements.append(text)
    if len(statements) != 1:
        raise ValueError(f"to_spark: expected one SQL statement, got {len(statements)}")
    return statements[0]


def to_spark(sql: str, *, tables: Mapping[str, str] | None = None) -> str:
    """Translate one DuckDB SQL statement into Spark SQL.

    Parameters
    ----------
    sql : str
        One statement in DuckDB's dialect (comments allowed), parameters written ``$name``.
    tables : mapping of str to str, optional
        Relations to rename, e.g. ``{"events": "churnlib_events_1"}`` (names of CTEs are left alone).

    Returns
    -------
    str
        The Spark SQL text, parameters written ``:name`` (bind them with ``spark.sql(text, args=...)``);
        decimal literals cast to DOUBLE (see the module notes).

    Raises
    ------
    ValueError
        When ``sql`` holds no statement or more than one.
    sqlglot.errors.ParseError
        When sqlglot cannot parse ``sql``.
    """
    return _translate(sql, tuple(sorted((tables or {}).items())))


def to_spark_stacked(sql: str, *, tables: Mapping[str, str] | None = None) -> str:
    """Translate a per-user query with one ``$as_of`` into a Spark query over many dates at once.

    Spark pays a fixed cost per query stage, which for a small or medium log is most of the run; one
    query for all observation dates instead of one per date divides it by the number of dates. The
    query must follow the conventions of ``churnlib/sql/features.sql``: its input relation ``events``
    has a ``userId`` column, every later relation is keyed by ``user_id``, and ``$as_of`` appears only in
    SELECTs that read ``events`` or a relation with a ``user_id`` column. The caller stacks the input
    (one copy of each user's rows per date, ``userId`` rewritten to ``<userId>#<as_of ms>``, see
    :data:`STACK_SEPARATOR`), and each ``$as_of`` becomes the date read back from the key of the row at
    hand (``CAST(substring_index(<key>, '#', -1) AS BIGINT)``). Every group, window and join keyed by
    user is then keyed by (user, date), so the result holds one row per (user, date), keyed
    ``<userId>#<as_of ms>``: the rows of :func:`to_spark` run once per date.

    Parameters
    ----------
    sql : str
        One statement in DuckDB's dialect, as for :func:`to_spark`.
    tables : mapping of str to str, optional
        Relations to rename, as for :func:`to_spark`.

    Returns
    -------
    str
        The Spark SQL text (no ``:as_of`` parameter left).

    Raises
    ------
    ValueError
        When a ``$as_of`` stands in a SELECT that reads no table (its date cannot be known).
    """
    return _translate(sql, tuple(sorted((tables or {}).items())), True)
