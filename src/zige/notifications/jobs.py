"""Unattended operation: the inbox watcher, the daily run, sending and the morning summary.

`tick` does one pass of everything that is due at `clock()`; `scheduler_loop` calls it every
`tick_s` seconds until stopped (`zige worker` runs it beside the task queue; `zige scheduler`
runs it alone). Jobs due once a day are keyed by the local date in `JobRun` (unique), so two
schedulers never run the same day's job twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Count
from django.utils import timezone

from zige.audit.services import audit_record
from zige.certification.models import Run, RunStatus
from zige.feeds.models import ImportBatch, ImportStatus
from zige.notifications.config import NotifyConfig, current
from zige.notifications.content import check_templates
from zige.notifications.gateways import Gateway, build
from zige.notifications.models import (
    Channel,
    InboxFile,
    InboxStatus,
    JobRun,
    JobStatus,
    Message,
    MessageStatus,
)
from zige.notifications.services import messages_send_due, worker_name

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]
SKIP_SUFFIXES = (".part", ".tmp", ".crdownload", ".error.txt")
JOB_LABELS = {  # the JobRun.job names below, as officers read them
    "daily_run": "每日认证运行",
    "summary": "晨报",
    "tasks_sweep": "核实任务逾期检查",
    "store_compact": "证据库整理",
    "scheduler": "调度程序",
}


def job_key_label(job: str, key: str) -> str:
    """A JobRun's key in Chinese: the day it ran for, the week of a compaction. The scheduler's
    key is its process (host:pid), which means nothing to an officer: no label (see
    `scheduler_status`, which keeps it for the page's tooltip)."""
    if job == "scheduler":
        return ""
    week = re.fullmatch(r"(\d{4})-W(\d{2})", key)
    if week:
        return f"{week[1]} 年第 {int(week[2])} 周"
    return key


def scheduler_alive(beat: JobRun | None, *, now: datetime, config: NotifyConfig) -> bool:
    """A scheduler beat within three ticks and two minutes: one is running."""
    return beat is not None and (now - beat.started_at).total_seconds() <= 3 * config.tick_s + 120


def scheduler_status(beat: JobRun, *, now: datetime, config: NotifyConfig) -> dict[str, Any]:
    """The scheduler's heartbeat as an officer reads it: running or not, when it last checked,
    when the next daily certification is due; its process name only for an administrator."""
    next_daily_run = None
    if config.daily_run_at is not None:
        local = timezone.localtime(now)
        start = local.replace(
            hour=config.daily_run_at.hour, minute=config.daily_run_at.minute, second=0, microsecond=0
        )
        next_daily_run = start if local < start else start + timedelta(days=1)
    return {
        "alive": scheduler_alive(beat, now=now, config=config),
        "checked_at": beat.started_at,
        "next_daily_run": next_daily_run,
        "process": beat.key,
    }


def inbox_dir() -> Path:
    return Path(settings.DATA_DIR) / "inbox"


# ---------------------------------------------------------------------------------------------
# Inbox


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _move(path: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / path.name
    n = 1
    while target.exists():
        target = directory / f"{path.stem}.{n}{path.suffix}"
        n += 1
    shutil.move(str(path), target)
    return target


def _ready(path: Path, now: datetime, settle_s: int) -> bool:
    if not path.is_file() or path.name.startswith(".") or path.name.endswith(SKIP_SUFFIXES):
        return False
    return now.timestamp() - path.stat().st_mtime >= settle_s


def inbox_scan(
    *, now: datetime, config: NotifyConfig | None = None, root: Path | None = None
) -> dict[str, int]:
    """Import every new settled file in `inbox/<agency>/` once; move it to `done/<date>/`, or
    to `quarantine/` with `<name>.error.txt` when it cannot be imported. A bad file never
    blocks the others. Why a file was quarantined is recorded in Chinese (`InboxFile.error`,
    shown on the pages) and in English (the `.error.txt`, the audit row and the log)."""
    from zige.feeds.failures import ImportRefused, failure_for
    from zige.feeds.services import import_execute, import_submit

    config = config or current()
    root = root or inbox_dir()
    counts = {"imported": 0, "duplicate": 0, "quarantined": 0}
    if not root.is_dir():
        return counts
    for agency_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        agency = agency_dir.name
        for path in sorted(agency_dir.iterdir()):
            if not _ready(path, now, config.inbox_settle_s):
                continue
            sha = _sha256(path)
            day = timezone.localtime(now).strftime("%Y-%m-%d")
            seen = InboxFile.objects.filter(agency=agency, file_name=path.name, sha256=sha).first()
            if seen is not None:  # recorded, then the process died before moving it
                _move(
                    path,
                    agency_dir / ("quarantine" if seen.status == InboxStatus.QUARANTINED else "done") / day,
                )
                continue
            batch, error, detail = None, "", ""
            try:
                kind = "roster" if agency == "roster" else None
                try:
                    batch = import_submit(
                        source=path, file_name=path.name, kind=kind, user=None, now=now, enqueue=False
                    )
                except ImportRefused:
                    if kind is not None:
                        raise
                    # the file's name has no kind: the agency's directory may be named after it
                    batch = import_submit(
                        source=path, file_name=path.name, kind=agency, user=None, now=now, enqueue=False
                    )
                batch = import_execute(batch_id=batch.pk, now=now)
                if batch.status == ImportStatus.FAILED:
                    error, detail = batch.message or "导入失败", batch.detail
            except Exception as exc:  # ImportRefused, an unreadable file, anything: quarantine it
                failure = failure_for(exc, file_name=path.name)
                error, detail = failure.message, failure.detail
                logger.warning("inbox %s/%s quarantined: %s", agency, path.name, detail)
            if error:
                status = InboxStatus.QUARANTINED
                target = _move(path, agency_dir / "quarantine")
                Path(f"{target}.error.txt").write_text(
                    f"{path.name}\n{timezone.localtime(now):%Y-%m-%d %H:%M:%S}\n\n{error}\n{detail}\n",
                    encoding="utf-8",
                )
            else:
                status = (
                    InboxStatus.DUPLICATE
                    if batch and batch.status == ImportStatus.DUPLICATE
                    else InboxStatus.IMPORTED
                )
                target = _move(path, agency_dir / "done" / day)
            counts[status] += 1
            try:
                with transaction.atomic():
                    InboxFile.objects.create(
                        agency=agency, file_name=path.name, sha256=sha, size=target.stat().st_size, status=status,
                        batch=batch, error=error[:5000], moved_to=str(target.relative_to(root)), picked_at=now,
                    )  # fmt: skip
                    audit_record(
                        action=f"inbox.{status}", target_type="inbox_file", target_id=f"{agency}/{path.name}",
                        at=now, after={"sha256": sha, "batch": batch.pk if batch else None, "error": error[:500],
                                       "detail": detail[:500]},
                    )  # fmt: skip
            except IntegrityError:
                pass
    return counts


# ---------------------------------------------------------------------------------------------
# Jobs keyed by day


def _claim_job(job: str, key: str, now: datetime) -> JobRun | None:
    try:
        with transaction.atomic():
            return JobRun.objects.create(job=job, key=key, started_at=now)
    except IntegrityError:
        return None


def _end_job(job: JobRun, *, now: datetime, ok: bool, detail: dict[str, Any], message: str = "") -> JobRun:
    with transaction.atomic():
        JobRun.objects.filter(pk=job.pk).update(
            status=JobStatus.SUCCEEDED if ok else JobStatus.FAILED,
            finished_at=now,
            detail=detail,
            message=message,
        )
        audit_record(
            action=f"job.{job.job}", target_type="job", target_id=f"{job.job}:{job.key}", at=now,
            after={"ok": ok, "message": message[:500]},
        )  # fmt: skip
    job.refresh_from_db()
    return job


def daily_run(*, clock: Clock, config: NotifyConfig | None = None, force: bool = False) -> JobRun | None:
    """Certify the roll as of today once a day, at or after `daily_run_at` (local time); the
    run's reminders are written with its decisions."""
    from zige.certification.services import run_execute, run_submit

    config = config or current()
    now = clock()
    local = timezone.localtime(now)
    if not force:
        if config.daily_run_at is None:
            return None
        start = local.replace(
            hour=config.daily_run_at.hour, minute=config.daily_run_at.minute, second=0, microsecond=0
        )
        if not start <= local < start + timedelta(hours=config.daily_run_window_h):
            return None
    job = _claim_job("daily_run", local.date().isoformat(), now)
    if job is None:
        return None
    try:
        run = run_submit(as_of=local.date(), user=None, now=now, enqueue=False)
        run = run_execute(run_id=run.pk, now=now)
        created = Message.objects.filter(run=run).count()
        ok = run.status == RunStatus.SUCCEEDED
        return _end_job(
            job, now=clock(), ok=ok,
            detail={"run": run.pk, "status": run.status, "changed": run.changed, "recipients": run.recipients,
                    "messages": created},
            message="" if ok else run.message,
        )  # fmt: skip
    except Exception as exc:
        logger.exception("the daily run failed")
        return _end_job(job, now=clock(), ok=False, detail={}, message=f"{type(exc).__name__}: {exc}")


def summary_build(*, since: datetime, until: datetime) -> dict[str, Any]:
    """What came in, what changed, what was sent, and what needs a person, between two times."""
    inbox = list(
        InboxFile.objects.filter(picked_at__gt=since, picked_at__lte=until)
        .order_by("picked_at")
        .values("agency", "file_name", "status", "error", "batch_id")
    )
    imports = dict(
        ImportBatch.objects.filter(created_at__gt=since, created_at__lte=until)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    runs = [
        {"run": r.pk, "as_of": r.as_of.isoformat(), "status": r.status, "changed": r.changed,
         "transitions": (r.summary or {}).get("changes", {}).get("transitions", {}), "message": r.message}
        for r in Run.objects.filter(created_at__gt=since, created_at__lte=until).order_by("pk")
    ]  # fmt: skip
    created = dict(
        Message.objects.filter(created_at__gt=since, created_at__lte=until)
        .values_list("channel")
        .annotate(n=Count("pk"))
        .values_list("channel", "n")
    )
    sent = Message.objects.filter(sent_at__gt=since, sent_at__lte=until).count()
    outbox = dict(Message.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    needs: list[str] = []
    for f in inbox:
        if f["status"] == InboxStatus.QUARANTINED:
            needs.append(f"隔离文件 {f['agency']}/{f['file_name']}：{f['error'][:200]}")
    for r in runs:
        if r["status"] == RunStatus.FAILED:
            needs.append(f"认证批次 #{r['run']} 失败：{r['message'][:200]}")
    failed_imports = imports.get(ImportStatus.FAILED, 0)
    if failed_imports:
        needs.append(f"{failed_imports} 个导入失败")
    failed = Message.objects.filter(status=MessageStatus.FAILED).count()
    if failed:
        needs.append(f"{failed} 条短信发送失败（不再重试），需核对号码或改由单位通知")
    stuck = Message.objects.filter(status=MessageStatus.RETRYING, attempts__gte=3).count()
    if stuck:
        needs.append(f"{stuck} 条短信已重试 3 次以上，请检查短信网关")
    for problem in check_templates(current()):
        needs.append(f"短信模板：{problem}")
    failed_jobs = JobRun.objects.filter(started_at__gt=since, started_at__lte=until, status=JobStatus.FAILED)
    for j in failed_jobs:
        key = job_key_label(j.job, j.key)
        said = f"“{JOB_LABELS.get(j.job, j.job)}”（{key}）" if key else f"“{JOB_LABELS.get(j.job, j.job)}”"
        needs.append(f"定时任务{said}失败：{j.message[:200]}")
    return {
        "since": since.isoformat(), "until": until.isoformat(), "inbox": inbox, "imports": imports, "runs": runs,
        "messages": {"created": created, "sent": sent, "outbox": outbox,
                     "unit_notices": outbox.get(MessageStatus.LISTED, 0)},
        "needs_a_person": needs,
    }  # fmt: skip


def _said(counts: dict[str, Any], labels: dict[str, str]) -> str:
    """{"sms": 2244, "unit": 658} -> 短信 2,244，单位通知 658 ("（无）" when empty)."""
    return "，".join(f"{labels.get(k, k)} {v:,}" for k, v in counts.items()) or "（无）"


def _transition_said(key: str) -> str:
    """`eligible>stop` -> 具备资格→停发 (`-`: none)."""
    from zige.engine.labels import STATUS_ZH

    old, _, new = key.partition(">")
    return "→".join("无" if s in ("", "-") else STATUS_ZH.get(s, s) for s in (old, new))


def summary_text(summary: dict[str, Any]) -> str:
    """The morning summary as the text file officers read (every status and channel in Chinese)."""
    lines = [f"zige 晨报 / morning summary  {summary['since'][:16]} → {summary['until'][:16]}", ""]
    lines.append("一、收到的文件")
    inbox_zh = dict(InboxStatus.choices)
    for f in summary["inbox"] or []:
        lines.append(f"  {f['agency']}/{f['file_name']}  {inbox_zh.get(f['status'], f['status'])}")
    if not summary["inbox"]:
        lines.append("  （无）")
    lines.append("  导入：" + _said(summary["imports"], dict(ImportStatus.choices)))
    lines.append("二、认证批次")
    run_zh = dict(RunStatus.choices)
    for r in summary["runs"]:
        changes = "，".join(f"{_transition_said(k)} {v:,}" for k, v in (r["transitions"] or {}).items())
        lines.append(
            f"  #{r['run']} 基准日 {r['as_of']} {run_zh.get(r['status'], r['status'])}，变化 {r['changed'] or 0:,} 人"
            + (f"（{changes}）" if changes else "")
        )
    if not summary["runs"]:
        lines.append("  （无）")
    m = summary["messages"]
    lines.append("三、提醒")
    lines.append(
        f"  新建 {_said(m['created'], dict(Channel.choices))}；已发送 {m['sent']:,}；"
        f"单位通知名单 {m['unit_notices']:,}；发件箱 {_said(m['outbox'], dict(MessageStatus.choices))}"
    )
    lines.append("四、需要人工处理")
    lines.extend(f"  - {n}" for n in summary["needs_a_person"]) if summary[
        "needs_a_person"
    ] else lines.append("  （无）")
    return "\n".join(lines) + "\n"


def morning_summary(
    *, clock: Clock, config: NotifyConfig | None = None, force: bool = False
) -> JobRun | None:
    """Once a day at or after `summary_at`: the summary since the previous one, in the job log
    and as `ZIGE_DATA_DIR/summaries/<date>.txt`."""
    config = config or current()
    now = clock()
    local = timezone.localtime(now)
    if not force and (config.summary_at is None or local.time() < config.summary_at):
        return None
    previous = (
        JobRun.objects.filter(job="summary", status=JobStatus.SUCCEEDED).order_by("-started_at").first()
    )
    job = _claim_job("summary", local.date().isoformat(), now)
    if job is None:
        return None
    since = previous.started_at if previous else now - timedelta(days=1)
    try:
        summary = summary_build(since=since, until=now)
        path = Path(settings.DATA_DIR) / "summaries" / f"{local.date().isoformat()}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(summary_text(summary), encoding="utf-8")
        summary["file"] = str(path)
        return _end_job(job, now=clock(), ok=True, detail=json.loads(json.dumps(summary, default=str)))
    except Exception as exc:
        logger.exception("the morning summary failed")
        return _end_job(job, now=clock(), ok=False, detail={}, message=f"{type(exc).__name__}: {exc}")


def tasks_sweep_daily(*, clock: Clock) -> JobRun | None:
    """Once a day: the verification tasks' reminders and overdue escalation (issue #4,
    `zige.verification.services.tasks_sweep`)."""
    from zige.verification.services import tasks_sweep

    now = clock()
    job = _claim_job("tasks_sweep", timezone.localtime(now).date().isoformat(), now)
    if job is None:
        return None
    try:
        return _end_job(job, now=clock(), ok=True, detail=tasks_sweep(now=now))
    except Exception as exc:
        logger.exception("the verification sweep failed")
        return _end_job(job, now=clock(), ok=False, detail={}, message=f"{type(exc).__name__}: {exc}")


def store_compact_weekly(*, clock: Clock, config: NotifyConfig | None = None) -> JobRun | None:
    """Once a week, at or after `store_compact_at` on its weekday (within `daily_run_window_h`):
    merge the evidence store's partitions of many small files (`zige store compact`), keyed by
    the ISO week."""
    from zige.feeds.services import store_compact

    config = config or current()
    if config.store_compact_at is None:
        return None
    now = clock()
    local = timezone.localtime(now)
    weekday, at = config.store_compact_at
    start = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if local.weekday() != weekday or not start <= local < start + timedelta(hours=config.daily_run_window_h):
        return None
    year, week, _ = local.isocalendar()
    job = _claim_job("store_compact", f"{year}-W{week:02d}", now)
    if job is None:
        return None
    try:
        result = store_compact(now=now)
        detail = {
            "partitions": len(result.partitions), "rows": sum(p.rows for p in result.partitions),
            "removed": len(result.removed), "removed_bytes": result.removed_bytes,
        }  # fmt: skip
        return _end_job(job, now=clock(), ok=True, detail=detail)
    except Exception as exc:
        logger.exception("the store compaction failed")
        return _end_job(job, now=clock(), ok=False, detail={}, message=f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------
# The schedule


def tick(*, clock: Clock, gateway: Gateway, config: NotifyConfig | None = None) -> dict[str, Any]:
    """One pass: the inbox, the daily run, sending, the morning summary, the weekly compaction."""
    config = config or current()
    result: dict[str, Any] = {}
    for name, step in (
        ("inbox", lambda: inbox_scan(now=clock(), config=config)),
        ("daily_run", lambda: daily_run(clock=clock, config=config)),
        ("tasks_sweep", lambda: tasks_sweep_daily(clock=clock)),  # issue #4: verification deadlines
        ("send", lambda: messages_send_due(gateway=gateway, clock=clock, config=config).as_dict()),
        ("summary", lambda: morning_summary(clock=clock, config=config)),
        ("store_compact", lambda: store_compact_weekly(clock=clock, config=config)),  # weekly
    ):
        try:
            value = step()
            result[name] = value.status if isinstance(value, JobRun) else value
        except Exception as exc:  # one failing job must not stop the others
            logger.exception("scheduled %s failed", name)
            result[name] = f"error: {type(exc).__name__}: {exc}"
    _heartbeat(clock(), result)
    return result


def _heartbeat(now: datetime, result: dict[str, Any]) -> None:
    JobRun.objects.update_or_create(
        job="scheduler", key=worker_name(),
        defaults={"status": JobStatus.SUCCEEDED, "started_at": now, "finished_at": now,
                  "detail": json.loads(json.dumps(result, default=str))},
    )  # fmt: skip


def scheduler_loop(*, stop: threading.Event, config: NotifyConfig | None = None, echo: bool = False) -> None:
    config = config or current()
    gateway = build(config, data_dir=Path(settings.DATA_DIR), echo=echo)
    while not stop.is_set():
        close_old_connections()
        try:
            tick(clock=timezone.now, gateway=gateway, config=config)
        except Exception:
            logger.exception("scheduler tick failed")
        stop.wait(config.tick_s)
