"""Message texts: Chinese templates per province, masked names, SMS length (segments).

Placeholders: {name} (masked: 王*明), {due} (2027年01月15日), {app}, {service_points},
{phone} (the unit's phone, else the bureau's hotline), {person_no} and {reason} (unit notices
only: why the unit is to tell the person, `REASON_NO_MOBILE` or `REASON_SMS_UNDELIVERABLE`).
The unit's SMS about its verification tasks (`unit_deadline`): {unit_no}, {count} (tasks),
{due} (the earliest deadline), {days} (the reminder threshold), {phone} (the bureau's hotline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import phonenumbers

from zige.accounts.masking import mask_name
from zige.notifications.config import NotifyConfig

SEGMENT_CHARS = 70  # one SMS with any Chinese character (UCS-2)
CONCAT_SEGMENT_CHARS = 67  # each part of a long SMS (the header takes the rest)

# Why a person is on their unit's notice list (the {reason} of the unit notice, and its 通知原因 on
# the notice list and in its CSV): notice 一(四) has the unit tell whoever has no mobile, and a
# number our SMS cannot reach (refused for good, or reported undelivered: 空号, 停机) is none.
REASON_NO_MOBILE = "本人无手机号码"
REASON_SMS_UNDELIVERABLE = "发给本人手机的短信无法送达"

PROVINCE_TEMPLATES: dict[str, dict[str, str]] = {
    "14": {  # 山西 (晋社保局发〔2018〕40号 一(四))
        "reminder": (
            "{name}您好，您的养老保险待遇资格认证将于{due}到期，请通过“{app}”APP刷脸认证，"
            "或到{service_points}办理。咨询电话{phone}。"
        ),
        "app_failed": (
            "{name}您好，您在“{app}”APP的养老保险待遇资格认证未通过。请在光线充足处重新刷脸认证，"
            "或携身份证到{service_points}办理。咨询电话{phone}。"
        ),
        "unit": (
            "请通知{name}（个人编号{person_no}）于{due}前完成养老保险待遇资格认证：{reason}，"
            "可由单位协助使用“{app}”APP或认证终端办理。"
        ),
        "unit_app_failed": (
            "请通知{name}（个人编号{person_no}）：本人在“{app}”APP的资格认证未通过，请协助重新认证，"
            "或到{service_points}办理，{due}前完成。"
        ),
        "unit_deadline": (  # to the unit's mobile, from the verification sweep (notice 三(一)1)
            "贵单位（单位编号{unit_no}）有{count}名退休人员的领取待遇资格核实将于{due}前到期（最早），"
            "请登录系统完成核实。"
        ),
    },
}


class TemplateError(ValueError):
    pass


def segments(text: str) -> int:
    """Billable SMS parts of `text` (Chinese: 70 characters in one, 67 per part when longer)."""
    n = len(text)
    return 1 if n <= SEGMENT_CHARS else math.ceil(n / CONCAT_SEGMENT_CHARS)


def normalise_mobile(value: str | None) -> str:
    """The mainland mobile number in `value` (11 digits), or '' when it is not one."""
    text = (value or "").strip()
    if not text:
        return ""
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return ""
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        return ""
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return ""
    return str(phonenumbers.national_significant_number(number))


@dataclass(frozen=True)
class Rendered:
    text: str
    params: dict[str, str]
    segments: int


def _template(config: NotifyConfig, key: str) -> str:
    override = {
        "reminder": config.template_reminder,
        "app_failed": config.template_app_failed,
        "unit": config.template_unit,
        "unit_deadline": config.template_unit_deadline,
    }.get(key, "")
    if override:
        return override
    province = PROVINCE_TEMPLATES.get(config.province, PROVINCE_TEMPLATES["14"])
    return province.get(key, PROVINCE_TEMPLATES["14"][key])


def render(
    config: NotifyConfig,
    *,
    kind: str,
    channel: str,
    name: str,
    due_on: date,
    person_no: str,
    unit_phone: str,
    app: str = "",
    reason: str = REASON_NO_MOBILE,
) -> Rendered:
    """The text of a person's message. A unit notice says why the unit is to tell the person
    (`reason`: no mobile, or an SMS that could not reach them); a configured text
    (`ZIGE_UNIT_NOTICE_TEXT`) may leave {reason} out, and the notice list says it anyway."""
    key = ("unit" if kind == "reminder" else "unit_app_failed") if channel == "unit" else kind
    params = {
        "name": mask_name(name),
        "due": due_text(due_on),
        "app": app or config.app_name,
        "service_points": config.service_points,
        "phone": unit_phone.strip() or config.service_phone,
        "person_no": person_no,
        "reason": reason,
    }
    try:
        text = _template(config, key).format(**params)
    except (KeyError, IndexError, ValueError) as exc:
        raise TemplateError(f"the {key} template is broken: {exc!r}") from None
    # The gateway puts the signature (【山西人社】) in front: it counts towards the length.
    parts = segments(f"【{config.sign_name}】{text}") if channel == "sms" else 0
    if channel == "sms" and parts > config.max_segments:
        raise TemplateError(
            f"the {key} SMS is {len(text)} characters + signature = {parts} parts; "
            f"at most {config.max_segments} allowed (ZIGE_SMS_MAX_SEGMENTS)"
        )
    if channel == "sms":  # HTTP gateways send template parameters, not the text
        params = {k: params[k] for k in ("name", "due", "app", "phone")}
    return Rendered(text=text, params=params, segments=parts)


def due_text(day: date) -> str:
    return f"{day.year}年{day.month:02d}月{day.day:02d}日"


def _fit(config: NotifyConfig, key: str, text: str) -> int:
    """The SMS parts of `text` with the signature the gateway puts in front (【山西人社】);
    TemplateError beyond `max_segments`."""
    parts = segments(f"【{config.sign_name}】{text}")
    if parts > config.max_segments:
        raise TemplateError(
            f"the {key} SMS is {len(text)} characters + signature = {parts} parts; "
            f"at most {config.max_segments} allowed (ZIGE_SMS_MAX_SEGMENTS)"
        )
    return parts


def render_unit_deadline(
    config: NotifyConfig, *, unit_no: str, count: int, due_on: date, days_before: int
) -> Rendered:
    """The SMS to a unit: `count` of its verification tasks near their deadline, the earliest
    on `due_on` (sent as template parameters unit_no, count, due by HTTP gateways)."""
    params = {
        "unit_no": unit_no, "count": str(count), "due": due_text(due_on), "days": str(days_before),
        "phone": config.service_phone,
    }  # fmt: skip
    try:
        text = _template(config, "unit_deadline").format(**params)
    except (KeyError, IndexError, ValueError) as exc:
        raise TemplateError(f"the unit_deadline template is broken: {exc!r}") from None
    parts = _fit(config, "unit_deadline", text)
    return Rendered(text=text, params={k: params[k] for k in ("unit_no", "count", "due")}, segments=parts)


def check_unit_template(config: NotifyConfig) -> list[str]:
    """Problems of the unit SMS template with a long unit number and count."""
    try:
        render_unit_deadline(config, unit_no="1" * 20, count=99999, due_on=date(2027, 12, 31), days_before=30)
    except TemplateError as exc:
        return [str(exc)]
    return []


def check_templates(config: NotifyConfig, *, unit: bool = True) -> list[str]:
    """Problems of the configured templates with a long name: for `zige status` and startup.
    `unit=False`: the person's templates only (a run's messages do not need the unit's)."""
    problems = []
    for kind in ("reminder", "app_failed"):
        for channel in ("sms", "unit"):
            try:
                render(
                    config, kind=kind, channel=channel, name="欧阳某某某", due_on=date(2027, 12, 31),
                    person_no="P0000000000000", unit_phone="0351-12345678",
                )  # fmt: skip
            except TemplateError as exc:
                problems.append(str(exc))
    return problems + (check_unit_template(config) if unit and config.unit_sms else [])
