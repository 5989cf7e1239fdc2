"""The file contract: which columns each input carries and what each feed kind means.

This module is the single source of the column aliases (spec §3, §4) and of the evidence
classes of each feed kind. Readers use it to find headers; the SQL builders use it to
classify records; the oracle (`zige.rules`) uses the same constants.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

FieldType = Literal["id", "name", "date", "text", "amount"]


@dataclass(frozen=True)
class Column:
    """A logical column and the header labels it may carry, most specific first."""

    name: str
    aliases: tuple[str, ...]
    type: FieldType = "text"
    required: bool = False
    label: str = ""
    # Read every alias present, not only the first: the first is the column, the others are
    # `<name>_alt1`, `<name>_alt2` … in alias order, and the staging picks per row (联系电话 and
    # 手机号码 both in one roster: a landline in one must not hide the mobile in the other).
    every_alias: bool = False

    @property
    def zh(self) -> str:
        return self.label or self.aliases[0]


def alternate_name(name: str, k: int) -> str:
    """The raw-table name of the k-th (1-based) further alias column of an `every_alias` column."""
    return f"{name}_alt{k}"


ID_ALIASES = ("身份证号", "公民身份号码", "证件号码", "社会保障号码", "身份证号码", "id_number")
NAME_ALIASES = ("姓名", "name")


def id_column() -> Column:
    return Column("id_number", ID_ALIASES, "id", required=True, label="身份证号")


def name_column() -> Column:
    return Column("name", NAME_ALIASES, "name", required=True, label="姓名")


# Evidence classes. Ranks follow the table order of spec §3: they break ties between kinds
# that share the newest date (the first kind in the table wins).
@dataclass(frozen=True)
class FeedKind:
    code: str
    zh: str
    date: Column
    others: tuple[Column, ...] = ()
    # "alive": every record is alive evidence; "conditional": decided by its result column;
    # "none": never alive evidence (death-type, sentence).
    alive: Literal["alive", "conditional", "none"] = "alive"
    rank: int = 0
    custom: bool = False
    columns: tuple[Column, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", (id_column(), name_column(), self.date, *self.others))


def _date(name: str, *aliases: str) -> Column:
    return Column(name, aliases, "date", required=True, label=aliases[0])


def _other(name: str, *aliases: str, required: bool = False, type: FieldType = "text") -> Column:
    return Column(name, aliases, type, required=required, label=aliases[0])


BUILTIN_KINDS: tuple[FeedKind, ...] = (
    FeedKind(
        "rail",
        "铁路出行",
        _date("event_date", "乘车日期", "出行日期", "travel_date"),
        (
            _other("train_no", "车次", "train_no"),
            _other("from_station", "出发站", "from_station"),
            _other("to_station", "到达站", "to_station"),
        ),
        rank=1,
    ),
    FeedKind(
        "flight",
        "民航出行",
        _date("event_date", "航班日期", "出行日期", "travel_date"),
        (
            _other("flight_no", "航班号", "flight_no"),
            _other("origin", "出发地", "origin"),
            _other("destination", "目的地", "destination"),
        ),
        rank=2,
    ),
    FeedKind(
        "hospital",
        "住院/出院",
        _date("event_date", "出院日期", "入院日期", "discharge_date"),
        (_other("hospital", "医院名称", "hospital"),),
        rank=3,
    ),
    FeedKind(
        "checkup",
        "健康体检",
        _date("event_date", "体检日期", "checkup_date"),
        (_other("institution", "体检机构", "institution"),),
        rank=4,
    ),
    FeedKind(
        "border",
        "出入境",
        _date("event_date", "出入境日期", "crossing_date"),
        (_other("direction", "出入境类型", "direction"), _other("port", "口岸", "port")),
        rank=5,
    ),
    FeedKind(
        "app_auth",
        "手机APP刷脸认证",
        _date("event_date", "认证时间", "认证日期", "auth_time"),
        (_other("result", "认证结果", "result", required=True), _other("similarity", "相似度", "similarity")),
        alive="conditional",
        rank=6,
    ),
    FeedKind(
        "terminal_auth",
        "终端设备认证",
        _date("event_date", "认证时间", "认证日期", "auth_time"),
        (
            _other("method", "认证方式", "method"),
            _other("device_no", "设备编号", "device_no"),
            _other("result", "认证结果", "result", required=True),
        ),
        alive="conditional",
        rank=7,
    ),
    FeedKind(
        "unit_confirm",
        "单位/社会化管理确认",
        _date("event_date", "确认日期", "confirm_date"),
        (_other("method", "确认方式", "method"), _other("result", "确认结果", "result", required=True)),
        alive="conditional",
        rank=8,
    ),
    FeedKind("overseas_review", "境外领取资格审核", _date("event_date", "审核日期", "review_date"), rank=9),
    FeedKind("release", "刑满释放", _date("event_date", "释放日期", "release_date"), rank=10),
    FeedKind(
        "death",
        "死亡",
        _date("event_date", "死亡日期", "death_date"),
        (_other("source", "信息来源", "source"),),
        alive="none",
        rank=11,
    ),
    FeedKind(
        "cremation",
        "火化",
        _date("event_date", "火化日期", "cremation_date"),
        (_other("funeral_home", "殡仪馆", "funeral_home"),),
        alive="none",
        rank=12,
    ),
    FeedKind(
        "declared",
        "宣告死亡/失踪",
        _date("event_date", "宣告日期", "declared_date"),
        (_other("declared_type", "宣告类型", "declared_type", required=True),),
        alive="none",
        rank=13,
    ),
    FeedKind(
        "sentence",
        "刑事处罚",
        _date("event_date", "刑期起始日期", "判决日期", "start_date"),
        (
            _other("end_date", "刑期截止日期", "end_date", type="date"),
            _other("penalty", "刑罚种类", "penalty", required=True),
        ),
        alive="none",
        rank=14,
    ),
)

# Loss records (spec §2): the earliest decides `stop`; on the same day, this order.
LOSS_KINDS: tuple[str, ...] = ("death", "cremation", "declared_dead", "unit_confirmed_lost")

# Custodial penalties (spec §2.3a); anything containing a non-custodial marker never suspends.
# 死缓 and 无期 are the abbreviations courts and prisons commonly write for 死刑缓期执行 and 无期徒刑.
CUSTODIAL_PENALTIES: tuple[str, ...] = (
    "有期徒刑",
    "无期徒刑",
    "拘役",
    "死刑",
    "死刑缓期执行",
    "死缓",
    "无期",
)
NON_CUSTODIAL_MARKERS: tuple[str, ...] = ("缓刑", "管制", "监外执行")
# Phrases that hold a penalty's abbreviation and mean something else: 无期限 (indefinitely, as in
# 长期联系不上，无期限暂停发放) holds 无期. Removed before the penalties are looked for, so that a
# suspension "until further notice" is no life sentence (whose back pay would start only at a
# release that never comes).
PENALTY_LOOKALIKES: tuple[str, ...] = ("无期限",)


def without_lookalikes(text: str) -> str:
    """`text` without `PENALTY_LOOKALIKES` (the same as `zige.engine.sql.without_lookalikes_sql`)."""
    for phrase in PENALTY_LOOKALIKES:
        text = text.replace(phrase, "")
    return text


# Result texts (unit_confirm 确认结果, declared 宣告类型) are read by the terms they mention. A
# term preceded by a negation (未丧失资格, 非死亡) is not mentioned, and a text that revokes
# (撤销宣告死亡, 撤销死亡宣告, 撤销宣告失踪) mentions no loss, death or missing: read as a loss, such a
# record would stop a pension and recover money from a person the record says is not lost.
NEGATION_PREFIXES: tuple[str, ...] = (
    "未",
    "不",
    "非",
    "无",
    "没",
    "未被",
    "不被",
    "not ",
    "non-",
    "non",
    "in",
)
REVOCATION_MARKERS: tuple[str, ...] = ("撤销", "撤消", "撤回", "revoke", "revocation", "annul")
UNIT_LOST_TERMS: tuple[str, ...] = ("不具备", "丧失", "lost")
UNIT_UNREACHABLE_TERMS: tuple[str, ...] = ("无法联系", "联系不上", "失联", "unreachable")
UNIT_ELIGIBLE_TERMS: tuple[str, ...] = ("具备", "eligible")
DECLARED_DEAD_TERMS: tuple[str, ...] = ("死亡", "dead", "death")
DECLARED_MISSING_TERMS: tuple[str, ...] = ("失踪", "missing")


def negated_forms(term: str) -> tuple[str, ...]:
    """The texts that negate `term` (未丧失, 不丧失, …)."""
    return tuple(prefix + term for prefix in NEGATION_PREFIXES)


def mentions(text: str, terms: tuple[str, ...]) -> bool:
    """Whether the (lower-cased) text names one of `terms` without a negation right before it."""
    return any(t in text and not any(n in text for n in negated_forms(t)) for t in terms)


def revokes(text: str) -> bool:
    return any(m in text for m in REVOCATION_MARKERS)


def unit_result_of(text: str) -> Literal["eligible", "lost", "unreachable"] | None:
    """A unit's 确认结果 as `eligible` / `lost` / `unreachable`, None when unreadable (the same rule
    as `zige.engine.sql.unit_result_sql`): 丧失 or 不具备 is a loss unless negated (未丧失资格) or
    revoked (撤销…); 未丧失资格 alone is not 具备资格 either, and is unreadable."""
    value = text.replace("\u3000", " ").strip().lower()
    if mentions(value, UNIT_LOST_TERMS) and not revokes(value):
        return "lost"
    if mentions(value, UNIT_UNREACHABLE_TERMS):
        return "unreachable"
    if mentions(value, UNIT_ELIGIBLE_TERMS):
        return "eligible"
    return None


# 停发原因 that mean imprisonment (spec §8): back pay only from the month after release.
# The spec's own words count whatever else the text says.
IMPRISONMENT_REASON_MARKERS: tuple[str, ...] = ("服刑", "判刑", "刑事")
# [zige] Also a custodial penalty named as in a sentence record (判处有期徒刑二年, 拘役六个月, 死缓)
# or a word for being taken into prison — unless the text also has a non-custodial marker
# (有期徒刑一年缓刑二年, 判处管制): like a sentence record's 刑罚种类 (spec §2.3a), a suspended
# sentence is no imprisonment, and its back pay runs from 状态变更日期. Bare 判处 is not enough
# (判处罚金 is a fine), nor pre-trial 羁押/在押 (no sentence yet).
CUSTODY_REASON_WORDS: tuple[str, ...] = (*CUSTODIAL_PENALTIES, "收监", "入狱", "监禁")


def is_imprisonment_reason(status_reason: str) -> bool:
    """Whether a 暂停 recipient's 停发原因 means imprisonment (spec §8; docs/rules.md §5.3)."""
    if any(m in status_reason for m in IMPRISONMENT_REASON_MARKERS):
        return True
    words = without_lookalikes(status_reason)
    return any(w in words for w in CUSTODY_REASON_WORDS) and not any(
        m in words for m in NON_CUSTODIAL_MARKERS
    )


ROSTER_COLUMNS: tuple[Column, ...] = (
    Column("person_no", ("个人编号", "person_no"), required=True),
    name_column(),
    id_column(),
    Column("unit_no", ("单位编号", "unit_no"), required=True),
    Column("unit_name", ("单位名称", "unit_name")),
    Column("sex", ("性别", "sex", "gender")),
    Column("birth_date_text", ("出生日期", "birth_date")),
    Column("benefit_status", ("待遇状态", "benefit_status")),
    Column("status_since", ("状态变更日期", "status_since"), "date"),
    Column("status_reason", ("停发原因", "status_reason")),
    Column("monthly_amount", ("月养老金", "月养老金额", "monthly_amount"), "amount"),
    Column("phone", ("联系电话", "手机号码", "手机号", "phone"), every_alias=True),
    Column("address", ("现居住地", "居住地址", "address")),
    Column("retirement_date", ("退休日期", "retirement_date"), "date"),
    Column("last_certified_on", ("上次认证日期", "last_certified_on"), "date"),
    Column("lives_abroad", ("是否境外居住", "lives_abroad")),
    Column("has_social_card", ("是否办理社保卡", "has_social_card")),
    Column("health", ("健康状况", "health")),
    Column("retirement_category", ("离退休类别", "retirement_category")),
    Column("ethnicity", ("民族", "ethnicity")),
    Column("political_status", ("政治面貌", "political_status")),
    Column("former_employer", ("原工作单位", "former_employer")),
    Column("hukou", ("户口所在地", "hukou")),
    Column("residence_region", ("居住地行政区划", "residence_region")),
)


def builtin_kind_codes() -> tuple[str, ...]:
    return tuple(k.code for k in BUILTIN_KINDS)


_SEPARATORS = ("_", "-", ".")


def kind_for_filename(filename: str, kinds: tuple[FeedKind, ...]) -> FeedKind | None:
    """The longest kind code the file name starts with, followed by `_`, `-` or `.` (spec §3)."""
    lowered = filename.lower()
    best: FeedKind | None = None
    for kind in kinds:
        code = kind.code.lower()
        follows = lowered[len(code) : len(code) + 1]
        if (
            lowered.startswith(code)
            and follows in _SEPARATORS
            and (best is None or len(code) > len(best.code))
        ):
            best = kind
    return best


_BRACKETED = re.compile(r"[（(【\[].*?[）)】\]]")
_NOISE = re.compile(r"[\s\u3000*＊:：_\-]")


def normalise_header(label: object) -> str:
    """A header cell as compared with aliases: no spaces, no `*` markers, no bracketed notes.

    `月养老金（元）`, `* 身份证号`, `ID Number`, `id-number` all match their alias.
    """
    text = "" if label is None else str(label)
    text = _BRACKETED.sub("", text)
    text = _NOISE.sub("", text)
    return text.lower()


# The longest field a reject names (`zige.feeds.models.ImportReject.field`).
FIELD_MAX_LENGTH = 64


def field_as_written(column: Column, header: str, *, limit: int = FIELD_MAX_LENGTH) -> str:
    """The field a reject names for `column` in a file that heads it `header`: the column's own
    label (`Column.zh`) when the header is that label (spaces, `*` markers and bracketed notes
    aside), else the header as written with the label after it, 出行日期（乘车日期）, so that an
    officer finds the column in the file and sees what the system read it as. At most `limit`
    characters (a long header is cut, with …)."""
    label = column.zh
    written = header.strip()
    if not written or normalise_header(written) == normalise_header(label):
        return label
    room = limit - len(label) - 2
    if len(written) > room:
        written = written[: max(room - 1, 1)] + "…"
    return f"{written}（{label}）"


def fields_as_written(columns: Sequence[Column], headers: Mapping[str, str]) -> dict[str, str]:
    """Label -> field as written (`field_as_written`) for the columns of `columns` that a file
    heads with another alias; `headers` maps logical column names to the headers as found
    (`zige.engine.readers.RawTable.headers`). The labels of the other columns are not keys."""
    fields: dict[str, str] = {}
    for column in columns:
        if column.name in headers:
            shown = field_as_written(column, headers[column.name])
            if shown != column.zh:
                fields[column.zh] = shown
    return fields


def headers_by_label(columns: Sequence[Column], headers: Mapping[str, str]) -> dict[str, str]:
    """Label -> the header exactly as the file heads the column (公民身份号码, 月养老金额（元）), for
    the columns of `columns` the file has; `headers` maps logical column names to the headers as
    found (`zige.engine.readers.RawTable.headers`). A reject names its field by the label
    (`Column.zh`, `zige.engine.sql.ID_FIELD`); this is how the batch's rejects.csv names it too."""
    return {c.zh: headers[c.name] or c.zh for c in columns if c.name in headers}


def accepted_headers(column: Column, separator: str = "／") -> str:
    """A column's accepted headers, its label first: 乘车日期／出行日期／travel_date."""
    return separator.join(dict.fromkeys((column.zh, *column.aliases)))


class KindsConfigError(ValueError):
    """A custom-kinds configuration file that cannot be used; the message names the file."""


def load_custom_kinds(path: Path) -> tuple[FeedKind, ...]:
    """Custom feed kinds from a TOML file (spec §3: "a custom kind can be declared").

    ```toml
    [kinds.social_card_use]          # files named social_card_use_*.csv
    zh = "社保卡刷卡"
    date = ["刷卡日期", "use_date"]    # header aliases of the date column
    others = { terminal = ["终端编号", "terminal"] }
    alive = true                      # every record is alive evidence (default true)
    ```
    Custom kinds rank after the built-in ones when records share the newest day.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KindsConfigError(f"{path.name}: {exc}") from None
    builtin = set(builtin_kind_codes())
    kinds: list[FeedKind] = []
    for index, (code, spec) in enumerate(sorted(data.get("kinds", {}).items()), start=1):
        if code in builtin:
            raise KindsConfigError(f"{path.name}: kind {code!r} is built in and cannot be redefined")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", code):
            raise KindsConfigError(
                f"{path.name}: kind name {code!r} must be lower-case letters, digits and _"
            )
        dates = spec.get("date")
        if not dates or not isinstance(dates, list) or not all(isinstance(a, str) for a in dates):
            raise KindsConfigError(f"{path.name}: kind {code!r} needs date = [header aliases]")
        others = tuple(
            Column(name, tuple(aliases), label=aliases[0])
            for name, aliases in dict(spec.get("others", {})).items()
            if isinstance(aliases, list) and aliases
        )
        kinds.append(
            FeedKind(
                code,
                str(spec.get("zh", code)),
                _date("event_date", *dates),
                others,
                alive="alive" if spec.get("alive", True) else "none",
                rank=len(BUILTIN_KINDS) + index,
                custom=True,
            )
        )
    return tuple(kinds)
