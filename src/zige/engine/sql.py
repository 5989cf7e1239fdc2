"""SQL builders: small functions, each returning one SQL expression or query.

The certification is a chain of these queries (normalise -> deduplicate -> classify ->
per-person facts -> decision -> payment actions). Each builder is tested on its own, and the
whole chain against the pure-Python oracle in `zige.rules`.

Only a small, dialect-neutral subset is used (CASE, filters, GROUP BY with FILTER, window
`row_number`, `min_by`/`max_by`, joins) so the same chain can run on another SQL engine; the few
functions whose spelling differs between engines go through `Dialect`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from zige.engine.kinds import (
    CUSTODIAL_PENALTIES,
    CUSTODY_REASON_WORDS,
    DECLARED_DEAD_TERMS,
    DECLARED_MISSING_TERMS,
    IMPRISONMENT_REASON_MARKERS,
    LOSS_KINDS,
    NON_CUSTODIAL_MARKERS,
    PENALTY_LOOKALIKES,
    REVOCATION_MARKERS,
    UNIT_ELIGIBLE_TERMS,
    UNIT_LOST_TERMS,
    UNIT_UNREACHABLE_TERMS,
    FeedKind,
    alternate_name,
    negated_forms,
)
from zige.engine.labels import REJECT_REASON_ZH
from zige.ids import CHECK_CHARS, EARLIEST_BIRTH, WEIGHTS
from zige.spreadsheet import FORMULA_LEADING_BLANKS, FORMULA_STARTS


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def date_literal(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


@dataclass(frozen=True)
class Dialect:
    """Spellings that differ between SQL engines. DuckDB's are the defaults."""

    name: str = "duckdb"

    def days(self, expr: str) -> str:
        """Days since 1970-01-01 as an integer (for composite sort keys)."""
        return f"({expr} - DATE '1970-01-01')"

    def add_months(self, expr: str, months: int) -> str:
        """Calendar months, clamped at the month end."""
        return f"CAST({expr} + INTERVAL {months} MONTH AS DATE)"

    def regexp_replace_all(self, expr: str, pattern: str, replacement: str) -> str:
        return f"regexp_replace({expr}, {quote(pattern)}, {quote(replacement)}, 'g')"

    def matches(self, expr: str, pattern: str) -> str:
        return f"regexp_full_match({expr}, {quote(pattern)})"

    def try_date(self, expr: str, fmt: str) -> str:
        return f"CAST(try_strptime({expr}, {quote(fmt)}) AS DATE)"

    def try_decimal(self, expr: str) -> str:
        """A number read to four decimal places, half-up (`zige.rules.PENSION_PLACES`)."""
        return f"TRY_CAST({expr} AS DECIMAL(18, 4))"


DUCKDB = Dialect()

# ---------------------------------------------------------------------------------------------
# Normalising values (spec §5)
# ---------------------------------------------------------------------------------------------

_FULLWIDTH_FROM = "０１２３４５６７８９ｘＸ"
_FULLWIDTH_TO = "0123456789XX"


def clean_text_sql(col: str) -> str:
    """Trimmed text, NULL as empty; full-width spaces count as spaces."""
    return f"trim(replace(coalesce({col}, ''), '\u3000', ' '))"


def clean_id_sql(col: str, d: Dialect = DUCKDB) -> str:
    """ASCII digits, upper-case X, no spaces or Excel apostrophe."""
    translated = f"upper(translate(coalesce({col}, ''), {quote(_FULLWIDTH_FROM)}, {quote(_FULLWIDTH_TO)}))"
    return d.regexp_replace_all(translated, "[\\s\u3000\u00a0'‘’`]", "")


def check_digit_sql(first17: str) -> str:
    """The GB 11643 check character of a 17-digit string expression."""
    terms = " + ".join(f"CAST(substr({first17}, {i + 1}, 1) AS INTEGER) * {w}" for i, w in enumerate(WEIGHTS))
    return f"substr({quote(CHECK_CHARS)}, (({terms}) % 11) + 1, 1)"


def id18_sql(clean: str, d: Dialect = DUCKDB) -> str:
    """The 18-character form: a 15-digit number gets `19` and a check digit (spec §5)."""
    first17 = f"(substr({clean}, 1, 6) || '19' || substr({clean}, 7, 9))"
    return (
        f"CASE WHEN {d.matches(clean, '[0-9]{15}')} THEN {first17} || {check_digit_sql(first17)} "
        f"ELSE {clean} END"
    )


def id_reason_sql(clean: str, id18: str, as_of: date, d: Dialect = DUCKDB) -> str:
    """NULL for a usable ID, else the reject reason code (same codes as `zige.ids.normalise_id`)."""
    birth = d.try_date(f"substr({id18}, 7, 8)", "%Y%m%d")
    return (
        f"CASE WHEN {clean} = '' THEN 'missing_value' "
        f"WHEN NOT ({d.matches(clean, '[0-9]{15}')} OR {d.matches(clean, '[0-9]{17}[0-9X]')}) "
        f"THEN 'bad_id_format' "
        f"WHEN {check_digit_sql(f'substr({id18}, 1, 17)')} <> substr({id18}, 18, 1) THEN 'bad_id_checksum' "
        f"WHEN {birth} IS NULL OR {birth} < {date_literal(EARLIEST_BIRTH)} OR {birth} > {date_literal(as_of)} "
        f"THEN 'bad_id_birth_date' END"
    )


def parse_date_sql(col: str, d: Dialect = DUCKDB) -> str:
    """A DATE from any format of spec §5, or NULL.

    `2026-03-05`, `2026/3/5`, `20260305`, `2026年3月5日`, `2026.03.05`, any of those with a time
    part (after a space or `T`, after 日 even without one: `2026年3月5日10:30`, or run on in a
    compact stamp: `20260305103000`, `202603051030`), and an Excel serial day number (a date cell
    read without its format). The time part is not read.
    """
    text = clean_text_sql(col)
    day_part = f"split_part(split_part(replace({text}, 'T', ' '), ' ', 1), '日', 1)"
    unified = d.regexp_replace_all(day_part, "[年月./]", "-")
    compact = (
        f"CASE WHEN {d.matches(unified, '[0-9]{8}([0-9]{4}([0-9]{2})?)?')} "
        f"THEN substr({unified}, 1, 4) || '-' || substr({unified}, 5, 2) || '-' || substr({unified}, 7, 2) "
        f"ELSE {unified} END"
    )
    serial = f"CAST(DATE '1899-12-30' + CAST(floor(CAST({text} AS DOUBLE)) AS INTEGER) AS DATE)"
    return (
        f"CASE WHEN {d.matches(text, '[0-9]{5}([.][0-9]+)?')} THEN {serial} "
        f"WHEN {d.matches(compact, '[1-9][0-9]{3}-[0-9]{1,2}-[0-9]{1,2}')} THEN {d.try_date(compact, '%Y-%m-%d')} END"
    )


def parse_amount_sql(col: str, d: Dialect = DUCKDB) -> str:
    """Yuan as DECIMAL from `3,456.78`, `￥3456.78`, `3456.78元`; NULL if not a number.

    A comma is a thousands separator only where it is one (`1,234,567.89`): `2856,5`, `3,00`
    or `3.000,50` is not a number rather than 28565, 300 or 3.0005 yuan (a decimal comma or a
    slip would multiply the pension, and every amount computed from it)."""
    stripped = d.regexp_replace_all(clean_text_sql(col), "[\\s￥¥元]", "")
    digits = d.regexp_replace_all(stripped, "[,，]", "")
    number = d.matches(stripped, "[0-9]+([.][0-9]+)?|[0-9]{1,3}([,，][0-9]{3})+([.][0-9]+)?")
    return f"CASE WHEN {number} THEN {d.try_decimal(digits)} END"


def name_key_sql(col: str, d: Dialect = DUCKDB) -> str:
    """A name compared without spaces (spec §5)."""
    return d.regexp_replace_all(coalesce_sql(col), "[\\s\u3000]", "")


def coalesce_sql(col: str) -> str:
    return f"coalesce({col}, '')"


def contains_any_sql(expr: str, needles: Sequence[str]) -> str:
    return "(" + " OR ".join(f"contains({expr}, {quote(n)})" for n in needles) + ")"


def in_list_sql(expr: str, values: Sequence[str]) -> str:
    return f"{expr} IN ({', '.join(quote(v) for v in values)})"


PASS_VALUES = (
    "成功",
    "通过",
    "认证成功",
    "认证通过",
    "pass",
    "passed",
    "success",
    "ok",
    "y",
    "yes",
    "true",
    "1",
    "是",
)
FAIL_VALUES = (
    "失败", "不通过", "未通过", "认证失败", "fail", "failed", "failure", "n", "no", "false", "0", "否",
)  # fmt: skip


def auth_result_sql(col: str) -> str:
    """`pass` / `fail` for an app or terminal result; NULL for anything else."""
    value = f"lower({clean_text_sql(col)})"
    return (
        f"CASE WHEN {in_list_sql(value, PASS_VALUES)} THEN 'pass' "
        f"WHEN {in_list_sql(value, FAIL_VALUES)} THEN 'fail' END"
    )


def mentions_sql(expr: str, terms: Sequence[str]) -> str:
    """`expr` names one of `terms` without a negation right before it (`zige.engine.kinds.mentions`)."""
    return (
        "("
        + " OR ".join(
            f"(contains({expr}, {quote(t)}) AND NOT {contains_any_sql(expr, negated_forms(t))})"
            for t in terms
        )
        + ")"
    )


def unit_result_sql(col: str) -> str:
    """`eligible` / `lost` / `unreachable` for a unit's 确认结果; NULL for anything else.

    A negated term does not count (未丧失资格 is no loss) and a revocation (撤销…) is no loss:
    docs/rules.md §3; the Python twin is `zige.engine.kinds.unit_result_of`."""
    value = f"lower({clean_text_sql(col)})"
    return (
        f"CASE WHEN {mentions_sql(value, UNIT_LOST_TERMS)} AND NOT {contains_any_sql(value, REVOCATION_MARKERS)} "
        "THEN 'lost' "
        f"WHEN {mentions_sql(value, UNIT_UNREACHABLE_TERMS)} THEN 'unreachable' "
        f"WHEN {mentions_sql(value, UNIT_ELIGIBLE_TERMS)} THEN 'eligible' END"
    )


def declared_type_sql(col: str) -> str:
    """`dead` / `missing` for a 宣告类型; NULL for anything else.

    A revocation (撤销宣告死亡, 撤销死亡宣告, 撤销宣告失踪) and a negated term (未死亡) are neither: the
    row is unreadable (`bad_value`), never a death or a disappearance (docs/rules.md §3)."""
    value = f"lower({clean_text_sql(col)})"
    revoked = contains_any_sql(value, REVOCATION_MARKERS)
    return (
        f"CASE WHEN {revoked} THEN NULL "
        f"WHEN {mentions_sql(value, DECLARED_DEAD_TERMS)} THEN 'dead' "
        f"WHEN {mentions_sql(value, DECLARED_MISSING_TERMS)} THEN 'missing' END"
    )


def without_lookalikes_sql(expr: str) -> str:
    """`expr` without `PENALTY_LOOKALIKES` (无期限 is no 无期; `zige.engine.kinds.without_lookalikes`)."""
    for phrase in PENALTY_LOOKALIKES:
        expr = f"replace({expr}, {quote(phrase)}, '')"
    return expr


def penalty_sql(col: str) -> str:
    """`custodial` / `non_custodial` (spec §2.3a); NULL when empty."""
    value = clean_text_sql(col)
    words = without_lookalikes_sql(value)
    return (
        f"CASE WHEN {value} = '' THEN NULL "
        f"WHEN {contains_any_sql(value, NON_CUSTODIAL_MARKERS)} THEN 'non_custodial' "
        f"WHEN {contains_any_sql(words, CUSTODIAL_PENALTIES)} THEN 'custodial' "
        f"ELSE 'non_custodial' END"
    )


# 待遇状态 as rosters write it (spec §4: 正常/暂停/终止, empty = 正常; also with 发放 after it, as
# pension systems print it, and in English), trimmed and lower-cased, spaces inside ignored. Matched
# whole: read by what it contains, 暂停（待恢复正常） would be 正常 (and its stop would recover months
# the person was never paid) and 非正常 would be 正常 too. Anything else is `bad_value`.
BENEFIT_STATUS_TEXTS: dict[str, tuple[str, ...]] = {
    "normal": ("", "正常", "正常发放", "normal"),
    "suspended": ("暂停", "暂停发放", "suspended"),
    "terminated": ("终止", "终止发放", "terminated"),
}


def benefit_status_sql(col: str) -> str:
    """`normal` / `suspended` / `terminated` from 待遇状态 (`BENEFIT_STATUS_TEXTS`); NULL if unknown."""
    value = f"replace(lower({clean_text_sql(col)}), ' ', '')"
    cases = " ".join(
        f"WHEN {in_list_sql(value, texts)} THEN {quote(status)}"
        for status, texts in BENEFIT_STATUS_TEXTS.items()
    )
    return f"CASE {cases} END"


def yes_no_sql(col: str) -> str:
    value = f"lower({clean_text_sql(col)})"
    return (
        f"CASE WHEN {in_list_sql(value, ('是', '有', 'y', 'yes', 'true', '1', '已办理'))} THEN 'yes' "
        f"WHEN {in_list_sql(value, ('否', '无', 'n', 'no', 'false', '0', '未办理'))} THEN 'no' END"
    )


# ---------------------------------------------------------------------------------------------
# Staging: one file's raw text -> normalised rows with a reject reason (spec §5, §6)
# ---------------------------------------------------------------------------------------------


def _first_failure(checks: Sequence[tuple[str, str, str]]) -> tuple[str, str, str, str]:
    """The first failing check, in order, of (reason-or-NULL expression, field label, value).

    Returns the check columns (`chk_<i>`, each evaluated once) and the reason, field and value
    expressions that read them.
    """
    columns = ", ".join(f"{cond} AS chk_{i}" for i, (cond, _, _) in enumerate(checks))
    reason = "coalesce(" + ", ".join(f"chk_{i}" for i in range(len(checks))) + ")"
    field = (
        "CASE "
        + " ".join(f"WHEN chk_{i} IS NOT NULL THEN {quote(f)}" for i, (_, f, _) in enumerate(checks))
        + " END"
    )
    value = (
        "CASE "
        + " ".join(f"WHEN chk_{i} IS NOT NULL THEN {v}" for i, (_, _, v) in enumerate(checks))
        + " END"
    )
    return columns, reason, field, value


def _required(col: str) -> str:
    return f"CASE WHEN {clean_text_sql(col)} = '' THEN 'missing_value' END"


def _date_check(col: str, parsed: str, required: bool, not_before: str | None = None) -> str:
    """`missing_value` (when `required`) or `bad_date` for a date column; with `not_before` (a
    YYYYMMDD integer expression) a parsed day before it is `bad_date` too."""
    missing = f"WHEN {clean_text_sql(col)} = '' THEN {'NULL' if not required else quote('missing_value')} "
    early = ""
    if not_before is not None:
        ymd = f"(year({parsed}) * 10000 + month({parsed}) * 100 + day({parsed}))"
        early = f" WHEN {ymd} < {not_before} THEN 'bad_date'"
    return f"CASE {missing}WHEN {parsed} IS NULL THEN 'bad_date'{early} END"


# The column of each kind that carries its result or class (`sub`); other kinds have none.
_SUB_COLUMN = {
    "app_auth": "auth_result",
    "terminal_auth": "auth_result",
    "unit_confirm": "unit_result",
    "declared": "declared_class",
    "sentence": "penalty_class",
}


def kind_sub_column(kind: FeedKind) -> str | None:
    """The derived column that gives a kind's `sub` (its result or class), or None."""
    return _SUB_COLUMN.get(kind.code)


def _detail_and_sub(kind: FeedKind, col: Callable[[str], str]) -> tuple[str, str | None]:
    """The `detail` expression (the kind's other columns joined by '|', dates as parsed in
    `c_<name>`) and the name of the column that gives `sub`, shared by both staging paths."""
    parts = [
        f"coalesce(CAST(c_{c.name} AS VARCHAR), '')" if c.type == "date" else clean_text_sql(col(c.name))
        for c in kind.others
    ]
    return (" || '|' || ".join(parts) if parts else "''"), kind_sub_column(kind)


def _kind_columns(kind: FeedKind, col: Callable[[str], str], d: Dialect) -> list[str]:
    """The derived columns only some kinds have: auth and unit results, declaration and penalty
    classes, a sentence's end date (empty strings for the others)."""
    return [
        f"{auth_result_sql(col('result'))} AS auth_result"
        if kind.code in ("app_auth", "terminal_auth")
        else "",
        f"{unit_result_sql(col('result'))} AS unit_result" if kind.code == "unit_confirm" else "",
        f"{declared_type_sql(col('declared_type'))} AS declared_class" if kind.code == "declared" else "",
        f"{penalty_sql(col('penalty'))} AS penalty_class" if kind.code == "sentence" else "",
        f"{parse_date_sql(col('end_date'), d)} AS c_end_date" if kind.code == "sentence" else "",
    ]


# The field a reject of the ID names (zige.engine.native's own rejects name it too).
ID_FIELD = "身份证号"


def field_as_written_sql(field: str, fields: Mapping[str, str]) -> str:
    """`field` (a reject's field: a column label, `ID_FIELD` …) as the file heads the column
    (`zige.engine.kinds.fields_as_written`: label -> 出行日期（乘车日期）); one CASE over the
    column, the same for every row of a file."""
    if not fields:
        return field
    cases = " ".join(f"WHEN {quote(label)} THEN {quote(shown)}" for label, shown in fields.items())
    return f"CASE {field} {cases} ELSE {field} END"


def formula_safe_sql(text: str) -> str:
    """`zige.spreadsheet.formula_safe` in SQL, for a text column of a CSV people open: a value
    whose first character after leading spaces (`FORMULA_LEADING_BLANKS`: ASCII and full-width)
    is `=`, `+`, `-`, `@`, a tab, a carriage return or one of the full-width `＝ ＋ － ＠`
    (`FORMULA_STARTS`) gets a leading `'`, so that Excel or WPS shows it instead of running it as
    a formula (CSV injection); others, and NULL, as they are. One CASE over the column."""
    starts = ", ".join(quote(c) for c in FORMULA_STARTS)
    first = Dialect().regexp_replace_all(text, f"^[{FORMULA_LEADING_BLANKS}]+", "")
    return f"CASE WHEN substr({first}, 1, 1) IN ({starts}) THEN '''' || {text} ELSE {text} END"


def reject_reason_zh_sql(reason: str) -> str:
    """A reject reason code in Chinese (`zige.engine.labels.REJECT_REASON_ZH`: bad_date ->
    日期无法识别), as the import's page and its rejects download say it; a code without words as
    it is. One CASE over the column."""
    cases = " ".join(f"WHEN {quote(code)} THEN {quote(text)}" for code, text in REJECT_REASON_ZH.items())
    return f"CASE {reason} {cases} ELSE {reason} END"


def _feed_checks(
    kind: FeedKind, col: Callable[[str], str], sub: str | None, id_reason: str, born: str
) -> list[tuple[str, str, str]]:
    """(reason expression, field, raw value) of every check of a feed row, in the order the first
    failure is reported: ID, name, event date (`born`: the birth date of a valid ID, YYYYMMDD),
    then the kind's own columns."""
    checks: list[tuple[str, str, str]] = [
        (id_reason, ID_FIELD, coalesce_sql(col("id_number"))),
        (_required(col("name")), "姓名", coalesce_sql(col("name"))),
        # Not before the birth date in the ID (`born`): a death in 1926 of someone born in 1950 is
        # a typo, not evidence — read as one it would stop the pension from 1926 (rules §4).
        (
            _date_check(col("event_date"), "ev_date", True, born),
            kind.date.zh,
            coalesce_sql(col("event_date")),
        ),
    ]
    for c in kind.others:
        if c.name == "end_date":
            checks.append(
                (_date_check(col("end_date"), "c_end_date", False), c.zh, coalesce_sql(col(c.name)))
            )
        elif c.required:
            checks.append((_required(col(c.name)), c.zh, coalesce_sql(col(c.name))))
            if c.name in ("result", "declared_type"):
                checks.append(
                    (f"CASE WHEN {sub} IS NULL THEN 'bad_value' END", c.zh, coalesce_sql(col(c.name)))
                )
    return checks


def stage_feed_sql(
    *,
    kind: FeedKind,
    source: str,
    present: Sequence[str],
    file_no: int | str,
    as_of: date,
    d: Dialect = DUCKDB,
) -> str:
    """Normalise one feed file's raw table `source` into the `staged_feed` shape.

    `present` lists the logical columns the file has; absent optional ones read as empty.
    `file_no` is the file's number, or the name of a column of `source` holding it (several
    files of one kind staged at once).
    """

    def col(name: str) -> str:
        return f'"{name}"' if name in present else "CAST(NULL AS VARCHAR)"

    detail, sub = _detail_and_sub(kind, col)

    derived = [
        f"{id18_sql('id_clean', d)} AS id18",
        f"{parse_date_sql(col('event_date'), d)} AS ev_date",
        *_kind_columns(kind, col, d),
    ]
    check_columns, reason, field, value = _first_failure(
        _feed_checks(kind, col, sub, id_reason_sql("id_clean", "id18", as_of, d), _BORN_OF_ID18)
    )
    derived_columns = ", ".join(x for x in derived if x)
    return f"""
SELECT {file_no} AS file_no, _row AS row_no, {quote(kind.code)} AS feed_kind,
       id18 AS id_number, {clean_text_sql(col("name"))} AS name, {name_key_sql(col("name"), d)} AS name_key,
       ev_date AS event_date, {"c_end_date" if kind.code == "sentence" else "CAST(NULL AS DATE)"} AS end_date,
       {sub if sub else "CAST(NULL AS VARCHAR)"} AS sub, {detail} AS detail,
       {reason} AS reject_reason, {field} AS reject_field, {value} AS reject_value
FROM (
  SELECT *, {check_columns}
  FROM (
    SELECT *, {derived_columns}
    FROM (SELECT *, {clean_id_sql(col("id_number"), d)} AS id_clean FROM {source}) s0
  ) s1
) s2
"""


STAGED_FEED_COLUMNS = """
file_no INTEGER, row_no BIGINT, feed_kind VARCHAR, id_number VARCHAR, name VARCHAR, name_key VARCHAR,
event_date DATE, end_date DATE, sub VARCHAR, detail VARCHAR,
reject_reason VARCHAR, reject_field VARCHAR, reject_value VARCHAR
"""


def mobile_sql(col: str, d: Dialect = DUCKDB) -> str:
    """An 11-digit mainland mobile number or NULL (same rule as `zige.ids.normalise_mobile`)."""
    digits = d.regexp_replace_all(
        f"translate(coalesce({col}, ''), {quote(_FULLWIDTH_FROM)}, {quote(_FULLWIDTH_TO)})",
        "[\\s\u3000()（）-]",
        "",
    )
    unprefixed = (
        f"CASE WHEN {d.matches(digits, '[+]86[0-9]{11}')} THEN substr({digits}, 4) "
        f"WHEN {d.matches(digits, '0086[0-9]{11}')} THEN substr({digits}, 5) "
        f"WHEN {d.matches(digits, '86[0-9]{11}')} THEN substr({digits}, 3) ELSE {digits} END"
    )
    return f"CASE WHEN {d.matches(unprefixed, '1[3-9][0-9]{9}')} THEN {unprefixed} END"


ROSTER_DATE_LABELS = {
    "status_since": "状态变更日期",
    "retirement_date": "退休日期",
    "last_certified_on": "上次认证日期",
}
ROSTER_TEXT_COLUMNS = (
    "unit_name", "sex", "birth_date_text", "status_reason", "phone", "address", "health",
    "retirement_category", "ethnicity", "political_status", "former_employer", "hukou",
    "residence_region",
)  # fmt: skip


def stage_roster_sql(
    *, source: str, present: Sequence[str], file_no: int, as_of: date, d: Dialect = DUCKDB
) -> str:
    """Normalise the roster's raw table `source` into the `staged_roster` shape (spec §4)."""

    def col(name: str) -> str:
        return f'"{name}"' if name in present else "CAST(NULL AS VARCHAR)"

    checks: list[tuple[str, str, str]] = [
        (_required(col("person_no")), "个人编号", coalesce_sql(col("person_no"))),
        (_required(col("name")), "姓名", coalesce_sql(col("name"))),
        (id_reason_sql("id_clean", "id18", as_of, d), ID_FIELD, coalesce_sql(col("id_number"))),
        (_required(col("unit_no")), "单位编号", coalesce_sql(col("unit_no"))),
        (
            "CASE WHEN p_benefit_status IS NULL THEN 'bad_value' END",
            "待遇状态",
            coalesce_sql(col("benefit_status")),
        ),
        (
            f"CASE WHEN {clean_text_sql(col('monthly_amount'))} <> '' AND p_monthly_amount IS NULL "
            "THEN 'bad_amount' END",
            "月养老金",
            coalesce_sql(col("monthly_amount")),
        ),
    ]
    for name, label in ROSTER_DATE_LABELS.items():
        checks.append((_date_check(col(name), f"p_{name}", False), label, coalesce_sql(col(name))))
    check_columns, reason, field, value = _first_failure(checks)
    # 联系电话, 手机号码, 手机号 …: every one present, in alias order (`Column.every_alias`). The
    # mobile is the first valid mobile among them, row by row (spec §2: channel sms when the
    # roster has one); the phone text is the first non-empty one.
    phones = [
        "phone",
        *(alternate_name("phone", k) for k in range(1, 10) if alternate_name("phone", k) in present),
    ]
    mobile = "coalesce(" + ", ".join(mobile_sql(col(c), d) for c in phones) + ")"
    phone_text = (
        "CASE "
        + " ".join(f"WHEN {clean_text_sql(col(c))} <> '' THEN {clean_text_sql(col(c))}" for c in phones)
        + " ELSE '' END"
    )
    texts = ", ".join(
        f"{phone_text if c == 'phone' else clean_text_sql(col(c))} AS {c}" for c in ROSTER_TEXT_COLUMNS
    )
    dates = ", ".join(f"{parse_date_sql(col(c), d)} AS p_{c}" for c in ROSTER_DATE_LABELS)
    return f"""
SELECT {file_no} AS file_no, _row AS row_no, {clean_text_sql(col("person_no"))} AS person_no,
       {clean_text_sql(col("name"))} AS name, {name_key_sql(col("name"), d)} AS name_key,
       id18 AS id_number, {clean_text_sql(col("unit_no"))} AS unit_no,
       p_benefit_status AS benefit_status, p_monthly_amount AS monthly_amount, {texts},
       {mobile} AS mobile,
       p_status_since AS status_since, p_retirement_date AS retirement_date,
       p_last_certified_on AS last_certified_on,
       {yes_no_sql(col("lives_abroad"))} AS lives_abroad, {yes_no_sql(col("has_social_card"))} AS has_social_card,
       {reason} AS reject_reason, {field} AS reject_field, {value} AS reject_value
FROM (
  SELECT *, {check_columns}
  FROM (
    SELECT *, {id18_sql("id_clean", d)} AS id18, {benefit_status_sql(col("benefit_status"))} AS p_benefit_status,
           {parse_amount_sql(col("monthly_amount"), d)} AS p_monthly_amount, {dates}
    FROM (SELECT *, {clean_id_sql(col("id_number"), d)} AS id_clean FROM {source}) s0
  ) s1
) s2
"""


# ---------------------------------------------------------------------------------------------
# Deduplication and roster conflicts (spec §5 last bullet, §6)
# ---------------------------------------------------------------------------------------------

ROSTER_COMPARED = (
    "person_no", "name_key", "id_number", "unit_no", "unit_name", "sex", "birth_date_text", "benefit_status",
    "status_since", "status_reason", "monthly_amount", "coalesce(mobile, phone)", "address", "retirement_date",
    "last_certified_on", "lives_abroad", "has_social_card", "health", "retirement_category", "ethnicity",
    "political_status", "former_employer", "hukou", "residence_region",
)  # fmt: skip


def roster_outcome_sql() -> str:
    """Each valid roster row marked with a conflict reason, `duplicate` (an exact repeat of a row in
    no conflict), or used; and
    each row rejected for its own values that also shares a 个人编号 or 身份证号 with a differing
    row, marked with the conflict reason (spec §6: all rows sharing one are rejected, 重复领取 is
    itself a finding; the conflict is the reason reported, before the row's own problem).

    Conflicts are looked for among all rows, rejected ones included: a row rejected for a bad
    月养老金 still names its person and ID. A rejected row takes part by its 个人编号 when that is
    not empty, and by its 身份证号 when that is well formed with a valid check digit. Rejected rows
    are never `duplicate` or `used` (they are not in this table unless in conflict). The conflict
    is tested first: an exact repeat of a row in conflict is rejected with it, as a repeated
    rejected row is, so that the group is found whole (a repeat counted as a duplicate would leave
    one of the person's rows out of the rejects)."""
    partition = ", ".join(ROSTER_COMPARED)
    id_ok = (
        f"({DUCKDB.matches('id_number', '[0-9]{17}[0-9X]')} "
        f"AND {check_digit_sql('substr(id_number, 1, 17)')} = substr(id_number, 18, 1))"
    )
    return f"""
WITH copies AS (
  SELECT file_no, row_no, reject_reason,
         CASE WHEN person_no <> '' THEN person_no END AS pn_key,
         CASE WHEN reject_reason IS NULL OR {id_ok} THEN id_number END AS id_key,
         row_number() OVER (
           PARTITION BY {partition}, reject_reason, reject_field, reject_value ORDER BY file_no, row_no
         ) AS copy_no
  FROM staged_roster
), same_pn AS (
  SELECT pn_key, count(*) AS n FROM copies WHERE copy_no = 1 AND pn_key IS NOT NULL GROUP BY pn_key
), same_id AS (
  SELECT id_key, count(*) AS n FROM copies WHERE copy_no = 1 AND id_key IS NOT NULL GROUP BY id_key
), outcomes AS (
  SELECT c.file_no, c.row_no,
         CASE WHEN p.n > 1 THEN 'duplicate_person_no'
              WHEN i.n > 1 THEN 'duplicate_id_number'
              WHEN c.reject_reason IS NULL AND c.copy_no > 1 THEN 'duplicate'
              WHEN c.reject_reason IS NULL THEN 'used' END AS outcome
  FROM copies c LEFT JOIN same_pn p ON c.pn_key = p.pn_key LEFT JOIN same_id i ON c.id_key = i.id_key
)
SELECT file_no, row_no, outcome FROM outcomes WHERE outcome IS NOT NULL
"""


def roster_rejects_sql() -> str:
    """Rejected roster rows (file_no, row_no, field, value, reason): the rows that share a
    个人编号 or 身份证号 with a differing row (spec §6), and the other rows with unusable values.
    One line per row: the conflict is reported before the row's own problem."""
    return """
SELECT s.file_no, s.row_no, s.reject_field AS field, s.reject_value AS value, s.reject_reason AS reason
FROM staged_roster s LEFT JOIN roster_outcome o USING (file_no, row_no)
WHERE s.reject_reason IS NOT NULL AND o.outcome IS NULL
UNION ALL
SELECT s.file_no, s.row_no,
  CASE WHEN o.outcome = 'duplicate_person_no' THEN '个人编号' ELSE '身份证号' END,
  CASE WHEN o.outcome = 'duplicate_person_no' THEN s.person_no ELSE s.id_number END,
  o.outcome
FROM staged_roster s JOIN roster_outcome o USING (file_no, row_no)
WHERE o.outcome IN ('duplicate_person_no', 'duplicate_id_number')
"""


def feed_duplicates_sql() -> str:
    """Valid feed rows numbered within (kind, ID, day, other values); copy_no > 1 is a duplicate."""
    return """
SELECT file_no, row_no,
       row_number() OVER (
         PARTITION BY feed_kind, id_number, event_date, name_key, detail ORDER BY file_no, row_no
       ) AS copy_no
FROM staged_feed WHERE reject_reason IS NULL
"""


# ---------------------------------------------------------------------------------------------
# Classification of evidence (spec §2, §3)
# ---------------------------------------------------------------------------------------------

ALIVE_RANK = {
    "rail": 1, "flight": 2, "hospital": 3, "checkup": 4, "border": 5, "app_auth": 6, "terminal_auth": 7,
    "unit_confirm": 8, "overseas_review": 9, "release": 10,
}  # fmt: skip
LOSS_RANK = {kind: i + 1 for i, kind in enumerate(LOSS_KINDS)}


def record_kind_sql() -> str:
    """The kind a record is reported as: feed kind, with declared and unit losses split out."""
    return (
        "CASE WHEN feed_kind = 'declared' THEN 'declared_' || sub "
        "WHEN feed_kind = 'unit_confirm' AND sub = 'lost' THEN 'unit_confirmed_lost' "
        "ELSE feed_kind END"
    )


def classify_sql(*, alive_ranks: dict[str, int], alive_always: Sequence[str]) -> str:
    """Evidence classes of each used record (columns added to the evidence table).

    `alive_ranks` gives every alive-capable kind its tie-break rank; `alive_always` lists the
    kinds whose every record is alive evidence (the others need a pass / 具备资格 result).
    """
    alive = (
        f"({in_list_sql('feed_kind', alive_always)} "
        "OR (feed_kind IN ('app_auth', 'terminal_auth') AND sub = 'pass') "
        "OR (feed_kind = 'unit_confirm' AND sub = 'eligible'))"
    )
    rank_case = (
        "CASE " + " ".join(f"WHEN feed_kind = {quote(k)} THEN {r}" for k, r in alive_ranks.items()) + " END"
    )
    loss_case = (
        "CASE WHEN feed_kind = 'death' THEN 1 WHEN feed_kind = 'cremation' THEN 2 "
        "WHEN feed_kind = 'declared' AND sub = 'dead' THEN 3 "
        "WHEN feed_kind = 'unit_confirm' AND sub = 'lost' THEN 4 END"
    )
    return f"""
{alive} AS is_alive,
CASE WHEN {alive} THEN {rank_case} END AS alive_rank,
{loss_case} AS loss_rank,
(feed_kind = 'declared' AND sub = 'missing') AS is_missing,
(feed_kind = 'unit_confirm' AND sub = 'unreachable') AS is_unreachable,
(feed_kind = 'sentence' AND sub = 'custodial') AS is_custodial,
(feed_kind = 'release') AS is_release,
{record_kind_sql()} AS record_kind
"""


# ---------------------------------------------------------------------------------------------
# Decisions (spec §2)
# ---------------------------------------------------------------------------------------------


# Composite keys order records by day, then by a kind rank (< 100).
def _key(d: Dialect, day: str, rank: str) -> str:
    return f"({d.days(day)} * 100 + {rank})"


def scoped_evidence_sql(as_of: date) -> str:
    """Evidence of recipients dated on or before the as-of date: nothing later is evidence."""
    return (
        "SELECT e.* FROM evidence e SEMI JOIN recipients r ON e.id_number = r.id_number "
        f"WHERE e.event_date <= {date_literal(as_of)}"
    )


def person_facts_sql(d: Dialect = DUCKDB) -> str:
    """Per person: the earliest loss, the newest alive evidence, the earliest declaration of missing."""
    loss_key = _key(d, "event_date", "loss_rank")
    alive_newest_key = _key(d, "event_date", "(100 - alive_rank)")
    return f"""
SELECT id_number,
  min(event_date) FILTER (WHERE loss_rank IS NOT NULL) AS loss_date,
  min_by(record_kind, {loss_key}) FILTER (WHERE loss_rank IS NOT NULL) AS loss_kind,
  max(event_date) FILTER (WHERE is_alive) AS alive_date,
  max_by(record_kind, {alive_newest_key}) FILTER (WHERE is_alive) AS alive_kind,
  min(event_date) FILTER (WHERE is_missing) AS missing_date,
  max(event_date) FILTER (WHERE is_release) AS release_date
FROM scoped GROUP BY id_number
"""


def after_facts_sql(d: Dialect = DUCKDB) -> str:
    """Per person: the earliest alive record after the loss and after the declaration of missing,
    and the earliest 无法联系 confirmation with no alive evidence after it."""
    alive_key = _key(d, "e.event_date", "e.alive_rank")
    return f"""
SELECT e.id_number,
  min(e.event_date) FILTER (WHERE e.is_alive AND e.event_date > f.loss_date) AS alive_after_loss_date,
  min_by(e.record_kind, {alive_key}) FILTER (WHERE e.is_alive AND e.event_date > f.loss_date)
    AS alive_after_loss_kind,
  min(e.event_date) FILTER (WHERE e.is_alive AND e.event_date > f.missing_date) AS alive_after_missing_date,
  min_by(e.record_kind, {alive_key}) FILTER (WHERE e.is_alive AND e.event_date > f.missing_date)
    AS alive_after_missing_kind,
  min(e.event_date) FILTER (
    WHERE e.is_unreachable AND (f.alive_date IS NULL OR e.event_date >= f.alive_date)
  ) AS unreachable_date
FROM scoped e JOIN facts f ON e.id_number = f.id_number
GROUP BY e.id_number
"""


def imprisonment_sql(as_of: date) -> str:
    """Per person: the earliest start of a custodial sentence still being served on the as-of date
    (no release dated from its start to D, planned end empty or not before D)."""
    return f"""
SELECT s.id_number, min(s.event_date) AS imprisoned_since
FROM scoped s
WHERE s.is_custodial AND (s.end_date IS NULL OR s.end_date >= {date_literal(as_of)})
  AND NOT EXISTS (
    SELECT 1 FROM scoped r
    WHERE r.is_release AND r.id_number = s.id_number AND r.event_date >= s.event_date
  )
GROUP BY s.id_number
"""


def decisions_sql(as_of: date, d: Dialect = DUCKDB) -> str:
    """One row per recipient: status, reason, deciding record, C, due_on, reminder (spec §2).

    Expects the CTEs/tables `recipients`, `facts`, `after_facts`, `imprisonment`.
    """
    day = date_literal(as_of)
    cert_from_evidence = "(f.alive_date IS NOT NULL AND (r.last_cert IS NULL OR f.alive_date >= r.last_cert))"
    certified_on = (
        f"CASE WHEN {cert_from_evidence} THEN f.alive_date "
        "WHEN r.last_cert IS NOT NULL THEN r.last_cert ELSE r.retired END"
    )
    cert_kind = (
        f"CASE WHEN {cert_from_evidence} THEN f.alive_kind "
        "WHEN r.last_cert IS NOT NULL THEN 'last_certified' "
        "WHEN r.retired IS NOT NULL THEN 'retirement' END"
    )
    return f"""
WITH base AS (
  SELECT r.*,
    f.loss_date, f.loss_kind, f.missing_date, f.release_date,
    a.alive_after_loss_date, a.alive_after_loss_kind, a.alive_after_missing_date, a.alive_after_missing_kind,
    a.unreachable_date, i.imprisoned_since,
    {certified_on} AS certified_on, {cert_kind} AS cert_kind
  FROM (
    SELECT *,
      CASE WHEN last_certified_on <= {day} THEN last_certified_on END AS last_cert,
      CASE WHEN retirement_date <= {day} THEN retirement_date END AS retired
    FROM recipients
  ) r
  LEFT JOIN facts f ON r.id_number = f.id_number
  LEFT JOIN after_facts a ON r.id_number = a.id_number
  LEFT JOIN imprisonment i ON r.id_number = i.id_number
), dated AS (
  SELECT *, {d.add_months("certified_on", 12)} AS due_on FROM base
), decided AS (
  SELECT *,
    CASE
      WHEN loss_date IS NOT NULL AND alive_after_loss_date IS NOT NULL THEN 'review'
      WHEN missing_date IS NOT NULL AND alive_after_missing_date IS NOT NULL THEN 'review'
      WHEN loss_date IS NOT NULL THEN 'stop'
      WHEN imprisoned_since IS NOT NULL OR missing_date IS NOT NULL OR unreachable_date IS NOT NULL
        THEN 'suspend'
      WHEN due_on > {day} THEN 'eligible'
      ELSE 'pending'
    END AS status
  FROM dated
)
SELECT person_no, id_number, name, unit_no, status,
  CASE
    WHEN status = 'review' AND loss_date IS NOT NULL AND alive_after_loss_date IS NOT NULL
      THEN CASE WHEN loss_kind = 'unit_confirmed_lost' THEN 'alive_after_lost' ELSE 'alive_after_death' END
    WHEN status = 'review' THEN 'alive_after_missing'
    WHEN status = 'stop' THEN loss_kind
    WHEN status = 'suspend' AND imprisoned_since IS NOT NULL THEN 'imprisoned'
    WHEN status = 'suspend' AND missing_date IS NOT NULL THEN 'declared_missing'
    WHEN status = 'suspend' THEN 'unreachable'
    WHEN status = 'eligible' THEN cert_kind
    ELSE 'no_evidence'
  END AS reason,
  CASE
    WHEN status = 'review' AND loss_date IS NOT NULL AND alive_after_loss_date IS NOT NULL
      THEN alive_after_loss_kind
    WHEN status = 'review' THEN alive_after_missing_kind
    WHEN status = 'stop' THEN loss_kind
    WHEN status = 'suspend' AND imprisoned_since IS NOT NULL THEN 'sentence'
    WHEN status = 'suspend' AND missing_date IS NOT NULL THEN 'declared_missing'
    WHEN status = 'suspend' THEN 'unit_confirm'
    ELSE cert_kind
  END AS evidence_kind,
  CASE
    WHEN status = 'review' AND loss_date IS NOT NULL AND alive_after_loss_date IS NOT NULL
      THEN alive_after_loss_date
    WHEN status = 'review' THEN alive_after_missing_date
    WHEN status = 'stop' THEN loss_date
    WHEN status = 'suspend' AND imprisoned_since IS NOT NULL THEN imprisoned_since
    WHEN status = 'suspend' AND missing_date IS NOT NULL THEN missing_date
    WHEN status = 'suspend' THEN unreachable_date
    ELSE certified_on
  END AS evidence_date,
  certified_on, due_on,
  CASE WHEN status = 'eligible' AND due_on <= {d.add_months(day, 3)} THEN 1 ELSE 0 END AS remind,
  CASE WHEN status = 'eligible' AND due_on <= {d.add_months(day, 3)}
    THEN CASE WHEN mobile IS NOT NULL THEN 'sms' ELSE 'unit' END END AS channel,
  benefit_status, status_since, status_reason, monthly_amount, mobile, release_date, loss_date
FROM decided
"""


# ---------------------------------------------------------------------------------------------
# Payment actions (spec §8)
# ---------------------------------------------------------------------------------------------


def month_index_sql(expr: str) -> str:
    return f"(year({expr}) * 12 + month({expr}) - 1)"


def imprisonment_reason_sql(col: str) -> str:
    """A 停发原因 that means imprisonment (`zige.engine.kinds.is_imprisonment_reason`)."""
    value = f"coalesce({col}, '')"
    words = without_lookalikes_sql(value)
    return (
        f"({contains_any_sql(value, IMPRISONMENT_REASON_MARKERS)} "
        f"OR ({contains_any_sql(words, CUSTODY_REASON_WORDS)} AND NOT {contains_any_sql(words, NON_CUSTODIAL_MARKERS)}))"
    )


def actions_sql(as_of: date) -> str:
    """The payment change each decision implies, with months and decimal amount (spec §8).

    Expects the table `decisions` (output of `decisions_sql`).
    """
    day = date_literal(as_of)
    m_d = month_index_sql(day)
    since = f"CASE WHEN status_since <= {day} THEN status_since END"
    return f"""
WITH candidates AS (
  SELECT person_no, monthly_amount,
    CASE
      WHEN status = 'stop' THEN 'stop'
      WHEN status = 'suspend' AND benefit_status = 'normal' THEN 'suspend'
      WHEN status = 'eligible' AND benefit_status = 'suspended' THEN 'resume'
    END AS action,
    CASE
      WHEN status = 'stop' THEN {month_index_sql("loss_date")} + 1
      WHEN status = 'suspend' THEN {month_index_sql("evidence_date")} + 1
      ELSE {m_d} + 1
    END AS effective,
    CASE
      WHEN status = 'stop' AND benefit_status = 'normal' THEN {m_d} - {month_index_sql("loss_date")}
      WHEN status = 'stop' THEN
        coalesce({month_index_sql(since)} - 1 - {month_index_sql("loss_date")}, 0)
      WHEN status = 'suspend' THEN {m_d} - {month_index_sql("evidence_date")}
      WHEN {since} IS NULL THEN 0
      WHEN {imprisonment_reason_sql("status_reason")} THEN
        CASE WHEN release_date IS NULL THEN 0
             ELSE least({m_d} - {month_index_sql("release_date")}, {m_d} - {month_index_sql(since)} + 1) END
      ELSE {m_d} - {month_index_sql(since)} + 1
    END AS raw_months
  FROM decisions
)
SELECT person_no, action,
  lpad(CAST(effective // 12 AS VARCHAR), 4, '0') || '-' || lpad(CAST(effective % 12 + 1 AS VARCHAR), 2, '0')
    AS effective_month,
  greatest(raw_months, 0) AS months,
  CAST(round(greatest(raw_months, 0) * coalesce(monthly_amount, 0), 2) AS DECIMAL(18, 2)) AS amount
FROM candidates WHERE action IS NOT NULL
"""


# ---------------------------------------------------------------------------------------------
# The glue between the steps, shared by every engine (DuckDB in `pipeline`, Spark in `spark`)
# ---------------------------------------------------------------------------------------------


def used_recipients_sql() -> str:
    """The recipients decided: used roster rows in 正常 or 暂停 (spec §4, §6).

    Expects `staged_roster` and `roster_outcome`."""
    return (
        "SELECT s.* FROM staged_roster s JOIN roster_outcome o USING (file_no, row_no) "
        "WHERE o.outcome = 'used' AND s.benefit_status IN ('normal', 'suspended')"
    )


def alive_ranks(kinds: Sequence[FeedKind]) -> tuple[dict[str, int], list[str]]:
    """The tie-break rank of every alive-capable kind, and the kinds whose every record is alive.

    Custom kinds rank after the built-in ones."""
    ranks = dict(ALIVE_RANK)
    for kind in kinds:
        if kind.alive == "alive" and kind.code not in ranks:
            ranks[kind.code] = 20 + kind.rank
    return ranks, [k.code for k in kinds if k.alive == "alive"]


def evidence_sql(kinds: Sequence[FeedKind]) -> str:
    """The used evidence (first copy of each record) with its classes.

    Expects `staged_feed` and `feed_copies` (output of `feed_duplicates_sql`)."""
    ranks, always = alive_ranks(kinds)
    return (
        f"SELECT s.*, {classify_sql(alive_ranks=ranks, alive_always=always)} "
        "FROM staged_feed s JOIN feed_copies c USING (file_no, row_no) WHERE c.copy_no = 1"
    )


def roster_counts_sql() -> str:
    """Roster rows by outcome (`rejected` for unusable rows), and the used 终止 rows (out of scope)."""
    return """
SELECT coalesce(o.outcome, 'rejected') AS outcome, count(*) AS n,
       count(*) FILTER (WHERE o.outcome = 'used' AND s.benefit_status = 'terminated') AS out_of_scope
FROM staged_roster s LEFT JOIN roster_outcome o USING (file_no, row_no)
GROUP BY coalesce(o.outcome, 'rejected')
"""


def feed_counts_sql(as_of: date) -> str:
    """Per feed file: rejected, duplicate, used, unmatched and after-as-of rows (spec §7 summary)."""
    return f"""
SELECT s.file_no,
  count(*) FILTER (WHERE s.reject_reason IS NOT NULL) AS rejected,
  count(*) FILTER (WHERE c.copy_no > 1) AS duplicates,
  count(*) FILTER (WHERE c.copy_no = 1) AS used,
  count(*) FILTER (WHERE c.copy_no = 1 AND r.id_number IS NULL) AS unmatched,
  count(*) FILTER (WHERE c.copy_no = 1 AND s.event_date > {date_literal(as_of)}) AS after_as_of
FROM staged_feed s
LEFT JOIN feed_copies c USING (file_no, row_no)
LEFT JOIN (SELECT DISTINCT id_number FROM recipients) r ON s.id_number = r.id_number
GROUP BY s.file_no
"""


# ---------------------------------------------------------------------------------------------
# The evidence store's integer key, and the fast normalisation of large feeds (issue 6)
# ---------------------------------------------------------------------------------------------

# The ID as a 64-bit key (`zige.ids.store_key`): its first 17 digits (the 18th, the check
# character, follows from them) with birth date and sequence first and the region last, so that
# the store's files, sorted by key, are clustered by birth date (a roll's key range prunes the
# younger people's row groups). As 9 + 8 digits each part is exact in a DOUBLE too.
_KEY_SPLIT = 100_000_000
_REGION = 1_000_000  # the region: the key's last six digits
_AFTER_REGION = 100_000_000_000  # the ID's digits 7-17: birth date and sequence


def key_of_digits_sql(first17: str) -> str:
    """The store key of the integer value of an ID's first 17 digits."""
    return f"(({first17}) % {_AFTER_REGION} * {_REGION} + ({first17}) // {_AFTER_REGION})"


def id_key_sql(expr: str) -> str:
    """The store key (BIGINT) of a normalised, valid 18-character ID number."""
    return f"CAST(substr({expr}, 7, 11) || substr({expr}, 1, 6) AS BIGINT)"


def _check_fold_sql(hi9: str, lo8: str, div: str) -> str:
    """The GB 11643 weighted digit sum (mod 11 equivalent) of 17 digits given as two integers:
    the first 9 digits `hi9` and the last 8 `lo8`.

    A digit is q_j - 10 q_{j+1} with q_j = x div 10^j, so the weighted sum is Σ_j c_j q_j with
    c_j = w_j + w_{j-1} (mod 11, as -10 ≡ 1): one division per digit instead of two. `div` is
    `int` (`//`, dialect-neutral) or `float` (`floor(x / 10^j)`, exact for x < 10^9, and much
    faster in DuckDB than a 64-bit integer division)."""
    terms = []
    for value, weights in ((hi9, WEIGHTS[:9]), (lo8, WEIGHTS[9:])):
        by_power = list(reversed(weights))  # weight of the digit at 10^j
        for j, weight in enumerate(by_power):
            factor = (weight + (by_power[j - 1] if j else 0)) % 11
            if not factor:
                continue
            if j == 0:
                quotient = value
            elif div == "int":
                quotient = f"({value} // {10**j})"
            else:
                quotient = f"floor({value} / {10**j}.0)"
            terms.append(f"{quotient} * {factor}")
    total = " + ".join(terms)
    return f"(CAST({total} AS BIGINT) % 11)" if div == "float" else f"(({total}) % 11)"


def check_char_parts_sql(hi9: str, lo8: str, *, div: str = "int") -> str:
    """The check character of the 17 digits `hi9` (first 9) and `lo8` (last 8), as integers."""
    return f"substr({quote(CHECK_CHARS)}, CAST({_check_fold_sql(hi9, lo8, div)} AS INTEGER) + 1, 1)"


def id_number_from_key_sql(expr: str) -> str:
    """The 18-character ID number (with its GB 11643 check character) of a store key
    (`zige.ids.id_from_store_key`)."""
    region = f"({expr} % {_REGION})"
    rest = f"({expr} // {_REGION})"  # the ID's digits 7-17
    hi = f"({region} * 1000 + {rest} // {_KEY_SPLIT})"  # digits 1-9
    lo = f"({rest} % {_KEY_SPLIT})"  # digits 10-17
    text = f"lpad(CAST({region} AS VARCHAR), 6, '0') || lpad(CAST({rest} AS VARCHAR), 11, '0')"
    return f"({text} || {check_char_parts_sql(hi, lo)})"


def birth_ok_sql(birth: str, as_of: date) -> str:
    """Whether the integer YYYYMMDD `birth` is a real day from 1890-01-01 to the as-of date
    (the same rule as `zige.ids.normalise_id`), in integer arithmetic."""
    y, m, d = f"({birth} // 10000)", f"({birth} // 100 % 100)", f"({birth} % 100)"
    leap = f"({y} % 4 = 0 AND ({y} % 100 <> 0 OR {y} % 400 = 0))"
    last_day = (
        f"CASE WHEN {m} IN (4, 6, 9, 11) THEN 30 WHEN {m} = 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END "
        "ELSE 31 END"
    )
    low, high = int(EARLIEST_BIRTH.strftime("%Y%m%d")), int(as_of.strftime("%Y%m%d"))
    return f"({birth} BETWEEN {low} AND {high} AND {m} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {last_day})"


_ID18_PATTERN = "[0-9]{17}[0-9X]"
# The birth date (YYYYMMDD, an integer) of a plain ID split into `id_hi` and `id_lo`
# (`fast_id_sql`), and of any other one from its 18-character form `id18` (NULL if not digits).
_PLAIN_BIRTH = "(id_hi % 1000 * 100000 + CAST(floor(id_lo / 1000.0) AS BIGINT))"
_BORN_OF_ID18 = "TRY_CAST(substr(id18, 7, 8) AS BIGINT)"


def fast_id_sql(col: str, as_of: date, d: Dialect = DUCKDB) -> tuple[str, str, str]:
    """(key, reason, derived columns) of a raw ID column, for `stage_feed_keyed_sql`.

    Most IDs in a feed are already clean: 18 characters, digits and an upper-case X. For those
    the key, the check character and the birth date are integer arithmetic on two parts of the
    number (no Python, no per-digit strings); every other value takes the general path
    (`clean_id_sql`, `id18_sql`, `id_reason_sql`), so both give exactly what `zige.ids` gives.
    The derived columns `id_plain`, `id_hi`, `id_lo`, `id_clean`, `id18` are read by the key and
    reason expressions; `derived` ends in an open `FROM (SELECT *, …` that the caller closes with
    `FROM source) alias`, so that the pattern is matched once per row."""
    plain = d.matches(f"coalesce({col}, '')", _ID18_PATTERN)
    derived = (
        f"id_plain, CASE WHEN id_plain THEN CAST(substr({col}, 1, 9) AS BIGINT) END AS id_hi, "
        f"CASE WHEN id_plain THEN CAST(substr({col}, 10, 8) AS BIGINT) END AS id_lo, "
        f"CASE WHEN NOT id_plain THEN {clean_id_sql(col, d)} END AS id_clean "
        f"FROM (SELECT *, {plain} AS id_plain"
    )
    birth = _PLAIN_BIRTH
    fast_reason = (
        f"CASE WHEN {check_char_parts_sql('id_hi', 'id_lo', div='float')} <> substr({col}, 18, 1) "
        f"THEN 'bad_id_checksum' WHEN NOT {birth_ok_sql(birth, as_of)} THEN 'bad_id_birth_date' END"
    )
    reason = f"CASE WHEN id_plain THEN {fast_reason} ELSE {id_reason_sql('id_clean', 'id18', as_of, d)} END"
    fast_key = f"(id_hi % 1000 * {_KEY_SPLIT} + id_lo) * {_REGION} + id_hi // 1000"
    key = f"CASE WHEN id_plain THEN {fast_key} ELSE {key_of_digits_sql('TRY_CAST(substr(id18, 1, 17) AS BIGINT)')} END"
    return key, reason, derived


def fast_date_sql(col: str, d: Dialect = DUCKDB) -> str:
    """`parse_date_sql` with a shortcut for the common `2026-03-05` (same result, tested)."""
    iso = d.matches(f"coalesce({col}, '')", "[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}")
    return f"CASE WHEN {iso} THEN TRY_CAST({col} AS DATE) ELSE {parse_date_sql(col, d)} END"


def stage_feed_keyed_sql(
    *,
    kind: FeedKind,
    source: str,
    present: Sequence[str],
    as_of: date,
    row: str = "_row",
    keep: Sequence[str] = (),
    d: Dialect = DUCKDB,
) -> str:
    """`stage_feed_sql` for the evidence store: the same checks, rejects, dates, sub and detail,
    with the ID as the store key `id_key` (BIGINT) instead of text and no `name` (only
    `name_key`), computed by the fast expressions of `fast_id_sql` and `fast_date_sql`.

    Columns: row_no, id_key, name_key, event_date, end_date, sub, detail, reject_reason,
    reject_field, reject_value, then the `keep` columns of `source`. `row` is the row number
    expression over `source`."""

    def col(name: str) -> str:
        return f'"{name}"' if name in present else "CAST(NULL AS VARCHAR)"

    detail, sub = _detail_and_sub(kind, col)
    key, id_reason, id_derived = fast_id_sql(col("id_number"), as_of, d)
    born = f"CASE WHEN id_plain THEN {_PLAIN_BIRTH} ELSE {_BORN_OF_ID18} END"
    derived = [
        f"CASE WHEN NOT id_plain THEN {id18_sql('id_clean', d)} END AS id18",
        f"{fast_date_sql(col('event_date'), d)} AS ev_date",
        *_kind_columns(kind, col, d),
    ]
    check_columns, reason, field, value = _first_failure(_feed_checks(kind, col, sub, id_reason, born))
    derived_columns = ", ".join(x for x in derived if x)
    kept = "".join(f", {k}" for k in keep)
    return f"""
SELECT row_no, CASE WHEN {reason} IS NULL THEN {key} END AS id_key, {name_key_sql(col("name"), d)} AS name_key,
       ev_date AS event_date, {"c_end_date" if kind.code == "sentence" else "CAST(NULL AS DATE)"} AS end_date,
       {sub if sub else "CAST(NULL AS VARCHAR)"} AS sub, {detail} AS detail,
       {reason} AS reject_reason, {field} AS reject_field, {value} AS reject_value{kept}
FROM (
  SELECT *, {check_columns}
  FROM (
    SELECT *, {derived_columns}
    FROM (SELECT *, {row} AS row_no, {id_derived} FROM {source}) s0a) s0
  ) s1
) s2
"""
