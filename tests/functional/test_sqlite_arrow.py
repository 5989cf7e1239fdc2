"""SQLite through Arrow (`zige.feeds.store.fetch_arrow`, `staged_rows`) on a database file, in a
child process of its own (the suite's database is in memory, where these paths are off).

ADBC's SQLite driver is a second copy of the SQLite library in the process: it must never open
the database file that Django's connection has open (POSIX locks are the process's: the two copies
would release each other's locks; a run died of SIGBUS when it did). The child records every file
the driver opens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, sys
from decimal import Decimal
from pathlib import Path

import django

django.setup()
import adbc_driver_sqlite.dbapi
import duckdb
from django.db import connection, transaction

from zige.feeds import store

opened = []
real_connect = adbc_driver_sqlite.dbapi.connect


def connect(uri, *args, **kwargs):
    opened.append(str(uri))
    return real_connect(uri, *args, **kwargs)


adbc_driver_sqlite.dbapi.connect = connect
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, mobile TEXT, born DATE)")
    cursor.executemany(
        "INSERT INTO people (name, mobile, born) VALUES (%s, %s, %s)",
        [(f"王{i}", None if i < 3 else f"1380000{i:04d}", "1950-01-0" + str(1 + i % 9)) for i in range(10)],
    )
    cursor.execute(
        "CREATE TABLE saved (id INTEGER PRIMARY KEY, n BIGINT, flag BOOL, day DATE, amount DECIMAL, note TEXT)"
    )
query = "SELECT CAST(id AS TEXT), name, CAST(mobile AS TEXT), CAST(NULL AS TEXT), CAST(born AS TEXT) FROM people"
fetched = store.fetch_arrow(query, ["id", "name", "mobile", "nothing", "born"])
with transaction.atomic():
    in_transaction = store.fetch_arrow(query, ["id", "name", "mobile", "nothing", "born"])
duck = duckdb.connect()
rows = (
    "SELECT * FROM (VALUES (1, TRUE, DATE '2026-11-30', CAST(12.5 AS DECIMAL(16, 2)), '甲'), "
    "(2, FALSE, NULL, NULL, NULL)) t(n, flag, day, amount, note) ORDER BY n"
)
with store.staged_rows(duck, {"rows": rows}) as staged, transaction.atomic():
    written = staged.insert("saved", ["n", "flag", "day", "amount", "note"], "rows")
with connection.cursor() as cursor:
    cursor.execute("SELECT quote(n), quote(flag), quote(day), quote(amount), quote(note) FROM saved ORDER BY id")
    saved = cursor.fetchall()
    cursor.execute("PRAGMA database_list")
    attached = [row[1] for row in cursor.fetchall()]
json.dump(
    {
        "database": str(connection.settings_dict["NAME"]),
        "opened": opened,
        "fetched": fetched.to_pylist(),
        "types": [str(t) for t in fetched.schema.types],
        "same_in_transaction": fetched.equals(in_transaction),
        "written": written,
        "saved": saved,
        "attached": attached,
        "left": sorted(p.name for p in Path(connection.settings_dict["NAME"]).parent.glob(".scratch-*")),
    },
    sys.stdout,
    ensure_ascii=False,
)
"""


def test_rows_pass_through_scratch_files_and_never_through_the_database_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZIGE_", "DJANGO_"))}
    env.update(ZIGE_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="zige.web.settings")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    database = Path(found["database"])
    assert database == tmp_path / "data" / "zige.sqlite3"
    # Two scratch files (the read, the staging), each beside the database; the database never.
    assert len(found["opened"]) == 2
    assert all(
        Path(p).parent == database.parent and Path(p).name.startswith(".scratch-") for p in found["opened"]
    )
    assert str(database) not in found["opened"]
    assert found["left"] == [] and found["attached"] == ["main"], "scratch files detached and removed"
    # The read: every row in order, NULL kept, a column NULL everywhere still text.
    assert found["types"] == ["string"] * 5
    assert found["fetched"][0] == {
        "id": "1",
        "name": "王0",
        "mobile": None,
        "nothing": None,
        "born": "1950-01-01",
    }
    assert found["fetched"][9] == {
        "id": "10",
        "name": "王9",
        "mobile": "13800000009",
        "nothing": None,
        "born": "1950-01-01",
    }
    assert found["same_in_transaction"], "inside a transaction the cursor reads the same rows"
    # The write: stored as Django stores them (integers, 1/0, ISO dates, the decimal's digits).
    assert found["written"] == 2
    assert found["saved"] == [["1", "1", "'2026-11-30'", "12.5", "'甲'"], ["2", "0", "NULL", "NULL", "NULL"]]
