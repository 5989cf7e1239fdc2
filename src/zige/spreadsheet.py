"""Text that a spreadsheet must show as text, never run as a formula (CSV injection).

Names, addresses, unit names and rejected values come from agencies' files, the roster and typed
forms; opened in Excel or WPS, a CSV cell such as `=HYPERLINK(...)`, `+cmd|...` or `@SUM(...)`
would be evaluated. Every CSV the site writes for people to open passes its text cells through
`formula_safe`, which prefixes such a value with an apostrophe (OWASP's advice). A value is such
when its first character, after any leading spaces (ASCII or the full-width 　), is one of
`FORMULA_STARTS`: `=`, `+`, `-`, `@`, a tab or a CR, or their full-width forms `＝ ＋ － ＠` (which
Excel and WPS with a Chinese input method take as the ASCII ones), so `  =1+1`, `\t=1` and
`＝1+1` are all quoted. `zige.engine.sql.formula_safe_sql` is the same rule in SQL. Number columns
(amounts, counts) are written as they are: a negative amount is a number, not a formula.
Workbooks need no prefix: their cells are typed (see `benefits.services.render_xlsx`).
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
# Skipped before looking at the first character: a spreadsheet ignores them before a formula. (A
# tab or a CR is a formula start itself, so spaces then a tab are quoted too.)
FORMULA_LEADING_BLANKS = " \u3000"


def formula_safe(value: object) -> str:
    """The cell's text, with `'` in front when a spreadsheet would read it as a formula: its
    first character after leading spaces is in `FORMULA_STARTS`."""
    text = "" if value is None else str(value)
    if text.lstrip(FORMULA_LEADING_BLANKS).startswith(FORMULA_STARTS):
        return "'" + text
    return text


def phone_safe(value: object) -> str:
    """A phone number's cell in a CSV people open: readable, dialable and never a formula, rather
    than a `'` in front of the number (`formula_safe`'s answer to `+86…`).

    - A mainland mobile number, however written (`+86 138 1234 5678`, `0086-13812345678`,
      full-width digits), is written as its 11 digits, as reminders.csv and the SMS gateway take it
      (`zige.ids.normalise_mobile`).
    - Another number beginning with `+` (after leading spaces) has the `+` written as `00`, the
      international prefix dialled from the mainland: `+852 9123 4567` -> `00852 9123 4567`, the
      same number.
    - Anything else (a landline `0351-1234567`, an empty cell) as `formula_safe` writes it: as it
      is, or quoted when a spreadsheet would run it."""
    from zige.ids import normalise_mobile

    text = "" if value is None else str(value)
    mobile = normalise_mobile(text)
    if mobile is not None:
        return mobile
    bare = text.lstrip(FORMULA_LEADING_BLANKS)
    if bare.startswith(("+", "＋")):
        return formula_safe("00" + bare[1:])
    return formula_safe(text)
