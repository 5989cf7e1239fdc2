"""Request and response bodies of the JSON API (they make up the OpenAPI document)."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class ErrorOut(Schema):
    detail: str = Field(description="中文 / English message")
    code: str = Field(description="stable reason code, e.g. `bad_credentials`, `not_found`")


class TokenIn(Schema):
    username: str = Field(max_length=150)
    password: str = Field(max_length=4096)


class TokenOut(Schema):
    token: str = Field(description="send as `Authorization: Bearer <token>`; shown once")
    token_type: str = "Bearer"
    expires_at: str = Field(description="ISO 8601 date-time after which the token is refused")


class UnitOut(Schema):
    unit_no: str
    name: str


class DecisionOut(Schema):
    run_id: int
    as_of: dt.date
    status: str = Field(description="eligible / stop / suspend / review / pending")
    status_label: str
    reason: str
    reason_label: str
    evidence_kind: str
    evidence_date: dt.date | None
    certified_on: dt.date | None
    due_on: dt.date | None
    remind: bool
    channel: str
    action: str = Field(description="stop / suspend / resume, or empty")
    effective_month: str = Field(description="YYYY-MM, or empty")
    months: int | None
    amount: str | None = Field(description="decimal amount as text, e.g. `3000.00`")


class PersonOut(Schema):
    person_no: str
    name: str = Field(description="masked: 王*明")
    id_number: str = Field(description="masked: 140105********123X")
    phone: str = Field(description="masked: 138****5678")
    mobile: str = Field(description="masked")
    unit: UnitOut
    benefit_status: str = Field(description="normal / suspended / terminated")
    benefit_status_label: str
    decision: DecisionOut | None = Field(description="from the latest succeeded run; null if none")


class EvidenceOut(Schema):
    kind: str
    record_kind: str
    date: dt.date | None
    end_date: dt.date | None = None
    sub: str | None = None
    detail: str | None = None
    file_name: str | None = None
    row: int | None = None
    batch_id: int | None = None


class PushItemIn(Schema):
    """One pushed result (documentation of the body; items are validated one by one)."""

    id_number: str = Field(description="18-digit (or 15-digit) resident ID; check digit verified")
    name: str = Field(max_length=100)
    auth_time: str = Field(description="ISO 8601 date-time; without an offset it is Beijing time")
    result: str = Field(description="`pass` / `fail` (also 成功 / 失败, 通过 / 不通过)")
    method: str | None = Field(None, max_length=32, description="terminals: 人脸 / 指静脉")
    device_no: str | None = Field(None, max_length=64)
    similarity: float | str | None = Field(None, description="match score, e.g. 98.5")


class PushRejectedOut(Schema):
    index: int = Field(description="position of the item in the pushed list, from 0")
    field: str
    reason: str = Field(
        description="missing_value, bad_id_format, bad_id_checksum, bad_id_birth_date, bad_value, "
        "too_long, bad_datetime, future_datetime, bad_result, bad_similarity, not_an_object"
    )


class PushOut(Schema):
    accepted: int
    rejected: list[PushRejectedOut]
