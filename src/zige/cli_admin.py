"""`zige user …`, `zige serve`, `zige worker`, `zige audit verify`, `zige migrate`: operating the system.

Every command configures Django from the environment (`ZIGE_DATA_DIR`, `ZIGE_DATABASE_URL`, see
`zige.web.settings`) and brings the schema up to date before it starts.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.table import Table

err = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]zige: error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _django(*, migrate: bool = True) -> None:
    from zige.web.bootstrap import setup_django

    setup_django(migrate=migrate)


# --- users ------------------------------------------------------------------------------------


def _read_password() -> str:
    """From the terminal (asked twice, not echoed), or one line from a pipe."""
    stdin = sys.stdin
    if stdin.isatty():
        first = getpass.getpass("密码 / password: ")
        second = getpass.getpass("再次输入 / again: ")
        if first != second:
            _fail("the two passwords differ", 2)
        return first
    password = str(stdin.readline()).rstrip("\r\n")
    if not password:
        _fail("no password on standard input (give it on one line, e.g. from a file or a pipe)", 2)
    return password


@click.group("user")
def user_group() -> None:
    """Create and list user accounts."""


@user_group.command("create")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["bureau_admin", "bureau_operator", "unit_operator", "auditor"]),
    help="the user's role",
)
@click.option(
    "--unit",
    "unit_no",
    default=None,
    help="unit number (required for a unit_operator, refused for other roles)",
)
@click.option("--full-name", default="", help="the person's name as shown on pages")
def user_create_cmd(name: str, role: str, unit_no: str | None, full_name: str) -> None:
    """Create user NAME; the password is read from standard input (asked twice on a terminal)."""
    # The options are checked before the password is asked for: a usage mistake, told at once.
    unit_no = (unit_no or "").strip() or None
    if role == "unit_operator" and not unit_no:
        _fail("单位经办人员必须指定所属单位 / a unit_operator needs --unit UNIT_NO (the unit's number)", 2)
    if role != "unit_operator" and unit_no:
        _fail(f"只有单位经办人员可以指定所属单位 / --unit is for a unit_operator only, not a {role}", 2)
    password = _read_password()
    _django()
    from django.utils import timezone

    from zige.accounts.services import UserError, cli_actor, user_create

    try:
        user = user_create(
            actor=cli_actor(), username=name, role=role, unit_no=unit_no, name=full_name,
            password=password, now=timezone.now(),
        )  # fmt: skip
    except UserError as exc:
        _fail("; ".join(exc.messages))
        return
    unit = f" unit {user.unit.unit_no}" if user.unit else ""
    out.print(f"created user {user.username} ({user.role}{unit})", highlight=False)


@user_group.command("set-password")
@click.argument("name")
def user_set_password_cmd(name: str) -> None:
    """Set user NAME's password (read from standard input) and lift any lockout."""
    password = _read_password()
    _django()
    from django.utils import timezone

    from zige.accounts.models import User
    from zige.accounts.services import UserError, cli_actor, user_set_password

    user = User.objects.filter(username=name).first()
    if user is None:
        _fail(f"no user named {name!r}")
        return
    try:
        user_set_password(actor=cli_actor(), user=user, password=password, now=timezone.now())
    except UserError as exc:
        _fail("; ".join(exc.messages))
    out.print(f"password set for {name}", highlight=False)


@user_group.command("list")
def user_list_cmd() -> None:
    """List the user accounts."""
    _django()
    from django.utils import timezone

    from zige.accounts.models import User

    now = timezone.now()
    headers = ("username", "name", "role", "unit", "active", "locked until", "last login")
    rows = [
        (
            u.username,
            u.first_name,
            u.role,
            u.unit.unit_no if u.unit else "",
            "yes" if u.is_active else "no",
            f"{timezone.localtime(u.locked_until):%Y-%m-%d %H:%M}"
            if u.locked_until and u.locked_until > now
            else "",
            f"{timezone.localtime(u.last_login):%Y-%m-%d %H:%M}" if u.last_login else "",
        )
        for u in User.objects.select_related("unit").order_by("username")
    ]
    if not out.is_terminal:  # piped: tab-separated, one user a line, for scripts
        click.echo("\t".join(headers))
        for row in rows:
            click.echo("\t".join(row))
        return
    table = Table(title="zige users", title_justify="left")
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    out.print(table)


# --- audit ------------------------------------------------------------------------------------


@click.group("audit")
def audit_group() -> None:
    """The audit log."""


def _anchor(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[tuple[int, str]]:
    anchors = []
    for value in values:
        seq, _, digest = value.partition(":")
        if not (seq.isdigit() and len(digest) == 64):
            raise click.BadParameter(f"{value!r} is not SEQ:HASH (as printed by an earlier verify)")
        anchors.append((int(seq), digest.lower()))
    return anchors


@audit_group.command("verify")
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    callback=_anchor,
    metavar="SEQ:HASH",
    help="a head printed by an earlier verify (kept elsewhere): the row must still be there, "
    "unchanged, which also catches rows cut from the end of the log",
)
def audit_verify_cmd(anchors: list[tuple[int, str]]) -> None:
    """Recompute the audit log's hash chain: exit 0 when intact, 1 at the first bad row.

    The chain finds an edited, inserted or deleted row anywhere before the last one; rows removed
    from the very end leave a shorter chain that is still consistent, which `--anchor` with a
    head recorded earlier (it is printed on success) detects."""
    _django()
    from zige.audit.models import AuditEvent
    from zige.audit.services import audit_verify

    report = audit_verify()
    if not report.ok:
        err.print(
            f"audit log BROKEN at seq {report.first_bad_seq}: {report.problem}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
    for seq, digest in anchors:
        found = AuditEvent.objects.filter(seq=seq).values_list("hash", flat=True).first()
        if found != digest:
            why = "is missing (rows removed from the end?)" if found is None else "has another hash"
            err.print(f"audit log BROKEN at seq {seq}: the anchored row {why}", highlight=False)
            sys.exit(1)
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    # An emptied log verifies like a new one: only an anchor kept elsewhere tells them apart.
    tail = (
        f"; head {head[0]}:{head[1]}"
        if head
        else " (empty: a new installation, or a log emptied by its owner; --anchor with an earlier head tells which)"
    )
    out.print(f"audit log intact: {report.events} events{tail}", highlight=False, soft_wrap=True)


# --- serving ----------------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    """The environment of the web and worker processes: the data directory made absolute."""
    from django.conf import settings

    env = dict(os.environ)
    env["ZIGE_DATA_DIR"] = str(settings.DATA_DIR)
    env.setdefault("DJANGO_SETTINGS_MODULE", "zige.web.settings")
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM if `zige serve` itself dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C reaches `zige serve` only, which then stops each child once.
    return subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_die_with_parent)


def _stop(children: list[subprocess.Popen[bytes]], grace: float) -> None:
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            child.wait()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="web processes")
@click.option(
    "--timeout",
    default=600,
    show_default=True,
    type=click.IntRange(10),
    help="seconds a web request may take (large uploads)",
)
@click.option("--grace", default=30.0, show_default=True, help="seconds to let both finish on stop")
def serve(host: str, port: int, workers: int, timeout: int, grace: float) -> None:
    """Run the web application (gunicorn) and the task worker; Ctrl-C or SIGTERM stops both."""
    _django()  # migrate once here, before two processes could race to do it
    env = _child_env()
    web_argv = [
        sys.executable, "-m", "gunicorn", "zige.web.wsgi:application",
        "--bind", f"{host}:{port}", "--workers", str(workers), "--timeout", str(timeout),
        "--graceful-timeout", str(int(grace)), "--error-logfile", "-",
    ]  # fmt: skip
    worker_argv = [sys.executable, "-m", "zige", "worker"]

    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children: list[subprocess.Popen[bytes]] = []
    names = ("web server", "task worker")
    exited: tuple[str, int] | None = None
    try:
        children.append(_start(web_argv, env))
        children.append(_start(worker_argv, env))
        err.print(
            f"zige serving on http://{host}:{port}/ ({workers} web processes and a task worker); "
            "Ctrl-C stops",
            highlight=False,
        )
        while not stopping and exited is None:
            exited = next(
                (
                    (name, rc)
                    for name, child in zip(names, children, strict=True)
                    if (rc := child.poll()) is not None
                ),
                None,
            )
            time.sleep(0.2)
    finally:
        _stop(children, grace)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if exited is not None and not stopping:
        _fail(f"the {exited[0]} stopped (exit {exited[1]}); the other was stopped too")


@click.command()
def worker() -> None:
    """Run the background task worker (imports, runs) and the schedule (inboxes, the daily
    run, reminders, the morning summary; off with ZIGE_SCHEDULE=0) until Ctrl-C or SIGTERM."""
    _django()
    from django.core.management import call_command
    from django.utils import timezone

    from zige.certification.services import runs_mark_interrupted
    from zige.feeds.services import imports_mark_interrupted
    from zige.notifications.cli import start_scheduler_thread

    if os.environ.get("ZIGE_RECOVER_INTERRUPTED", "1") != "0":
        # One worker per installation (as `zige serve` runs it): what is still `running` when it
        # starts was running in a process that has ended. With several workers set
        # ZIGE_RECOVER_INTERRUPTED=0, or one would fail the others' work.
        now = timezone.now()
        imports, runs = (
            imports_mark_interrupted(now=now, started_before=now),
            runs_mark_interrupted(now=now, started_before=now),
        )
        if imports or runs:
            err.print(f"interrupted work marked failed: {imports} import(s), {runs} run(s)", highlight=False)

    start_scheduler_thread()

    call_command("db_worker", reload=False, verbosity=1)


@click.group("store")
def store_group() -> None:
    """The evidence store (证据库) under ZIGE_DATA_DIR."""


@store_group.command("upgrade")
def store_upgrade_cmd() -> None:
    """Rewrite the batches of an older store key layout to this version's (birth date first:
    docs/architecture.md); a store that is up to date is left as it is. Audited."""
    _django()
    from django.db import transaction
    from django.utils import timezone

    from zige.audit.services import audit_record
    from zige.feeds import store

    upgraded = store.evidence_store().upgrade_key_layout()
    if upgraded:
        with transaction.atomic():
            audit_record(
                action="store.upgraded", target_type="evidence_store", at=timezone.now(),
                after={"batches": upgraded},
            )  # fmt: skip
    out.print(f"store key layout: {len(upgraded)} batch(es) rewritten", highlight=False)


@store_group.command("compact")
@click.option(
    "--min-files", type=click.IntRange(min=2), default=2, show_default=True,
    help="merge a kind/month partition holding at least this many files",
)  # fmt: skip
@click.option("--kind", default=None, help="only this feed kind (default: every kind)")
@click.option(
    "--grace-hours", type=click.FloatRange(min=0), default=1.0, show_default=True,
    help="keep replaced files this long after a merge, for reads that listed them before",
)  # fmt: skip
def store_compact_cmd(min_files: int, kind: str | None, grace_hours: float) -> None:
    """Merge each kind/month partition's files of succeeded imports into one sorted file
    (小文件合并: a person page then reads one file per partition instead of one per import), and
    remove the files earlier merges replaced once their grace period is over. Audited."""
    _django()
    from datetime import timedelta

    from django.utils import timezone

    from zige.engine.store import CompactedPartition, StoreBusy
    from zige.feeds.services import store_compact

    def report(p: CompactedPartition) -> None:
        rate = p.rows / p.seconds if p.seconds > 0 else 0.0
        out.print(
            f"{p.kind} {p.month}: {p.files} files -> 1 ({p.batches} batches, {p.rows:,} rows, "
            f"{p.bytes_before / 1e6:.1f} -> {p.bytes_after / 1e6:.1f} MB) in {p.seconds:.2f} s "
            f"({rate / 1e6:.2f} M rows/s)",
            highlight=False,
        )

    try:
        result = store_compact(
            now=timezone.now(),
            min_files=min_files,
            kind=kind,
            grace=timedelta(hours=grace_hours),
            progress=report,
        )
    except StoreBusy as exc:
        _fail(str(exc))
    except OSError as exc:  # the partition being merged is as it was (nothing of it committed)
        _fail(f"store compact failed: {exc}; the partition being merged is unchanged, run it again")
    rows = sum(p.rows for p in result.partitions)
    out.print(
        f"store compact: {len(result.partitions)} partition(s) merged ({rows:,} rows); "
        f"{len(result.removed)} replaced file(s) removed ({result.removed_bytes / 1e6:.1f} MB)",
        highlight=False,
    )


@click.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    _django(migrate=False)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1)


def register(main: click.Group) -> None:
    """Add the operator commands to the `zige` group."""
    commands: list[Any] = [user_group, audit_group, store_group, serve, worker, migrate]
    for command in commands:
        main.add_command(command)
