"""Text that a spreadsheet must show as text, never run as a formula (CSV injection).

Names, addresses, unit names and rejected values come from agencies' files, the roster and typed
forms; opened in Excel or WPS, a CSV cell such as `=HYPERLINK(...)`, `+cmd|...` or `@SUM(...)`
would be evaluated. Every CSV the site writes for people to open passes its text cells through
`formula_safe`, which prefixes such a value with an apostrophe (OWASP's advice). Number columns
(amounts, counts) are written as they are: a negative amount is a number, not a formula.
Workbooks need no prefix: their cells are typed (see `benefits.services.render_xlsx`).
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: object) -> str:
    """The cell's text, with `'` in front when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text
