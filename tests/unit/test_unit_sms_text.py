"""The unit's deadline SMS text (zige.notifications.content.render_unit_deadline): the
project's SMS conventions — province template, override, signature counted, at most
`ZIGE_SMS_MAX_SEGMENTS` parts, template parameters for HTTP gateways."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from zige.notifications.config import NotifyConfig, from_environ
from zige.notifications.content import TemplateError, check_templates, render_unit_deadline, segments

CONFIG = NotifyConfig()


def test_the_text_names_the_unit_the_count_and_the_earliest_deadline() -> None:
    r = render_unit_deadline(CONFIG, unit_no="14010000208", count=37, due_on=date(2027, 1, 5), days_before=30)
    assert r.text == (
        "贵单位（单位编号14010000208）有37名退休人员的领取待遇资格核实将于2027年01月05日前到期（最早），"
        "请登录系统完成核实。"
    )
    assert r.params == {"unit_no": "14010000208", "count": "37", "due": "2027年01月05日"}
    assert r.segments == segments("【山西人社】" + r.text) == 2


def test_override_and_length_limit() -> None:
    short = replace(CONFIG, template_unit_deadline="{unit_no}单位{count}人{days}天内到期，最早{due}。")
    r = render_unit_deadline(short, unit_no="1401", count=3, due_on=date(2027, 1, 5), days_before=7)
    assert r.text == "1401单位3人7天内到期，最早2027年01月05日。" and r.segments == 1
    with pytest.raises(TemplateError, match="parts"):
        render_unit_deadline(
            replace(CONFIG, max_segments=1),
            unit_no="14010000208",
            count=3,
            due_on=date(2027, 1, 5),
            days_before=7,
        )
    with pytest.raises(TemplateError, match="broken"):
        render_unit_deadline(replace(CONFIG, template_unit_deadline="{name}"), unit_no="1", count=1,
                             due_on=date(2027, 1, 5), days_before=7)  # fmt: skip


def test_a_broken_unit_template_is_reported_but_not_for_the_runs() -> None:
    broken = replace(CONFIG, template_unit_deadline="{nope}")
    assert any("unit_deadline" in p for p in check_templates(broken))
    assert check_templates(broken, unit=False) == []  # a run's person messages do not need it
    assert check_templates(replace(broken, unit_sms=False)) == []


def test_settings_from_the_environment() -> None:
    config = from_environ({"ZIGE_UNIT_SMS": "0", "ZIGE_SMS_TEMPLATE_ID_UNIT_DEADLINE": "SMS_9",
                           "ZIGE_SMS_TEXT_UNIT_DEADLINE": "{count}"})  # fmt: skip
    assert (config.unit_sms, config.template_unit_deadline_id, config.template_unit_deadline) == (
        False,
        "SMS_9",
        "{count}",
    )
    assert from_environ({}).unit_sms is True
