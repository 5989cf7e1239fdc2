"""The HTTP gateway against a real SMS gateway server on 127.0.0.1 (tests/sms_gateway.py), in
the Aliyun and Tencent formats: signatures, timeouts, 500s, provider error codes, a gateway
down for an hour, duplicate delivery-receipt callbacks, and a sender process killed with
SIGKILL mid-batch and restarted — every message sent exactly once, as the gateway counts."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.factories import make_id
from tests.integration.test_runs import ROSTER_HEADER, do_import, do_run, write_csv
from tests.sms_gateway import KEY_ID, SECRET, SmsGatewayServer
from zige.notifications.config import NotifyConfig
from zige.notifications.gateways import HttpGateway
from zige.notifications.models import AttemptOutcome, Message, MessageStatus
from zige.notifications.services import messages_send_due

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def config_for(server: SmsGatewayServer, **changes: Any) -> NotifyConfig:
    base = NotifyConfig(
        gateway="http", provider=server.provider, sms_url=server.url, access_key_id=KEY_ID, access_key_secret=SECRET,
        sdk_app_id="1400000000", template_reminder_id="SMS_1", template_app_failed_id="SMS_2", timeout_s=0.5,
        quiet_start=datetime(2026, 1, 1, 21, tzinfo=SHANGHAI).timetz().replace(tzinfo=None),
        quiet_end=datetime(2026, 1, 1, 8, tzinfo=SHANGHAI).timetz().replace(tzinfo=None),
        rate_per_minute=1000, backoff_base_s=60, lease_s=60, callback_token="tok",
    )  # fmt: skip
    return replace(base, **changes)


@pytest.fixture
def people(settings: Any, tmp_path: Path, db: Any) -> int:
    """Five people due for a reminder, each with a mobile number; their run is done."""
    data = tmp_path / "data"
    settings.DATA_DIR, settings.EVIDENCE_DIR = data, data / "evidence"
    settings.UPLOAD_DIR, settings.RUNS_DIR = data / "uploads", data / "runs"
    rows = [
        [f"P{i:03d}", f"张{i}", make_id(200 + i, date(1950, 1, 1)), "U1", "单位", "正常", "3000", f"1391234{i:04d}",
         "2010-01-01", "2026-01-15"]
        for i in range(5)
    ]  # fmt: skip
    do_import(write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows), "roster")
    do_run()
    return 5


@pytest.fixture(params=["aliyun", "tencent"])
def server(request: pytest.FixtureRequest) -> Iterator[SmsGatewayServer]:
    gateway = SmsGatewayServer(request.param, slow_s=1.5)
    yield gateway
    gateway.down()


def evening() -> Clock:
    return Clock(datetime(2026, 11, 30, 18, 0, tzinfo=SHANGHAI))  # after the run (17:00), before quiet hours


def out_ids() -> set[str]:
    """The SMS (a failed one's unit notice is never sent)."""
    return {m.out_id for m in Message.objects.filter(channel="sms")}


@pytest.mark.django_db
def test_signed_requests_are_accepted_and_ids_recorded(people: int, server: SmsGatewayServer) -> None:
    config = config_for(server)
    report = messages_send_due(gateway=HttpGateway(config), clock=evening(), config=config)
    assert report.sent == people and server.bad_signatures == 0
    assert dict(server.accepted) == dict.fromkeys(out_ids(), 1)
    ids = set(Message.objects.values_list("provider_message_id", flat=True))
    assert ids == {r["id"] for r in server.records}
    assert set(Message.objects.values_list("provider", flat=True)) == {server.provider}


@pytest.mark.django_db
def test_a_wrong_key_is_retried_not_lost(people: int, server: SmsGatewayServer) -> None:
    config = config_for(server, access_key_secret="wrong")
    report = messages_send_due(gateway=HttpGateway(config), clock=evening(), config=config)
    assert report.retrying == people and server.bad_signatures == people and not server.accepted


@pytest.mark.django_db
def test_500_timeout_and_error_codes(people: int, server: SmsGatewayServer) -> None:
    permanent = (
        "isv.MOBILE_NUMBER_ILLEGAL"
        if server.provider == "aliyun"
        else "InvalidParameterValue.IncorrectPhoneNumber"
    )
    temporary = (
        "isv.BUSINESS_LIMIT_CONTROL" if server.provider == "aliyun" else "LimitExceeded.PhoneNumberDailyLimit"
    )
    server.faults = ["500", "timeout", f"code:{permanent}", f"code:{temporary}"]
    config = config_for(server)
    clock = evening()
    gateway = HttpGateway(config)
    first = messages_send_due(gateway=gateway, clock=clock, config=config)
    assert (first.sent, first.retrying, first.failed) == (1, 3, 1)
    ordered = list(Message.objects.order_by("pk"))
    failed = ordered[2]
    assert failed.status == MessageStatus.FAILED and permanent in failed.last_error
    timed_out = ordered[1]
    assert timed_out.status == MessageStatus.RETRYING and server.accepted[timed_out.out_id] == 1
    # nothing is due before the backoff
    assert messages_send_due(gateway=gateway, clock=clock, config=config).claimed == 0
    clock.advance(seconds=61)
    second = messages_send_due(gateway=gateway, clock=clock, config=config)
    assert second.sent == 3 and second.found == 1  # the timed-out one was found, not sent again
    assert dict(server.accepted) == dict.fromkeys(out_ids() - {failed.out_id}, 1)
    assert timed_out.attempt_log.filter(outcome=AttemptOutcome.FOUND).count() == 1
    assert failed.attempt_log.count() == 1  # a permanent failure is not retried
    time.sleep(1.2)  # let the slow handler thread finish before the server stops


@pytest.mark.django_db
def test_a_gateway_down_for_an_hour_loses_nothing_and_sends_nothing_twice(
    people: int, server: SmsGatewayServer
) -> None:
    config = config_for(server)
    gateway = HttpGateway(config)
    clock = evening()
    server.down()
    for _ in range(12):  # an hour of attempts, every few minutes
        messages_send_due(gateway=gateway, clock=clock, config=config)
        clock.advance(minutes=5)
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.RETRYING}
    assert not server.accepted
    server.up()
    clock.advance(hours=1)
    assert messages_send_due(gateway=gateway, clock=clock, config=config).sent == people
    assert dict(server.accepted) == dict.fromkeys(out_ids(), 1)


@pytest.mark.django_db
def test_duplicate_delivery_callbacks(
    people: int, server: SmsGatewayServer, client: Any, settings: Any
) -> None:
    """The gateway's reports for every message it accepted, posted three times (providers
    retry callbacks); the audit log's append-only triggers rule out a live server here."""
    config = config_for(server)
    settings.ZIGE_NOTIFICATIONS = config
    messages_send_due(gateway=HttpGateway(config), clock=evening(), config=config)
    url = f"/notifications/receipts/{server.provider}/?token=tok"
    body = json.dumps(server.receipts(), ensure_ascii=False)
    answers = [client.post(url, body, content_type="application/json") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["new"] for a in answers] == [people, 0, 0]
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.DELIVERED}
    assert sum(m.receipts.count() for m in Message.objects.all()) == people
    assert client.post(url.replace("tok", "nope"), body, content_type="application/json").status_code == 403


# --- a sender process killed with SIGKILL mid-batch ------------------------------------------


def _own_database(url: str) -> tuple[str, str]:
    import psycopg

    name = f"zige_notif_{secrets.token_hex(4)}"
    parts = urllib.parse.urlsplit(url)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return parts._replace(path=f"/{name}").geturl(), name


def _drop_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(
        urllib.parse.urlsplit(url)._replace(path="/postgres").geturl(), autocommit=True
    ) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _zige(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "zige"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), f"zige {' '.join(args)}: {done.returncode}\n{done.stderr}"
    return done.stdout


@pytest.mark.postgres
def test_a_sender_killed_mid_batch_resumes_and_sends_each_message_once(tmp_path: Path) -> None:
    server = SmsGatewayServer("aliyun", delay_s=0.15)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZIGE_", "DJANGO_"))}
    env |= {
        "ZIGE_DATA_DIR": str(tmp_path / "data"), "ZIGE_SMS_GATEWAY": "http", "ZIGE_SMS_URL": server.url,
        "ZIGE_SMS_PROVIDER": "aliyun", "ZIGE_SMS_KEY_ID": KEY_ID, "ZIGE_SMS_KEY_SECRET": SECRET,
        "ZIGE_SMS_TEMPLATE_ID": "SMS_1", "ZIGE_QUIET_HOURS": "off", "ZIGE_DAILY_RUN_AT": "off",
        "ZIGE_SUMMARY_AT": "off", "ZIGE_SMS_LEASE_SECONDS": "2", "ZIGE_SMS_BATCH_SIZE": "5",
        "ZIGE_SCHEDULER_TICK_SECONDS": "0.2", "ZIGE_SMS_TIMEOUT": "5", "ZIGE_SMS_RATE_PER_MINUTE": "10000",
    }  # fmt: skip
    database = None
    if url := os.environ.get("ZIGE_DATABASE_URL"):
        database = _own_database(url)
        env["ZIGE_DATABASE_URL"] = database[0]
    total = 20
    rows = [
        [f"P{i:03d}", f"李{i}", make_id(300 + i, date(1950, 1, 1)), "U1", "单位", "正常", "3000", f"1381234{i:04d}",
         "2010-01-01", "2026-01-15"]
        for i in range(total)
    ]  # fmt: skip
    roster = write_csv(tmp_path / "roster.csv", ROSTER_HEADER, rows)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _zige(env, "import", "roster", str(roster))
        _zige(env, "run", "--as-of", "2026-11-30")
        argv = [str(Path(sys.executable).parent / "zige"), "scheduler"]
        first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(first)
        deadline = time.monotonic() + 60
        while sum(server.accepted.values()) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sum(server.accepted.values()) >= 6, "the sender did not start sending"
        first.send_signal(signal.SIGKILL)  # mid-batch: most likely during a gateway call
        first.wait()
        killed_at = sum(server.accepted.values())
        assert killed_at < total
        second = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(second)
        deadline = time.monotonic() + 90
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if len(server.accepted) == total:
                status = json.loads(_zige(env, "status", "--json"))
                if status["outbox"].get("sent") == total:
                    break
            time.sleep(0.3)
        assert status.get("outbox", {}).get("sent") == total, status
        assert len(server.accepted) == total
        assert set(server.accepted.values()) == {1}, {k: v for k, v in server.accepted.items() if v != 1}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        server.down()
        if database is not None:
            _drop_database(os.environ["ZIGE_DATABASE_URL"], database[1])
