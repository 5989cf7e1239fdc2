"""`zige ledger attachment2` (附件2 for the national platform) and `zige ledger summary`."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import click
from rich.table import Table

from zige.cli_common import fail, out, parse_day


def _setup() -> None:
    from zige.web.bootstrap import setup_django

    setup_django()


def register(main: click.Group) -> None:
    @main.group(name="ledger")
    def ledger() -> None:
        """服务台账 and 异地居住: special groups, home visits, 附件2 exports."""

    @ledger.command(name="attachment2")
    @click.option("--user", "username", required=True, help="bureau user recorded as the exporter (audited)")
    @click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
    @click.option("--unit", "unit_no", default="", help="only this unit's people")
    @click.option(
        "--as-of",
        "as_of",
        callback=parse_day,
        default=None,
        help="数据截至 date (default: today, China Standard Time)",
    )
    def attachment2(username: str, fmt: str, unit_no: str, as_of: date | None) -> None:
        """Export 附件2 《外省户籍人员基本信息表》 of everyone on the roster who needs it."""
        _setup()
        from django.utils import timezone

        from zige.accounts.models import User
        from zige.ledger.services import LedgerError, export_path, other_province_export

        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            fail(f"no active user {username!r}")
        try:
            export = other_province_export(
                actor=user, as_of=as_of or timezone.localdate(), fmt=fmt, now=timezone.now(), unit_no=unit_no
            )
        except LedgerError as exc:
            fail(str(exc))
        out.print(
            f"附件2 #{export.pk}: {export.rows:,} people\n  {export_path(export)}\n  sha256 {export.sha256}",
            highlight=False,
            soft_wrap=True,
        )

    @ledger.command(name="summary")
    @click.option(
        "--as-of",
        "as_of",
        callback=parse_day,
        default=None,
        help="date (default: today, China Standard Time)",
    )
    @click.option("--top", default=20, show_default=True, help="units shown (most not visited first)")
    def summary(as_of: date | None, top: int) -> None:
        """Special-group members and home visits this period, per unit."""
        _setup()
        from django.utils import timezone

        from zige.accounts.models import Role
        from zige.ledger.config import current
        from zige.ledger.selectors import ledger_units

        day = as_of or timezone.localdate()
        reader = SimpleNamespace(role=Role.AUDITOR, is_authenticated=True, unit_id=None)  # reads all units
        rows = ledger_units(user=reader, as_of=day)
        table = Table(title=f"服务台账 {current().period_start(day)} – {day}")
        for name in ("单位编号", "台账人数", "高龄", "高危", "行动不便", "已走访", "未走访"):
            table.add_column(name, justify="left" if name == "单位编号" else "right")
        for row in rows[:top]:
            c = row.counts
            table.add_row(
                row.unit.unit_no,
                *(f"{n:,}" for n in (c.total, c.very_old, c.high_risk, c.immobile, c.visited, c.not_visited)),
            )
        total = sum(r.counts.total for r in rows)
        not_visited = sum(r.counts.not_visited for r in rows)
        out.print(table)
        out.print(
            f"{len(rows):,} units, {total:,} people, {not_visited:,} not visited this period", highlight=False
        )
