"""`zige ledger attachment2` and `zige ledger summary`, in-process (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from tests.factories import RecipientFactory, UnitFactory, UnitOperatorFactory, UserFactory, make_id
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.ledger.config import LedgerConfig
from zige.ledger.models import OtherProvinceExport

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path / "data"
    settings.ZIGE_LEDGER = LedgerConfig()
    return tmp_path / "data"


def test_zige_ledger_attachment2_and_summary() -> None:
    from zige.cli import main

    unit = UnitFactory(unit_no="14010000777")
    away = RecipientFactory(
        unit=unit, id_number=make_id(71, date(1950, 1, 1), region="410105"), has_social_card="no"
    )
    RecipientFactory(unit=unit, id_number=make_id(72, date(1930, 1, 1)))  # very old, Shanxi
    UserFactory(username="wang", role=Role.BUREAU_OPERATOR)
    UnitOperatorFactory(username="li", unit=unit)
    runner = CliRunner()

    done = runner.invoke(main, ["ledger", "attachment2", "--user", "wang", "--as-of", "2026-11-30"])
    assert done.exit_code == 0, done.output
    export = OtherProvinceExport.objects.get()
    assert f"附件2 #{export.pk}: 1 people" in done.output and export.sha256 in done.output
    from zige.ledger.services import export_path

    ws = openpyxl.load_workbook(export_path(export)).active
    rows = [r for r in ws.iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)]
    assert [(r[4], r[9]) for r in rows] == [(away.person_no, away.id_number)]
    assert AuditEvent.objects.get(action="ledger.other_province_export").actor == "wang"

    refused = runner.invoke(main, ["ledger", "attachment2", "--user", "li"])  # a unit operator
    assert refused.exit_code == 2 and "只有社保局经办人员" in refused.output
    assert runner.invoke(main, ["ledger", "attachment2", "--user", "nobody"]).exit_code == 2

    summary = runner.invoke(main, ["ledger", "summary", "--as-of", "2026-11-30"])
    assert summary.exit_code == 0, summary.output
    assert "14010000777" in summary.output and "1 units, 1 people, 1 not visited" in summary.output
