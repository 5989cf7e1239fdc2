"""Masking of personal data for display."""

from __future__ import annotations


def mask_id(id_number: str | None) -> str:
    """`140105195001011234` -> `140105********1234`: region kept, birth date hidden."""
    if not id_number:
        return ""
    if len(id_number) < 10:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def mask_phone(phone: str | None) -> str:
    """`13812345678` -> `138****5678`; other numbers keep their first 3 and last 4 characters."""
    if not phone:
        return ""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str | None) -> str:
    """张三 -> 张*, 王小明 -> 王*明."""
    if not name:
        return ""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
