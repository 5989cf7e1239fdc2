"""A failed certification run says why in Chinese, the English detail for support staff kept
apart (zige.feeds.failures.RUN_FAILURE_ZH): through the real run path and its pages."""

from __future__ import annotations

import errno
import html as html_lib
import importlib
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from tests.factories import NOW, UserFactory
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.certification.models import Run, RunStatus
from zige.certification.services import run_execute, run_submit, runs_mark_interrupted
from zige.engine.store import StoreBusy, StoreLayoutError
from zige.feeds.failures import RUN_FAILURE_ZH

pytestmark = pytest.mark.django_db

AS_OF = datetime(2026, 11, 30, tzinfo=UTC).date()


@pytest.fixture(autouse=True)
def data_dirs(settings: Any, tmp_path: Path) -> Path:
    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.RUNS_DIR = tmp_path / "data" / "runs"
    return tmp_path / "data"


def _busy_sqlite() -> BaseException:
    cause = sqlite3.OperationalError("database is locked")
    cause.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    try:
        raise OperationalError("database is locked") from cause
    except OperationalError as exc:
        return exc


FAILURES: list[tuple[str, Callable[[], BaseException], str, str]] = [
    ("store_busy", lambda: StoreBusy("another compaction holds the store"),
     "证据库正被其他任务（整理或升级）占用，本次认证未保存任何结果；请稍后重新发起运行。",
     "StoreBusy: another compaction holds the store"),
    ("store_busy", lambda: duckdb.IOException('Could not set lock on file "evidence.duckdb"'),
     "证据库正被其他任务（整理或升级）占用，本次认证未保存任何结果；请稍后重新发起运行。",
     'IOException: Could not set lock on file "evidence.duckdb"'),
    ("store_layout", lambda: StoreLayoutError("batch b1 was written with store key layout 1"),
     "证据库中有旧格式的数据，须由系统管理员升级证据库（zige store upgrade）后才能运行认证；本次认证未保存任何结果。",
     "StoreLayoutError: batch b1 was written with store key layout 1"),
    ("out_of_memory", lambda: duckdb.OutOfMemoryException("could not allocate block of 262144 bytes"),
     "服务器内存不足，本次认证未保存任何结果；请联系系统管理员。",
     "OutOfMemoryException: could not allocate block of 262144 bytes"),
    ("disk_full", lambda: OSError(errno.ENOSPC, "No space left on device"),
     "服务器磁盘空间不足，本次认证未保存任何结果；请联系系统管理员。",
     "OSError: [Errno 28] No space left on device"),
    ("database_busy", _busy_sqlite,
     "数据库正忙（另一项导入或认证正在写入），等待超时；本次认证未保存任何结果，请稍后重新发起运行。",
     "OperationalError: database is locked"),
    ("unknown", lambda: RuntimeError("manifest vanished"),
     "认证运行发生内部错误（RuntimeError），未保存任何结果；请将技术详情提供给系统管理员。",
     "RuntimeError: manifest vanished"),
]  # fmt: skip


def _failed_run(monkeypatch: pytest.MonkeyPatch, error: Callable[[], BaseException]) -> Run:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise error()

    monkeypatch.setattr("zige.certification.services._fingerprint", boom)
    run = run_submit(as_of=AS_OF, user=None, now=NOW, enqueue=False)
    return run_execute(run_id=run.pk, now=NOW)


def _page(url: str) -> str:
    client = Client()
    client.force_login(UserFactory(role=Role.BUREAU_OPERATOR))
    response = client.get(url)
    assert response.status_code == 200
    return html_lib.unescape(response.content.decode())


@pytest.mark.parametrize(
    ("code", "error", "message", "detail"), FAILURES,
    ids=["store_busy", "duckdb_lock", "store_layout", "out_of_memory", "disk_full", "database_busy", "unknown"],
)  # fmt: skip
def test_a_failed_run_says_why_in_chinese(
    monkeypatch: pytest.MonkeyPatch, code: str, error: Callable[[], BaseException], message: str, detail: str
) -> None:
    run = _failed_run(monkeypatch, error)
    assert (run.status, run.failure_code, run.message, run.detail) == (
        RunStatus.FAILED,
        code,
        message,
        detail,
    )
    event = AuditEvent.objects.get(action="run.failed", target_id=str(run.pk))
    assert (event.after["failure_code"], event.after["message"], event.after["detail"]) == (
        code,
        message,
        detail,
    )


def test_the_run_page_the_list_and_the_dashboard_show_chinese_and_the_detail_collapsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = _failed_run(monkeypatch, lambda: RuntimeError("manifest vanished"))
    for url in (reverse("certification:detail", args=[run.pk]), reverse("reports:dashboard")):
        html = _page(url)
        assert f"认证失败：{run.message}" in html
        before, details, collapsed = html.partition('<details class="tech-detail">')
        assert details and "manifest vanished" not in before and "The run" not in before
        assert collapsed.startswith("<summary>技术详情") and "RuntimeError: manifest vanished" in collapsed
    runs = _page(reverse("certification:list"))
    assert run.message in runs and "manifest vanished" not in runs


def test_an_interrupted_run_is_said_in_chinese() -> None:
    run = run_submit(as_of=AS_OF, user=None, now=NOW, enqueue=False)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=NOW)
    worker_start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert runs_mark_interrupted(now=worker_start, started_before=worker_start) == 1
    run.refresh_from_db()
    assert (run.failure_code, run.message) == ("interrupted", RUN_FAILURE_ZH["interrupted"])
    assert "/" not in run.message and run.detail.startswith("The run was interrupted")
    html = _page(reverse("certification:detail", args=[run.pk]))
    assert f"认证失败：{run.message}" in html
    before, details, collapsed = html.partition('<details class="tech-detail">')
    assert details and "The run was interrupted" not in before and run.detail in collapsed


def test_old_run_failure_messages_are_split_and_put_back() -> None:
    """Migration certification 0004: "中文 / English" messages of runs failed before."""
    from django.apps import apps

    migration = importlib.import_module("zige.certification.migrations.0004_run_failure_code_detail")
    assert RUN_FAILURE_ZH["legacy"] == migration.LEGACY_MESSAGE
    assert RUN_FAILURE_ZH["interrupted"] == migration.INTERRUPTED_ZH
    interrupted = (
        "认证运行被中断（处理进程已终止），未保存任何结果；请重新发起运行。"
        " / The run was interrupted (its worker process ended); no result was stored: start it again."
    )
    internal = (
        "认证运行失败：内部错误（RuntimeError），详见服务器日志。"
        " / The run failed: internal error (RuntimeError); see the server log."
    )
    english = "The run failed: internal error (KeyError); see the server log."
    messages = [interrupted, internal, english]
    runs = [
        Run.objects.create(as_of=AS_OF, status=RunStatus.FAILED, created_at=NOW, message=m) for m in messages
    ]
    ok = Run.objects.create(as_of=AS_OF, status=RunStatus.SUCCEEDED, created_at=NOW)
    migration.forward(apps, None)
    got = [Run.objects.filter(pk=r.pk).values_list("failure_code", "message", "detail").get() for r in runs]
    assert got == [
        ("interrupted", RUN_FAILURE_ZH["interrupted"],
         "The run was interrupted (its worker process ended); no result was stored: start it again."),
        ("legacy", "认证运行失败：内部错误（RuntimeError），详见服务器日志。",
         "The run failed: internal error (RuntimeError); see the server log."),
        ("legacy", RUN_FAILURE_ZH["legacy"], english),
    ]  # fmt: skip
    assert Run.objects.filter(pk=ok.pk).values_list("failure_code", "message").get() == ("", "")
    migration.backward(apps, None)
    assert [Run.objects.get(pk=r.pk).message for r in runs] == messages


def test_zige_run_prints_the_english_detail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line, like `zige import`, says what failed in English (the detail)."""
    from click.testing import CliRunner

    from zige.cli import main

    monkeypatch.setattr("zige.cli_records._setup", lambda: None)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("manifest vanished")

    monkeypatch.setattr("zige.certification.services._fingerprint", boom)
    result = CliRunner().invoke(main, ["run", "--as-of", "2026-11-30"])
    assert result.exit_code == 1
    assert "failed: RuntimeError: manifest vanished" in result.output and "认证" not in result.output
