"""The verification sweep (`tasks_sweep`) with and without the units' deadline SMS.

    .venv/bin/python benchmarks/unit_sms_sweep.py                       # SQLite, 2,000 units x 50 tasks
    .venv/bin/python benchmarks/unit_sms_sweep.py --database postgres   # a database zige_unitsms_bench

Loads, in a fresh data directory (SQLite) or a fresh PostgreSQL database `zige_unitsms_bench`
(dropped first and at the end), `--units` units (9 in 10 with a mobile number, the others a
landline) with `--tasks` open unit-verification tasks each, deadlines spread over the next 60
days (so about half fall in the 30-day window and a tenth in the 7-day one). Then it times the
whole sweep (one transaction: reminders, unit SMS, overdue step, audit) `--repeat` times with
`ZIGE_UNIT_SMS` off and on, alternately, each rolled back so that every sweep does the same
work, and prints the median and the range of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

PG_NAME = "zige_unitsms_bench"


class _Rollback(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=50, help="tasks per unit")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="unitsms-bench-"))
    os.environ["ZIGE_DATA_DIR"] = str(data)
    os.environ.pop("ZIGE_DATABASE_URL", None)
    if args.database == "postgres":
        import psycopg

        with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
            con.execute(f'CREATE DATABASE "{PG_NAME}"')
        os.environ["ZIGE_DATABASE_URL"] = f"{args.pg_url}/{PG_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zige.web.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import django

    django.setup()
    try:
        _bench(args)
    finally:
        from django.db import connections

        connections.close_all()
        if args.database == "postgres":
            import psycopg

            with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')


def _bench(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction

    from zige.certification.models import Run, RunStatus
    from zige.ids import check_digit
    from zige.notifications.config import current
    from zige.notifications.models import Message
    from zige.roster.models import Recipient, Unit
    from zige.verification.models import TaskReminder, VerificationTask
    from zige.verification.services import tasks_sweep

    call_command("migrate", verbosity=0)
    now = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    today = date(2026, 11, 30)
    started = time.perf_counter()
    with transaction.atomic():
        units = Unit.objects.bulk_create(
            [
                Unit(
                    unit_no=f"1499{i:07d}",
                    name=f"单位{i}",
                    phone=f"139{i:08d}" if i % 10 else f"0351-{7000000 + i}",
                )
                for i in range(args.units)
            ],
            batch_size=2000,
        )
        people = []
        for u, unit in enumerate(units):
            for j in range(args.tasks):
                n = u * args.tasks + j
                first17 = f"140105{date(1940, 1, 1) + timedelta(days=n // 1000):%Y%m%d}{n % 1000:03d}"
                people.append(Recipient(person_no=f"B{n:09d}", id_number=first17 + check_digit(first17),
                                        name=f"测试{n}", unit=unit, benefit_status="normal"))  # fmt: skip
        Recipient.objects.bulk_create(people, batch_size=5000)
        run = Run.objects.create(as_of=today, status=RunStatus.SUCCEEDED, created_at=now)
        VerificationTask.objects.bulk_create(
            [
                VerificationTask(
                    recipient=p,
                    unit_id=p.unit_id,
                    kind="unit",
                    period="due:bench",
                    status="open",
                    run=run,
                    as_of=today,
                    reason="no_evidence",
                    deadline=today + timedelta(days=1 + i % 60),
                    created_at=now,
                    updated_at=now,
                )
                for i, p in enumerate(people)
            ],
            batch_size=5000,
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"{args.database}: {args.units:,} units x {args.tasks} tasks loaded in {time.perf_counter() - started:.1f} s"
    )

    base = current()
    # The unit SMS step alone, timed inside the sweep.
    import zige.verification.services as sweep_module

    inner: list[float] = []
    step = sweep_module.unit_deadline_messages

    def timed(**kwargs: Any) -> dict[str, int]:
        t0 = time.perf_counter()
        try:
            return step(**kwargs)
        finally:
            inner.append(time.perf_counter() - t0)

    sweep_module.unit_deadline_messages = timed  # type: ignore[assignment]
    times: dict[str, list[float]] = {"off": [], "on": []}
    outcome: dict[str, dict[str, int]] = {}
    for i in range(args.repeat * 2):
        mode = ("off", "on")[i % 2]
        settings.ZIGE_NOTIFICATIONS = replace(base, unit_sms=mode == "on")
        try:
            with transaction.atomic():
                t0 = time.perf_counter()
                counts = tasks_sweep(now=now)
                times[mode].append(time.perf_counter() - t0)
                outcome[mode] = {**counts, "messages": Message.objects.count(),
                                 "reminder_rows": TaskReminder.objects.count()}  # fmt: skip
                raise _Rollback
        except _Rollback:
            pass
    on_inner = inner[1::2]
    print(f"  the unit SMS step inside the sweep (on): median {statistics.median(on_inner):.3f} s "
          f"(min {min(on_inner):.3f}, max {max(on_inner):.3f})")  # fmt: skip
    for mode in ("off", "on"):
        t = times[mode]
        print(f"  unit SMS {mode:<3}: median {statistics.median(t):.3f} s (min {min(t):.3f}, max {max(t):.3f}, "
              f"n={len(t)})  {outcome[mode]}")  # fmt: skip
    extra = statistics.median(times["on"]) - statistics.median(times["off"])
    print(f"  the unit SMS add {extra * 1000:.0f} ms ({extra / statistics.median(times['off']):+.1%})")


if __name__ == "__main__":
    main()
