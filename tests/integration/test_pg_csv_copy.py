"""PostgreSQL: DuckDB's rows staged as CSV and sent to `COPY` as they are (`zige.feeds.store.staged_rows`,
`ZIGE_PG_CSV_COPY`) store what the row-by-row `COPY` (`bulk_insert`) stores, value for value."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.db import connection

from zige.feeds import store

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the CSV path is PostgreSQL's (ZIGE_PG_CSV_COPY)"
    ),
]

# Every kind of value a run stages (`certification.services`: ids, codes, dates, a flag, months and
# an amount), with the ones CSV can get wrong: the empty string beside NULL, quotes, the
# separator, a line break, a lone `\.` (PostgreSQL's end-of-data marker), Chinese text.
_ROWS = """
SELECT * FROM (VALUES
  (1, 9007199254740993, TRUE, DATE '2026-11-30', CAST(1234.50 AS DECIMAL(16, 2)), '甲', 12),
  (2, NULL, FALSE, NULL, NULL, '', NULL),
  (3, -1, NULL, DATE '1949-10-01', CAST(-0.01 AS DECIMAL(16, 2)), NULL, 0),
  (4, 0, TRUE, DATE '2000-02-29', CAST(0 AS DECIMAL(16, 2)), 'say "hi", then
\\.
go', 1),
  (5, 7, FALSE, DATE '2026-01-01', CAST(99999999999999.99 AS DECIMAL(16, 2)), ' 领取 , 资格 ', 2)
) t(n, big, flag, day, amount, note, months) ORDER BY n
"""
_COLUMNS = ["n", "big", "flag", "day", "amount", "note", "months"]


def _table(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {name} (id serial PRIMARY KEY, n integer NOT NULL, big bigint, flag boolean, "
            "day date, amount numeric(16, 2), note text, months integer)"
        )


def _stored(name: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(_COLUMNS)} FROM {name} ORDER BY id")
        return list(cursor.fetchall())


def _stage(settings: Any, *, csv: bool, table: str) -> int:
    settings.ZIGE_PG_CSV_COPY = csv
    duck = duckdb.connect()
    with store.staged_rows(duck, {"rows": _ROWS}) as staged:
        return staged.insert(table, _COLUMNS, "rows")


def test_csv_copy_stores_what_the_row_copy_stores(settings: Any, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path
    _table("through_csv")
    _table("through_rows")
    assert _stage(settings, csv=True, table="through_csv") == 5
    assert _stage(settings, csv=False, table="through_rows") == 5
    through_csv = _stored("through_csv")
    assert through_csv == _stored("through_rows")
    assert through_csv[0] == (1, 9007199254740993, True, date(2026, 11, 30), Decimal("1234.50"), "甲", 12)
    assert through_csv[1] == (2, None, False, None, None, "", None), "the empty string is not NULL"
    assert through_csv[3][5] == 'say "hi", then\n\\.\ngo'
    assert through_csv[4][5] == " 领取 , 资格 "
    assert list(tmp_path.iterdir()) == [], "the scratch directory is removed"


def test_a_type_csv_would_change_is_refused_and_nothing_is_written(settings: Any, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path
    settings.ZIGE_PG_CSV_COPY = True
    _table("refused")
    duck = duckdb.connect()
    query = "SELECT 1 AS n, TIMESTAMPTZ '2026-11-30 08:00:00+08' AS at"
    with (
        pytest.raises(TypeError, match="column at is TIMESTAMP WITH TIME ZONE"),
        store.staged_rows(duck, {"rows": query}),
    ):
        pass
    assert _stored("refused") == []
    assert list(tmp_path.iterdir()) == []
