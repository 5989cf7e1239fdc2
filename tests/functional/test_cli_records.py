"""`zige import roster|feed` and `zige run` end to end, in child processes, with their own data
directory (SQLite) or, when the suite runs on PostgreSQL, the test database."""

from __future__ import annotations

import os
import re
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
