"""Message texts: Chinese templates per province, masked names, SMS length (segments).

Placeholders: {name} (masked: 王*明), {due} (2027年01月15日), {app}, {service_points},
{phone} (the unit's phone, else the bureau's hotline), {person_no} (unit notices only).
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
            "请通知{name}（个人编号{person_no}）于{due}前完成养老保险待遇资格认证：本人无手机号码，"
            "可由单位协助使用“{app}”APP或认证终端办理。"
        ),
        "unit_app_failed": (
            "请通知{name}（个人编号{person_no}）：本人在“{app}”APP的资格认证未通过，请协助重新认证，"
            "或到{service_points}办理，{due}前完成。"
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
    }.get(key, "")
    if override:
        return override
    province = PROVINCE_TEMPLATES.get(config.province, PROVINCE_TEMPLATES["14"])
    return province.get(key, PROVINCE_TEMPLATES["14"][key])


def render(
    config: NotifyConfig, *, kind: str, channel: str, name: str, due_on: date, person_no: str, unit_phone: str
) -> Rendered:
    key = ("unit" if kind == "reminder" else "unit_app_failed") if channel == "unit" else kind
    params = {
        "name": mask_name(name),
        "due": f"{due_on.year}年{due_on.month:02d}月{due_on.day:02d}日",
        "app": config.app_name,
        "service_points": config.service_points,
        "phone": unit_phone.strip() or config.service_phone,
        "person_no": person_no,
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


def check_templates(config: NotifyConfig) -> list[str]:
    """Problems of the configured templates with a long name: for `zige status` and startup."""
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
    return problems
