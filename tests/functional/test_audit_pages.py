"""Auditors browse and export the audit log; the export is itself audited."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from zige.accounts.models import Role, User
from zige.audit.models import AuditEvent
from zige.audit.selectors import action_label
from zige.audit.services import audit_record, audit_verify

pytestmark = pytest.mark.django_db

DAY1 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def auditor(client: Client) -> User:
    user = UserFactory(username="shenji", role=Role.AUDITOR)
    client.force_login(user)
    return user


def _seed() -> None:
    class Op:
        username, role = "op1", "bureau_operator"

    audit_record(actor=Op(), action="pii.reveal", target_type="roster.Recipient", target_id="P1", after={"field": "id_number"}, at=DAY1)  # fmt: skip
    audit_record(action="auth.login_failed", target_type="accounts.User", target_id="=HYPERLINK(\"x\")", after={"reason": "unknown_user"}, at=DAY1 + timedelta(days=1))  # fmt: skip
    audit_record(actor=Op(), action="auth.login", target_type="accounts.User", target_id="op1", at=DAY1 + timedelta(days=2))  # fmt: skip


def test_browse_filters(client: Client, auditor: User) -> None:
    _seed()
    url = reverse("audit:browse")

    def shown(**filters: str) -> list[str]:
        html = client.get(url, filters).content.decode()
        return re.findall(r'<code class="muted action-code">([a-z_.]+)</code></td>', html)

    assert shown() == ["auth.login", "auth.login_failed", "pii.reveal", "auth.login"]  # newest first
    assert shown(action="pii.reveal") == ["pii.reveal"]
    assert shown(action="auth.") == ["auth.login", "auth.login_failed", "auth.login"]
    assert shown(actor="op1", target_id="op1") == ["auth.login"]
    assert shown(date_from="2026-03-02", date_to="2026-03-02") == ["auth.login_failed"]
    junk = client.get(url, {"date_from": "yesterday", "page": "x"})
    assert junk.status_code == 200


def test_an_event_reads_in_chinese_with_its_raw_record_kept(client: Client, auditor: User) -> None:
    audit_record(
        action="payment_action.approved", target_type="payment_action", target_id="1829",
        before={"state": "proposed"}, after={"state": "approved", "recipient": 50435, "amount": "6000.00"}, at=DAY1,
    )  # fmt: skip
    html = client.get(reverse("audit:browse")).content.decode()
    assert "审批通过待遇处理" in html and "待遇处理 1829" in html
    assert "<dt>状态</dt><dd>待审批</dd>" in html and "<dt>状态</dt><dd>已审批</dd>" in html
    assert "<dt>人员（内部编号）</dt><dd>50435</dd>" in html and "<dt>金额（元）</dt><dd>6000.00</dd>" in html
    # the stored JSON, as hashed, stays one click away for the auditor
    assert '<summary>原始记录</summary><code class="json">{&quot;amount&quot;: &quot;6000.00&quot;' in html


def test_browse_paginates(client: Client, auditor: User) -> None:
    for i in range(120):
        audit_record(action="test.event", target_id=str(i), at=DAY1)
    first = client.get(reverse("audit:browse"), {"action": "test.event"}).content.decode()
    assert "第 1 / 3 页" in first and "action=test.event&amp;page=2" in first
    last = client.get(reverse("audit:browse"), {"action": "test.event", "page": 3}).content.decode()
    assert "第 3 / 3 页" in last


def test_export_is_csv_and_is_itself_audited(client: Client, auditor: User) -> None:
    _seed()
    response = client.post(reverse("audit:export"), {"action": "auth."}, REMOTE_ADDR="10.0.0.5")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")  # so that Excel reads the file as UTF-8
    # officers open the file in Excel: the columns are named in Chinese, in a fixed order
    assert text.splitlines()[0] == (
        "\ufeff序号,时间,操作人,操作人角色,操作,操作代码,对象类型,对象编号,变更前（原始记录）,变更后（原始记录）,"
        "IP地址,前一条记录哈希,本条记录哈希"
    )
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    # oldest first: the auditor's own login, then the seeded events; not the export itself
    assert [(r["操作代码"], r["操作人"]) for r in rows] == [
        ("auth.login", "shenji"), ("auth.login_failed", ""), ("auth.login", "op1")
    ]  # fmt: skip
    # the action and the role read in Chinese, as on the page
    assert [r["操作"] for r in rows] == [action_label("auth.login"), action_label("auth.login_failed"),
                                         action_label("auth.login")]  # fmt: skip
    assert rows[0]["操作人角色"] == "审计人员" and all(r["操作"] and r["操作"] != r["操作代码"] for r in rows)
    failed = rows[1]
    assert failed["对象编号"].startswith("'=")  # no formula for a spreadsheet to run
    assert failed["时间"] == "2026-03-02T10:00:00+08:00"
    assert failed["变更后（原始记录）"] == '{"reason": "unknown_user"}' and len(failed["本条记录哈希"]) == 64
    assert len(failed["前一条记录哈希"]) == 64
    export = AuditEvent.objects.get(action="audit.export")
    assert (export.actor, export.actor_role, export.ip) == ("shenji", "auditor", "10.0.0.5")
    assert export.after == {"filters": {"action": "auth."}, "rows": 3}
    assert audit_verify().ok


def test_export_needs_post(client: Client, auditor: User) -> None:
    assert client.get(reverse("audit:export")).status_code == 405
    assert not AuditEvent.objects.filter(action="audit.export").exists()


def test_bureau_admin_may_browse_and_operators_may_not(client: Client) -> None:
    client.force_login(UserFactory(role=Role.BUREAU_ADMIN))
    assert client.get(reverse("audit:browse")).status_code == 200
    client.force_login(UserFactory(role=Role.BUREAU_OPERATOR))
    assert client.get(reverse("audit:browse")).status_code == 403
    assert client.post(reverse("audit:export")).status_code == 403


def test_before_and_after_cells_wrap_by_words_not_by_characters(client: Client, auditor: User) -> None:
    from pathlib import Path

    audit_record(
        action="import.started", target_type="import", target_id="7", before={"status": "queued"}, at=DAY1
    )
    html = client.get(reverse("audit:browse")).content.decode()
    rows = html.count('<code class="muted action-code">')
    assert rows >= 1 and html.count('<td class="audit-change">') == 2 * rows  # each row's before and after
    css_file = Path(__file__).resolve().parents[2] / "src/zige/web/static/css/zige.css"
    css = css_file.read_text(encoding="utf-8")
    rule = re.search(r"\.audit-kv dd \{([^}]*)\}", css)
    # break-all let a cell shrink to one character a line
    assert rule is not None and "break-all" not in rule.group(1)
    change = re.search(r"\.table--audit td\.audit-change \{([^}]*)\}", css)
    assert change is not None and "min-width" in change.group(1)


def test_import_and_run_states_kinds_and_failure_codes_read_in_chinese(client: Client, auditor: User) -> None:
    audit_record(action="import.started", target_type="import", target_id="7",
                 before={"status": "queued"}, after={"status": "running", "kind": "rail", "file_name": "rail.csv"}, at=DAY1)  # fmt: skip
    audit_record(action="import.failed", target_type="import", target_id="8",
                 after={"kind": "rail", "file_name": "r.csv", "code": "missing_columns"}, at=DAY1)  # fmt: skip
    audit_record(action="run.started", target_type="run", target_id="3", before={"status": "queued"}, at=DAY1)
    html = client.get(reverse("audit:browse")).content.decode()
    assert "<dt>状态</dt><dd>排队中</dd>" in html and "<dt>状态</dt><dd>导入中</dd>" in html
    assert "<dd>queued</dd>" not in html and "<dd>running</dd>" not in html
    assert "<dt>类型</dt><dd>铁路出行</dd>" in html and "<dd>rail</dd>" not in html
    assert "<dt>代码</dt><dd>表头缺少必填列</dd>" in html and "<dd>missing_columns</dd>" not in html


def test_a_run_s_payment_actions_read_as_counts_ids_and_rows(client: Client, auditor: User) -> None:
    audit_record(action="payment_action.proposed_by_run", target_type="run", target_id="5",
                 after={"count": 1, "kinds": {"stop": 1}, "actions": [186], "proposed_by": "op1"}, at=DAY1)  # fmt: skip
    audit_record(action="payment_action.revised_by_run", target_type="run", target_id="5", after={"count": 1, "revisions": [
        {"action": 12, "recipient": 23, "kind": "stop",
         "before": {"effective_month": "2026-03", "months": 3, "amount": "10210.02"},
         "after": {"effective_month": "2026-04", "months": 4, "amount": "13613.36"}}]}, at=DAY1)  # fmt: skip
    audit_record(action="payment_action.withdrawn_by_run", target_type="run", target_id="6", after={"count": 1, "withdrawals": [
        {"action": 13, "recipient": 24, "kind": "suspend", "run": 5, "effective_month": "2026-03",
         "months": None, "amount": None, "decision": ""}]}, at=DAY1)  # fmt: skip
    html = client.get(reverse("audit:browse")).content.decode()
    assert "<dt>类型</dt><dd>停发 1</dd>" in html and "<dt>待遇处理</dt><dd>#186</dd>" in html
    assert "<dt>提出人</dt><dd>op1</dd>" in html and "<dt>proposed_by</dt>" not in html
    assert (
        "<dt>调整</dt><dd>待遇处理 #12：停发，2026-03 起 3 个月 10,210.02 元 → 2026-04 起 4 个月 13,613.36 元</dd>"
        in html
    )
    assert "<dt>撤回</dt><dd>待遇处理 #13：暂停发放，2026-03 起，认证批次 #5，认证结论 无需处理</dd>" in html
    shown = re.sub(r'<details class="audit-raw">.*?</details>', "", html, flags=re.S)
    assert "recipient" not in shown and "revisions" not in shown and "withdrawals" not in shown
    assert "&quot;recipient&quot;: 23" in html  # the raw record keeps it, folded


def test_a_finished_run_s_counts_read_under_the_conclusions_names(client: Client, auditor: User) -> None:
    audit_record(action="run.succeeded", target_type="run", target_id="4", after={
        "as_of": "2026-11-30", "recipients": 288, "changed": 0, "inputs_fingerprint": "9f15",
        "status": {"eligible": 237, "stop": 11, "suspend": 9, "review": 4, "pending": 27}}, at=DAY1)  # fmt: skip
    html = client.get(reverse("audit:browse")).content.decode()
    assert "<dt>认证结论</dt><dd>具备资格 237，待核实 27，疑点核查 4，暂停发放 9，丧失资格 11</dd>" in html
    assert "<dt>认证人数</dt><dd>288</dd>" in html and "<dt>结论变化</dt><dd>0</dd>" in html
    shown = re.sub(r'<details class="audit-raw">.*?</details>', "", html, flags=re.S)
    assert "eligible" not in shown and "pending" not in shown


def test_the_actors_role_reads_in_chinese_and_a_long_hash_may_break(client: Client, auditor: User) -> None:
    """The role under the actor showed its code (`bureau_operator`); it reads as the user pages name
    it. A 64-digit hash in a value kept the table wider than the page: a value may break anywhere
    (the cell's min-width keeps it from shrinking to a character a line)."""
    from pathlib import Path

    audit_record(actor=auditor, action="import.succeeded", target_type="import", target_id="7",
                 after={"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}, at=DAY1)  # fmt: skip
    html = client.get(reverse("audit:browse")).content.decode()
    assert '<br><span class="muted">审计人员</span>' in html and ">auditor</span>" not in html
    css = (Path(__file__).resolve().parents[2] / "src/zige/web/static/css/zige.css").read_text(
        encoding="utf-8"
    )
    rule = re.search(r"\.audit-kv dd \{([^}]*)\}", css)
    assert rule is not None and "overflow-wrap: anywhere" in rule.group(1)
