"""Fuzzy fallback for broken IDs (模糊匹配建议, issue 6 item 6): suggestions, never evidence.

A feed row whose 身份证号 fails the GB 11643 check digit is rejected (`bad_id_checksum`,
docs/rules.md §4). Most such IDs are one keystroke away from the right one: one character
mistyped, or two neighbouring characters swapped. This step tries every single edit of the
broken ID that passes the check digit against the recipients, and keeps the ones confirmed by
the name and the birth date as *suggested* matches for a person to accept. It never adds
evidence and never changes a decision: a check digit that fails means the number is wrong, and
a guessed number is not the agency's record (notice 二(一): 比对 is by the records as given).

The work is a chain of set-based queries (no Python per row):

1. `broken_rows_sql`: the rejected rows with a well-formed 18-character ID that fails the check
   digit, with the feed's own birth date / age where the kind has such a column.
2. `variants_sql`: each row crossed with a positions table (1..18, with the weights) and a
   characters table (0..9, and X at position 18), plus the 17 adjacent transpositions; the check
   digit of each candidate is tested *arithmetically* from the row's weighted sum before any
   string is built, so only the variants that pass (at most 35 per row) are materialised; their
   birth date (digits 7-14) must be a real date between 1890-01-01 and the as-of date.
3. `candidates_sql`: the variants joined with the recipients on the full ID; each hit says
   whether the name (`name_key`, compared without spaces) and the birth dates agree.
4. `suggestions_sql`: the confirmed hits; a row with one confirmed recipient is `suggested`, a
   row with two or more is `ambiguous` (every candidate listed, none preferred).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date
from typing import Any

from zige.engine.kinds import FeedKind
from zige.engine.sql import (
    DUCKDB,
    Dialect,
    clean_text_sql,
    date_literal,
    formula_safe_sql,
    parse_date_sql,
    quote,
)
from zige.ids import CHECK_CHARS, EARLIEST_BIRTH, WEIGHTS

# Feed columns read as the feed's own statement of the person's birth date / age (custom kinds,
# docs/rules.md §3): by logical name or by the first header alias.
BIRTH_COLUMN_NAMES = ("birth_date", "出生日期")
AGE_COLUMN_NAMES = ("age", "年龄")
# An age column is compared with the age at the record's date, give or take one year: agencies
# count 虚岁 or compute the age on another day.
AGE_TOLERANCE = 1

HINTS_COLUMNS = "file_no INTEGER, row_no BIGINT, hint_birth DATE, hint_age INTEGER"

SUGGESTION_COLUMNS = (
    "status", "file_no", "row_no", "feed_kind", "event_date", "original_id", "name", "suggested_id",
    "person_no", "recipient_name", "edit", "position", "from_text", "to_text", "confirmed_by", "candidates",
)  # fmt: skip


def _digit(expr: str, pos: str) -> str:
    return f"CAST(substr({expr}, {pos}, 1) AS INTEGER)"


def _check_char(total: str) -> str:
    """The check character for a weighted sum (any integer >= 0)."""
    return f"substr({quote(CHECK_CHARS)}, ({total}) % 11 + 1, 1)"


def weighted_sum_sql(id_expr: str) -> str:
    """Σ digit_i × weight_i over the first 17 digits (GB 11643)."""
    return "(" + " + ".join(f"{_digit(id_expr, str(i + 1))} * {w}" for i, w in enumerate(WEIGHTS)) + ")"


def _positions_sql() -> str:
    """Positions 1-17: the weight, its inverse modulo 11, and the weight minus the next one's
    (the change a swap of this digit and the next makes, per unit of their difference)."""
    nexts = (*WEIGHTS[1:], 0)
    rows = ", ".join(
        f"({i + 1}, {w}, {pow(w, -1, 11)}, {w - n})"
        for i, (w, n) in enumerate(zip(WEIGHTS, nexts, strict=True))
    )
    return f"(VALUES {rows}) AS p(pos, weight, inverse, swap_weight)"


def _hint_column(kind: FeedKind, names: tuple[str, ...]) -> str | None:
    for column in kind.others:
        if column.name in names or (column.aliases and column.aliases[0] in names):
            return column.name
    return None


def feed_hints_sql(
    *, kind: FeedKind, source: str, present: list[str], file_no: int, d: Dialect = DUCKDB
) -> str | None:
    """The feed's own birth date and age per row (`HINTS_COLUMNS`), or None when the kind has
    neither column (no built-in kind has one; a custom kind may)."""
    birth = _hint_column(kind, BIRTH_COLUMN_NAMES)
    age = _hint_column(kind, AGE_COLUMN_NAMES)
    birth = birth if birth in present else None
    age = age if age in present else None
    if birth is None and age is None:
        return None
    birth_sql = parse_date_sql(f'"{birth}"', d) if birth else "CAST(NULL AS DATE)"
    if age:
        digits = d.regexp_replace_all(clean_text_sql(f'"{age}"'), "[岁周\\s]", "")
        age_sql = f"CASE WHEN {d.matches(digits, '[0-9]{1,3}')} THEN CAST({digits} AS INTEGER) END"
    else:
        age_sql = "CAST(NULL AS INTEGER)"
    return f"SELECT {file_no} AS file_no, _row AS row_no, {birth_sql} AS hint_birth, {age_sql} AS hint_age FROM {source}"


def broken_rows_sql(*, staged: str = "staged_feed", hints: str | None = None, d: Dialect = DUCKDB) -> str:
    """Rejected feed rows whose ID is 18 well-formed characters failing the check digit.

    `staged` has the `staged_feed` columns (its `id_number` holds the cleaned ID of a rejected
    row); `hints` is an optional table of `HINTS_COLUMNS`. A row with no name cannot be confirmed
    and is left out.
    """
    hint_cols = (
        "h.hint_birth, h.hint_age"
        if hints
        else "CAST(NULL AS DATE) AS hint_birth, CAST(NULL AS INTEGER) AS hint_age"
    )
    hint_join = f" LEFT JOIN {hints} h ON h.file_no = s.file_no AND h.row_no = s.row_no" if hints else ""
    return f"""
SELECT s.file_no, s.row_no, s.feed_kind, s.id_number AS original_id, s.name, s.name_key, s.event_date,
       {hint_cols}
FROM {staged} s{hint_join}
WHERE s.reject_reason = 'bad_id_checksum' AND s.name_key <> ''
  AND {d.matches("s.id_number", "[0-9]{17}[0-9X]")}
"""


def variants_sql(broken: str, *, as_of: date, d: Dialect = DUCKDB) -> str:
    """Every single-edit variant of each broken ID that passes the check digit.

    `broken` yields the columns of `broken_rows_sql`. Adds `edit` (`substitution` or
    `transposition`), `position` (1-18; for a transposition the first of the two), `from_text`,
    `to_text` (the characters at the position(s) before and after), `variant` and
    `variant_birth`. Substitutions: a digit at positions 1-17, a digit or X at 18 (exactly one
    check character fits, so position 18 yields one variant). Transpositions: positions p and p+1
    for p = 1..17 (17/18 only when the check character is a digit, X being valid only last).
    """
    o = "b.original_id"
    check = f"substr({o}, 18, 1)"
    digit = _digit(o, "p.pos")
    # The sum of the 17 weighted digits must be ≡ index(check character) (mod 11); `gap` is how far
    # off it is (never 0 for a broken row). Substituting c for digit d at p adds weight × (c - d),
    # so c ≡ d + gap × weight⁻¹: one candidate per position, kept if it is a digit 0-9.
    solved = f"(({digit} + b.gap * p.inverse) % 11)"
    # Swapping p and p+1 adds (weight_p - weight_p+1) × (d_p+1 - d_p); + 110 keeps % non-negative.
    swap_ok = f"(p.swap_weight * ({_digit(o, 'p.pos + 1')} - {digit}) + 110 - b.gap) % 11 = 0"
    # Swapping 17 and 18 changes the 17th digit and makes the old 17th the check character.
    swap_last_sum = f"b.wsum + 99 + {WEIGHTS[16]} * ({_digit(o, '18')} - {_digit(o, '17')})"
    birth = d.try_date("substr(e.variant, 7, 8)", "%Y%m%d")
    return f"""
WITH src AS (
  SELECT * FROM ({broken}) s0
), b AS (
  SELECT file_no, row_no, original_id, wsum,
         (instr({quote(CHECK_CHARS)}, substr(original_id, 18, 1)) - 1 - wsum % 11 + 11) % 11 AS gap
  FROM (SELECT file_no, row_no, original_id, {weighted_sum_sql("original_id")} AS wsum FROM src) s1
), edits AS (
  SELECT file_no, row_no, 'substitution' AS edit, pos AS position, from_text, CAST(solved AS VARCHAR) AS to_text,
         substr(original_id, 1, pos - 1) || CAST(solved AS VARCHAR) || substr(original_id, pos + 1) AS variant
  FROM (
    SELECT b.file_no, b.row_no, {o} AS original_id, p.pos, substr({o}, p.pos, 1) AS from_text, {solved} AS solved
    FROM b CROSS JOIN {_positions_sql()}
  ) s2
  WHERE solved <= 9
  UNION ALL
  SELECT file_no, row_no, 'substitution', 18, {check}, {_check_char("b.wsum")}, substr({o}, 1, 17) || {_check_char("b.wsum")}
  FROM b
  UNION ALL
  SELECT file_no, row_no, 'transposition', p.pos, substr({o}, p.pos, 2),
         substr({o}, p.pos + 1, 1) || substr({o}, p.pos, 1),
         substr({o}, 1, p.pos - 1) || substr({o}, p.pos + 1, 1) || substr({o}, p.pos, 1) || substr({o}, p.pos + 2)
  FROM b CROSS JOIN {_positions_sql()}
  WHERE p.pos <= 16 AND substr({o}, p.pos, 1) <> substr({o}, p.pos + 1, 1) AND {swap_ok}
  UNION ALL
  SELECT file_no, row_no, 'transposition', 17, substr({o}, 17, 2), {check} || substr({o}, 17, 1),
         substr({o}, 1, 16) || {check} || substr({o}, 17, 1)
  FROM b
  WHERE {check} <> 'X' AND {check} <> substr({o}, 17, 1) AND {_check_char(swap_last_sum)} = substr({o}, 17, 1)
)
SELECT s.file_no, s.row_no, s.feed_kind, s.original_id, s.name, s.name_key, s.event_date, s.hint_birth,
       s.hint_age, e.edit, e.position, e.from_text, e.to_text, e.variant, e.variant_birth
FROM (SELECT *, {birth} AS variant_birth FROM edits e) e
JOIN src s ON s.file_no = e.file_no AND s.row_no = e.row_no
WHERE e.variant_birth IS NOT NULL
  AND e.variant_birth >= {date_literal(EARLIEST_BIRTH)} AND e.variant_birth <= {date_literal(as_of)}
"""


def age_on_sql(birth: str, day: str) -> str:
    """Whole years from `birth` to `day` (both DATE)."""
    born = f"(year({birth}) * 10000 + month({birth}) * 100 + day({birth}))"
    on = f"(year({day}) * 10000 + month({day}) * 100 + day({day}))"
    return f"CAST(floor(({on} - {born}) / 10000) AS INTEGER)"


def candidates_sql(
    variants: str,
    *,
    recipients: str = "recipients",
    as_of: date,
    roster_birth: str | None = None,
    carry: Sequence[str] = (),
    d: Dialect = DUCKDB,
) -> str:
    """Each variant that is a recipient's ID, with the checks that confirm it.

    `carry` names more columns of the recipients to keep (such as a database key).

    `roster_birth` is an expression over the recipient `r` giving the roll's own 出生日期 as
    text (NULL or unreadable: not compared). Adds `person_no`, `recipient_name`, `name_ok`,
    `birth_ok` and `confirmed_by` (the facts that agreed, comma-separated).
    """
    roster_birth_date = parse_date_sql(roster_birth, d) if roster_birth else "CAST(NULL AS DATE)"
    age_day = f"coalesce(v.event_date, {date_literal(as_of)})"
    return f"""
SELECT v.*, r.person_no, r.name AS recipient_name,{"".join(f" r.{c}," for c in carry)}
       (v.name_key = r.name_key) AS name_ok,
       (rb IS NULL OR rb = v.variant_birth) AND (v.hint_birth IS NULL OR v.hint_birth = v.variant_birth)
         AND (v.hint_age IS NULL OR abs(v.hint_age - {age_on_sql("v.variant_birth", age_day)}) <= {AGE_TOLERANCE})
         AS birth_ok,
       'name,id_birth_date'
         || CASE WHEN rb IS NOT NULL THEN ',roster_birth_date' ELSE '' END
         || CASE WHEN v.hint_birth IS NOT NULL THEN ',feed_birth_date' ELSE '' END
         || CASE WHEN v.hint_age IS NOT NULL THEN ',feed_age' ELSE '' END AS confirmed_by
FROM ({variants}) v
JOIN (SELECT r.*, {roster_birth_date} AS rb FROM {recipients} r) r ON r.id_number = v.variant
"""


def suggestions_sql(candidates: str = "fuzzy_candidates", carry: Sequence[str] = ()) -> str:
    """The confirmed candidates, `suggested` when a row has exactly one, else `ambiguous`.

    `carry`: the extra recipient columns `candidates_sql` kept."""
    return f"""
SELECT CASE WHEN candidates = 1 THEN 'suggested' ELSE 'ambiguous' END AS status, *
FROM (
  SELECT file_no, row_no, feed_kind, event_date, original_id, name, variant AS suggested_id, person_no,
         recipient_name, edit, position, from_text, to_text, confirmed_by,{"".join(f" {c}," for c in carry)}
         count(*) OVER (PARTITION BY file_no, row_no) AS candidates
  FROM {candidates} WHERE name_ok AND birth_ok
) x
"""


def create_suggestions(
    con: Any,
    *,
    as_of: date,
    staged: str = "staged_feed",
    recipients: str = "recipients",
    hints: str | None = None,
    roster_birth: str | None = None,
) -> dict[str, int]:
    """Build the tables `fuzzy_candidates` and `fuzzy_suggestions` on a DuckDB connection and
    return the counts for summary.json."""
    broken = broken_rows_sql(staged=staged, hints=hints)
    con.execute(f"CREATE OR REPLACE TABLE fuzzy_broken AS {broken}")
    con.execute(
        f"CREATE OR REPLACE TABLE fuzzy_variants AS {variants_sql('SELECT * FROM fuzzy_broken', as_of=as_of)}"
    )
    con.execute(
        "CREATE OR REPLACE TABLE fuzzy_candidates AS "
        + candidates_sql(
            "SELECT * FROM fuzzy_variants", recipients=recipients, as_of=as_of, roster_birth=roster_birth
        )
    )
    con.execute(f"CREATE OR REPLACE TABLE fuzzy_suggestions AS {suggestions_sql()}")
    return summary_counts(con)


def summary_counts(con: Any) -> dict[str, int]:
    """Rows tried, variants passing the check digit, and rows suggested / ambiguous / unconfirmed
    (a recipient's ID among the variants, but name or birth date disagrees) / without any hit."""
    row = con.execute(
        """
        SELECT
          (SELECT count(*) FROM fuzzy_broken),
          (SELECT count(*) FROM fuzzy_variants),
          (SELECT count(DISTINCT (file_no, row_no)) FROM fuzzy_suggestions WHERE status = 'suggested'),
          (SELECT count(DISTINCT (file_no, row_no)) FROM fuzzy_suggestions WHERE status = 'ambiguous'),
          (SELECT count(DISTINCT (file_no, row_no)) FROM fuzzy_candidates c
           WHERE NOT EXISTS (SELECT 1 FROM fuzzy_suggestions s WHERE s.file_no = c.file_no AND s.row_no = c.row_no))
        """
    ).fetchall()[0]
    tried, variants, suggested, ambiguous, unconfirmed = (int(x) for x in row)
    return {
        "rows_tried": tried,
        "variants": variants,
        "suggested": suggested,
        "ambiguous": ambiguous,
        "unconfirmed": unconfirmed,
        "no_match": tried - suggested - ambiguous - unconfirmed,
    }


def report_sql(suggestions: str = "fuzzy_suggestions", files: str = "files") -> str:
    """`suggested_matches.csv`: one line per row and candidate, full IDs (a bureau file).

    `files` maps `file_no` to the file's name as in rejects.csv. The text of the agencies' files
    and the roster (file name, the feed's ID and name, 个人编号, the recipient's name) is
    formula-safe (`formula_safe_sql`, docs/security.md); the suggested ID is a valid ID.
    """
    safe = formula_safe_sql
    return f"""
SELECT s.status, {safe("f.file")} AS file, s.row_no AS row, s.feed_kind AS kind, s.event_date AS date,
       {safe("s.original_id")} AS original_id, {safe("s.name")} AS name, s.suggested_id,
       {safe("s.person_no")} AS person_no, {safe("s.recipient_name")} AS recipient_name, s.edit, s.position,
       s.from_text AS "from", s.to_text AS "to", s.confirmed_by, s.candidates
FROM {suggestions} s JOIN {files} f ON f.file_no = s.file_no
ORDER BY s.file_no, s.row_no, s.person_no
"""


def typo(id18: str, rng: random.Random) -> tuple[str, str, int]:
    """One keystroke error in a valid ID, as the tests and benchmarks/fuzzy_ids.py inject them:
    (broken ID, `substitution` or `transposition`, position). Half substitutions at a random
    position (a digit, or X at the 18th), half adjacent transpositions of two different
    characters (never moving an X among the digits)."""
    while True:
        if rng.random() < 0.5:
            i = rng.randrange(18)
            chars = [c for c in ("0123456789X" if i == 17 else "0123456789") if c != id18[i]]
            return id18[:i] + rng.choice(chars) + id18[i + 1 :], "substitution", i + 1
        i = rng.randrange(17)
        if id18[i] != id18[i + 1] and id18[i + 1] != "X":
            return id18[:i] + id18[i + 1] + id18[i] + id18[i + 2 :], "transposition", i + 1
