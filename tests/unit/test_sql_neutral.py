"""Every SQL builder stays in the dialect-neutral subset: its Spark translation succeeds.

The builders are enumerated (every public `*_sql` function of `zige.engine.sql`, and of
`zige.engine.scale` when it exists), so a builder added later is covered without editing this
file. A builder whose arguments cannot be made up from its signature fails here: give it a
default or extend `_argument` below. Constructs outside the subset must raise `UnsupportedSql`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from datetime import date
from types import ModuleType
from typing import Any

import pytest

from zige.engine import sql
from zige.engine.dialect import SPACE_SEPARATORS, UnsupportedSql, java_regex, to_spark
from zige.engine.kinds import BUILTIN_KINDS, ROSTER_COLUMNS, FeedKind

AS_OF = date(2026, 11, 30)
BUILDER_MODULES = ("zige.engine.sql", "zige.engine.scale")
# Builders that are DuckDB's by design, each with the reason (they read files, not tables).
DUCKDB_ONLY = {
    "zige.engine.scale.store_scan_sql": "reads the Parquet store with DuckDB's read_parquet",
    "zige.engine.scale.floor_sql": "DuckDB's own scan floor for the benchmark",
    "zige.engine.scale.output_sql": "reads a written run's Parquet files with DuckDB's read_parquet",
}
# Builders of fragments (an open FROM, say) that only make sense inside another builder's query:
# each is translated as part of that one.
COVERED_BY = {"zige.engine.sql.fast_id_sql": "zige.engine.sql.stage_feed_keyed_sql"}


def _modules() -> list[ModuleType]:
    found = []
    for name in BUILDER_MODULES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError:
            continue  # scale.py arrives with issue 6 item 2
    return found


def builders(modules: list[ModuleType] | None = None) -> list[tuple[str, Callable[..., str]]]:
    """Every public `*_sql` function defined in the builder modules, by qualified name."""
    found: list[tuple[str, Callable[..., str]]] = []
    for module in modules if modules is not None else _modules():
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if name.endswith("_sql") and not name.startswith("_") and func.__module__ == module.__name__:
                found.append((f"{module.__name__}.{name}", func))
    return found


def _argument(name: str, annotation: str) -> Any:
    """A value for a required parameter, from its name and annotation."""
    if annotation == "date":
        return AS_OF
    if annotation in ("int", "int | str"):
        return 1
    if annotation == "str":
        return "raw_source" if name == "source" else f"c_{name}"
    if annotation == "dict[str, int]":
        return dict(sql.ALIVE_RANK)
    if annotation == "Sequence[str]":
        return ("rail", "app_auth")
    if annotation == "Sequence[FeedKind]":
        return BUILTIN_KINDS
    if annotation == "tuple[int, int]":
        return (19000101, 20261130)
    if annotation == "Mapping[str, str]":
        return {"乘车日期": "出行日期（乘车日期）"}
    raise TypeError(f"no test value for parameter {name}: {annotation}; extend _argument")


def calls(name: str, func: Callable[..., str]) -> Iterator[tuple[str, str]]:
    """(case id, SQL) for each way the builder is called: once, or once per feed kind."""
    signature = inspect.signature(func)
    required = {
        p.name: p.annotation for p in signature.parameters.values() if p.default is inspect.Parameter.empty
    }
    if "kind" in required:
        kinds: list[FeedKind | None] = list(BUILTIN_KINDS)
    else:
        kinds = [None]
    for kind in kinds:
        args: dict[str, Any] = {}
        for param, annotation in required.items():
            if param == "kind":
                args[param] = kind
            elif param == "present":
                columns = kind.columns if kind is not None else ROSTER_COLUMNS
                args[param] = [c.name for c in columns]
            else:
                args[param] = _argument(param, str(annotation))
        built: str | tuple[str, ...] = func(**args)
        case = f"{name}[{kind.code}]" if kind else name
        if isinstance(built, tuple):  # a builder of several expressions
            for i, part in enumerate(built):
                yield f"{case}[{i}]", part
        else:
            yield case, built


def as_query(text: str) -> str:
    """A builder's text as a whole query: fragments (an expression, a select list) are wrapped."""
    head = text.lstrip().split(None, 1)[0].upper()
    return text if head in ("SELECT", "WITH", "(") else f"SELECT {text} FROM t"


def _cases() -> list[Any]:
    cases = []
    for name, func in builders():
        if name in DUCKDB_ONLY or name in COVERED_BY:
            continue
        cases.append(pytest.param(name, func, id=name.rsplit(".", 1)[1]))
    return cases


def test_the_enumeration_finds_the_builders() -> None:
    names = {n for n, _ in builders()}
    assert {
        "zige.engine.sql.stage_feed_sql",
        "zige.engine.sql.decisions_sql",
        "zige.engine.sql.actions_sql",
    } <= names
    assert len(names) >= 30
    for part, whole in COVERED_BY.items():
        if part in names:
            assert whole in names, f"{part} is covered by {whole}, which no longer exists"
    for exempt in DUCKDB_ONLY:  # an exemption for a builder that no longer exists is stale
        module = exempt.rsplit(".", 1)[0]
        if module in {m.__name__ for m in _modules()}:
            assert exempt in names, exempt


@pytest.mark.parametrize(("name", "func"), _cases())
def test_every_builder_translates_to_spark(name: str, func: Callable[..., str]) -> None:
    for case, text in calls(name, func):
        spark = to_spark(as_query(text))
        assert spark.strip(), case
        # DuckDB-only spellings never survive into the Spark text.
        for duckdb_only in ("REGEXP_FULL_MATCH", "TRY_STRPTIME", "INTERVAL", " // ", '"'):
            assert duckdb_only not in spark.upper(), (case, duckdb_only)


def test_a_builder_added_later_is_enumerated_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    def later_sql(col: str) -> str:
        return f"SELECT list_transform({col}, x -> x + 1) FROM t"

    later_sql.__module__ = sql.__name__
    monkeypatch.setattr(sql, "later_sql", later_sql, raising=False)
    found = dict(builders([sql]))
    assert "zige.engine.sql.later_sql" in found
    ((_, text),) = calls("later_sql", found["zige.engine.sql.later_sql"])
    with pytest.raises(UnsupportedSql):
        to_spark(as_query(text))


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("SELECT list_transform(a, x -> x + 1) FROM t", "(?i)list_transform"),
        ("SELECT strftime(d, '%Y') FROM t", "StrToTime|TimeToStr|strftime"),
        ("SELECT mode(a) FROM t", "Mode"),
        ("SELECT regexp_replace(a, 'x', 'y') FROM t", "first match"),
        ("SELECT regexp_replace(a, 'x', 'y', 'i') FROM t", "first match"),
        ("SELECT regexp_replace(a, '(x)', '\\1', 'g') FROM t", "back-references"),
        ("SELECT regexp_full_match(a, '[[:digit:]]') FROM t", "POSIX"),
        ("SELECT regexp_full_match(a, '[a&&b]') FROM t", "intersection"),
        ("SELECT regexp_full_match(a, b) FROM t", "literal"),
        ("SELECT CAST(try_strptime(a, '%d/%m/%Y') AS DATE) FROM t", "no checked Spark equivalent"),
        ("SELECT try_strptime(a, '%Y%m%d') FROM t", "only as CAST"),
        ("SELECT d + INTERVAL 3 DAY FROM t", "INTERVAL"),
        ("SELECT DATE '2026-01-01' - d FROM t", "days as an integer"),
        ("SELECT CAST(a AS TIMESTAMP) FROM t", "cast to TIMESTAMP"),
        ("SELECT a FROM t ASOF JOIN u ON t.d >= u.d", "ASOF"),
        ("SELECT a FROM t POSITIONAL JOIN u", "POSITIONAL"),
        ("SELECT a FROM t QUALIFY row_number() OVER (ORDER BY a) = 1", "Qualify"),
        ("SELECT * EXCLUDE (a) FROM t", "subset"),
        ("SELECT a FROM t WHERE", "parseable"),
    ],
)
def test_a_construct_outside_the_subset_is_an_error(query: str, complaint: str) -> None:
    with pytest.raises(UnsupportedSql, match=complaint):
        to_spark(query)


def test_duckdb_meanings_are_spelled_out_for_spark() -> None:
    trimmed = to_spark("SELECT trim(a) FROM t")
    assert all(ch in trimmed for ch in SPACE_SEPARATORS)
    assert "TRIM(" in trimmed and " FROM a)" in trimmed
    assert to_spark("SELECT regexp_full_match(a, '[0-9]{3}') FROM t") == (
        "SELECT a RLIKE '^(?:[0-9]{3})\\\\z' FROM t"
    )
    assert to_spark("SELECT regexp_replace(a, '[\\s,]', '', 'g') FROM t") == (
        "SELECT REGEXP_REPLACE(a, '[\\\\t\\\\n\\\\f\\\\r ,]', '') FROM t"
    )
    assert to_spark("SELECT CAST(try_strptime(a, '%Y%m%d') AS DATE) FROM t") == (
        "SELECT TRY_TO_DATE(a, 'yyyyMMdd') FROM t"
    )
    assert to_spark("SELECT (d - DATE '1970-01-01') * 100 FROM t") == (
        "SELECT (DATEDIFF(d, CAST('1970-01-01' AS DATE))) * 100 FROM t"
    )
    assert to_spark("SELECT floor(a / 1000.0) FROM t") == (
        "SELECT FLOOR(TRY_DIVIDE(CAST(a AS DOUBLE), CAST(1000.0 AS DOUBLE))) FROM t"
    )
    assert to_spark("SELECT CAST(d + INTERVAL 12 MONTH AS DATE) FROM t") == "SELECT ADD_MONTHS(d, 12) FROM t"
    assert to_spark("SELECT a // 12, '''x' FROM t SEMI JOIN u USING (a)") == (
        "SELECT a DIV 12, '\\'x' FROM t SEMI JOIN u USING (a)"
    )


@pytest.mark.parametrize(
    ("pattern", "java"),
    [
        ("[0-9]{15}", "[0-9]{15}"),
        ("\\s+", "[\\t\\n\\f\\r ]+"),
        ("[\\s\u3000]", "[\\t\\n\\f\\r \u3000]"),
        ("[^]a]", "[^]a]"),
        ("[+]86[0-9]{11}", "[+]86[0-9]{11}"),
    ],
)
def test_java_regex_keeps_re2_meaning(pattern: str, java: str) -> None:
    assert java_regex(pattern) == java
