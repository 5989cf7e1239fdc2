"""待遇处理 pages and `zige payments`: a proposal by one officer, approved by another, exported,
downloaded, confirmed; a fraud fine outside 2–5× refused on the page."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import RecipientFactory, UserFactory, fraud_case, payment_action, recovery_case
from zige.accounts.models import Role
from zige.audit.models import AuditEvent
from zige.benefits.models import (
    ActionState,
    BatchState,
    Blacklist,
    ExportBatch,
    FraudCase,
    PaymentAction,
    RecoveryCase,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def wang() -> Any:
    return UserFactory(username="wang", role=Role.BUREAU_OPERATOR)


@pytest.fixture
def li() -> Any:
    return UserFactory(username="li", role=Role.BUREAU_ADMIN)


def as_user(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def last_month() -> str:
    """The month before today's (China time): a stop from it has paid 2 months (rules §5)."""
    today = timezone.localdate()
    return f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}"


def test_propose_on_the_page_and_the_proposer_cannot_approve(wang: Any, li: Any) -> None:
    person = RecipientFactory(name="张三丰")
    client = as_user(wang)
    response = client.post(
        reverse("benefits:action_new"),
        {"person_no": person.person_no, "kind": "stop", "effective_month": last_month(), "months": "2",
         "amount": "6000.00", "note": "火化信息"},
    )  # fmt: skip
    action = PaymentAction.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "benefits:action", args=[action.pk]
    )
    assert action.proposed_by == wang and action.source == "manual"
    page = client.get(reverse("benefits:action", args=[action.pk])).content.decode()
    assert "您是提出人" in page and "disabled" in page
    assert "张三丰" in page and "张*丰" not in page  # the name in full, as on the person page
    client.post(reverse("benefits:action_approve", args=[action.pk]), follow=True)
    action.refresh_from_db()
    assert action.state == ActionState.PROPOSED
    other = as_user(li)
    page = other.get(reverse("benefits:action", args=[action.pk])).content.decode()
    assert "您是提出人" not in page
    other.post(reverse("benefits:action_approve", args=[action.pk]))
    action.refresh_from_db()
    assert action.state == ActionState.APPROVED and action.approved_by == li


def test_the_officer_who_started_a_run_sees_its_proposals_as_their_own(wang: Any, li: Any) -> None:
    """A proposal of a run wang started: wang's page shows it as his (approve disabled, why),
    his approval is refused with the reason and no box is offered for bulk approval; li may
    approve it."""
    from datetime import date

    from zige.benefits.services import payment_actions_for_run
    from zige.certification.models import Decision, Run, RunStatus

    person = RecipientFactory()
    run = Run.objects.create(as_of=date(2026, 11, 30), status=RunStatus.SUCCEEDED, created_by=wang,
                             created_at=timezone.now())  # fmt: skip
    Decision.objects.create(run=run, recipient=person, unit=person.unit, status="eligible", reason="rail",
                            action="resume", effective_month="2026-12", months=5, amount=Decimal("15000.00"))  # fmt: skip
    assert payment_actions_for_run(run_id=run.pk, now=timezone.now()) == 1
    action = PaymentAction.objects.get(run=run)
    client = as_user(wang)
    page = client.get(reverse("benefits:action", args=[action.pk])).content.decode()
    assert f"认证批次 #{run.pk} 由您发起" in page and "wang（发起认证批次）" in page
    assert 'disabled aria-describedby="maker-note"' in page
    listing = client.get(reverse("benefits:actions")).content.decode()
    assert f'name="ids" value="{action.pk}"' not in listing
    response = client.post(reverse("benefits:action_approve", args=[action.pk]), follow=True)
    assert f"认证批次 #{run.pk} 由您发起" in response.content.decode()
    action.refresh_from_db()
    assert action.state == ActionState.PROPOSED
    as_user(li).post(reverse("benefits:action_approve", args=[action.pk]))
    action.refresh_from_db()
    assert action.state == ActionState.APPROVED and action.approved_by == li


def test_the_officer_whose_run_revised_a_proposal_sees_it_as_their_own(wang: Any, li: Any) -> None:
    """The scheduler's run proposed a stop; wang's later run revised its figures: wang's page
    shows it as his, naming the revision, not as a proposal of the run he did not start."""
    from datetime import date

    from zige.benefits.services import payment_actions_for_run
    from zige.certification.models import Decision, Run, RunStatus

    person = RecipientFactory()
    runs = []
    for as_of, by, months in ((date(2026, 11, 30), None, 2), (date(2026, 12, 31), wang, 3)):
        run = Run.objects.create(
            as_of=as_of, status=RunStatus.SUCCEEDED, created_by=by, created_at=timezone.now()
        )
        Decision.objects.create(run=run, recipient=person, unit=person.unit, status="stop", reason="death",
                                action="stop", effective_month="2026-10", months=months,
                                amount=months * person.monthly_amount)  # fmt: skip
        payment_actions_for_run(run_id=run.pk, now=timezone.now())
        runs.append(run)
    action = PaymentAction.objects.get(recipient=person)
    assert (action.run_id, action.months, action.proposed_by) == (runs[0].pk, 3, wang)
    page = as_user(wang).get(reverse("benefits:action", args=[action.pk])).content.decode()
    assert "其数字由您发起的认证批次更新，视为由您提出" in page and "wang（发起更新其数字的认证批次）" in page
    assert 'disabled aria-describedby="maker-note"' in page and "由您发起，其提出的" not in page
    response = as_user(wang).post(reverse("benefits:action_approve", args=[action.pk]), follow=True)
    assert "的数字由您发起的认证批次更新" in response.content.decode()
    as_user(li).post(reverse("benefits:action_approve", args=[action.pk]))
    action.refresh_from_db()
    assert action.state == ActionState.APPROVED and action.approved_by == li


def test_a_refused_change_is_shown_as_a_message(wang: Any) -> None:
    action = payment_action(RecipientFactory(), proposed_by=wang)
    response = as_user(wang).post(reverse("benefits:action_approve", args=[action.pk]), follow=True)
    assert "提出人不能审批" in response.content.decode()


def test_actions_list_filters(wang: Any) -> None:
    stop = payment_action(RecipientFactory(), kind="stop")
    suspend = payment_action(RecipientFactory(), kind="suspend", state="approved")
    client = as_user(wang)
    page = client.get(reverse("benefits:actions"), {"kind": "suspend"}).content.decode()
    assert f"#{suspend.pk}<" in page and f"#{stop.pk}<" not in page
    page = client.get(reverse("benefits:actions"), {"state": "proposed"}).content.decode()
    assert f"#{stop.pk}<" in page and f"#{suspend.pk}<" not in page


@pytest.mark.parametrize(
    ("listing", "make"),
    [
        ("benefits:actions", payment_action),
        ("benefits:recoveries", recovery_case),
        ("benefits:frauds", fraud_case),
    ],
)
def test_each_case_list_finds_one_person_by_number_id_or_name(wang: Any, listing: str, make: Any) -> None:
    """One search box on each list: 个人编号 or 身份证号 whole (a lower-case x as typed), or the
    start of the name; the other person's row is left out."""
    wanted = RecipientFactory(name="张建国", id_number="14010519500202020X")
    other = RecipientFactory(name="李四海")
    for person in (wanted, other):
        make(person)
    client = as_user(wang)
    every = client.get(reverse(listing)).content.decode()
    assert "张建国" in every and "李四海" in every
    full_width = wanted.person_no.translate({ord("0") + i: 0xFF10 + i for i in range(10)})
    # As the roll's search reads them: full-width digits, spaces, a lower-case x.
    for q in (wanted.person_no, full_width, "140105 19500202 020x", "14010519500202020x", "张", "张建国"):
        page = client.get(reverse(listing), {"q": q}).content.decode()
        assert "张建国" in page and "李四海" not in page, q
    page = client.get(reverse(listing), {"q": "1401051950020202"}).content.decode()
    assert "张建国" not in page  # part of an ID names nobody


def test_export_download_and_confirm_on_the_pages(wang: Any) -> None:
    actions = [payment_action(RecipientFactory(), state="approved", amount=a) for a in ("1000.00", "2500.50")]
    client = as_user(wang)
    response = client.post(reverse("benefits:batch_create"))
    batch = ExportBatch.objects.get()
    assert response["Location"] == reverse("benefits:batch", args=[batch.pk])
    assert batch.total_amount == Decimal("3500.50")
    assert "合计 3,500.50 元" in client.get(response["Location"]).content.decode()  # the flash message
    download = client.get(reverse("benefits:batch_download", args=[batch.pk, "csv"]))
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == batch.csv_sha256
    assert AuditEvent.objects.filter(action="export_batch.downloaded", actor="wang").count() == 1
    assert client.get(reverse("benefits:batch_download", args=[batch.pk, "nope"])).status_code == 404
    auditor = as_user(UserFactory(role=Role.AUDITOR))
    assert auditor.get(reverse("benefits:batch", args=[batch.pk])).status_code == 200
    assert auditor.get(reverse("benefits:batch_download", args=[batch.pk, "csv"])).status_code == 403
    client.post(reverse("benefits:batch_confirm", args=[batch.pk]), {"ref": "ZF-1"})
    batch.refresh_from_db()
    assert batch.state == BatchState.CONFIRMED
    assert {a.state for a in PaymentAction.objects.filter(pk__in=[a.pk for a in actions])} == {"confirmed"}


def test_fraud_fine_out_of_bounds_is_refused_on_the_page(wang: Any) -> None:
    case = fraud_case(RecipientFactory(), amount="1000.00")
    client = as_user(wang)
    page = client.get(reverse("benefits:fraud", args=[case.pk])).content.decode()
    assert "2,000.00 至 5,000.00" in page
    response = client.post(reverse("benefits:fraud_fine", args=[case.pk]), {"fine": "5010"}, follow=True)
    assert "二倍以上五倍以下" in response.content.decode()
    case.refresh_from_db()
    assert case.fine is None
    client.post(reverse("benefits:fraud_fine", args=[case.pk]), {"fine": "5000"})
    assert FraudCase.objects.get(pk=case.pk).fine == Decimal("5000.00")


def test_report_page_and_csv(wang: Any) -> None:
    client = as_user(wang)
    assert "未追回" in client.get(reverse("benefits:report")).content.decode()
    text = client.get(reverse("benefits:report_csv")).content.decode("utf-8")
    # Chinese column and section names for Excel (with the UTF-8 BOM it needs), in a fixed order
    assert text.startswith(
        "\ufeff分类,编号,名称,案件数,应追回（元）,已追回（元）,未追回（元）,已核销（元）\r\n"
    )
    assert "\r\n合计,,合计,0,0.00,0.00,0.00,0.00\r\n" in text
    assert "\r\n罚款,,罚款决定,0,0.00,,,\r\n" in text and "\r\n罚款,,罚款已缴,,0.00,,,\r\n" in text
    assert not re.search(r"[a-z]", text), text  # no English code left for the officer to read


def test_the_report_names_a_recovery_status_by_its_label_only(wang: Any) -> None:
    case: Any = recovery_case(RecipientFactory())
    RecoveryCase.objects.filter(pk=case.pk).update(status="repaying")
    page = as_user(wang).get(reverse("benefits:report")).content.decode()
    assert "<td>退还中</td>" in page and "repaying" not in page


def test_zige_payments_export_and_confirm(wang: Any) -> None:
    from zige.cli import main

    runner = CliRunner()
    empty = runner.invoke(main, ["payments", "export"])
    assert empty.exit_code == 0 and "nothing to export" in empty.output
    payment_action(RecipientFactory(), state="approved", amount="123.45")
    done = runner.invoke(main, ["payments", "export", "--user", "wang"])
    assert done.exit_code == 0, done.output
    batch = ExportBatch.objects.get()
    assert f"batch #{batch.pk}: 1 actions, total 123.45 yuan" in done.output
    assert batch.created_by == wang
    again = runner.invoke(main, ["payments", "reexport", str(batch.pk), "--reason", "重发"])
    assert again.exit_code == 0, again.output
    confirmed = runner.invoke(main, ["payments", "confirm", str(batch.pk), "--ref", "ZF-9"])
    assert confirmed.exit_code == 0, confirmed.output
    batch.refresh_from_db()
    assert batch.state == BatchState.CONFIRMED and batch.confirm_ref == "ZF-9"
    twice = runner.invoke(main, ["payments", "confirm", str(batch.pk)])
    assert twice.exit_code == 2 and "状态不能从" in twice.output
    unknown = runner.invoke(main, ["payments", "export", "--user", "nobody"])
    assert unknown.exit_code == 2


def test_nav_link_for_bureau_and_auditors_only(wang: Any) -> None:
    from tests.factories import UnitOperatorFactory

    assert "待遇处理</a>" in as_user(wang).get(reverse("reports:dashboard")).content.decode()
    unit_page = as_user(UnitOperatorFactory()).get(reverse("reports:dashboard")).content.decode()
    assert reverse("benefits:actions") not in unit_page


def test_bulk_approve_skips_own_proposals(wang: Any, li: Any) -> None:
    system = [payment_action(RecipientFactory()) for _ in range(3)]
    own = payment_action(RecipientFactory(), proposed_by=li)
    client = as_user(li)
    page = client.get(reverse("benefits:actions"), {"state": "proposed"}).content.decode()
    assert f'value="{system[0].pk}"' in page and f'value="{own.pk}"' not in page  # no box for one's own
    response = client.post(
        reverse("benefits:actions_approve"), {"ids": [*(a.pk for a in system), own.pk]}, follow=True
    )
    assert "已审批 3 条；1 条未审批" in response.content.decode()
    assert {a.state for a in PaymentAction.objects.filter(pk__in=[a.pk for a in system])} == {"approved"}
    assert PaymentAction.objects.get(pk=own.pk).state == "proposed"
    assert AuditEvent.objects.filter(action="payment_action.approved").count() == 3


def test_bulk_approve_counts_the_refusals_by_reason(wang: Any, li: Any) -> None:
    """批量审批 said only how many were refused (1 条未审批（本人提出的、已不在待审批状态的，或…）):
    the checker could not tell which reason held. The refusals are counted by reason, in Chinese;
    one of an unforeseen kind is named with its own message."""
    system = [payment_action(RecipientFactory()) for _ in range(3)]
    own = [payment_action(RecipientFactory(), proposed_by=li) for _ in range(2)]
    decided = payment_action(RecipientFactory(), state="approved")
    revised = payment_action(RecipientFactory())
    seen = {f"seen-{a.pk}": a.figures for a in (*system, *own, decided)}  # type: ignore[attr-defined]
    seen[f"seen-{revised.pk}"] = "2026-09|3|1.00"  # type: ignore[attr-defined]
    ids = [a.pk for a in (*system, *own, decided, revised)]  # type: ignore[attr-defined]
    response = as_user(li).post(reverse("benefits:actions_approve"), {"ids": ids, **seen}, follow=True)
    text = response.content.decode()
    assert (
        "已审批 3 条；4 条未审批：2 条为本人提出，需由另一名经办人员审批；1 条已被处理，不在待审批状态；"
        "1 条的生效月份、月数或金额已按最新认证批次或核实结论更新，请核对后再逐笔审批"
    ) in text
    assert PaymentAction.objects.filter(state="approved").count() == 4


def test_approval_is_of_the_figures_the_checker_saw(li: Any) -> None:
    """Rules §8.6: a run may revise a proposal between the page and the click; the click approves
    nothing then (single and bulk), and the page shown again has the new figures."""
    import re

    single, bulk, kept = (payment_action(RecipientFactory()) for _ in range(3))
    client = as_user(li)
    page = client.get(reverse("benefits:action", args=[single.pk])).content.decode()
    seen = re.search(r'name="seen" value="([^"]+)"', page)
    assert seen is not None and seen.group(1) == single.figures
    listing = client.get(reverse("benefits:actions"), {"state": "proposed"}).content.decode()
    seen_bulk = dict(re.findall(r'name="(seen-\d+)" value="([^"]+)"', listing))
    assert set(seen_bulk) == {f"seen-{a.pk}" for a in (single, bulk, kept)}
    # A later run revises two of them (one more month paid in advance).
    for action in (single, bulk):
        PaymentAction.objects.filter(pk=action.pk).update(
            months=(action.months or 0) + 1, amount=Decimal("9999.99")
        )
    response = client.post(
        reverse("benefits:action_approve", args=[single.pk]), {"seen": seen.group(1)}, follow=True
    )
    assert "已按最新认证批次更新，请核对后再审批" in response.content.decode()
    assert PaymentAction.objects.get(pk=single.pk).state == ActionState.PROPOSED
    assert "9,999.99" in response.content.decode()  # the page shown again: the new figures
    response = client.post(
        reverse("benefits:actions_approve"),
        {"ids": [bulk.pk, kept.pk], f"seen-{bulk.pk}": seen_bulk[f"seen-{bulk.pk}"],
         f"seen-{kept.pk}": seen_bulk[f"seen-{kept.pk}"]},
        follow=True,
    )  # fmt: skip
    assert "已审批 1 条；1 条未审批" in response.content.decode()
    assert PaymentAction.objects.get(pk=bulk.pk).state == ActionState.PROPOSED
    assert PaymentAction.objects.get(pk=kept.pk).state == ActionState.APPROVED
    # Approved with the figures now on the page.
    fresh = PaymentAction.objects.get(pk=single.pk).figures
    client.post(reverse("benefits:action_approve", args=[single.pk]), {"seen": fresh})
    assert PaymentAction.objects.get(pk=single.pk).state == ActionState.APPROVED


def _notify(client: Client, case: Any, **fields: str) -> Any:
    data = {"debtor_name": "王小明", "debtor_relation": "子女", "notified_on": timezone.localdate().isoformat(),
            **fields}  # fmt: skip
    return client.post(reverse("benefits:recovery_notify", args=[case.pk]), data)


def test_the_recovery_page_never_carries_the_debtors_full_contact(wang: Any) -> None:
    """Masked on the page and absent from the edit field (page source included): the full number
    comes only through the audited reveal; the form keeps, replaces or clears it."""
    case: Any = recovery_case(RecipientFactory())
    client = as_user(wang)
    _notify(client, case, debtor_contact="13812345678")
    case.refresh_from_db()
    assert case.debtor_contact == "13812345678"
    page = client.get(reverse("benefits:recovery", args=[case.pk])).content.decode()
    assert "13812345678" not in page and "138****5678" in page
    assert (
        'name="target_type" value="recovery_case"' in page and 'name="field" value="debtor_contact"' in page
    )
    assert "留空则保持不变" in page
    # edited without touching the contact: kept
    _notify(client, case, debtor_contact="", debtor_name="王大明")
    case.refresh_from_db()
    assert (case.debtor_name, case.debtor_contact) == ("王大明", "13812345678")
    # a new number replaces it, 清除联系方式 clears it; the audit says which, never the value
    _notify(client, case, debtor_contact=" 13900001111 ")
    assert RecoveryCase.objects.get(pk=case.pk).debtor_contact == "13900001111"
    _notify(client, case, clear_contact="1")
    assert RecoveryCase.objects.get(pk=case.pk).debtor_contact == ""
    events = AuditEvent.objects.filter(action="recovery_case.notified").order_by("seq")
    assert [e.after["contact"] for e in events] == ["set", "kept", "set", "cleared"]
    assert not any("13812345678" in str(e.after) or "13900001111" in str(e.after) for e in events)


def test_the_debtors_contact_is_revealed_through_the_audited_path(wang: Any) -> None:
    case: Any = recovery_case(RecipientFactory())
    RecoveryCase.objects.filter(pk=case.pk).update(debtor_contact="13812345678")
    data = {"target_type": "recovery_case", "target_id": case.pk, "field": "debtor_contact"}
    response = as_user(wang).post(reverse("accounts:reveal"), data, REMOTE_ADDR="10.0.0.3")
    assert response.status_code == 200 and "13812345678" in response.content.decode()
    [event] = AuditEvent.objects.filter(action="pii.reveal")
    assert (event.actor, event.target_type, event.target_id, event.after, event.ip) == (
        "wang", "benefits.RecoveryCase", str(case.pk), {"field": "debtor_contact"}, "10.0.0.3"
    )  # fmt: skip
    # an auditor reads the case, masked, and may not reveal; a unit operator never sees recovery cases
    auditor = as_user(UserFactory(role=Role.AUDITOR))
    page = auditor.get(reverse("benefits:recovery", args=[case.pk])).content.decode()
    assert "138****5678" in page and "13812345678" not in page and "hx-post" not in page
    assert auditor.post(reverse("accounts:reveal"), data).status_code == 403
    unit_operator = as_user(UserFactory(role=Role.UNIT_OPERATOR, unit=case.unit))
    assert unit_operator.post(reverse("accounts:reveal"), data).status_code == 404
    assert AuditEvent.objects.filter(action="pii.reveal").count() == 1


def test_report_csv_quotes_a_unit_name_a_spreadsheet_would_run(wang: Any) -> None:
    case: Any = recovery_case(RecipientFactory())
    case.unit.name = "=HYPERLINK(1)"
    case.unit.save()
    text = as_user(wang).get(reverse("benefits:report_csv")).content.decode("utf-8")
    assert f"\r\n按单位,{case.unit.unit_no},'=HYPERLINK(1),1,9000.00," in text
    assert "\r\n按状态,,已立案,1,9000.00," in text


def test_the_batch_page_names_each_line_s_kind_in_chinese(wang: Any) -> None:
    """The 类型 column showed the export file's code (resume, stop) instead of 恢复发放, 停发."""
    payment_action(RecipientFactory(), state="approved", kind="resume", amount="100.00")
    payment_action(RecipientFactory(), state="approved", kind="stop", amount="200.00")
    client = as_user(wang)
    client.post(reverse("benefits:batch_create"))
    page = client.get(reverse("benefits:batch", args=[ExportBatch.objects.get().pk])).content.decode()
    assert "恢复发放" in page and "停发" in page
    assert '<td class="mono">resume</td>' not in page


def test_a_repayment_dated_after_today_is_refused_on_the_page(wang: Any) -> None:
    """The form's date field stops at today, and a later date typed past it is refused with the
    reason; nothing is recorded."""
    case: Any = recovery_case(RecipientFactory())
    client = as_user(wang)
    today = timezone.localdate()
    page = client.get(reverse("benefits:recovery", args=[case.pk])).content.decode()
    assert f'name="paid_on" type="date" value="{today:%Y-%m-%d}" max="{today:%Y-%m-%d}"' in page
    tomorrow = today + timedelta(days=1)
    response = client.post(
        reverse("benefits:recovery_payment", args=[case.pk]),
        {"amount": "100.00", "paid_on": tomorrow.isoformat(), "method": "现金"},
        follow=True,
    )
    assert response.status_code == 200
    assert f"退还日期（{tomorrow:%Y-%m-%d}）不能晚于登记当天（{today:%Y-%m-%d}）" in response.content.decode()
    assert not case.payments.exists()


@pytest.mark.parametrize("field", ["notified_on", "referred_on", "since"])
def test_a_notice_referral_or_blacklist_date_after_today_is_refused_on_the_page(
    wang: Any, field: str
) -> None:
    """Each form's date field stops at today (the blacklist's on its own page and on the fraud
    case's), and a later date typed past it is refused with the field's name; nothing changes."""
    person = RecipientFactory()
    recovery: Any = recovery_case(person)
    fraud: Any = fraud_case(person)
    client = as_user(wang)
    today = timezone.localdate()
    tomorrow = today + timedelta(days=1)
    pages, post, label, recorded = {
        "notified_on": (
            [reverse("benefits:recovery", args=[recovery.pk])],
            (reverse("benefits:recovery_notify", args=[recovery.pk]),
             {"debtor_name": "王小明", "debtor_relation": "子女"}),
            "通知日期", lambda: RecoveryCase.objects.get(pk=recovery.pk).notified_on is not None,
        ),
        "referred_on": (
            [reverse("benefits:fraud", args=[fraud.pk])], (reverse("benefits:fraud_refer", args=[fraud.pk]), {}),
            "移送司法机关日期", lambda: FraudCase.objects.get(pk=fraud.pk).referred,
        ),
        "since": (
            [reverse("benefits:blacklist"), reverse("benefits:fraud", args=[fraud.pk])],
            (reverse("benefits:blacklist_add"),
             {"subject_type": "person", "person_name": "王大力", "reason": "冒领", "fraud_case": str(fraud.pk)}),
            "列入日期", lambda: Blacklist.objects.exists(),
        ),
    }[field]  # fmt: skip
    for url in pages:
        page = client.get(url).content.decode()
        assert f'name="{field}" type="date" value="{today:%Y-%m-%d}" max="{today:%Y-%m-%d}"' in page
    url, data = post
    response = client.post(url, {**data, field: tomorrow.isoformat()}, follow=True)
    assert response.status_code == 200
    assert f"{label}（{tomorrow:%Y-%m-%d}）不能晚于登记当天（{today:%Y-%m-%d}）" in response.content.decode()
    assert not recorded()
    client.post(url, {**data, field: today.isoformat()})
    assert recorded()


@pytest.mark.parametrize("amount", ["1e999", "1e20", "-1e999"])
def test_an_amount_too_large_is_refused_with_a_message_not_a_server_error(wang: Any, amount: str) -> None:
    """1e999 is a finite Decimal, but quantizing it to fen raised InvalidOperation: a 500."""
    person = RecipientFactory()
    case, fraud = recovery_case(person), fraud_case(person, amount="1000.00")
    client = as_user(wang)
    posts = [
        (reverse("benefits:fraud_new"), {"person_no": person.person_no, "amount": amount, "note": "冒领"}),
        (reverse("benefits:recovery_payment", args=[case.pk]), {"amount": amount, "paid_on": "2026-10-01", "method": "现金"}),
        (reverse("benefits:fraud_fine", args=[fraud.pk]), {"fine": amount}),
        (reverse("benefits:fraud_collect", args=[fraud.pk]), {"amount": amount}),
    ]  # fmt: skip
    for url, data in posts:
        response = client.post(url, data, follow=True)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert "超出允许范围" in page or "应大于" in page, url
    assert FraudCase.objects.count() == 1


def test_a_run_proposal_names_its_run_once(wang: Any) -> None:
    """来源 read "认证批次 认证批次 #3": the source's label, then the run's link with the same words."""
    from zige.benefits.models import PaymentAction
    from zige.certification.models import Run

    run = Run.objects.create(as_of=timezone.localdate(), status="succeeded", created_at=timezone.now())
    action = payment_action(RecipientFactory())
    PaymentAction.objects.filter(pk=action.pk).update(source="run", source_ref=f"run:{run.pk}", run=run)  # type: ignore[attr-defined]
    page = as_user(wang).get(reverse("benefits:action", args=[action.pk])).content.decode()  # type: ignore[attr-defined]
    source = page[page.index('data-testid="source"') :]
    source = source[: source.index("</dd>")]
    assert source.count("认证批次") == 1 and f"认证批次 #{run.pk}</a>" in source


def test_every_payment_page_shows_the_name_as_the_person_page_does(wang: Any) -> None:
    """Names were masked (张*丰) on 待遇处理 but in full on the person and task pages: the officer
    approving a stop must see whose pension it is. Names are shown in full to every role that sees
    the person (an auditor too); ID numbers stay masked."""
    person = RecipientFactory(name="张三丰", id_number="140105195001011234")
    recovery: Any = recovery_case(person)
    RecoveryCase.objects.filter(pk=recovery.pk).update(debtor_name="张小丰")
    fraud: Any = fraud_case(person)
    Blacklist.objects.create(
        subject_type="person", person_name="张三丰", person_id_number=person.id_number, reason="冒领",
        since=timezone.localdate(), by=wang, created_at=timezone.now(),
    )  # fmt: skip
    as_user(wang).post(reverse("benefits:batch_create"))
    pages = [
        reverse("benefits:actions"),
        reverse("benefits:action", args=[recovery.action_id]),
        reverse("benefits:batch", args=[ExportBatch.objects.get().pk]),
        reverse("benefits:recoveries"),
        reverse("benefits:recovery", args=[recovery.pk]),
        reverse("benefits:frauds"),
        reverse("benefits:fraud", args=[fraud.pk]),
        reverse("benefits:blacklist"),
    ]
    for user in (wang, UserFactory(role=Role.AUDITOR)):
        client = as_user(user)
        for url in pages:
            page = client.get(url).content.decode()
            assert "张三丰" in page and "张*丰" not in page, url
            assert "140105195001011234" not in page, url
    recoveries = as_user(wang).get(reverse("benefits:recoveries")).content.decode()
    assert "张小丰" in recoveries  # the debtor too


def test_a_manual_stop_s_amount_is_months_times_the_monthly_pension(wang: Any, li: Any) -> None:
    """Walkthrough: a stop for a person with 月养老金 2,987.95 from last month for 2 months was
    accepted at 99,999.00, approved, and opened a recovery case of 99,999.00. The amount is
    months × 月养老金 (rules §5): refused with the calculated figure, unless the officer writes
    why; the checker's page then shows 月养老金, the calculated amount and the reason."""
    person = RecipientFactory(monthly_amount=Decimal("2987.95"))
    client = as_user(wang)
    data = {"person_no": person.person_no, "kind": "stop", "effective_month": last_month(), "months": "2",
            "amount": "99999.00", "note": "死亡证明"}  # fmt: skip
    page = client.post(reverse("benefits:action_new"), data, follow=True).content.decode()
    assert not PaymentAction.objects.exists()
    assert "5,975.90" in page and "2,987.95" in page and "与计算不符的说明" in page
    page = client.post(
        reverse("benefits:action_new"), {**data, "months": "3", "amount": "8963.85"}, follow=True
    )
    assert "月数按规则应为 2 个月" in page.content.decode() and not PaymentAction.objects.exists()

    client.post(reverse("benefits:action_new"), {**data, "figures_note": "支付系统已多发一笔补差"})
    action = PaymentAction.objects.get()
    assert (action.amount, action.figures_note) == (Decimal("99999.00"), "支付系统已多发一笔补差")
    event = AuditEvent.objects.get(action="payment_action.proposed", target_id=str(action.pk))
    assert event.after["figures_note"] == "支付系统已多发一笔补差" and event.after["calculated"]["differs"]
    checker = as_user(li).get(reverse("benefits:action", args=[action.pk])).content.decode()
    assert "2,987.95" in checker and "5,975.90" in checker and "99,999.00" in checker
    assert "与计算金额不符" in checker and "支付系统已多发一笔补差" in checker

    client.post(reverse("benefits:action_withdraw", args=[action.pk]), {"reason": "按计算金额重提"})
    client.post(reverse("benefits:action_new"), {**data, "amount": ""})  # empty: the calculated amount
    action = PaymentAction.objects.get(state=ActionState.PROPOSED)
    assert (action.months, action.amount) == (2, Decimal("5975.90"))
    checker = as_user(li).get(reverse("benefits:action", args=[action.pk])).content.decode()
    assert "与计算金额不符" not in checker and "5,975.90" in checker


def _run_stop_basis(person: Any, wang: Any, li: Any, *, reason: str, evidence_kind: str) -> tuple[Any, str]:
    """A run's stop of `person` on a record of `evidence_kind` dated 2026-09-12, proposed as a
    payment action: the action, and its page's 依据 line as `li` sees it."""
    from datetime import date

    from zige.benefits.services import payment_actions_for_run
    from zige.certification.models import Decision, Run, RunStatus

    run = Run.objects.create(as_of=date(2026, 11, 30), status=RunStatus.SUCCEEDED, created_by=wang,
                             created_at=timezone.now())  # fmt: skip
    Decision.objects.create(run=run, recipient=person, unit=person.unit, status="stop", reason=reason,
                            evidence_kind=evidence_kind, evidence_date=date(2026, 9, 12), action="stop",
                            effective_month="2026-10", months=2, amount=Decimal("6000.00"))  # fmt: skip
    assert payment_actions_for_run(run_id=run.pk, now=timezone.now()) == 1
    action = PaymentAction.objects.get(run=run)
    page = as_user(li).get(reverse("benefits:action", args=[action.pk])).content.decode()
    basis = page[page.index('data-testid="basis"') :]
    return action, basis[: basis.index("</dd>")]


def test_a_run_s_stop_shows_the_death_record_that_decided_it(wang: Any, li: Any) -> None:
    """Walkthrough: a stop proposed by a run showed 依据 「—」, so the checker approved without
    seeing the death record. The page now says what decided it, as the person page does."""
    person = RecipientFactory()
    _, basis = _run_stop_basis(person, wang, li, reason="death", evidence_kind="death")
    assert "2026-09-12" in basis and "死亡信息" in basis and "自2026年10月起停发" in basis
    assert reverse("roster:person", args=[person.person_no]) in basis and "—" not in basis


def test_a_run_s_stop_on_a_superseded_death_finding_says_so(
    wang: Any, li: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped the person on a death finding's loss record (单位确认丧失资格 on its date of
    death) and a later finding revised the date: the 依据 line said nothing, where the person
    page says 已被取代 with the superseding task. It now says so too — but never to a user who may
    not see the bureau's reviews (a unit operator), as the person page hides it."""
    from datetime import date

    from tests.factories import UnitOperatorFactory, verification_task
    from zige.benefits.selectors import action_basis

    person = RecipientFactory()
    tasks = []
    for day, closed in ((date(2026, 9, 12), 0), (date(2026, 7, 1), 1)):
        task: Any = verification_task(person, kind="review", status="resolved")
        type(task).objects.filter(pk=task.pk).update(
            period=f"review:test-{closed}", finding="dead", death_date=day,
            closed_at=timezone.now() + timedelta(minutes=closed),
        )  # fmt: skip
        tasks.append(task)
    first, second = tasks
    lost = {
        "kind": "unit_confirm", "record_kind": "unit_confirmed_lost", "date": date(2026, 9, 12), "end_date": None,
        "sub": "", "detail": f"社保局疑点核查确认死亡，核查任务#{first.pk}", "file_name": "", "row": None,
        "batch_id": None,
    }  # fmt: skip
    monkeypatch.setattr("zige.feeds.selectors.evidence_for_person", lambda **_: [dict(lost)])
    action, basis = _run_stop_basis(person, wang, li, reason="lost", evidence_kind="unit_confirmed_lost")
    assert "2026-09-12" in basis and f"已被取代（疑点核查 #{second.pk} 另定死亡日期）" in basis
    unit_operator = UnitOperatorFactory(unit=person.unit)
    shown = action_basis(action, user=unit_operator)
    assert shown is not None and shown.superseded_by is None and shown.cleared_by is None


def test_a_cancelled_recovery_case_owes_nothing_and_says_so_once(wang: Any, li: Any) -> None:
    """Walkthrough: after its stop was reversed the case page said 「案件已已撤销。」 and still
    showed 未追回 99,999.00; the list too. A cancelled case owes nothing (—), and the report
    counts it nowhere."""
    from zige.benefits.selectors import recovery_report
    from zige.benefits.services import payment_action_approve, payment_action_reverse

    person = RecipientFactory(monthly_amount=Decimal("2987.95"))
    as_user(wang).post(
        reverse("benefits:action_new"),
        {"person_no": person.person_no, "kind": "stop", "effective_month": last_month(), "months": "2",
         "amount": "99999.00", "note": "死亡证明", "figures_note": "另有补差"},
    )  # fmt: skip
    stop = PaymentAction.objects.get()
    payment_action_approve(action_id=stop.pk, user=li, now=timezone.now())
    case = RecoveryCase.objects.get(action=stop)
    reversal = payment_action_reverse(action_id=stop.pk, user=li, reason="金额有误", now=timezone.now())
    payment_action_approve(action_id=reversal.pk, user=wang, now=timezone.now())
    case.refresh_from_db()
    assert case.status == "cancelled" and case.outstanding == Decimal("0.00")
    page = as_user(li).get(reverse("benefits:recovery", args=[case.pk])).content.decode()
    assert "已已" not in page and "案件状态：已撤销" in page
    outstanding = page[page.index('data-testid="outstanding"') :]
    assert outstanding[: outstanding.index("</dd>")].count("99,999.00") == 0
    listing = as_user(li).get(reverse("benefits:recoveries")).content.decode()
    assert listing.count("99,999.00") == 1  # 应追回 only, not 未追回
    report = recovery_report()
    assert report.total.cases == 0 and report.total.outstanding == Decimal("0.00")


def _propose_other_figures(officer: Any, person: Any) -> None:
    """The officer proposes a stop of 2 months at 99,999.00 (not 2 × 月养老金), with a reason."""
    as_user(officer).post(
        reverse("benefits:action_new"),
        {"person_no": person.person_no, "kind": "stop", "effective_month": last_month(), "months": "2",
         "amount": "99999.00", "note": "死亡证明", "figures_note": "支付系统已多发一笔补差"},
    )  # fmt: skip


def test_figures_other_than_the_calculation_are_approved_one_by_one_never_in_bulk(wang: Any, li: Any) -> None:
    """Walkthrough: wang proposed a stop at 99,999.00 instead of 2 × 2,987.95 = 5,975.90, with his
    reason; li ticked it with others on the list page and approved them all, never seeing the
    calculated amount or the reason. Such an action now has no box on the list, which says why
    and shows the calculation; bulk approval (even with its id sent) leaves it proposed with a
    message naming it, and audits nothing for it; its own page, which shows the difference and
    the reason, approves it."""
    import re

    person = RecipientFactory(name="赵六", monthly_amount=Decimal("2987.95"))
    _propose_other_figures(wang, person)
    differs = PaymentAction.objects.get(recipient=person)
    assert differs.figures_note and differs.state == ActionState.PROPOSED
    plain = payment_action(RecipientFactory())
    client = as_user(li)
    listing = client.get(reverse("benefits:actions"), {"state": "proposed"}).content.decode()
    assert f'name="ids" value="{plain.pk}"' in listing
    assert f'name="ids" value="{differs.pk}"' not in listing and f'name="seen-{differs.pk}"' not in listing
    row = re.search(rf'<tr data-action="{differs.pk}">(.*?)</tr>', listing, re.S)
    assert row is not None
    assert "金额与计算不符，需逐笔审批" in row.group(1)
    assert "2 个月 × 2,987.95 = 5,975.90" in row.group(1) and "99,999.00" in row.group(1)

    response = client.post(
        reverse("benefits:actions_approve"),
        {"ids": [plain.pk, differs.pk], f"seen-{plain.pk}": plain.figures, f"seen-{differs.pk}": differs.figures},
        follow=True,
    )  # fmt: skip
    text = response.content.decode()
    assert "已审批 1 条" in text and "1 条与计算不符，未批量审批" in text
    assert f"待遇处理 #{differs.pk}（赵六）" in text and "5,975.90" in text and "逐笔审批" in text
    assert PaymentAction.objects.get(pk=plain.pk).state == ActionState.APPROVED
    assert PaymentAction.objects.get(pk=differs.pk).state == ActionState.PROPOSED
    approved = AuditEvent.objects.filter(action="payment_action.approved")
    assert [e.target_id for e in approved] == [str(plain.pk)]

    page = client.get(reverse("benefits:action", args=[differs.pk])).content.decode()
    assert "与计算金额不符" in page and "支付系统已多发一笔补差" in page and "5,975.90" in page
    seen = re.search(r'name="seen" value="([^"]+)"', page)
    assert seen is not None
    client.post(reverse("benefits:action_approve", args=[differs.pk]), {"seen": seen.group(1)})
    assert PaymentAction.objects.get(pk=differs.pk).state == ActionState.APPROVED


def _dd(page: str, testid: str) -> str:
    """The text of the `<dd data-testid=…>` on an action's page."""
    part = page[page.index(f'data-testid="{testid}"') :]
    return part[: part.index("</dd>")]


def _pension_changes(person: Any, value: str) -> None:
    from zige.roster.models import Recipient

    Recipient.objects.filter(pk=person.pk).update(monthly_amount=Decimal(value))


def test_an_approved_action_keeps_the_calculation_it_was_approved_with_after_the_pension_changes(
    wang: Any, li: Any
) -> None:
    """Walkthrough: a stop of 2 × 2,987.95 = 5,975.90 was approved; the next roster raised the
    person's 月养老金 to 3,100.00 and the stop's page then said 2 个月 × 月养老金 = 6,200.00 and
    「与计算金额不符」, as if the approved figures were wrong. The page shows the pension the
    figures were calculated from (fixed when proposed) and notes the current one beside it."""
    person = RecipientFactory(monthly_amount=Decimal("2987.95"))
    as_user(wang).post(
        reverse("benefits:action_new"),
        {"person_no": person.person_no, "kind": "stop", "effective_month": last_month(), "months": "2",
         "amount": "", "note": "死亡证明"},
    )  # fmt: skip
    action = PaymentAction.objects.get()
    as_user(li).post(reverse("benefits:action_approve", args=[action.pk]), {"seen": action.figures})
    _pension_changes(person, "3100.00")
    page = as_user(li).get(reverse("benefits:action", args=[action.pk])).content.decode()
    assert "5,975.90" in _dd(page, "calculated") and "6,200.00" not in page
    assert "与计算金额不符" not in page and "估算" not in page
    assert "2,987.95" in _dd(page, "monthly") and "（提出时）" in _dd(page, "monthly")
    assert "当前 3,100.00" in _dd(page, "monthly")
    action.refresh_from_db()
    assert (action.state, action.amount, action.monthly_amount) == (
        "approved",
        Decimal("5975.90"),
        Decimal("2987.95"),
    )


def test_the_list_shows_a_one_by_one_action_s_calculation_from_the_pension_it_was_proposed_with(
    wang: Any, li: Any
) -> None:
    person = RecipientFactory(name="钱七", monthly_amount=Decimal("2987.95"))
    _propose_other_figures(wang, person)
    action = PaymentAction.objects.get()
    _pension_changes(person, "3100.00")
    listing = as_user(li).get(reverse("benefits:actions"), {"state": "proposed"}).content.decode()
    row = listing[listing.index(f'<tr data-action="{action.pk}">') :]
    row = row[: row.index("</tr>")]
    assert "计算：2 个月 × 2,987.95 = 5,975.90" in row and "6,200.00" not in row and "估算" not in row


def test_a_run_s_proposal_keeps_the_pension_the_run_calculated_from(wang: Any, li: Any) -> None:
    """A run's stop of 2 × 3,000.00 keeps 3,000.00; a proposal whose run amount the person's
    pension no longer gives (the roll changed after the run decided) fixes nothing, and its page
    estimates from the current pension and says so."""
    from datetime import date

    from zige.benefits.services import payment_actions_for_run
    from zige.certification.models import Decision, Run, RunStatus

    same, moved = RecipientFactory(), RecipientFactory(monthly_amount=Decimal("3300.00"))
    run = Run.objects.create(as_of=date(2026, 11, 30), status=RunStatus.SUCCEEDED, created_by=wang,
                             created_at=timezone.now())  # fmt: skip
    for person in (same, moved):
        Decision.objects.create(run=run, recipient=person, unit=person.unit, status="stop", reason="death",
                                action="stop", effective_month="2026-10", months=2, amount=Decimal("6000.00"))  # fmt: skip
    assert payment_actions_for_run(run_id=run.pk, now=timezone.now()) == 2
    fixed, unknown = (PaymentAction.objects.get(recipient=p) for p in (same, moved))
    assert (fixed.monthly_amount, fixed.monthly_fixed) == (Decimal("3000.00"), True)
    assert (unknown.monthly_amount, unknown.monthly_fixed) == (None, False)
    _pension_changes(same, "3500.00")
    page = as_user(li).get(reverse("benefits:action", args=[fixed.pk])).content.decode()
    assert "6,000.00" in _dd(page, "calculated") and "与计算金额不符" not in page and "估算" not in page
    page = as_user(li).get(reverse("benefits:action", args=[unknown.pk])).content.decode()
    assert "按当前月养老金估算：2 个月 × 月养老金 = 6,600.00" in _dd(page, "calculated")
    assert "与估算金额不符" in _dd(page, "amount") and "提出时的月养老金未记录" in _dd(page, "monthly")


def test_the_migration_fixes_each_existing_action_s_pension_from_the_roster_history(wang: Any) -> None:
    """The backfill of 0005: the pension in force at the proposal (roster change history), or a
    later one when the figures were revised to it; a reversal takes its original's; an action no
    pension explains stays unfixed (estimated on its page)."""
    import importlib

    from django.apps import apps

    from tests.factories import NOW
    from zige.feeds.models import ImportBatch
    from zige.roster.models import RecipientChange

    backfill = importlib.import_module("zige.benefits.migrations.0005_action_monthly_amount_fixed").forward
    raised, revised, earlier, unexplained, untouched = (RecipientFactory() for _ in range(5))
    batch = ImportBatch.objects.create(kind="roster", file_name="roster.csv", sha256="1" * 64, created_at=NOW)
    rises = (
        (raised, NOW + timedelta(days=3)),
        (revised, NOW + timedelta(days=3)),
        (earlier, NOW - timedelta(days=3)),
    )
    for person, at in rises:  # every pension 2,800 -> 3,000 (the current one); proposals at NOW
        RecipientChange.objects.create(recipient=person, batch=batch, field="monthly_amount",
                                       old_value="2800.0000", new_value="3000.0000", changed_at=at)  # fmt: skip
    before_rise = payment_action(raised, state="approved", amount="8400.00")  # 3 × 2,800, rose after
    after_rise = payment_action(revised, amount="9000.00")  # proposed at 2,800, revised to 3 × 3,000
    at_proposal = payment_action(earlier, amount="9000.00")  # 3 × 3,000, in force when proposed
    odd = payment_action(unexplained, amount="1234.56")
    already = payment_action(untouched, amount="9000.00")
    PaymentAction.objects.filter(pk=already.pk).update(monthly_amount=Decimal("1.00"), monthly_fixed=True)
    reversal = PaymentAction.objects.create(
        recipient=raised, unit=raised.unit, kind="stop", effective_month="2026-09", months=3,
        amount=Decimal("8400.00"), source="reversal", source_ref=f"action:{before_rise.pk}",
        reverses=before_rise, proposed_by=wang, proposed_at=NOW + timedelta(days=5),
    )  # fmt: skip
    backfill(apps, None)
    got = {a.pk: (a.monthly_amount, a.monthly_fixed) for a in PaymentAction.objects.all()}
    assert got == {
        before_rise.pk: (Decimal("2800.00"), True),
        after_rise.pk: (Decimal("3000.00"), True),
        at_proposal.pk: (Decimal("3000.00"), True),
        odd.pk: (None, False),
        already.pk: (Decimal("1.00"), True),
        reversal.pk: (Decimal("2800.00"), True),
    }


def test_a_revision_fixes_the_pension_of_its_figures_and_a_reversal_takes_its_original_s(
    wang: Any, li: Any
) -> None:
    """A later run revises its proposal to figures from the pension then (3 × 3,200.00); the
    approved stop's reversal keeps that calculation, whatever the pension becomes after."""
    from datetime import date

    from zige.benefits.services import payment_action_approve, payment_action_reverse, payment_actions_for_run
    from zige.certification.models import Decision, Run, RunStatus

    person = RecipientFactory()
    runs = [
        Run.objects.create(as_of=date(2026, 11, day), status=RunStatus.SUCCEEDED, created_at=timezone.now())
        for day in (29, 30)
    ]
    Decision.objects.create(run=runs[0], recipient=person, unit=person.unit, status="stop", reason="death",
                            action="stop", effective_month="2026-10", months=2, amount=Decimal("6000.00"))  # fmt: skip
    payment_actions_for_run(run_id=runs[0].pk, now=timezone.now())
    _pension_changes(person, "3200.00")
    Decision.objects.create(run=runs[1], recipient=person, unit=person.unit, status="stop", reason="death",
                            action="stop", effective_month="2026-09", months=3, amount=Decimal("9600.00"))  # fmt: skip
    payment_actions_for_run(run_id=runs[1].pk, now=timezone.now())
    stop = PaymentAction.objects.get()
    assert (stop.months, stop.amount, stop.monthly_amount, stop.monthly_fixed) == (
        3, Decimal("9600.00"), Decimal("3200.00"), True)  # fmt: skip
    payment_action_approve(action_id=stop.pk, user=li, now=timezone.now())
    reversal = payment_action_reverse(action_id=stop.pk, user=li, reason="死亡信息有误", now=timezone.now())
    _pension_changes(person, "3500.00")
    assert (reversal.monthly_amount, reversal.monthly_fixed) == (Decimal("3200.00"), True)
    page = as_user(wang).get(reverse("benefits:action", args=[reversal.pk])).content.decode()
    assert "9,600.00" in _dd(page, "calculated") and "与计算金额不符" not in page


def test_the_checker_sees_the_months_the_rules_give_when_an_officer_proposed_others(
    wang: Any, li: Any
) -> None:
    """Walkthrough: an officer proposed a stop from last month for 3 months (the rules give 2)
    with the calculated amount of those 3 months and a reason. The checker's page said 3 个月 ×
    月养老金 = the amount, no 与计算金额不符, and nowhere what the rules give: nothing to weigh the
    reason against. The page now shows the proposal's check as it was made (and audited)."""
    person = RecipientFactory(monthly_amount=Decimal("2000.00"))
    data = {"person_no": person.person_no, "kind": "stop", "effective_month": last_month(), "months": "3",
            "amount": "", "note": "死亡证明", "figures_note": "支付系统多发一月"}  # fmt: skip
    as_user(wang).post(reverse("benefits:action_new"), data)
    action = PaymentAction.objects.get()
    assert (action.months, action.amount) == (3, Decimal("6000.00"))
    page = as_user(li).get(reverse("benefits:action", args=[action.pk])).content.decode()
    assert 'data-testid="rule-differences"' in page and "月数按规则应为 2 个月" in page
    assert "支付系统多发一月" in page


def test_the_proposal_form_explains_the_months_in_words_not_a_developer_document(wang: Any) -> None:
    """Walkthrough: the 人工提出 form and its missing-months message sent the officer to
    "docs/rules.md §5" and "规则 §5", a file in the source repository no officer has. They say
    what the months are in Chinese."""
    client = as_user(wang)
    page = client.get(reverse("benefits:action_new")).content.decode()
    person = RecipientFactory(monthly_amount=Decimal("2000.00"))
    data = {
        "person_no": person.person_no,
        "kind": "stop",
        "effective_month": last_month(),
        "note": "死亡证明",
    }
    refused = client.post(reverse("benefits:action_new"), data, follow=True).content.decode()
    assert "请填写月数" in refused and not PaymentAction.objects.exists()
    for text in (page, refused):
        assert "docs/" not in text and "§" not in text
    assert "自名册状态变更当月起至本月" in page


def next_month() -> str:
    today = timezone.localdate()
    return f"{today.year + (today.month == 12)}-{today.month % 12 + 1:02d}"


def test_zero_month_actions_say_why_on_the_list_and_the_action_page(wang: Any, li: Any) -> None:
    """A stop of a 暂停 person with no 状态变更日期 and a resume with nothing to back-pay have
    0 个月 / 0.00 by the rules (§5.1, §5.3); the pages said only 0 and 0.00, which reads as an
    error. They give the rules' reason beside the months."""
    stopped = RecipientFactory(name="孙八", benefit_status="suspended", status_since=None)
    resumed = RecipientFactory(name="周九", benefit_status="suspended", status_since=None)
    client = as_user(wang)
    for person, kind, month in ((stopped, "stop", last_month()), (resumed, "resume", next_month())):
        client.post(
            reverse("benefits:action_new"),
            {"person_no": person.person_no, "kind": kind, "effective_month": month, "months": "0",
             "amount": "", "note": "核对"},
        )  # fmt: skip
    stop = PaymentAction.objects.get(recipient=stopped)
    resume = PaymentAction.objects.get(recipient=resumed)
    assert (stop.months, stop.amount, resume.months, resume.amount) == (
        0,
        Decimal("0.00"),
        0,
        Decimal("0.00"),
    )
    page = as_user(li).get(reverse("benefits:action", args=[stop.pk])).content.decode()
    assert "暂停人员无状态变更日期，无法确定多发月数，按 0 计，由支付部门核定" in page
    page = as_user(li).get(reverse("benefits:action", args=[resume.pk])).content.decode()
    assert "无状态变更日期，补发月数无法确定，按 0 计，由支付部门核定" in page
    listing = as_user(li).get(reverse("benefits:actions")).content.decode()
    assert listing.count('data-testid="zero-reason"') == 2
    # An action with months shows no such reason.
    payment_action(RecipientFactory(), months=3)
    listing = as_user(li).get(reverse("benefits:actions")).content.decode()
    assert listing.count('data-testid="zero-reason"') == 2


def test_zero_months_reason_follows_the_rules_branches() -> None:
    from datetime import date

    from zige import rules

    def person(status: str, since: date | None = None, reason: str = "") -> rules.Recipient:
        return rules.Recipient(
            person_no="1", id_number="x", benefit_status=status, status_since=since, status_reason=reason,
            monthly_amount=Decimal("1000"),
        )  # fmt: skip

    as_of = date(2026, 11, 30)
    normal = person("normal")
    assert (
        "生效月份 2026-12 起尚未发放"
        in rules.payment_months(
            recipient=normal, kind="stop", effective_month="2026-12", latest_release=None, as_of=as_of
        ).reason
    )
    assert (
        rules.payment_months(
            recipient=normal, kind="stop", effective_month="2026-10", latest_release=None, as_of=as_of
        ).reason
        == ""
    )
    early = person("suspended", date(2026, 5, 1))
    assert (
        "状态变更日期 2026-05-01 起已暂停发放"
        in rules.payment_months(
            recipient=early, kind="stop", effective_month="2026-09", latest_release=None, as_of=as_of
        ).reason
    )
    jailed = person("suspended", date(2025, 5, 1), "服刑")
    assert (
        "无刑满释放记录"
        in rules.payment_months(
            recipient=jailed, kind="resume", effective_month="2026-12", latest_release=None, as_of=as_of
        ).reason
    )
    assert (
        "刑满释放（2026-11-03）次月起补发"
        in rules.payment_months(
            recipient=jailed,
            kind="resume",
            effective_month="2026-12",
            latest_release=date(2026, 11, 3),
            as_of=as_of,
        ).reason
    )


def test_a_recovery_and_a_fraud_case_of_one_death_link_both_ways_and_count_once(wang: Any) -> None:
    """One death: the stop's recovery case (追回 9,000.00) and the 冒领 case (obtained 9,000.00)
    are the same money. Each page names the other; the report says the recovery belongs to a
    fraud case and adds neither twice: its totals are the recovery cases', the fraud amount no
    recovery case covers is apart (a second person's 冒领 without a recovery: 1,000.00)."""
    person = RecipientFactory(name="吴十")
    recovery: Any = recovery_case(person, amount="9000.00")
    fraud: Any = fraud_case(person, amount="9000.00", recovery=recovery)
    other: Any = recovery_case(RecipientFactory(), amount="500.00")
    alone: Any = fraud_case(RecipientFactory(), amount="1000.00")
    client = as_user(wang)
    page = client.get(reverse("benefits:fraud", args=[fraud.pk])).content.decode()
    linked = _dd(page, "recovery-cases")
    assert reverse("benefits:recovery", args=[recovery.pk]) in linked and "应追回 9,000.00" in linked
    assert "已立案" in linked and reverse("benefits:recovery", args=[other.pk]) not in linked
    page = client.get(reverse("benefits:recovery", args=[recovery.pk])).content.decode()
    assert reverse("benefits:fraud", args=[fraud.pk]) in _dd(page, "fraud-cases")
    page = client.get(reverse("benefits:recovery", args=[other.pk])).content.decode()
    assert "欺诈案件 #" not in _dd(page, "fraud-cases")
    page = client.get(reverse("benefits:fraud", args=[alone.pk])).content.decode()
    assert "无，骗取金额须另行责令退回" in _dd(page, "recovery-cases")
    listing = client.get(reverse("benefits:recoveries")).content.decode()
    assert listing.count('data-testid="in-fraud"') == 1
    report = client.get(reverse("benefits:report")).content.decode()
    assert "9,500.00" in report and "19,000.00" not in report and "18,500.00" not in report
    assert "1 件 / 9,000.00" in report
    text = client.get(reverse("benefits:report_csv")).content.decode("utf-8")
    assert "\r\n合计,,合计,2,9500.00,0.00,9500.00,0.00\r\n" in text
    assert "\r\n冒领,,其中属冒领案件的追回（已计入上述合计）,1,9000.00,,,\r\n" in text
    assert "\r\n冒领,,冒领金额中未立追回案件的部分（未计入上述合计）,,1000.00,,,\r\n" in text


def test_approving_or_rejecting_links_the_next_proposal_the_officer_may_approve(wang: Any, li: Any) -> None:
    """After an approval or a rejection the officer landed on the same action with no way onward:
    the message links 下一条, the next proposal in the list's order (newest first) that is not
    their own; from the top again past the end."""
    older = payment_action(RecipientFactory(name="冯二"), proposed_by=wang)
    own: Any = payment_action(RecipientFactory(), proposed_by=li)
    newer: Any = payment_action(RecipientFactory(name="陈三"), proposed_by=wang)
    client = as_user(li)
    done = client.post(
        reverse("benefits:action_approve", args=[newer.pk]), {"seen": newer.figures}, follow=True
    ).content.decode()
    assert "已审批" in done
    link = reverse("benefits:action", args=[older.pk])  # type: ignore[attr-defined]
    assert f'<a href="{link}" data-testid="next">下一条：#{older.pk} 冯二 停发</a>' in done  # type: ignore[attr-defined]
    assert reverse("benefits:action", args=[own.pk]) + '" data-testid="next"' not in done
    done = client.post(
        reverse("benefits:action_reject", args=[older.pk]),
        {"reason": "重复"},
        follow=True,  # type: ignore[attr-defined]
    ).content.decode()
    assert "已驳回" in done and "待审批队列中已没有其他可由您审批的业务" in done


def test_a_roster_change_after_the_proposal_does_not_change_why_an_action_has_0_months(
    wang: Any, li: Any, settings: Any, tmp_path: Path
) -> None:
    """A stop from next month has 0 months by the rules (§5.1: pensions are paid through this
    month), and the pages say so. The explanation is of the action's own figures, made from the
    roster as it stood at the proposal: when a roster import then suspends the person (暂停 from
    the 1st of this month), the list and the action page still give the reason the figures were
    made from, not one made up from today's roster (已暂停发放…)."""
    from tests.factories import write_csv
    from zige.feeds import services as feed_services
    from zige.roster.models import RecipientChange

    settings.EVIDENCE_DIR = tmp_path / "evidence"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    person = RecipientFactory(name="吴十", benefit_status="normal", status_since=None)
    as_user(wang).post(
        reverse("benefits:action_new"),
        {"person_no": person.person_no, "kind": "stop", "effective_month": next_month(), "months": "0",
         "amount": "", "note": "死亡证明"},
    )  # fmt: skip
    action = PaymentAction.objects.get(recipient=person)
    assert (action.months, action.amount) == (0, Decimal("0.00"))
    today = timezone.localdate()
    why = f"养老金按月预发至 {today:%Y-%m}，生效月份 {next_month()} 起尚未发放，无需追回"

    def shown() -> tuple[str, str]:
        page = as_user(li).get(reverse("benefits:action", args=[action.pk])).content.decode()
        listing = as_user(li).get(reverse("benefits:actions")).content.decode()
        return page, listing

    for text in shown():
        assert why in text

    header = ["个人编号", "姓名", "身份证号", "单位编号", "单位名称", "待遇状态", "状态变更日期", "停发原因",
              "月养老金", "联系电话", "退休日期", "上次认证日期"]  # fmt: skip
    row = [person.person_no, person.name, person.id_number, person.unit.unit_no, person.unit.name, "暂停",
           today.replace(day=1).isoformat(), "待核实", "3000", "13812345678", "2010-01-01", "2026-01-15"]  # fmt: skip
    roster = write_csv(tmp_path / "roster.csv", header, [row])
    batch = feed_services.import_submit(source=roster, file_name=roster.name, kind="roster", user=None,
                                        now=timezone.now(), enqueue=False)  # fmt: skip
    feed_services.import_execute(batch_id=batch.pk, now=timezone.now())
    person.refresh_from_db()
    assert (person.benefit_status, person.status_since) == ("suspended", today.replace(day=1))
    assert RecipientChange.objects.filter(recipient=person, field="benefit_status").exists()

    for text in shown():
        assert why in text
        assert "已暂停发放" not in text


def test_a_refund_after_a_reversed_stop_is_recorded_and_approved_on_the_recovery_page(
    wang: Any, li: Any
) -> None:
    """The recovery page of a stop reversed after money came back says what is owed back, takes
    the refund (金额、日期、凭证号) from one officer and its approval from another; the officer who
    recorded it sees the approval disabled, and the service refuses it from them too."""
    from zige.benefits.services import payment_action_approve, payment_action_reverse, recovery_payment_record

    person = RecipientFactory(monthly_amount=Decimal("2987.95"))
    stop: Any = payment_action(person, state="proposed", amount="5975.90")
    payment_action_approve(action_id=stop.pk, user=li, now=timezone.now())
    case = RecoveryCase.objects.get(action=stop)
    recovery_payment_record(case_id=case.pk, amount=Decimal("1200.00"), paid_on=timezone.localdate(),
                            method="银行转账", user=wang, now=timezone.now())  # fmt: skip
    reversal = payment_action_reverse(action_id=stop.pk, user=li, reason="本人健在", now=timezone.now())
    payment_action_approve(action_id=reversal.pk, user=wang, now=timezone.now())
    url = reverse("benefits:recovery", args=[case.pk])
    page = as_user(wang).get(url).content.decode()
    assert "待返还" in page and "已追回的 1,200.00 元应返还本人或其继承人" in page and "登记返还" in page
    assert "—（停发已撤销，无需追回）" in page
    as_user(wang).post(reverse("benefits:recovery_refund", args=[case.pk]),
                       {"amount": "1,200.00", "refunded_on": f"{timezone.localdate():%Y-%m-%d}",
                        "reference": "ZZ-88"})  # fmt: skip
    case.refresh_from_db()
    assert (case.status, case.refund_ref) == ("refund_recorded", "ZZ-88")
    page = as_user(wang).get(url).content.decode()
    assert "返还待复核" in page and "您登记了返还，须由另一名经办人员复核" in page
    assert re.search(r'value="approve" class="btn btn--primary" disabled', page)
    response = as_user(wang).post(reverse("benefits:recovery_refund_decide", args=[case.pk]), {"decision": "approve"},
                                  follow=True)  # fmt: skip
    assert "登记返还的人不能复核自己的返还" in response.content.decode()
    as_user(li).post(reverse("benefits:recovery_refund_decide", args=[case.pk]), {"decision": "approve"})
    case.refresh_from_db()
    assert (case.status, case.refund_approved_by) == ("refunded", li)
    page = as_user(li).get(url).content.decode()
    assert "已返还 1,200.00 元" in page and "wang 登记，li 复核" in page
    listing = as_user(li).get(reverse("benefits:recoveries")).content.decode()
    assert re.search(r'1,200\.00</td>\s*<td class="num">—</td>', listing)  # 已追回, then 未追回 —
    report = as_user(li).get(reverse("benefits:report")).content.decode()
    assert "已返还（未计入上述合计）" in report
    csv_text = as_user(li).get(reverse("benefits:report_csv")).content.decode()
    assert "返还,,已返还（未计入上述合计）,1,1200.00" in csv_text
