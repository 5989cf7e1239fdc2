"""The blacklist pages (黑名单): current entries by default, removed ones under 已移出; an entry's
page with its fraud case's state, the removal form (移出) for one officer and the decision for
another, and its history."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import RecipientFactory, UserFactory, blacklist_entry, fraud_case
from zige.accounts.models import Role
from zige.benefits.models import Blacklist, BlacklistStatus

pytestmark = pytest.mark.django_db


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


def rows(page: str) -> list[int]:
    """The entries a list page shows, in order."""
    import re

    return [int(pk) for pk in re.findall(r'<tr data-entry="(\d+)"', page)]


def test_the_list_shows_current_entries_by_default_and_removed_ones_under_their_filter(wang: Any) -> None:
    today = timezone.localdate()
    current: Any = blacklist_entry(RecipientFactory(name="张在列"), since=today - timedelta(days=400),
                                   until=today - timedelta(days=35))  # fmt: skip
    pending: Any = blacklist_entry(RecipientFactory(name="李待批"), since=today - timedelta(days=10))
    removed: Any = blacklist_entry(RecipientFactory(name="赵已移出"), since=today - timedelta(days=30))
    Blacklist.objects.filter(pk=pending.pk).update(
        status="removal_proposed", removal_reason="revoked", removed_on=today, removal_proposed_by=wang,
        removal_proposed_at=timezone.now(),
    )  # fmt: skip
    Blacklist.objects.filter(pk=removed.pk).update(
        status="removed", removal_reason="credit_repaired", removed_on=today, removal_proposed_by=wang,
        removal_proposed_at=timezone.now(), removal_approved_by=UserFactory(), removed_at=timezone.now(),
    )  # fmt: skip
    client = as_user(wang)
    page = client.get(reverse("benefits:blacklist")).content.decode()
    assert set(rows(page)) == {current.pk, pending.pk} and "赵已移出" not in page
    assert "在列 <b>2</b>" in page and "已移出 <b>1</b>" in page and "全部 <b>3</b>" in page
    assert "其中 1 条移出待审批" in page and "移出待审批</span>" in page
    # the period and that it has ended
    assert f"{today - timedelta(days=35):%Y-%m-%d}" in page and 'data-testid="expired">已到期' in page
    expired_page = client.get(reverse("benefits:blacklist_entry", args=[current.pk])).content.decode()
    assert '<option value="expired" selected>列入期满</option>' in expired_page
    assert "未定期限" in page
    removed_page = client.get(reverse("benefits:blacklist"), {"view": "removed"}).content.decode()
    assert (
        rows(removed_page) == [removed.pk]
        and f'已移出</span> <span class="mono">{today:%Y-%m-%d}</span>（信用修复）' in removed_page
    )
    assert set(rows(client.get(reverse("benefits:blacklist"), {"view": "all"}).content.decode())) == {
        current.pk, pending.pk, removed.pk,
    }  # fmt: skip
    # an unknown view is the default
    assert set(rows(client.get(reverse("benefits:blacklist"), {"view": "x"}).content.decode())) == {
        current.pk, pending.pk,
    }  # fmt: skip


def test_one_officer_proposes_the_removal_on_the_page_another_approves_and_the_history_shows_it(
    wang: Any, li: Any
) -> None:
    person = RecipientFactory(name="王大力")
    entry: Any = blacklist_entry(person, since=date(2026, 1, 5))
    url = reverse("benefits:blacklist_entry", args=[entry.pk])
    today = timezone.localdate()
    client = as_user(wang)
    page = client.get(url).content.decode()
    assert 'data-testid="remove-form"' in page
    assert (
        f'name="removed_on" type="date" value="{today:%Y-%m-%d}" min="2026-01-05" max="{today:%Y-%m-%d}"'
        in page
    )
    # a day after today is refused with the field's name, nothing changes
    tomorrow = today + timedelta(days=1)
    response = client.post(
        reverse("benefits:blacklist_remove", args=[entry.pk]),
        {"removal_reason": "revoked", "removed_on": tomorrow.isoformat(), "note": "复议撤销"}, follow=True,
    )  # fmt: skip
    assert f"移出日期（{tomorrow:%Y-%m-%d}）不能晚于登记当天" in response.content.decode()
    assert Blacklist.objects.get(pk=entry.pk).status == BlacklistStatus.LISTED
    response = client.post(
        reverse("benefits:blacklist_remove", args=[entry.pk]),
        {"removal_reason": "revoked", "removed_on": today.isoformat(), "note": "行政复议决定书 晋人社复〔2026〕3号"},
        follow=True,
    )  # fmt: skip
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == url and "已提出移出黑名单，待另一名经办人员审批" in page
    assert 'data-testid="status">移出待审批' in page
    assert (
        "您提出了移出，须由另一名经办人员审批" in page and 'disabled aria-describedby="rm-maker-note"' in page
    )
    client.post(reverse("benefits:blacklist_remove_decide", args=[entry.pk]), {"decision": "approve"})
    assert Blacklist.objects.get(pk=entry.pk).status == BlacklistStatus.REMOVAL_PROPOSED
    checker = as_user(li)
    page = checker.get(url).content.decode()
    assert "您提出了移出" not in page and "wang 提出移出：复议或诉讼撤销" in page
    assert 'data-testid="withdraw-form"' not in page  # only its maker withdraws a proposal
    response = checker.post(reverse("benefits:blacklist_remove_withdraw", args=[entry.pk]), follow=True)
    assert "只有提出移出的人可以撤回" in response.content.decode()
    # its maker takes it back (a wrong note, say) and proposes it again
    assert 'data-testid="withdraw-form"' in client.get(url).content.decode()
    response = client.post(reverse("benefits:blacklist_remove_withdraw", args=[entry.pk]), {"reason": "说明有误"},
                           follow=True)  # fmt: skip
    page = response.content.decode()
    assert "已撤回移出的提议，条目仍在黑名单中" in page and 'data-testid="status">在列' in page
    assert 'data-testid="remove-form"' in page and "撤回原因：说明有误" in page
    client.post(
        reverse("benefits:blacklist_remove", args=[entry.pk]),
        {"removal_reason": "revoked", "removed_on": today.isoformat(), "note": "行政复议决定书 晋人社复〔2026〕3号"},
    )  # fmt: skip
    response = checker.post(reverse("benefits:blacklist_remove_decide", args=[entry.pk]), {"decision": "reject"},
                            follow=True)  # fmt: skip
    assert "请填写驳回理由" in response.content.decode()
    response = checker.post(reverse("benefits:blacklist_remove_decide", args=[entry.pk]),
                            {"decision": "approve"}, follow=True)  # fmt: skip
    page = response.content.decode()
    assert "已审批，移出黑名单" in page and 'data-testid="status">已移出' in page
    assert "可重新列入" in page and 'data-testid="remove-form"' not in page
    history = page[page.index('data-testid="history"') :]
    assert history.index("提出移出黑名单（待审批）") < history.index("审批通过移出黑名单")
    assert "移出原因：复议或诉讼撤销" in history and "wang" in history and "li" in history
    assert "单位：—" not in history and "列入期限：" not in history  # empty values say nothing
    assert rows(checker.get(reverse("benefits:blacklist")).content.decode()) == []


def test_the_entry_page_shows_its_fraud_case_and_whether_it_is_settled(wang: Any) -> None:
    person = RecipientFactory()
    case: Any = fraud_case(person, amount="2000.00")
    type(case).objects.filter(pk=case.pk).update(status="fined", fine=Decimal("4000.00"),
                                                 fine_collected=Decimal("1500.00"))  # fmt: skip
    entry: Any = blacklist_entry(person, fraud=case)
    page = as_user(wang).get(reverse("benefits:blacklist_entry", args=[entry.pk])).content.decode()
    section = page[page.index('data-testid="fraud-case"') :]
    assert f'欺诈案件 #{case.pk}</a> <span class="tag">已处罚</span>' in section
    assert "4,000.00，已缴 1,500.00" in section
    assert "未了结</span>：罚款尚有 2,500.00 元未缴" in section and "不能以“信用修复”移出" in section
    # the reasons the service would refuse are offered disabled, with why
    form = page[page.index('data-testid="remove-form"') :]
    assert '<option value="credit_repaired" disabled>信用修复（关联案件未了结）</option>' in form
    assert '<option value="expired" disabled>列入期满（未定期限）</option>' in form
    assert '<option value="revoked">复议或诉讼撤销</option>' in form
    response = as_user(wang).post(
        reverse("benefits:blacklist_remove", args=[entry.pk]),
        {"removal_reason": "credit_repaired", "removed_on": timezone.localdate().isoformat(), "note": "已缴"},
        follow=True,
    )  # fmt: skip
    assert f"关联的欺诈案件 #{case.pk} 尚未了结：罚款尚有 2,500.00 元未缴" in response.content.decode()
    # the fraud case's page lists the entry with its state and a link to it
    fraud_page = as_user(wang).get(reverse("benefits:fraud", args=[case.pk])).content.decode()
    assert reverse("benefits:blacklist_entry", args=[entry.pk]) in fraud_page and "在列" in fraud_page


def test_an_auditor_sees_the_entry_and_its_history_without_any_form(wang: Any) -> None:
    entry: Any = blacklist_entry(RecipientFactory())
    page = (
        as_user(UserFactory(role=Role.AUDITOR))
        .get(reverse("benefits:blacklist_entry", args=[entry.pk]))
        .content.decode()
    )
    assert "审计人员只能查看" in page and "<form" not in page.split("办理</h2>")[1]


def test_a_period_typed_on_the_list_page_is_kept_with_the_entry(wang: Any) -> None:
    today = timezone.localdate()
    client = as_user(wang)
    until = date(today.year + 3, today.month, 1)
    client.post(reverse("benefits:blacklist_add"), {"subject_type": "person", "person_name": "王大力",
                                                    "reason": "冒领", "since": today.isoformat(),
                                                    "until": until.isoformat()})  # fmt: skip
    entry = Blacklist.objects.get()
    assert entry.until == until
    assert f"{until:%Y-%m-%d}" in client.get(reverse("benefits:blacklist")).content.decode()
    response = client.post(reverse("benefits:blacklist_add"), {"subject_type": "person", "person_name": "李",
                                                               "reason": "冒领", "since": today.isoformat(),
                                                               "until": "2026-13-01"}, follow=True)  # fmt: skip
    assert "列入期限应为 YYYY-MM-DD" in response.content.decode() and Blacklist.objects.count() == 1


def test_an_officer_changes_the_period_on_the_page_with_its_basis(wang: Any, li: Any) -> None:
    entry: Any = blacklist_entry(RecipientFactory(), since=date(2024, 11, 1))
    url = reverse("benefits:blacklist_entry", args=[entry.pk])
    client = as_user(wang)
    page = client.get(url).content.decode()
    assert (
        'data-testid="period-form"' in page and 'name="until" type="date" value="" min="2024-11-01"' in page
    )
    response = client.post(reverse("benefits:blacklist_period", args=[entry.pk]), {"until": "2027-11-01", "basis": ""},
                           follow=True)  # fmt: skip
    assert "请填写变更列入期限的依据" in response.content.decode()
    response = client.post(
        reverse("benefits:blacklist_period", args=[entry.pk]), {"until": "2026-11-01", "basis": "晋人社复〔2026〕7号"},
        follow=True,
    )  # fmt: skip
    page = response.content.decode()
    assert "已变更列入期限" in page and 'name="until" type="date" value="2026-11-01"' in page
    history = page[page.index('data-testid="history"') :]
    assert (
        "变更列入期限" in history
        and "列入期限：2026-11-01" in history
        and "变更依据：晋人社复〔2026〕7号" in history
    )
    # once a removal waits, the period stays as it was proposed on: no form, and the service refuses
    client.post(reverse("benefits:blacklist_remove", args=[entry.pk]),
                {"removal_reason": "expired", "removed_on": timezone.localdate().isoformat(), "note": ""})  # fmt: skip
    assert Blacklist.objects.get(pk=entry.pk).status == BlacklistStatus.REMOVAL_PROPOSED
    page = as_user(li).get(url).content.decode()
    assert 'data-testid="period-form"' not in page
    response = as_user(li).post(reverse("benefits:blacklist_period", args=[entry.pk]),
                                {"until": "2028-01-01", "basis": "x"}, follow=True)  # fmt: skip
    assert "移出正在等待审批" in response.content.decode()
    assert Blacklist.objects.get(pk=entry.pk).until == date(2026, 11, 1)
