"""`zige import roster|feed` and `zige run` end to end, in child processes, with their own data
directory (SQLite) or, when the suite runs on PostgreSQL, the test database."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from django.db import connection

from zige.demo import generate_province

pytestmark = pytest.mark.django_db(transaction=True)

AS_OF = date(2026, 11, 30)
ZIGE = [sys.executable, "-m", "zige"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ZIGE_", "DJANGO_"))}
    environment["ZIGE_DATA_DIR"] = str(tmp_path / "data")
    db = connection.settings_dict
    if connection.vendor == "postgresql":  # the test database pytest-django made (and flushes)
        user, password = db.get("USER") or "postgres", db.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else f"{user}@"
        environment["ZIGE_DATABASE_URL"] = (
            f"postgres://{auth}{db['HOST']}:{db.get('PORT') or 5432}/{db['NAME']}"
        )
    return environment


def zige(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ZIGE, *args], capture_output=True, text=True, env=env, check=False, timeout=300)


def test_import_and_run_from_the_command_line(tmp_path: Path, env: dict[str, str]) -> None:
    province = generate_province(tmp_path / "input", recipients=200, as_of=AS_OF, seed=5)
    data = Path(env["ZIGE_DATA_DIR"])

    done = zige(env, "import", "roster", str(province.roster))
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    found = re.fullmatch(r"import #(\d+) roster roster\.csv: read [\d,]+, used .*\(reconciled: yes\)", line)
    assert found, line
    roster_import = found.group(1)

    again = zige(env, "import", "roster", str(province.roster))
    assert again.returncode == 0, again.stderr
    assert f"Same content as import #{roster_import}" in again.stdout and "未重复导入" in again.stdout

    rail = sorted(province.feeds.glob("rail_*"))[0]
    done = zige(env, "import", "feed", str(rail))
    assert done.returncode == 0, done.stderr
    assert f"rail {rail.name}: read " in done.stdout and "unmatched" in done.stdout
    assert list((data / "evidence" / "kind=rail").glob("month=*/*.parquet"))  # zige.engine.store

    death = sorted(province.feeds.glob("death_*"))[0]
    renamed = tmp_path / "from_the_police.csv"
    renamed.write_bytes(death.read_bytes())
    refused = zige(env, "import", "feed", str(renamed))
    assert refused.returncode == 2 and "Cannot tell the kind" in refused.stderr
    done = zige(env, "import", "feed", str(renamed), "--kind", "death")
    assert done.returncode == 0, done.stderr
    assert "death from_the_police.csv" in done.stdout

    first = zige(env, "run", "--as-of", AS_OF.isoformat())
    assert first.returncode == 0, first.stderr
    found = re.match(r"run #(\d+) as of 2026-11-30: [\d,]+ recipients \(eligible ", first.stdout)
    assert found and "first run" in first.stdout, first.stdout
    run_id = found.group(1)
    second = zige(env, "run", "--as-of", AS_OF.isoformat())
    assert second.returncode == 0, second.stderr
    assert f"0 changed since run #{run_id}" in second.stdout
    fingerprint = first.stdout.rsplit("fingerprint ", 1)[1].strip()
    assert second.stdout.rsplit("fingerprint ", 1)[1].strip() == fingerprint
    assert (data / "runs" / run_id / "decisions.parquet").is_file()
    if connection.vendor == "sqlite":
        assert (data / "zige.sqlite3").is_file(), "the embedded default lives in the data directory"


def test_errors_are_one_line_and_exit_non_zero(tmp_path: Path, env: dict[str, str]) -> None:
    missing = zige(env, "import", "roster", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    broken = tmp_path / "roster.csv"
    broken.write_text("a,b\n1,2\n", encoding="utf-8")
    failed = zige(env, "import", "roster", str(broken))
    assert failed.returncode == 1
    assert "failed: roster.csv:" in failed.stderr and "Traceback" not in failed.stderr
    bad_day = zige(env, "run", "--as-of", "2026-02-30")
    assert bad_day.returncode == 2 and "YYYY-MM-DD" in bad_day.stderr


# The tables a run writes. The clock's values (when a row was written, and in a cancelled
# message's note) differ between any two runs: `_stored` masks every date-time.
_RUN_TABLES = (
    "certification_decision",
    "certification_decisionchange",
    "notifications_message",
    "verification_verificationtask",
    "benefits_paymentaction",
)
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?")


def _stored(database: Path) -> dict[str, list[tuple[str, ...]]]:
    """Every row of the run's tables as SQLite stores it: `quote()` tells 12 from 12.0 and '12'."""
    with contextlib.closing(sqlite3.connect(database)) as con:
        tables = {}
        for table in _RUN_TABLES:
            columns = [row[1] for row in con.execute(f"PRAGMA table_info({table})")]
            quoted = ", ".join(f"quote({c})" for c in columns)
            rows = con.execute(f"SELECT {quoted} FROM {table} ORDER BY id").fetchall()
            tables[table] = [tuple(_DATE_TIME.sub("<time>", value) for value in row) for row in rows]
    return tables


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the Arrow path is SQLite's (ZIGE_SQLITE_ARROW)")
def test_a_run_stores_the_same_rows_through_arrow_as_through_the_cursor(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """`ZIGE_SQLITE_ARROW`: the roll read and the decisions staged through ADBC's SQLite driver
    (`feeds.store.fetch_arrow`, `staged_rows`) give the very rows, types included, that the
    cursor's path gives, over two runs (the second with changes since the first)."""
    province = generate_province(tmp_path / "input", recipients=400, as_of=AS_OF, seed=9)
    done = zige(env, "import", "roster", str(province.roster))
    assert done.returncode == 0, done.stderr
    done = zige(env, "import", "feed", *map(str, sorted(province.feeds.iterdir())))
    assert done.returncode == 0, done.stderr
    arrow_dir = Path(env["ZIGE_DATA_DIR"])
    cursor_dir = tmp_path / "cursor-data"
    shutil.copytree(arrow_dir, cursor_dir)  # the same imports: paths in it are relative
    paths = {"1": arrow_dir, "0": cursor_dir}
    for as_of in (date(2026, 10, 15), AS_OF):
        for switch, data in paths.items():
            ran = zige(
                {**env, "ZIGE_DATA_DIR": str(data), "ZIGE_SQLITE_ARROW": switch},
                "run",
                "--as-of",
                as_of.isoformat(),
            )
            assert ran.returncode == 0, ran.stderr
    through_arrow, through_cursor = (_stored(data / "zige.sqlite3") for data in paths.values())
    assert through_arrow == through_cursor
    decisions = through_arrow["certification_decision"]
    assert len(decisions) > 700 and through_arrow["certification_decisionchange"], "two runs, with changes"
    assert through_arrow["notifications_message"] and through_arrow["benefits_paymentaction"]
    assert not list(arrow_dir.glob(".scratch-*")), "the scratch files are removed"
