"""Resident identity numbers (居民身份证号码, GB 11643-1999) and mainland mobile numbers.

Pure functions, used by the oracle, the demo generator and the tests. The engine does the
same work in SQL (`zige.engine.sql.normalise_id_sql`); the tests hold the two together.

The region code (first six digits) is deliberately *not* checked against a list: numbers issued
before a county was abolished or renamed keep the old code for life.
"""

from __future__ import annotations

import re
from datetime import date

WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
EARLIEST_BIRTH = date(1890, 1, 1)

_FULLWIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX")
# ASCII whitespace only, like the engine's SQL (RE2's \s): the two must clean the same way.
_STRIP = re.compile(r"[ \t\n\f\r\u3000\u00a0'‘’`]")
_ID15 = re.compile(r"[0-9]{15}")
_ID18 = re.compile(r"[0-9]{17}[0-9X]")


def check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def clean_id(raw: str | None) -> str:
    """Upper-case, ASCII digits, no spaces, no Excel text apostrophe."""
    if raw is None:
        return ""
    return _STRIP.sub("", str(raw).translate(_FULLWIDTH)).upper()


def upgrade_15_to_18(id15: str) -> str:
    """Old 15-digit numbers: insert the century `19` and append the check digit."""
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_digit(first17)


class IdError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_id(raw: str | None, *, as_of: date) -> str:
    """The 18-character form of an ID number, or `IdError` with a reason code.

    Reason codes: `missing_value`, `bad_id_format`, `bad_id_checksum`, `bad_id_birth_date`.
    """
    text = clean_id(raw)
    if not text:
        raise IdError("missing_value")
    if _ID15.fullmatch(text):
        text = upgrade_15_to_18(text)
    elif not _ID18.fullmatch(text):
        raise IdError("bad_id_format")
    elif check_digit(text[:17]) != text[17]:
        raise IdError("bad_id_checksum")
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise IdError("bad_id_birth_date") from None
    if not EARLIEST_BIRTH <= born <= as_of:
        raise IdError("bad_id_birth_date")
    return text


def birth_date_of(id18: str) -> date:
    return date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))


def store_key(id18: str) -> int:
    """The evidence store's 64-bit key of a normalised ID: its first 17 digits with the birth date
    and sequence (digits 7-17) before the region (digits 1-6), as one integer.

    Birth first because the store's files are sorted by this key: a pension roll's people are
    born in a few decades, so the rows of everyone younger fall in row groups whose key range
    lies outside the roll's, and a scan skips them on the row groups' statistics
    (docs/architecture.md, "The evidence store": `id_key`, the store key).
    `zige.engine.sql.id_key_sql` is the same in SQL."""
    return int(id18[6:17] + id18[:6])


def id_from_store_key(key: int) -> str:
    """The 18-character ID of a `store_key` (the check character follows from the 17 digits)."""
    digits = f"{key:017d}"
    first17 = digits[11:] + digits[:11]
    return first17 + check_digit(first17)


def sex_of(id18: str) -> str:
    """男 for an odd 17th digit, 女 for an even one."""
    return "男" if int(id18[16]) % 2 else "女"


_PHONE_NOISE = re.compile(r"[ \t\n\f\r\u3000\-()（）]")
MOBILE = re.compile(r"1[3-9][0-9]{9}")


def normalise_mobile(raw: str | None) -> str | None:
    """An 11-digit mainland mobile number, or None (landline, empty, malformed).

    Accepts spaces, dashes, full-width digits and a +86 / 0086 country prefix.
    """
    if raw is None:
        return None
    text = _PHONE_NOISE.sub("", str(raw).translate(_FULLWIDTH))
    for prefix in ("+86", "0086", "86"):
        if text.startswith(prefix) and len(text) == len(prefix) + 11:
            text = text[len(prefix) :]
            break
    return text if MOBILE.fullmatch(text) else None
