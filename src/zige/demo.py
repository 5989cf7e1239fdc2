"""A synthetic province: a pension roster and a year and a bit of feeds from other agencies.

`generate_province` writes what a provincial social-insurance bureau (Shanxi by default) would
hold for one batch certification run (`zige certify`): the roster of pension recipients
(待遇领取人员名册, GB18030 CSV) and the files the other agencies sent (railway, civil aviation,
hospitals, health checks, border control, the 民生山西 app, self-service terminals, the units,
consulates, prisons, the police, civil affairs, health commissions, funeral homes and courts).

Everything is synthetic, and deterministic for a given seed: `random.Random(seed)` drives all
choices and `as_of` is the only date used, the clock never is.

What it contains (approximate shares of the recipients; rare cases have a minimum of one or two):

* evidence: ~79% alive evidence within the last 9 months, ~5% newest evidence 9-12 months old
  (reminders), ~2.5% certified in the roster only, ~0.4% recent retirees with nothing else,
  ~8% nothing usable (pending: no records, only failed app checks, or records older than 12 months);
* loss: ~1.5% deaths (death and cremation, death only, cremation only; 公安/民政/卫健, some
  reported twice), deaths followed by a trip or an app pass, units confirming 丧失资格 (some
  followed by alive evidence), 宣告死亡, 宣告失踪 (some followed by alive evidence);
* custody: custodial sentences (有期徒刑, 拘役, 无期徒刑), some released, some lapsed without
  a release record, and non-custodial ones (缓刑, 管制, 暂予监外执行, 罚金);
* units reporting 无法联系 (some followed by alive evidence), people living abroad;
* 暂停 recipients (~3%) who came back, are still missing, are in or out of prison, or died;
  终止 rows (~1% of the roster) that are out of scope;
* exact boundary dates (evidence exactly 12 and 9 months old, on the as-of day, the day after,
  ties between kinds and with the roster date) for one person each;
* travellers, patients and others who draw no pension here, and records dated after `as_of`.

The files carry the quirks of spec §5 and §6; see `generate_province`.
"""

from __future__ import annotations

import bisect
import calendar
import csv
import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from operator import itemgetter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import xlsxwriter

from zige.calendar import add_months
from zige.engine.kinds import BUILTIN_KINDS, kind_for_filename
from zige.ids import CHECK_CHARS, check_digit
from zige.regions import OTHER_PROVINCES, PROVINCES, REGIONS, SHANXI, SHANXI_ABOLISHED, SUCCESSORS, Region

__all__ = ["DemoProvince", "generate_province"]

# An event: (day ordinal, person index, *kind-specific payload).
Event = tuple[Any, ...]

XLSX_MAX_ROWS = 20_000  # a workbook holds at most this many data rows; more go to `_part2.xlsx` ...
MIN_RECIPIENTS = 100  # room for one person of each scenario and each roster quirk


@dataclass(frozen=True)
class DemoProvince:
    roster: Path  # the roster file
    feeds: Path  # directory of feed files
    recipients: int  # rows of the roster that are 正常/暂停
    files: tuple[Path, ...]


# ---------------------------------------------------------------------------------------------
# Names and places


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _weighted(text: str) -> tuple[tuple[str, int], ...]:
    """`"王:90 李:85"` -> (("王", 90), ("李", 85))."""
    return tuple((word, int(weight)) for word, weight in (item.rsplit(":", 1) for item in text.split()))


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((a, b) for a, b in (item.split(":") for item in text.split()))


_SURNAMES = _weighted(
    "王:90 李:85 张:80 刘:70 陈:35 杨:40 赵:40 郭:35 武:25 贾:20 田:18 梁:18 任:16 郝:16 闫:15 薛:13 黄:14 "
    "吴:14 周:14 徐:12 孙:14 马:14 朱:10 胡:12 高:16 史:10 乔:10 牛:9 申:8 段:9 范:9 侯:9 冯:10 韩:12 曹:9 "
    "程:8 秦:8 苏:7 宋:9 吕:7 温:6 卫:5 阎:5 白:8 康:6 常:7 霍:5 杜:7 许:7 邢:5 石:7 崔:6 董:8 袁:5 姚:5 "
    "雷:5 欧阳:1 司马:1 上官:1"
)
_MALE_1 = "军伟强明刚勇斌林平华建国忠福贵海涛杰东文武亮成祥生庆喜旺宝山堂锁虎"
_MALE_2 = _words(
    "建国 建华 建军 国庆 国强 国华 卫东 卫国 志强 志刚 志明 振华 爱国 援朝 跃进 和平 解放 胜利 保国 永红 "
    "红旗 向东 建平 建新 长生 福生 德胜 金山 玉山 保平 海平 拴柱 存良 润生 三虎 满仓 文斌 俊峰 晋生 太平 "
    "有才 守信 来福 天喜 学军 小平 金锁 根旺"
)
_FEMALE_1 = "芳英兰珍华霞红梅琴娟玲萍燕丽敏静秀凤莲菊"
_FEMALE_2 = _words(
    "秀英 桂英 玉兰 淑芬 凤英 秀兰 桂兰 玉梅 秀珍 淑珍 翠花 爱萍 红梅 丽华 玉珍 美玲 金花 秀梅 桂芳 月娥 "
    "彩霞 春梅 冬梅 改花 巧云 润梅 俊英 拴梅 变英 爱莲 晋芳 素琴 秀云 玉莲 海英 新华"
)
# Rare characters (生僻字): outside GBK, encodable in GB18030 only.
_RARE_NAMES = _words("刘䶮 王䶮 张䲣")
# Minority names, (men's, women's).
_MONGOL_NAMES = (_words("巴特尔 苏和 额尔敦 那仁满都拉 朝鲁"), _words("乌云其木格 其其格 斯琴高娃 萨仁"))
_UYGHUR_NAMES = (_words("艾买提·吐尔逊 买买提·依明"), _words("阿依古丽·买买提 热依拉·艾买提"))

_ETHNIC = _weighted("汉族:9900 回族:50 满族:20 蒙古族:15 朝鲜族:5 土家族:3 壮族:3 维吾尔族:2 苗族:2")
_POLITICAL = _weighted(
    "群众:620 中共党员:330 民盟盟员:5 九三学社社员:4 民革党员:3 民建会员:3 无党派人士:10 共青团员:1"
)
_HEALTH = _weighted("健康:45 良好:10 一般:25 慢性病:12 较差:5 半失能:2 失能:1")
_STREETS = _words(
    "解放路 迎泽大街 建设路 人民路 新华街 长风街 府西街 南内环街 平阳路 体育路 和平路 胜利街 文化路 五一路 "
    "府东街 滨河路 朝阳街 青年路 兴华街 东风路"
)
_ESTATES = _words("小区 家属院 新村 花园 苑 宿舍")
_PROVINCE_ABBR: dict[str, str] = dict(
    zip(PROVINCES, "京津冀晋蒙辽吉黑沪苏浙皖闽赣鲁豫鄂湘粤桂琼渝川贵云藏陕甘青宁新", strict=True)
)

# City flavour of Shanxi: railway stations, the nearest airport, the telephone area code.
_SHANXI_CITY: dict[str, tuple[tuple[str, ...], str, str]] = {
    "太原市": (("太原南", "太原", "太原东"), "太原", "0351"),
    "大同市": (("大同南", "大同"), "大同", "0352"),
    "阳泉市": (("阳泉北", "阳泉"), "太原", "0353"),
    "晋中市": (("晋中", "榆次", "平遥古城"), "太原", "0354"),
    "长治市": (("长治东", "长治"), "长治", "0355"),
    "晋城市": (("晋城东", "晋城"), "太原", "0356"),
    "临汾市": (("临汾西", "临汾"), "临汾", "0357"),
    "吕梁市": (("吕梁", "汾阳"), "吕梁", "0358"),
    "运城市": (("运城北", "运城"), "运城", "0359"),
    "忻州市": (("忻州西", "忻州"), "忻州", "0350"),
    "朔州市": (("朔州东", "朔州"), "大同", "0349"),
}
_FAR_STATIONS = _words(
    "北京西 北京 石家庄 郑州东 西安北 上海虹桥 天津西 呼和浩特东 济南西 成都东 广州南 武汉 杭州东 南京南 "
    "兰州西 银川 包头 沈阳北 深圳北 重庆北 大连北"
)
_FAR_AIRPORTS = _words(
    "北京 上海 广州 深圳 三亚 海口 昆明 成都 厦门 杭州 西安 大连 青岛 哈尔滨 乌鲁木齐 重庆 南京 西双版纳 桂林 长沙"
)
_AIRLINES = _words("CA MU CZ HU 3U GS ZH MF FM 8L SC JD")
_SHANXI_HOSPITALS = _words(
    "山西医科大学第一医院 山西医科大学第二医院 山西省人民医院 山西白求恩医院 山西省肿瘤医院 山西省中医院 "
    "太原市中心医院 太原钢铁（集团）有限公司总医院 山西省心血管病医院 太原市第二人民医院"
)
_CHECKUP_CHAINS = _words("美年大健康 爱康国宾 慈铭体检")
_PORTS = _words(
    "北京首都国际机场 上海浦东国际机场 太原武宿国际机场 广州白云国际机场 深圳罗湖口岸 珠海拱北口岸 "
    "二连浩特口岸 昆明长水国际机场 北京大兴国际机场"
)
_TRIP_COUNTRIES = _words("日本 韩国 泰国 新加坡 马来西亚 俄罗斯 蒙古 中国香港 中国澳门 越南")
_ABROAD = _pairs(
    "美国:中国驻纽约总领事馆 美国:中国驻洛杉矶总领事馆 加拿大:中国驻多伦多总领事馆 澳大利亚:中国驻悉尼总领事馆 "
    "新西兰:中国驻新西兰大使馆 日本:中国驻日本大使馆 英国:中国驻英国大使馆 德国:中国驻法兰克福总领事馆 "
    "新加坡:中国驻新加坡大使馆"
)
_CONFIRM_METHODS = _words("上门核实 电话确认 视频确认 现场确认 社区走访")
_PRISONS = _words(
    "山西省太原第一监狱 山西省太原第二监狱 山西省太原第三监狱 山西省晋中监狱 山西省女子监狱 山西省祁县监狱 "
    "山西省阳泉监狱 太原市看守所"
)
_CRIMES = _words(
    "危险驾驶罪 交通肇事罪 诈骗罪 受贿罪 贪污罪 故意伤害罪 盗窃罪 非法吸收公众存款罪 组织、领导传销活动罪 "
    "失火罪 非法占用农用地罪 滥用职权罪"
)
_NON_CUSTODIAL = _words("有期徒刑缓刑 拘役缓刑 管制 暂予监外执行 罚金")
_COMMUNITY_MARKERS = ("缓刑", "管制", "监外执行", "罚金")  # penalties served outside prison (社区矫正)
_CN_NUM = "一二三四五六七八九十"
# Telephone area codes of the cities outside Shanxi in zige.regions, by the first four digits.
_AREA_CODES = dict(
    _pairs(
        "1101:010 1201:022 1301:0311 1304:0310 1501:0471 1502:0472 2101:024 3101:021 3201:025 3701:0531 "
        "4101:0371 4201:027 5101:028 6101:029 6201:0931"
    )
)

# Units (参保单位)
_SHANXI_ENTERPRISES = _pairs(
    "太原钢铁（集团）有限公司:140109 太原重型机械集团有限公司:140109 中国铁路太原局集团有限公司:140106 "
    "国网山西省电力公司:140105 山西焦煤集团有限责任公司:140109 西山煤电（集团）有限责任公司:140109 "
    "大同煤矿集团有限责任公司:140213 阳泉煤业（集团）有限责任公司:140302 潞安矿业（集团）有限责任公司:140403 "
    "晋城无烟煤矿业集团有限责任公司:140502 山西杏花村汾酒集团有限责任公司:141182 "
    "太原市公共交通控股（集团）有限公司:140106 山西建设投资集团有限公司:140107 "
    "中国邮政集团有限公司山西省分公司:140106 山西大学:140105 太原理工大学:140109 中北大学:140108 "
    "山西省人民医院:140106 山西医科大学第一医院:140106"
)
_PROVINCIAL_DEPTS = _words(
    "教育厅 财政厅 民政厅 交通运输厅 水利厅 统计局 地质勘查局 林业和草原局 农业农村厅 气象局 档案馆 图书馆 "
    "自然资源厅 商务厅 文化和旅游厅"
)
_COUNTY_BUREAUS = _words(
    "教育局 财政局 农业农村局 水利局 自然资源局 住房和城乡建设局 交通运输局 民政局 人力资源和社会保障局 "
    "市场监督管理局 林业局 供销合作社联合社 卫生健康局 人民法院"
)
_FACTORIES = _words(
    "第一热电厂 化肥厂 纺织厂 机床厂 水泥厂 钢铁厂 玻璃厂 面粉厂 焦化厂 毛纺厂 棉纺厂 陶瓷厂 食品公司 "
    "百货大楼 五金交电公司 汽车运输公司 建筑工程公司 煤矿机械厂"
)
_TOWNS = _words(
    "东关 西关 南关 北关 城关 新城 石桥 古城 河东 河西 龙泉 杨家庄 王家庄 李家庄 柳林 三交 东社 西营"
)
_BRANDS = _words("华 鑫 泰 通 达 兴 晋 汾 龙 恒 盛 宏 安 顺 丰 利 金 新")
_TRADES = _words("能源 机械 建材 化工 物资 商贸 煤业 运输 建筑 食品 电力 物流 钢铁 纺织 医药")
_TERMINATED_REASONS = _weighted("死亡:70 转出:15 一次性清算:5 其他:10")


def _cn_number(n: int) -> str:
    """1..99 in Chinese numerals: 3 -> 三, 12 -> 十二, 25 -> 二十五."""
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else "十" if tens == 1 else _CN_NUM[tens - 1] + "十"
    return head + (_CN_NUM[ones - 1] if ones else "")


def _short(city: str) -> str:
    """太原市 -> 太原, 忻州地区 -> 忻州."""
    for suffix in ("地区", "市"):
        if city.endswith(suffix) and len(city) > len(suffix) + 1:
            return city[: -len(suffix)]
    return city


def _place(region: Region) -> str:
    """The city name, or the municipality's for 北京市东城区."""
    return region.city or region.province


def _cum(weights: Sequence[tuple[str, int]]) -> tuple[tuple[str, ...], list[int]]:
    return tuple(v for v, _ in weights), list(itertools.accumulate(w for _, w in weights))


# ---------------------------------------------------------------------------------------------
# Dates and IDs as the files write them


def _ymd(day: int) -> date:
    return date.fromordinal(day)


_DATE_STYLES: dict[str, Callable[[date], str]] = {
    "iso": lambda d: d.isoformat(),
    "slash": lambda d: f"{d.year}/{d.month}/{d.day}",
    "compact": lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}",
    "cn": lambda d: f"{d.year}年{d.month}月{d.day}日",
    "dot": lambda d: f"{d.year:04d}.{d.month:02d}.{d.day:02d}",
    "datetime": lambda d: d.isoformat(),  # a time part is appended per row
    "slash_time": lambda d: f"{d.year}/{d.month}/{d.day}",  # likewise, without seconds
}
_IMPOSSIBLE_DAYS = ((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31))


class _DateText:
    """Formats day ordinals in each style, cached (the same few hundred days recur millions of times)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], str] = {}

    def __call__(self, style: str, day: int) -> str:
        key = (style, day)
        text = self._cache.get(key)
        if text is None:
            text = _DATE_STYLES[style](_ymd(day))
            self._cache[key] = text
        return text

    @staticmethod
    def impossible(style: str, year: int, rng: random.Random) -> str:
        month, day = rng.choice(_IMPOSSIBLE_DAYS)
        sep = {"iso": "-", "datetime": "-", "dot": ".", "compact": ""}.get(style)
        if sep is not None:
            return f"{year:04d}{sep}{month:02d}{sep}{day:02d}"
        if style == "cn":
            return f"{year}年{month}月{day}日"
        return f"{year}/{month}/{day}"


_FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def _id15(id18: str) -> str | None:
    """The old 15-digit form, for people born in the 1900s."""
    return id18[:6] + id18[8:17] if id18[6:8] == "19" else None


def _bad_check(id18: str, rng: random.Random) -> str:
    right = id18[17]
    return id18[:17] + rng.choice([c for c in CHECK_CHARS if c != right])


def _benign_id(id18: str, quirk: str, rng: random.Random) -> str:
    """An ID written in one of the ways spec §5 says readers must accept."""
    if quirk == "id15":
        old = _id15(id18)
        return old if old is not None else id18
    if quirk == "lower_x":
        return id18.lower()
    if quirk == "fullwidth":
        return id18.translate(_FULLWIDTH)
    if quirk == "apostrophe":
        return "'" + id18
    if quirk == "spaces":
        form = rng.randrange(4)
        if form == 0:
            return f" {id18} "
        if form == 1:
            return f"{id18}  "
        if form == 2:
            return f"{id18[:6]} {id18[6:14]} {id18[14:]}"
        return f"\u3000{id18}"
    return id18


def _spaced_name(name: str) -> str:
    """王芳 -> 王 芳 (padded two-character names, as many systems print them)."""
    if len(name) == 2:
        return f"{name[0]} {name[1]}"
    if len(name) == 3 and "·" not in name:
        return f"{name[0]} {name[1:]}"
    return f" {name}"


_MOBILE_PREFIXES = _words(
    "130 131 132 133 134 135 136 137 138 139 147 150 151 152 153 155 156 157 158 159 166 173 176 177 180 181 "
    "182 183 185 186 187 188 189 191 198 199"
)


def _mobile(rng: random.Random) -> str:
    prefix = rng.choice(_MOBILE_PREFIXES)
    return f"{prefix}{rng.randrange(100_000_000):08d}"


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means used here."""
    if mean <= 0:
        return 0
    limit = math.exp(-mean)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# ---------------------------------------------------------------------------------------------
# People


@dataclass
class _Unit:
    no: str
    name: str
    region: Region


@dataclass
class _People:
    """Everyone who appears anywhere: roster people first, then people who draw no pension here."""

    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    births: list[int] = field(default_factory=list)
    homes: list[Region] = field(default_factory=list)  # where they live
    units: list[int] = field(default_factory=list)  # -1: not on the roster
    used: set[str] = field(default_factory=set)  # first 17 characters of every ID

    def new_id(self, rng: random.Random, region: Region, born: date, male: bool) -> str:
        stem = f"{region.code}{born.year:04d}{born.month:02d}{born.day:02d}"
        while True:
            first17 = f"{stem}{rng.randrange(500) * 2 + (1 if male else 0):03d}"
            if first17 not in self.used:
                self.used.add(first17)
                return first17 + check_digit(first17)

    def add(self, id18: str, name: str, born: int, home: Region, unit: int) -> int:
        self.ids.append(id18)
        self.names.append(name)
        self.births.append(born)
        self.homes.append(home)
        self.units.append(unit)
        return len(self.ids) - 1


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.surnames, self.surname_cum = _cum(_SURNAMES)

    def __call__(self, male: bool, ethnic: str = "汉族") -> str:
        rng = self.rng
        if ethnic == "蒙古族" and rng.random() < 0.6:
            return rng.choice(_MONGOL_NAMES[0 if male else 1])
        if ethnic == "维吾尔族":
            return rng.choice(_UYGHUR_NAMES[0 if male else 1])
        if rng.random() < 0.0004:
            return rng.choice(_RARE_NAMES)
        surname = rng.choices(self.surnames, cum_weights=self.surname_cum)[0]
        if rng.random() < 0.3:
            return surname + rng.choice(_MALE_1 if male else _FEMALE_1)
        return surname + rng.choice(_MALE_2 if male else _FEMALE_2)


# Birth years of pensioners: more of the young (baby booms, mortality), a dip after 1959.
_BIRTH_YEARS = tuple(range(1935, 1967))
_BIRTH_CUM = list(
    itertools.accumulate(
        (1 + (y - 1935) // 3 if y < 1945 else 5 if y < 1950 else 7 if y < 1959 else 5 if y < 1962 else 9)
        for y in _BIRTH_YEARS
    )
)
# The dead are older.
_DEATH_BIRTH_CUM = list(
    itertools.accumulate((12 if y < 1940 else 9 if y < 1945 else 6 if y < 1950 else 3) for y in _BIRTH_YEARS)
)


@dataclass(frozen=True)
class _Window:
    """Day ordinals around the as-of day `d`."""

    d: int
    start: int  # first day any feed covers (start of the quarter 15 months back)
    m9: int
    m12: int
    m15: int
    post: int  # last day of records dated after `d` (delivered late, must be ignored)

    @classmethod
    def of(cls, as_of: date) -> _Window:
        m15 = add_months(as_of, -15)
        start = date(m15.year, (m15.month - 1) // 3 * 3 + 1, 1)
        return cls(
            d=as_of.toordinal(),
            start=start.toordinal(),
            m9=add_months(as_of, -9).toordinal(),
            m12=add_months(as_of, -12).toordinal(),
            m15=m15.toordinal(),
            post=as_of.toordinal() + 21,
        )


# Scenario shares of the 正常/暂停 recipients (spec §2 statuses); the rest are `recent`.
# (code, share, minimum)
_SCENARIOS: tuple[tuple[str, float, int], ...] = (
    ("remind", 0.05, 2),
    ("lastcert", 0.025, 2),
    ("retire", 0.004, 1),
    ("none", 0.045, 2),
    ("failed", 0.01, 1),
    ("stale", 0.02, 1),
    ("death", 0.015, 3),
    ("alive_after_death", 0.0003, 2),
    ("unit_lost", 0.0008, 2),
    ("alive_after_lost", 0.0002, 1),
    ("declared_dead", 0.0002, 1),
    ("declared_missing", 0.0002, 1),
    ("alive_after_missing", 0.0001, 1),
    ("imprisoned", 0.0002, 2),
    ("released", 0.0003, 1),
    ("sentence_lapsed", 0.0001, 1),
    ("noncustodial", 0.0003, 2),
    ("unreachable", 0.0015, 2),
    ("unreachable_then_alive", 0.0003, 1),
    ("overseas", 0.003, 2),
    ("future_death", 0.0002, 1),
    # 暂停 on the roster
    ("s_uncertified_back", 0.0115, 1),
    ("s_uncertified_still", 0.0065, 1),
    ("s_unreachable_still", 0.0035, 1),
    ("s_unreachable_back", 0.004, 1),
    ("s_prison_still", 0.0006, 1),
    ("s_prison_released", 0.0005, 1),
    ("s_prison_died", 0.0001, 1),
    ("s_missing", 0.0004, 1),
    ("s_died", 0.0025, 1),
)
_EDGES = (
    "edge_m12",  # newest evidence exactly 12 months old: due on D -> pending
    "edge_m12_next",  # a day later: eligible, reminded
    "edge_m9",  # exactly 9 months old: due on D + 3 months -> reminded
    "edge_m9_next",  # a day later: not reminded
    "edge_today",  # evidence on D itself
    "edge_tomorrow",  # only evidence dated D + 1 (ignored) and older than 12 months -> pending
    "edge_tie_roster",  # roster 上次认证日期 = newest evidence: the evidence wins
    "edge_tie_kinds",  # rail and hospital on the same newest day: rail wins
    "edge_future_roster",  # roster 上次认证日期 after D (ignored)
    "edge_same_day_death",  # hospital discharge on the death day: not alive *after* it -> stop
    "edge_loss_tie",  # death and cremation recorded on the same day: the reason is death
    "edge_suspend_order",  # in prison and reported unreachable by the unit: imprisoned comes first
)
_SUSPENDED_REASON: dict[str, tuple[str, ...]] = {
    "s_uncertified_back": ("未按时认证", "待核实"),
    "s_uncertified_still": ("未按时认证", "待核实", "未认证"),
    "s_unreachable_still": ("无法联系",),
    "s_unreachable_back": ("无法联系",),
    "s_prison_still": ("服刑",),
    "s_prison_released": ("服刑", "判刑收监"),
    "s_prison_died": ("服刑",),
    "s_missing": ("宣告失踪",),
    "s_died": ("疑似死亡", "待核实"),
}


def _count(n: int, share: float, minimum: int) -> int:
    return max(minimum, round(n * share))


# ---------------------------------------------------------------------------------------------
# The generator


class _Province:
    def __init__(self, rng: random.Random, as_of: date, home_province: str) -> None:
        self.rng = rng
        self.as_of = as_of
        self.w = _Window.of(as_of)
        self.home_code = home_province
        self.home = tuple(
            r for r in SHANXI + OTHER_PROVINCES if r.code.startswith(home_province) and r.current
        )
        if not self.home:
            raise ValueError(f"no region codes of province {home_province!r} in zige.regions")
        self.home_old = tuple(
            r for r in SHANXI_ABOLISHED + OTHER_PROVINCES if r.code[:2] == home_province and not r.current
        )
        self.away = tuple(r for r in REGIONS if r.code[:2] != home_province)
        self.away_current = tuple(r for r in self.away if r.current)
        self.province_name = PROVINCES[home_province]
        self.abbr = _PROVINCE_ABBR[home_province]
        self.by_code = {r.code: r for r in REGIONS}
        # Where people live: the capital weighs most, then city districts, then counties.
        self.home_cum = list(
            itertools.accumulate(
                6 if r.city == "太原市" else 3 if r.county.endswith("区") else 2 for r in self.home
            )
        )
        self.people = _People()
        self.names = _Names(rng)
        self.units: list[_Unit] = []
        self.events: dict[str, list[Event]] = {k.code: [] for k in BUILTIN_KINDS}
        # People of the rare scenarios: their records get no quirk that makes a row unusable, so that
        # each scenario keeps the outcome it was made for (a bad check digit on the only 宣告死亡
        # record would quietly make an ordinary pensioner of a dead one).
        self.protected: set[int] = set()
        self.text = _DateText()

    # -- helpers -------------------------------------------------------------------------------

    def day_in(self, lo: int, hi: int) -> int:
        return lo + self.rng.randrange(hi - lo + 1) if hi > lo else lo

    def home_region(self) -> Region:
        return self.rng.choices(self.home, cum_weights=self.home_cum)[0]

    def stations(self, region: Region) -> tuple[str, ...]:
        info = _SHANXI_CITY.get(region.city)
        return info[0] if info else (_short(_place(region)),)

    def airport(self, region: Region) -> str:
        info = _SHANXI_CITY.get(region.city)
        return info[1] if info else _short(_place(region))

    def hospital(self, region: Region) -> str:
        rng = self.rng
        city = _place(region)
        x = rng.random()
        if region.code.startswith("14") and ((region.city == "太原市" and x < 0.7) or x < 0.15):
            return rng.choice(_SHANXI_HOSPITALS)
        if x < 0.55:
            return f"{city}人民医院" if x < 0.4 else f"{city}第二人民医院"
        if x < 0.75:
            return f"{city}中医医院" if x < 0.65 else f"{city}中心医院"
        return f"{region.county}人民医院"

    def checkup_place(self, region: Region) -> str:
        rng = self.rng
        x = rng.random()
        if x < 0.15:
            return f"{rng.choice(_CHECKUP_CHAINS)}{_short(_place(region))}分院"
        if region.county.endswith("县") and x < 0.5:
            return f"{region.county}{rng.choice('东西南北')}关镇卫生院"
        return f"{region.county}{rng.choice(_STREETS)}社区卫生服务中心"

    # -- units ---------------------------------------------------------------------------------

    def make_units(self, count: int) -> list[float]:
        """Units, and the weight of each (a few big employers, many small ones)."""
        rng = self.rng
        names: set[str] = set()
        big = list(_SHANXI_ENTERPRISES) if self.home_code == "14" else []
        weights: list[float] = []
        serial = rng.randrange(100, 300)
        while len(self.units) < count:
            if big and len(self.units) % 25 == 0:
                name, code = big.pop(0)
                region = self.by_code[code]
                weight = 25.0 + rng.random() * 40
            else:
                region = self.home_region()
                name = self.unit_name(region)
                weight = min(rng.paretovariate(1.3), 30.0)
            for attempt in itertools.count(2):
                if name not in names:
                    break
                name = (
                    self.unit_name(region)
                    if attempt < 20
                    else f"{name}第{_cn_number(attempt % 99 or 1)}分公司"
                )
            names.add(name)
            serial += rng.randrange(1, 40)
            self.units.append(_Unit(f"{region.code[:4]}{serial:07d}", name, region))
            weights.append(weight)
        if big or self.home_code == "14":
            # The province's largest employer (太钢 in Shanxi) keeps about 2% of all retirees on
            # its own roll: 10,000 people in a province of 500,000, as large state enterprises do.
            weights[0] = 0.02 / 0.98 * sum(weights[1:])
        return weights

    def unit_name(self, region: Region) -> str:
        rng = self.rng
        city, county, short = _place(region), region.county, _short(_place(region))
        x = rng.random()
        if x < 0.12:
            n = _cn_number(rng.randrange(1, 40))
            return f"{city}第{n}中学校" if x < 0.05 else f"{county}第{n}中学"
        if x < 0.18:
            return f"{county}{rng.choice(_STREETS)}小学"
        if x < 0.24:
            if x < 0.20:
                return f"{city}第{_cn_number(rng.randrange(1, 9))}人民医院"
            return f"{county}{rng.choice(_TOWNS)}镇卫生院"
        if x < 0.44:
            return f"{county}{rng.choice(_COUNTY_BUREAUS)}"
        if x < 0.48:
            return f"{self.province_name}{rng.choice(_PROVINCIAL_DEPTS)}"
        if x < 0.54:
            return (
                f"{county}{rng.choice(_STREETS)}街道办事处"
                if x < 0.51
                else f"{county}退休人员社会化管理服务中心"
            )
        if x < 0.76:
            return (
                f"{short}{rng.choice(('', '第一', '第二', '第三', '第四', '第五'))}{rng.choice(_FACTORIES)}"
            )
        return f"{short}{rng.choice(_BRANDS)}{rng.choice(_TRADES)}有限公司"

    # -- events --------------------------------------------------------------------------------

    def add(self, kind: str, day: int, pid: int, *payload: Any) -> None:
        self.events[kind].append((day, pid, *payload))

    def rail(self, pid: int, day: int, hi: int | None = None) -> None:
        """A trip, and its return when it falls within `hi`."""
        rng = self.rng
        home = self.stations(self.people.homes[pid])[0 if rng.random() < 0.7 else -1]
        if rng.random() < 0.75:
            other = rng.choice(_FAR_STATIONS)
        else:
            other = rng.choice(rng.choice(list(_SHANXI_CITY.values()))[0])
            if other == home:
                other = rng.choice(_FAR_STATIONS)
        self.add("rail", day, pid, _train_no(rng), home, other)
        back = day + rng.choice((0, 1, 2, 3, 5, 7, 10, 14, 20, 30, 45))
        if hi is not None and back <= hi and rng.random() < 0.8:
            self.add("rail", back, pid, _train_no(rng), other, home)

    def flight(self, pid: int, day: int, hi: int | None = None) -> None:
        rng = self.rng
        home = self.airport(self.people.homes[pid])
        far = rng.choice(_FAR_AIRPORTS)
        airline = rng.choice(_AIRLINES)
        self.add("flight", day, pid, f"{airline}{rng.randrange(1000, 9999)}", home, far)
        back = day + rng.choice((3, 5, 7, 10, 14, 30, 60, 90))
        if hi is not None and back <= hi and rng.random() < 0.85:
            self.add("flight", back, pid, f"{airline}{rng.randrange(1000, 9999)}", far, home)

    def hospital_stay(self, pid: int, discharge: int) -> None:
        rng = self.rng
        stay = rng.choice((2, 3, 5, 7, 8, 10, 12, 14, 18, 25))
        cost = rng.randrange(300_000, 6_000_000)
        self.add(
            "hospital",
            discharge,
            pid,
            self.hospital(self.people.homes[pid]),
            discharge - stay,
            str(stay),
            f"{cost // 100}.{cost % 100:02d}",
        )

    def checkup(self, pid: int, day: int) -> None:
        self.add("checkup", day, pid, self.checkup_place(self.people.homes[pid]))

    def app(self, pid: int, day: int, passed: bool = True) -> None:
        rng = self.rng
        if passed:
            similarity = f"{rng.uniform(0.80, 0.99):.4f}"
        else:
            similarity = f"{rng.uniform(0.30, 0.74):.4f}" if rng.random() < 0.8 else ""
        self.add("app_auth", day, pid, "成功" if passed else "失败", similarity)

    def terminal(self, pid: int, day: int, passed: bool = True) -> None:
        rng = self.rng
        region = self.people.homes[pid]
        method = "人脸" if rng.random() < 0.75 else "指静脉"
        device = f"ZD{region.code}{rng.randrange(1, 60):04d}"
        self.add(
            "terminal_auth",
            day,
            pid,
            method,
            device,
            "成功" if passed else "失败",
            f"{region.county}社保服务大厅",
        )

    def unit_confirm(self, pid: int, day: int, result: str, note: str = "") -> None:
        method = self.rng.choice(_CONFIRM_METHODS) if result != "无法联系" else "上门核实"
        self.add("unit_confirm", day, pid, method, result, note)

    def border(self, pid: int, day: int, hi: int) -> None:
        rng = self.rng
        port, country = rng.choice(_PORTS), rng.choice(_TRIP_COUNTRIES)
        self.add("border", day, pid, "出境", port, country)
        back = day + rng.choice((5, 7, 10, 15, 30, 90, 180))
        if back <= hi:
            self.add("border", back, pid, "入境", port, country)

    def death(self, pid: int, day: int, kinds: str = "both") -> None:
        rng = self.rng
        if kinds in ("both", "death"):
            x = rng.random()
            source = "公安" if x < 0.5 else "民政" if x < 0.8 else "卫健"
            self.add("death", day, pid, source)
            if rng.random() < 0.1:  # a second agency reports it too, sometimes a day off
                other = rng.choice([s for s in ("公安", "民政", "卫健") if s != source])
                self.add("death", day + rng.choice((0, 0, 1, -1)), pid, other)
        if kinds in ("both", "cremation"):
            self.add(
                "cremation",
                day + rng.choice((1, 2, 3, 3, 4, 5)),
                pid,
                f"{_short(_place(self.people.homes[pid]))}市殡仪馆",
            )

    def declared(self, pid: int, day: int, what: str) -> None:
        rng = self.rng
        region = self.people.homes[pid]
        year = _ymd(day).year
        case = f"（{year}）{self.abbr}{region.code[2:]}民特{rng.randrange(1, 300)}号"
        self.add("declared", day, pid, what, f"{region.county}人民法院", case)

    def sentence(self, pid: int, start: int, end: int | None, penalty: str) -> None:
        rng = self.rng
        region = self.people.homes[pid]
        crime = "危险驾驶罪" if penalty.startswith("拘役") else rng.choice(_CRIMES)
        self.add("sentence", start, pid, end or 0, penalty, crime, f"{region.county}人民法院")

    def release(self, pid: int, day: int, term: str) -> None:
        self.add("release", day, pid, self.rng.choice(_PRISONS), term)

    def alive(self, pid: int, lo: int, hi: int, *, rate: float = 1.0) -> int:
        """Ordinary life between `lo` and `hi`: trips, hospital stays, checks. The newest day <= D, or 0."""
        if hi < lo:
            return 0
        rng = self.rng
        r = rng.random
        w = self.w
        years = (hi - lo + 1) / 365.0
        age = (w.d - self.people.births[pid]) / 365.25
        old = 0 if age < 70 else 1 if age < 80 else 2
        start = len(self.events["rail"]), len(self.events["flight"])
        days: list[int] = []
        if r() < (0.42, 0.28, 0.10)[old] * rate:
            for _ in range(1 + _poisson(rng, 1.2 * years)):
                day = self.day_in(lo, hi)
                self.rail(pid, day, hi)
        if r() < (0.09, 0.05, 0.01)[old] * rate:
            self.flight(pid, self.day_in(lo, hi), hi)
        if r() < (0.14, 0.22, 0.32)[old] * rate:
            for _ in range(1 + _poisson(rng, 0.4 * years)):
                day = self.day_in(lo, hi)
                self.hospital_stay(pid, day)
                days.append(day)
        if r() < (0.55, 0.60, 0.45)[old] * rate:
            # the yearly free check for the over-65s (国家基本公共卫生服务), mostly April to October
            day = self.day_in(lo, hi)
            for _ in range(2):
                if _ymd(day).month in (4, 5, 6, 7, 8, 9, 10) or r() < 0.3:
                    break
                day = self.day_in(lo, hi)
            self.checkup(pid, day)
            days.append(day)
            if years > 1.05 and r() < 0.6 and lo <= day - 385:
                day -= 365 + rng.randrange(-20, 21)  # last year's too
                self.checkup(pid, day)
                days.append(day)
        if r() < (0.42, 0.33, 0.18)[old] * rate:
            day = self.day_in(lo, min(hi, lo + 365))
            while day <= hi:
                if r() < 0.15:
                    self.app(pid, max(lo, day - rng.choice((0, 0, 1, 3))), passed=False)
                self.app(pid, day)
                days.append(day)
                day += 365 + rng.randrange(-30, 31)
        if r() < (0.02, 0.04, 0.07)[old] * rate:
            day = self.day_in(lo, hi)
            if r() < 0.1:  # the finger-vein model was taken years ago
                self.terminal(pid, day, passed=False)
            self.terminal(pid, day)
            days.append(day)
        if r() < (0.03, 0.05, 0.10)[old] * rate and self.people.units[pid] >= 0:
            day = self.day_in(lo, hi)
            self.unit_confirm(pid, day, "具备资格")
            days.append(day)
        if r() < 0.012 * rate:
            day = self.day_in(lo, hi)
            self.border(pid, day, hi)
            days.append(day)
        days.extend(e[0] for e in self.events["rail"][start[0] :] if e[1] == pid)
        days.extend(e[0] for e in self.events["flight"][start[1] :] if e[1] == pid)
        return max((d for d in days if d <= w.d), default=0)

    def some_alive(self, pid: int, lo: int, hi: int) -> int:
        """One alive record between `lo` and `hi` (the kinds old people most often leave)."""
        day = self.day_in(lo, hi)
        x = self.rng.random()
        if x < 0.35:
            self.app(pid, day)
        elif x < 0.6:
            self.checkup(pid, day)
        elif x < 0.8:
            self.rail(pid, day)
        elif x < 0.92:
            self.hospital_stay(pid, day)
        elif x < 0.96 and self.people.units[pid] >= 0:
            self.unit_confirm(pid, day, "具备资格")
        else:
            self.terminal(pid, day)
        return day

    def fraud_signal(self, pid: int, lo: int, hi: int) -> None:
        """Someone travels on, or passes a face check with, the ID of a person who is gone."""
        day = self.day_in(lo, hi)
        if self.rng.random() < 0.5:
            self.rail(pid, day, hi)
        else:
            self.app(pid, day)

    def failed_attempts(self, pid: int, lo: int, hi: int) -> None:
        for _ in range(1 + _poisson(self.rng, 0.8)):
            self.app(pid, self.day_in(lo, hi), passed=False)


_TRAIN_PREFIX = ("G", "G", "G", "G", "D", "D", "K", "K", "K", "T", "Z", "C", "")


def _train_no(rng: random.Random) -> str:
    prefix = rng.choice(_TRAIN_PREFIX)
    if prefix in ("T", "Z"):
        return f"{prefix}{rng.randrange(1, 400)}"
    if prefix == "":
        return str(rng.randrange(1001, 7600))
    if prefix == "C":
        return f"C{rng.randrange(1001, 9999)}"
    return f"{prefix}{rng.randrange(1, 2700) if prefix == 'G' and rng.random() < 0.6 else rng.randrange(1, 9999)}"


# ---------------------------------------------------------------------------------------------
# The roster


ROSTER_HEADER = _words(
    "个人编号 姓名 身份证号 单位编号 单位名称 性别 出生日期 待遇状态 状态变更日期 停发原因 月养老金（元） 联系电话 "
    "现居住地 退休日期 上次认证日期 是否境外居住 是否办理社保卡 健康状况 离退休类别 民族 政治面貌 原工作单位 "
    "户口所在地 居住地行政区划"
)
_COL = {name: i for i, name in enumerate(ROSTER_HEADER)}


@dataclass
class _Person:
    """A roster row before it is written (dates as ordinals, 0 = empty)."""

    pid: int
    scenario: str
    male: bool
    unit: int
    status: str = "正常"
    since: int = 0
    reason: str = ""
    last_cert: int = 0
    retired: int = 0
    category: str = "退休"
    abroad: bool = False
    row: list[str] = field(default_factory=list)


def _scenario_list(n: int, rng: random.Random, edges: bool) -> list[str]:
    chosen: list[str] = list(_EDGES) if edges else []
    for code, share, minimum in _SCENARIOS:
        chosen.extend([code] * _count(n, share, minimum))
    if len(chosen) > n:
        raise ValueError(f"recipients={n} is too few for a demo province (at least {len(chosen)})")
    chosen.extend(["recent"] * (n - len(chosen)))
    rng.shuffle(chosen)
    return chosen


def _retirement(born: date, age: int) -> date:
    """Pensions start the month after the birthday month of the retirement age."""
    month = born.month + 1
    year = born.year + age + (month > 12)
    return date(year, (month - 1) % 12 + 1, 1)


class _RosterBuilder:
    def __init__(self, prov: _Province) -> None:
        self.p = prov
        rng = prov.rng
        self.rng = rng
        self.ethnic = _cum(_ETHNIC)
        self.political = _cum(_POLITICAL)
        self.health = _cum(_HEALTH)

    def person(self, scenario: str, unit_index: int) -> _Person:
        p, rng, w = self.p, self.rng, self.p.w
        male = rng.random() < 0.52
        unit = p.units[unit_index]
        # Where the ID was issued, and where they live now.
        x = rng.random()
        if x < 0.05:
            id_region = rng.choice(p.away)
        elif x < 0.09 and p.home_old:
            id_region = rng.choice(p.home_old)
        elif x < 0.7:
            id_region = unit.region if unit.region.current else p.home_region()
        else:
            id_region = p.home_region()
        if not id_region.code.startswith(p.home_code) and rng.random() < 0.25:
            home = id_region if id_region.current else rng.choice(p.away_current)  # went back home
        elif rng.random() < 0.85:
            home = unit.region
        elif rng.random() < 0.9:
            home = p.home_region()
        else:
            home = rng.choice(p.away_current)  # lives with children elsewhere (异地居住)
        if not home.current:
            home = p.by_code.get(SUCCESSORS.get(home.code, ""), p.home[0])
        category = "退休"
        x = rng.random()
        if x < 0.003:
            category = "离休"
        elif x < 0.013:
            category = "退职"
        # Birth and retirement.
        if scenario == "retire":
            male, category = True, "退休"
            retired = _ymd(p.day_in(w.m12 + 31, w.d - 15)).replace(day=1)
            month = retired.month - 1 or 12
            year = retired.year - 60 - (retired.month == 1)
            born = date(year, month, rng.randrange(1, 29))
        else:
            cum = _DEATH_BIRTH_CUM if "death" in scenario or "died" in scenario else _BIRTH_CUM
            year = rng.choices(_BIRTH_YEARS, cum_weights=cum)[0]
            if category == "离休":
                year = rng.randrange(1926, 1935)
            born = date(year, rng.randrange(1, 13), rng.randrange(1, 29))
            if rng.random() < 0.5:  # the 29th to the 31st, where the month has them
                day = rng.randrange(29, 32)
                if day <= calendar.monthrange(year, born.month)[1]:
                    born = born.replace(day=day)
            age = (60 if rng.random() < 0.9 else 55) if male else (50 if rng.random() < 0.55 else 55)
            retired = _retirement(born, age)
            while retired.toordinal() > w.m12 - 30:  # not a recent retiree: retired before the window
                born = born.replace(year=born.year - 1, day=min(born.day, 28))
                retired = _retirement(born, age)
        ethnic = self.ethnic[0][bisect.bisect_right(self.ethnic[1], rng.randrange(self.ethnic[1][-1]))]
        if id_region.code.startswith("15") and rng.random() < 0.4:
            ethnic = "蒙古族"
        name = p.names(male, ethnic)
        id18 = p.people.new_id(rng, id_region, born, male)
        pid = p.people.add(id18, name, born.toordinal(), home, unit_index)
        person = _Person(pid, scenario, male, unit_index, retired=retired.toordinal(), category=category)
        person.row = self.row_text(person, id18, name, id_region, home, born, ethnic)
        return person

    def row_text(
        self,
        person: _Person,
        id18: str,
        name: str,
        id_region: Region,
        home: Region,
        born: date,
        ethnic: str,
    ) -> list[str]:
        p, rng = self.p, self.rng
        unit = p.units[person.unit]
        if person.category == "离休":
            cents = rng.randrange(600_000, 980_000)
        elif person.category == "退职":
            cents = rng.randrange(200_000, 300_000)
        else:
            cents = min(max(int(rng.lognormvariate(8.08, 0.22) * 100), 200_000), 600_000)
        x = rng.random()
        if x < 0.15:
            phone = ""
        elif x < 0.22:
            area = (
                _SHANXI_CITY[home.city][2]
                if home.city in _SHANXI_CITY
                else _AREA_CODES.get(home.code[:4], "0351")
            )
            phone = f"{area}-{rng.randrange(2_000_000, 8_000_000)}"
        elif x < 0.23:
            phone = _mobile(rng)[: rng.choice((10, 9))]  # a digit or two lost
        elif x < 0.245:
            m = _mobile(rng)
            phone = rng.choice((f"{m[:3]} {m[3:7]} {m[7:]}", f"{m[:3]}-{m[3:7]}-{m[7:]}", f"+86 {m}"))
        else:
            phone = _mobile(rng)
        estate = f"{rng.choice(_STREETS)}{rng.randrange(1, 300)}号{rng.choice(_ESTATES)}"
        address = f"{home.full_name}{estate}{rng.randrange(1, 30)}号楼{rng.randrange(1, 7)}单元{rng.randrange(1, 25)}{rng.randrange(1, 5):02d}"
        away = not id_region.code.startswith(p.home_code)
        card = "否" if (away and rng.random() < 0.45) or rng.random() < 0.02 else "是"
        hukou_region = id_region if away and rng.random() < 0.8 else home
        if not hukou_region.current:
            hukou_region = p.by_code.get(SUCCESSORS.get(hukou_region.code, ""), home)
        # 原工作单位: mostly the unit itself; for people under social management, a defunct works
        former = unit.name if rng.random() < 0.8 else f"{_short(_place(unit.region))}{rng.choice(_FACTORIES)}"
        political = self.political[0][
            bisect.bisect_right(self.political[1], rng.randrange(self.political[1][-1]))
        ]
        health = self.health[0][bisect.bisect_right(self.health[1], rng.randrange(self.health[1][-1]))]
        return [
            "",
            name,
            id18,
            unit.no,
            unit.name,
            "男" if person.male else "女",
            born.isoformat(),
            "",
            "",
            "",
            f"{cents // 100}.{cents % 100:02d}",
            phone,
            address,
            "",
            "",
            "否",
            card,
            health,
            person.category,
            ethnic,
            political,
            former,
            hukou_region.full_name,
            home.code,
        ]


# ---------------------------------------------------------------------------------------------
# Scenarios: what each kind of recipient leaves in the feeds, and the roster dates that go with it


def _play(prov: _Province, person: _Person) -> None:
    rng, w, pid, s = prov.rng, prov.w, person.pid, person.scenario
    d, start, m9, m12, post = w.d, w.start, w.m9, w.m12, w.post
    day_in = prov.day_in

    def old_cert() -> int:
        """A roster date that no longer certifies (or none)."""
        return 0 if rng.random() < 0.4 else day_in(w.m15 - 200, m12 - 1)

    def recent_cert(newest: int) -> int:
        """The previous certification: empty, or some day up to the newest evidence."""
        x = rng.random()
        if x < 0.08:
            return 0
        hi = min(newest or d, d)
        if x < 0.9:
            return day_in(min(w.m15, hi - 30), hi)
        return day_in(min(w.m15, hi) - 200, min(w.m15, hi))

    def ensure_recent(newest: int) -> int:
        if newest <= m9 + 1:
            newest = prov.some_alive(pid, m9 + 2, d)
        return newest

    if s == "recent":
        newest = ensure_recent(prov.alive(pid, start, post))
        person.last_cert = recent_cert(newest)
    elif s == "remind":
        newest = prov.alive(pid, start, m9 - 1, rate=0.5)
        if newest < m12 + 2:
            newest = prov.some_alive(pid, m12 + 2, m9 - 1)
        if rng.random() < 0.3:
            prov.failed_attempts(pid, m9, d)
        if rng.random() < 0.15:
            prov.app(pid, day_in(d + 1, post))  # they did it, but after the as-of day
        person.last_cert = min(newest, day_in(w.m15 - 60, newest)) if rng.random() < 0.8 else 0
    elif s == "lastcert":
        person.last_cert = day_in(m12 + 1, d)
        if rng.random() < 0.2:
            prov.failed_attempts(pid, m12, d)
    elif s == "retire":
        person.last_cert = 0
    elif s == "none":
        person.last_cert = old_cert()
    elif s == "failed":
        prov.failed_attempts(pid, m12 + 1, d)
        person.last_cert = old_cert()
    elif s == "stale":
        newest = prov.alive(pid, start, m12 - 2, rate=0.6)
        if not newest:
            newest = prov.some_alive(pid, start, m12 - 2)
        person.last_cert = min(newest, old_cert()) if rng.random() < 0.5 else 0
    elif s in ("death", "s_died", "edge_same_day_death"):
        died = day_in(m12 + 1, d) if rng.random() < 0.9 else day_in(start, m12)
        if s == "s_died":
            died = day_in(w.m15, d - 40)
        if s == "edge_same_day_death":
            died = d - 20
        prov.alive(pid, start, died - 1, rate=0.6)
        if rng.random() < 0.05 or s == "edge_same_day_death":
            prov.hospital_stay(pid, died)  # died in hospital: discharged on the day of death
        x = 0.7 if s == "edge_same_day_death" else rng.random()
        prov.death(pid, died, "both" if x < 0.65 else "death" if x < 0.9 else "cremation")
        if rng.random() < 0.05:
            prov.unit_confirm(pid, min(d, died + rng.randrange(10, 60)), "丧失资格", "本人已死亡")
        person.last_cert = recent_cert(died)
        if s == "s_died":
            person.status, person.reason = "暂停", rng.choice(_SUSPENDED_REASON[s])
            person.since = _month_start(died + rng.randrange(10, 40))
            if person.since > d:
                person.since = _month_start(d)
    elif s == "alive_after_death":
        died = day_in(m12, d - 40)
        prov.alive(pid, start, died - 1, rate=0.6)
        prov.death(pid, died, "both" if rng.random() < 0.7 else "death")
        for _ in range(rng.choice((1, 1, 2))):
            prov.fraud_signal(pid, died + 5, min(d, died + 120))
        person.last_cert = recent_cert(died)
    elif s in ("unit_lost", "alive_after_lost"):
        lost = day_in(m12, d - 40 if s == "alive_after_lost" else d)
        prov.alive(pid, start, lost - 1, rate=0.5)
        prov.unit_confirm(
            pid, lost, "丧失资格", rng.choice(("本人已死亡，家属未申报", "重复领取养老金", "冒领"))
        )
        if s == "alive_after_lost":
            prov.some_alive(pid, lost + 1, d)
        person.last_cert = old_cert()
    elif s == "declared_dead":
        if rng.random() < 0.5:
            prov.unit_confirm(pid, day_in(start, m12), "无法联系", "长期下落不明")
        prov.declared(pid, day_in(m12, d), "宣告死亡")
        person.last_cert = old_cert()
    elif s in ("declared_missing", "alive_after_missing", "s_missing"):
        declared = day_in(start, d - 60)
        if s == "s_missing":
            declared = day_in(w.m15 - 400, m9)
            person.status, person.reason = "暂停", "宣告失踪"
            person.since = _month_start(declared + 31)
        prov.declared(pid, declared, "宣告失踪")
        if s == "alive_after_missing":
            prov.some_alive(pid, declared + 1, d)
        person.last_cert = old_cert()
    elif s in ("imprisoned", "s_prison_still", "s_prison_died"):
        if rng.random() < 0.3 and s == "imprisoned":
            began = day_in(d - 120, d - 10)
            prov.sentence(pid, began, max(d + 10, began + rng.randrange(30, 180)), "拘役")
        elif rng.random() < 0.1:
            began = day_in(d - 3 * 365, m9)
            prov.sentence(pid, began, None, "无期徒刑")
        else:
            began = day_in(d - 3 * 365, m9)
            prov.sentence(pid, began, max(d + 30, began + rng.randrange(365, 10 * 365)), "有期徒刑")
        prov.alive(pid, start, began - 1, rate=0.5)
        person.last_cert = old_cert()
        if s != "imprisoned":
            person.status, person.reason = "暂停", rng.choice(_SUSPENDED_REASON[s])
            person.since = _month_start(began + 31)
        if s == "s_prison_died":
            prov.death(pid, day_in(max(began + 1, m12), d))
    elif s in ("released", "s_prison_released"):
        freed = day_in(m12 + 1, d - 10)
        began = day_in(freed - 4 * 365, freed - 200)
        planned = freed if rng.random() < 0.7 else freed + rng.randrange(30, 400)  # 减刑: out early
        prov.sentence(pid, began, planned, "有期徒刑")
        years = max(1, round((planned - began) / 365))
        prov.release(pid, freed, f"有期徒刑{_CN_NUM[min(years, 10) - 1]}年")
        prov.alive(pid, max(start, began - 400), began - 1, rate=0.5)
        if rng.random() < 0.5:
            prov.alive(pid, freed + 1, post, rate=0.7)
        person.last_cert = old_cert()
        if s == "s_prison_released":
            person.status, person.reason = "暂停", rng.choice(_SUSPENDED_REASON[s])
            person.since = _month_start(began + 31) if rng.random() < 0.9 else 0
    elif s == "sentence_lapsed":
        began = day_in(m12, d - 200)
        prov.sentence(pid, began, began + rng.randrange(30, 150), "拘役")
        if rng.random() < 0.5:
            prov.some_alive(pid, began + 160, d)
        person.last_cert = old_cert()
    elif s == "noncustodial":
        began = day_in(d - 2 * 365, d - 10)
        penalty = rng.choice(_NON_CUSTODIAL)
        prov.sentence(pid, began, None if penalty == "罚金" else began + rng.randrange(180, 3 * 365), penalty)
        newest = ensure_recent(prov.alive(pid, start, post))
        person.last_cert = recent_cert(newest)
    elif s in ("unreachable", "unreachable_then_alive", "s_unreachable_still", "s_unreachable_back"):
        after = s in ("unreachable_then_alive", "s_unreachable_back")
        lost = day_in(m12, d - 40) if after else day_in(m9, d)
        prov.alive(pid, start, lost - 1, rate=0.3)
        prov.unit_confirm(
            pid, lost, "无法联系", rng.choice(("多次上门及电话均无法联系", "人户分离，联系不上", ""))
        )
        if after:
            prov.some_alive(pid, lost + 1, d)
        person.last_cert = old_cert()
        if s.startswith("s_"):
            person.status, person.reason = "暂停", "无法联系"
            person.since = _month_start(lost + 31) if lost + 31 <= d else _month_start(d)
    elif s == "overseas":
        person.abroad = True
        if rng.random() < 0.8:
            prov.add("overseas_review", day_in(m12 + 1, d), pid, *rng.choice(_ABROAD))
        if rng.random() < 0.5:
            prov.border(pid, day_in(start, d), post)
        person.last_cert = old_cert()
    elif s == "future_death":
        newest = ensure_recent(prov.alive(pid, start, d))
        prov.death(pid, day_in(d + 1, post))
        person.last_cert = recent_cert(newest)
    elif s == "s_uncertified_back":
        person.status, person.reason = "暂停", rng.choice(_SUSPENDED_REASON[s])
        since = day_in(w.m15, m9)
        person.since = _month_start(since) if rng.random() < 0.85 else 0
        ensure_recent(prov.alive(pid, since, post, rate=0.5))
        person.last_cert = old_cert()
    elif s == "s_uncertified_still":
        person.status, person.reason = "暂停", rng.choice(_SUSPENDED_REASON[s])
        person.since = _month_start(day_in(w.m15, d - 30)) if rng.random() < 0.85 else 0
        if rng.random() < 0.3:
            prov.failed_attempts(pid, m12 + 1, d)
        person.last_cert = old_cert()
    elif s.startswith("edge_"):
        _play_edge(prov, person)
    elif s == "terminated":
        _play_terminated(prov, person)
    else:  # pragma: no cover - every scenario has a branch
        raise AssertionError(s)


def _play_edge(prov: _Province, person: _Person) -> None:
    w, pid, s = prov.w, person.pid, person.scenario
    person.last_cert = w.m15 - 30
    if s == "edge_m12":
        prov.checkup(pid, w.m12)
    elif s == "edge_m12_next":
        prov.checkup(pid, w.m12 + 1)
    elif s == "edge_m9":
        prov.app(pid, w.m9)
    elif s == "edge_m9_next":
        prov.app(pid, w.m9 + 1)
    elif s == "edge_today":
        prov.terminal(pid, w.d)
    elif s == "edge_tomorrow":
        prov.rail(pid, w.d + 1)
        prov.checkup(pid, w.m12 - 10)
    elif s == "edge_tie_roster":
        prov.hospital_stay(pid, w.d - 50)
        person.last_cert = w.d - 50
    elif s == "edge_tie_kinds":
        prov.hospital_stay(pid, w.d - 70)
        prov.rail(pid, w.d - 70)
        prov.checkup(pid, w.d - 200)
    elif s == "edge_future_roster":
        prov.checkup(pid, w.m9 - 30)
        person.last_cert = w.d + 5
    elif s == "edge_loss_tie":
        prov.add("death", w.d - 100, pid, "民政")
        prov.add("cremation", w.d - 100, pid, f"{_short(_place(prov.people.homes[pid]))}市殡仪馆")
    elif s == "edge_suspend_order":
        prov.sentence(pid, w.d - 300, w.d + 400, "有期徒刑")
        prov.unit_confirm(pid, w.d - 200, "无法联系", "已被判刑收监")


def _play_terminated(prov: _Province, person: _Person) -> None:
    """终止 rows: out of scope for the run; some still show up in the feeds."""
    rng, w, pid = prov.rng, prov.w, person.pid
    reasons, cum = _cum(_TERMINATED_REASONS)
    person.status = "终止"
    person.reason = rng.choices(reasons, cum_weights=cum)[0]
    person.since = _month_start(prov.day_in(w.d - 3 * 365, w.d - 30))
    if person.reason == "死亡":
        died = person.since - rng.randrange(15, 60)
        if died >= w.start and rng.random() < 0.7:
            prov.death(pid, died)
    elif person.reason == "转出":
        prov.alive(pid, w.start, w.post, rate=0.5)
    person.last_cert = prov.day_in(w.m15 - 300, min(person.since, w.d))


def _month_start(day: int) -> int:
    d = _ymd(day)
    return d.replace(day=1).toordinal()


# ---------------------------------------------------------------------------------------------
# People who draw no pension here: travellers, patients, the dead and the sentenced of the province


def _outsiders(prov: _Province, count: int) -> None:
    rng, w, people = prov.rng, prov.w, prov.people
    for _ in range(count):
        male = rng.random() < 0.5
        region = prov.home_region() if rng.random() < 0.7 else rng.choice(prov.away)
        born = date(rng.randrange(1938, 2007), rng.randrange(1, 13), rng.randrange(1, 29))
        id18 = people.new_id(rng, region, born, male)
        home = region if region.current else prov.home_region()
        pid = people.add(id18, prov.names(male), born.toordinal(), home, -1)
        x = rng.random()
        if x < 0.65:
            for _ in range(1 + _poisson(rng, 2.0)):
                prov.rail(pid, prov.day_in(w.start, w.post), w.post)
        if rng.random() < 0.18:
            prov.flight(pid, prov.day_in(w.start, w.post), w.post)
        if rng.random() < 0.12:
            prov.hospital_stay(pid, prov.day_in(w.start, w.post))
        if born.year < 1961 and rng.random() < 0.4:
            prov.checkup(pid, prov.day_in(w.start, w.post))
        if rng.random() < 0.08:
            prov.app(pid, prov.day_in(w.start, w.post), passed=rng.random() < 0.9)
        if rng.random() < 0.03:
            prov.border(pid, prov.day_in(w.start, w.post), w.post)
        if born.year < 1960 and rng.random() < 0.03:
            died = prov.day_in(w.start, w.post)
            prov.death(pid, died, "both" if rng.random() < 0.7 else "death")
        elif rng.random() < 0.004:
            began = prov.day_in(w.d - 3 * 365, w.d)
            if rng.random() < 0.4:
                prov.sentence(pid, began, began + rng.randrange(180, 2000), rng.choice(_NON_CUSTODIAL[:4]))
            else:
                end = began + rng.randrange(30, 2500)
                prov.sentence(pid, began, end, "有期徒刑" if end - began > 200 else "拘役")
                if end <= w.d and rng.random() < 0.6:
                    prov.release(pid, end, "有期徒刑一年")


# ---------------------------------------------------------------------------------------------
# Feed files


@dataclass(frozen=True)
class _Col:
    header: str
    # "id", "name", "date" (the kind's date), "seq" (序号), "=text" (a constant), "p<k>" (payload k),
    # "p<k>:date" (a second date in the payload), or a generated extra ("sex", "clock", "later", ...)
    source: str
    values: dict[str, str] | None = None  # payload text as this file writes it (成功 -> pass)
    number: bool = False  # a float column in Parquet

    @property
    def is_date(self) -> bool:
        return self.source in ("date", "later") or self.source.endswith(":date")


@dataclass
class _FeedSpec:
    name: str
    kind: str
    columns: tuple[_Col, ...]
    encoding: str = "utf-8"  # utf-8 | utf-8-sig | gb18030 (CSV only)
    date_style: str = "iso"  # a key of _DATE_STYLES (CSV only: XLSX has date cells, Parquet timestamps)
    fmt: str = "csv"  # csv | xlsx | xls | parquet
    mixed_dates: float = 0.0  # share of rows written in another style
    titles: tuple[tuple[str, ...], ...] = ()
    quirk_rate: float = 0.025
    lower_x: bool = False  # this agency's system writes every check character X as x
    lineterminator: str = "\r\n"
    rows: list[Event] = field(default_factory=list)


_EN_RESULT = {"成功": "pass", "失败": "fail"}

# Row quirks (spec §5, §6) and their weights.
_QUIRKS = _weighted(
    "id15:20 lower_x:10 fullwidth:8 apostrophe:14 spaces:12 name_space:8 dup:12 dup_variant:5 blank:3 "
    "bad_check:2 bad_date:2 no_id:1 no_date:1 no_name:1 no_required:1"
)
_QUIRK_NAMES, _QUIRK_CUM = _cum(_QUIRKS)
_BENIGN_ID = ("id15", "lower_x", "fullwidth", "apostrophe", "spaces")
_REJECTED = frozenset(("bad_check", "bad_date", "no_id", "no_date", "no_name", "no_required"))
# The required column besides ID, name and date, where the kind has one (kinds.py: required=True).
_REQUIRED_OTHER = {
    kind.code: tuple(a for c in kind.others if c.required for a in c.aliases) for kind in BUILTIN_KINDS
}


def _quarter(day: int) -> tuple[int, int]:
    d = _ymd(day)
    return d.year, (d.month - 1) // 3 + 1


def _half(day: int) -> tuple[int, int]:
    d = _ymd(day)
    return d.year, 1 if d.month <= 6 else 2


def _year(day: int) -> tuple[int, int]:
    return _ymd(day).year, 0


def _quarter_end(q: tuple[int, int]) -> int:
    year, n = q
    return add_months(date(year, 3 * n - 2, 1), 3).toordinal() - 1


def _group(events: list[Event], key: Callable[[int], tuple[int, int]]) -> dict[tuple[int, int], list[Event]]:
    groups: dict[tuple[int, int], list[Event]] = {}
    for e in events:
        groups.setdefault(key(e[0]), []).append(e)
    return dict(sorted(groups.items()))


def _half_name(h: int) -> str:
    return "上" if h == 1 else "下"


def _cols(text: str) -> tuple[_Col, ...]:
    """Columns from `header:source` items: `"证件号码:id 姓名:name 乘车日期:date 车次:p0"`.

    A source ending in `>en` writes results in English (pass/fail); one ending in `#` is a float
    column in Parquet.
    """
    columns = []
    for item in text.split():
        header, source = item.split(":", 1)
        values = _EN_RESULT if source.endswith(">en") else None
        number = source.endswith("#")
        columns.append(_Col(header, source.removesuffix(">en").removesuffix("#"), values, number))
    return tuple(columns)


def _layout(prov: _Province) -> list[_FeedSpec]:
    """Which agency sends which files: the events split by kind, period and source."""
    rng, w, as_of = prov.rng, prov.w, prov.as_of
    events = prov.events
    province = prov.province_name
    specs: list[_FeedSpec] = []
    add = specs.append

    # rail (12306): one file a quarter, in the three styles its export has had
    by_quarter = _group(events["rail"], _quarter)
    quarters = list(by_quarter)
    for q, nxt in itertools.pairwise(quarters):  # a re-sent last week: the same trips in the next file too
        by_quarter[nxt].extend(e for e in by_quarter[q] if _quarter_end(q) - e[0] < 7 and rng.random() < 0.03)
    for i, ((year, n), rows) in enumerate(by_quarter.items()):
        name = f"rail_{year}q{n}.csv"
        if i % 3 == 0:
            columns = _cols(
                "序号:seq 证件类型:=居民身份证 证件号码:id 姓名:name 乘车日期:date 车次:p0 出发站:p1 到达站:p2 席别:seat"
            )
            title = (f"{year}年第{_CN_NUM[n - 1]}季度铁路旅客实名制出行数据",) + ("",) * (len(columns) - 1)
            add(_FeedSpec(name, "rail", columns, "gb18030", "slash", titles=(title,), rows=rows))
        elif i % 3 == 1:
            columns = _cols("身份证号:id 姓名:name 出行日期:date 车次:p0 出发站:p1 到达站:p2 发车时间:clock")
            add(
                _FeedSpec(
                    name,
                    "rail",
                    columns,
                    "utf-8-sig",
                    "iso",
                    mixed_dates=0.02,
                    lineterminator="\n",
                    rows=rows,
                )
            )
        else:
            columns = _cols(
                "id_number:id name:name travel_date:date train_no:p0 from_station:p1 to_station:p2 seat_no:seatno"
            )
            add(_FeedSpec(name, "rail", columns, "utf-8", "compact", lower_x=True, rows=rows))

    # flight (civil aviation): one file a half-year
    for (year, h), rows in _group(events["flight"], _half).items():
        name = f"flight_{year}h{h}.csv"
        if h == 1:
            columns = _cols("证件号码:id 姓名:name 航班日期:date 航班号:p0 出发地:p1 目的地:p2 舱位:cabin")
            add(_FeedSpec(name, "flight", columns, "utf-8", "datetime", rows=rows))
        else:
            columns = _cols("id_number:id name:name travel_date:date flight_no:p0 origin:p1 destination:p2")
            add(_FeedSpec(name, "flight", columns, "utf-8-sig", "iso", rows=rows))

    # hospital (medical-insurance settlements): one GBK file a half-year
    for (year, h), rows in _group(events["hospital"], _half).items():
        name = f"hospital_yibao_{year}h{h}.csv"
        if h == 1:  # both dates: 出院日期 is the one that counts (the first alias of spec §3)
            columns = _cols(
                "序号:seq 社会保障号码:id 姓名:name 医院名称:p0 入院日期:p1:date 出院日期:date 住院天数:p2 医疗总费用:p3"
            )
            title = (f"{province}医疗保障局住院结算数据（{year}年{_half_name(h)}半年）",)
            add(_FeedSpec(name, "hospital", columns, "gb18030", "cn", titles=(title,), rows=rows))
        else:
            columns = _cols(
                "公民身份号码:id 姓名:name 医院名称:p0 出院日期:date 医疗总费用:p3 结算类别:=住院"
            )
            add(_FeedSpec(name, "hospital", columns, "gb18030", "slash", mixed_dates=0.05, rows=rows))

    # checkup (health commission): one file a year
    for (year, _), rows in _group(events["checkup"], _year).items():
        columns = _cols(
            "公民身份号码:id 姓名:name 性别:sex 体检日期:date 体检机构:p0 体检类型:=老年人健康体检"
        )
        add(
            _FeedSpec(
                f"checkup_{year}.csv", "checkup", columns, "utf-8-sig", "dot", mixed_dates=0.03, rows=rows
            )
        )

    # border (exit-entry administration): one file a year
    for (year, _), rows in _group(events["border"], _year).items():
        columns = _cols("证件号码:id 姓名:name 出入境日期:date 出入境类型:p0 口岸:p1 前往国家（地区）:p2")
        add(_FeedSpec(f"border_{year}.csv", "border", columns, "utf-8", "iso", rows=rows))

    # app_auth (the 民生山西 app): one file a quarter; the last full quarter as Parquet
    app = _group(events["app_auth"], _quarter)
    full = [q for q in app if _quarter_end(q) <= w.d]
    parquet_q = full[-1] if full else next(iter(app), None)
    for (year, n), rows in app.items():
        name = f"app_auth_minsheng_{year}q{n}"
        if (year, n) == parquet_q:
            columns = _cols(
                "身份证号:id 姓名:name 认证时间:date 认证结果:p0 相似度:p1# 认证渠道:=民生山西APP"
            )
            add(_FeedSpec(f"{name}.parquet", "app_auth", columns, fmt="parquet", quirk_rate=0.01, rows=rows))
        elif n % 2:
            columns = _cols(
                "身份证号:id 姓名:name 认证时间:date 认证结果:p0 相似度:p1 认证渠道:=民生山西APP 设备型号:phone_model"
            )
            add(_FeedSpec(f"{name}.csv", "app_auth", columns, "utf-8", "datetime", rows=rows))
        else:
            columns = _cols("id_number:id name:name auth_time:date result:p0>en similarity:p1")
            add(_FeedSpec(f"{name}.csv", "app_auth", columns, "utf-8", "slash_time", rows=rows))

    # terminal_auth (self-service terminals in the service halls): one GBK file a half-year
    for (year, h), rows in _group(events["terminal_auth"], _half).items():
        columns = _cols("身份证号:id 姓名:name 认证时间:date 认证方式:p0 设备编号:p1 认证结果:p2 认证网点:p3")
        add(
            _FeedSpec(
                f"terminal_auth_{year}h{h}.csv", "terminal_auth", columns, "gb18030", "datetime", rows=rows
            )
        )

    # unit_confirm (what the units report back): one workbook a half-year
    for (year, h), rows in _group(events["unit_confirm"], _half).items():
        columns = _cols(
            "序号:seq 单位编号:unit_no 单位名称:unit_name 姓名:name 身份证号:id 确认日期:date 确认方式:p0 确认结果:p1 备注:p2"
        )
        title = (f"领取养老保险待遇资格确认情况汇总表（{year}年{_half_name(h)}半年）",)
        add(
            _FeedSpec(
                f"unit_confirm_{year}h{h}.xlsx",
                "unit_confirm",
                columns,
                fmt="xlsx",
                mixed_dates=0.02,
                titles=(title,),
                rows=rows,
            )
        )

    # overseas_review (consulates): one file a year
    for (year, _), rows in _group(events["overseas_review"], _year).items():
        columns = _cols("id_number:id name:name review_date:date country:p0 consulate:p1")
        add(
            _FeedSpec(
                f"overseas_review_{year}.csv", "overseas_review", columns, "utf-8-sig", "slash", rows=rows
            )
        )

    # release (prisons): one file, everything up to the extraction
    if events["release"]:
        columns = _cols("身份证号:id 姓名:name 释放日期:date 监狱名称:p0 原判刑期:p1")
        titles = (
            ("刑满释放人员信息",),
            ("数据提供单位：司法厅", f"截至{as_of.year}年{as_of.month}月{as_of.day}日"),
        )
        add(
            _FeedSpec(
                f"release_{as_of.year}.csv",
                "release",
                columns,
                "gb18030",
                "cn",
                titles=titles,
                rows=events["release"],
            )
        )

    # death: the police (GBK, a half-year each), civil affairs (XLSX, a year), health commission (CSV)
    police = _group([e for e in events["death"] if e[2] == "公安"], _half)
    for half, nxt in itertools.pairwise(
        list(police)
    ):  # late reports (补报) sent again with the next half-year
        police[nxt].extend(e for e in police[half] if rng.random() < 0.03)
    for (year, h), rows in police.items():
        columns = _cols("公民身份号码:id 姓名:name 死亡日期:date 信息来源:p0 注销原因:=死亡 注销日期:later")
        add(_FeedSpec(f"death_gongan_{year}h{h}.csv", "death", columns, "gb18030", "compact", rows=rows))
    for (year, _), rows in _group([e for e in events["death"] if e[2] == "民政"], _year).items():
        columns = _cols("序号:seq 姓名:name 身份证号:id 性别:sex 死亡日期:date 信息来源:p0")
        title = (f"{province}{year}年死亡人员信息（民政）",)
        # Earlier years come from the civil-affairs system's old export: Excel 97-2003 (.xls).
        fmt = "xls" if year < as_of.year else "xlsx"
        add(_FeedSpec(f"death_minzheng_{year}.{fmt}", "death", columns, fmt=fmt, titles=(title,), rows=rows))
    for (year, _), rows in _group([e for e in events["death"] if e[2] == "卫健"], _year).items():
        columns = _cols("id_number:id name:name death_date:date source:p0 死亡医学证明编号:cert_no")
        add(_FeedSpec(f"death_weijian_{year}.csv", "death", columns, "utf-8", "datetime", rows=rows))

    # cremation (funeral homes): one GBK file a half-year
    for (year, h), rows in _group(events["cremation"], _half).items():
        columns = _cols("身份证号:id 姓名:name 逝者性别:sex 火化日期:date 殡仪馆:p0")
        add(
            _FeedSpec(
                f"cremation_{year}h{h}.csv",
                "cremation",
                columns,
                "gb18030",
                "iso",
                mixed_dates=0.1,
                rows=rows,
            )
        )

    # declared (courts): one file
    if events["declared"]:
        columns = _cols("身份证号:id 姓名:name 宣告日期:date 宣告类型:p0 判决法院:p1 案号:p2")
        add(
            _FeedSpec(
                f"declared_{as_of.year}.csv", "declared", columns, "utf-8", "cn", rows=events["declared"]
            )
        )

    # sentence: prisons (custodial, XLSX) and community corrections (社区矫正: non-custodial, CSV)
    community = [e for e in events["sentence"] if any(m in e[3] for m in _COMMUNITY_MARKERS)]
    custody = [e for e in events["sentence"] if not any(m in e[3] for m in _COMMUNITY_MARKERS)]
    if community:
        columns = _cols(
            "身份证号:id 姓名:name 判决日期:date 刑期截止日期:p0:date 刑罚种类:p1 罪名:p2 判决法院:p3"
        )
        add(
            _FeedSpec(
                f"sentence_sqjz_{as_of.year}.csv", "sentence", columns, "utf-8-sig", "compact", rows=community
            )
        )
    if custody:
        columns = _cols(
            "身份证号:id 姓名:name 刑期起始日期:date 刑期截止日期:p0:date 刑罚种类:p1 罪名:p2 判决法院:p3"
        )
        add(
            _FeedSpec(
                f"sentence_jianyu_{as_of.year}.xlsx",
                "sentence",
                columns,
                fmt="xlsx",
                titles=(("在押服刑人员信息",),),
                rows=custody,
            )
        )
    return specs


# Cell values (dates still day ordinals), the quirk of the row, and its time of day in seconds
# (drawn once a record, so that a duplicate row repeats it).
_Row = tuple[list[Any], str, int]


class _Writer:
    """Writes one feed file: its rows sorted by date, with the quirks of spec §5 and §6."""

    def __init__(self, prov: _Province, spec: _FeedSpec) -> None:
        self.prov = prov
        self.rng = prov.rng
        self.spec = spec
        self.text = prov.text
        self.people = prov.people
        self.seq = 0
        sources = [c.source for c in spec.columns]
        self.getters = [self.getter(c) for c in spec.columns]
        self.id_at = sources.index("id")
        self.name_at = sources.index("name")
        self.date_at = sources.index("date")
        self.seq_at = sources.index("seq") if "seq" in sources else None
        required = _REQUIRED_OTHER[spec.kind]
        self.required_at = next((i for i, c in enumerate(spec.columns) if c.header in required), None)

    def getter(self, col: _Col) -> Callable[[Event], Any]:
        src, people, rng = col.source, self.people, self.rng
        units = self.prov.units
        if src == "id":
            return lambda e: people.ids[e[1]]
        if src == "name":
            return lambda e: people.names[e[1]]
        if src == "date":
            return itemgetter(0)
        if src == "seq":
            return lambda e: ""  # numbered as written
        if src.startswith("="):
            value = src[1:]
            return lambda e: value
        if src == "sex":
            return lambda e: "男" if int(people.ids[e[1]][16]) % 2 else "女"
        if src == "unit_no":
            return lambda e: units[people.units[e[1]]].no
        if src == "unit_name":
            return lambda e: units[people.units[e[1]]].name
        if src == "clock":
            return lambda e: f"{rng.randrange(6, 23):02d}:{rng.randrange(0, 60, 5):02d}"
        if src == "seat":
            return lambda e: rng.choice(
                ("二等座", "二等座", "二等座", "一等座", "硬卧", "硬座", "软卧", "无座")
            )
        if src == "seatno":
            return lambda e: f"{rng.randrange(1, 17):02d}车{rng.randrange(1, 19):03d}{rng.choice('ABCDF')}号"
        if src == "cabin":
            return lambda e: rng.choice(("Y", "Y", "Y", "Y", "B", "F", "W"))
        if src == "phone_model":
            return lambda e: rng.choice(("HUAWEI", "vivo", "OPPO", "Xiaomi", "iPhone", "HONOR", ""))
        if src == "cert_no":
            return lambda e: f"{rng.choice('ABCDEFGHJKLM')}{rng.randrange(10**9):09d}"
        if src == "later":  # a date some days after the record's own (注销日期)
            return lambda e: e[0] + rng.randrange(1, 40)
        if src.endswith(":date"):
            k = int(src[1 : src.index(":")]) + 2
            return lambda e: e[k] or None
        k = int(src[1:]) + 2
        if col.values:
            values = col.values
            return lambda e: values.get(e[k], e[k])
        return itemgetter(k)

    def rows(self) -> Iterator[_Row]:
        """The rows in file order, blank lines and duplicates included."""
        spec, rng = self.spec, self.rng
        ids = self.people.ids
        rate = spec.quirk_rate
        protected = self.prov.protected
        for e in sorted(spec.rows, key=itemgetter(0, 1)):
            cells = [g(e) for g in self.getters]
            quirk = rng.choices(_QUIRK_NAMES, cum_weights=_QUIRK_CUM)[0] if rng.random() < rate else ""
            if quirk in _REJECTED and e[1] in protected:
                quirk = ""
            secs = rng.randrange(7 * 3600, 22 * 3600)
            id18 = ids[e[1]]
            if spec.lower_x and id18[17] == "X":
                cells[self.id_at] = id18.lower()
            if quirk in _BENIGN_ID:
                cells[self.id_at] = _benign_id(id18, quirk, rng)
            elif quirk == "name_space":
                cells[self.name_at] = _spaced_name(cells[self.name_at])
            elif quirk == "bad_check":
                cells[self.id_at] = _bad_check(id18, rng)
            elif quirk == "no_id":
                cells[self.id_at] = ""
            elif quirk == "no_name":
                cells[self.name_at] = ""
            elif quirk == "no_date":
                cells[self.date_at] = None
            elif quirk == "no_required" and self.required_at is not None:
                cells[self.required_at] = ""
            elif quirk == "blank":
                yield [], "blank", 0
                quirk = ""
            again: list[Any] | None = None
            if quirk == "dup":
                again = list(cells)
            elif quirk == "dup_variant":  # the same record again, written another way
                again = list(cells)
                again[self.id_at] = _benign_id(id18, rng.choice(_BENIGN_ID), rng)
                if rng.random() < 0.5:
                    again[self.name_at] = _spaced_name(cells[self.name_at])
            yield cells, quirk, secs
            if again is not None:  # copied before the writer turned the cells into text
                yield again, "dup", secs

    def row_style(self) -> str:
        spec = self.spec
        if spec.mixed_dates and self.rng.random() < spec.mixed_dates:
            return self.rng.choice(("iso", "slash", "compact", "cn", "dot"))
        return spec.date_style

    def date_text(self, day: int, quirk: str, style: str, secs: int) -> str:
        if quirk == "bad_date":
            return _DateText.impossible(style, _ymd(day).year, self.rng)
        text = self.text(style, day)
        if style == "datetime":
            return f"{text} {secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
        if style == "slash_time":
            return f"{text} {secs // 3600}:{secs % 3600 // 60:02d}"
        return text

    def number(self, cells: list[Any]) -> None:
        if self.seq_at is not None:
            self.seq += 1
            cells[self.seq_at] = self.seq

    def write(self, feeds: Path) -> list[Path]:
        spec = self.spec
        if spec.fmt == "csv":
            self.write_csv(feeds / spec.name)
            return [feeds / spec.name]
        if spec.fmt == "parquet":
            self.write_parquet(feeds / spec.name)
            return [feeds / spec.name]
        if spec.fmt == "xls":
            self.write_xls(feeds / spec.name, list(self.rows()))
            return [feeds / spec.name]
        rows = list(self.rows())
        parts = [rows[i : i + XLSX_MAX_ROWS] for i in range(0, len(rows), XLSX_MAX_ROWS)] or [[]]
        stem = spec.name.removesuffix(".xlsx")
        paths = [
            feeds / (spec.name if len(parts) == 1 else f"{stem}_part{n}.xlsx")
            for n in range(1, len(parts) + 1)
        ]
        for path, part in zip(paths, parts, strict=True):
            self.write_xlsx(path, part)
        return paths

    # -- CSV -------------------------------------------------------------------------------------

    def write_csv(self, path: Path) -> None:
        spec, rng = self.spec, self.rng
        dates = [i for i, c in enumerate(spec.columns) if c.is_date and i != self.date_at]
        width = len(spec.columns)
        with path.open("w", encoding=spec.encoding, newline="") as fh:
            out = csv.writer(fh, lineterminator=spec.lineterminator)
            out.writerows(spec.titles)
            out.writerow([c.header for c in spec.columns])
            for cells, quirk, secs in self.rows():
                if quirk == "blank":  # an empty line, or a row of empty cells as spreadsheets export it
                    out.writerow([""] * width if rng.random() < 0.5 else [])
                    continue
                style = self.row_style()
                day = cells[self.date_at]
                cells[self.date_at] = "" if day is None else self.date_text(day, quirk, style, secs)
                other_style = "iso" if style in ("datetime", "slash_time") else style
                for i in dates:
                    cells[i] = "" if cells[i] is None else self.text(other_style, cells[i])
                self.number(cells)
                out.writerow(cells)

    # -- XLSX ------------------------------------------------------------------------------------

    def write_xlsx(self, path: Path, rows: list[_Row]) -> None:
        spec, as_of, rng = self.spec, self.prov.as_of, self.rng
        options = {
            "in_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        }
        wb = xlsxwriter.Workbook(str(path), options)
        # A fixed creation time: the same seed writes the same bytes.
        wb.set_properties(
            {
                "created": datetime.combine(as_of, time(9, 0)),
                "author": self.prov.province_name,
                "title": spec.name,
            }
        )
        ws = wb.add_worksheet("Sheet1")
        title_fmt = wb.add_format({"bold": True, "align": "center", "valign": "vcenter", "font_size": 14})
        head_fmt = wb.add_format({"bold": True, "border": 1, "align": "center", "bg_color": "#DDEBF7"})
        day_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
        text_fmt = wb.add_format({"num_format": "@"})
        ncols = len(spec.columns)
        r = 0
        for title in spec.titles:  # a merged title row
            ws.merge_range(r, 0, r, ncols - 1, title[0], title_fmt)
            ws.set_row(r, 28)
            r += 1
        for c, col in enumerate(spec.columns):
            ws.write_string(r, c, col.header, head_fmt)
            ws.set_column(c, c, 22 if col.source in ("id", "unit_name") else 12)
        ws.freeze_panes(r + 1, 0)
        r += 1
        dates = {i for i, col in enumerate(spec.columns) if col.is_date}
        for cells, quirk, _ in rows:
            if quirk == "blank":
                r += 1
                continue
            self.number(cells)
            style = self.row_style()
            for c, value in enumerate(cells):
                if value is None or value == "":
                    continue
                if c in dates:
                    if c == self.date_at and quirk == "bad_date":
                        ws.write_string(r, c, _DateText.impossible("iso", _ymd(value).year, rng))
                    elif style != spec.date_style:  # typed in as text
                        ws.write_string(r, c, self.text(style, value))
                    else:  # a real Excel date cell
                        ws.write_datetime(r, c, _ymd(value), day_fmt)
                elif isinstance(value, int):
                    ws.write_number(r, c, value)
                elif c == self.id_at and quirk == "id15" and value.isdigit() and rng.random() < 0.5:
                    ws.write_number(r, c, int(value))  # an old 15-digit number typed in as a number
                elif c == self.id_at:
                    ws.write_string(r, c, value, text_fmt)
                else:
                    ws.write_string(r, c, value)
            r += 1
        wb.close()

    # -- XLS (Excel 97-2003) ---------------------------------------------------------------------

    def write_xls(self, path: Path, rows: list[_Row]) -> None:
        """The old binary format many agencies still send: a title row, real date cells."""
        import xlwt

        spec = self.spec
        book = xlwt.Workbook(encoding="utf-8")
        sheet = book.add_sheet("Sheet1")
        day_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
        bold = xlwt.easyxf("font: bold on")
        r = 0
        for title in spec.titles:
            sheet.write_merge(r, r, 0, len(spec.columns) - 1, title[0], bold)
            r += 1
        for c, col in enumerate(spec.columns):
            sheet.write(r, c, col.header, bold)
        r += 1
        dates = {i for i, col in enumerate(spec.columns) if col.is_date}
        for cells, quirk, _ in rows[:65_000]:  # an .xls sheet holds 65,536 rows
            if quirk == "blank":
                r += 1
                continue
            self.number(cells)
            for c, value in enumerate(cells):
                if value is None or value == "":
                    continue
                if c in dates:
                    if c == self.date_at and quirk == "bad_date":
                        sheet.write(r, c, _DateText.impossible("iso", _ymd(value).year, self.rng))
                    else:
                        sheet.write(r, c, _ymd(value), day_style)
                else:
                    sheet.write(r, c, value)
            r += 1
        book.save(str(path))

    # -- Parquet ---------------------------------------------------------------------------------

    def write_parquet(self, path: Path) -> None:
        spec = self.spec
        columns: list[list[Any]] = [[] for _ in spec.columns]
        for cells, quirk, secs in self.rows():
            if quirk == "blank":
                continue
            day = cells[self.date_at]
            if day is not None:  # an impossible date cannot be stored in a timestamp column
                cells[self.date_at] = datetime.combine(
                    _ymd(day), time(secs // 3600, secs % 3600 // 60, secs % 60)
                )
            for column, value in zip(columns, cells, strict=True):
                column.append(None if value == "" else value)
        arrays = []
        for i, col in enumerate(spec.columns):
            if i == self.date_at:
                arrays.append(pa.array(columns[i], type=pa.timestamp("s")))
            elif col.number:
                arrays.append(
                    pa.array([None if v is None else float(v) for v in columns[i]], type=pa.float64())
                )
            else:
                arrays.append(pa.array(columns[i], type=pa.string()))
        table = pa.table(arrays, names=[c.header for c in spec.columns])
        pq.write_table(table, path, compression="snappy")


# ---------------------------------------------------------------------------------------------
# The roster file


_ROSTER_QUIRKS: tuple[tuple[str, float, int], ...] = (
    # (quirk, share of recipients, minimum)
    ("id15", 0.006, 2),  # the old 15-digit number
    ("fullwidth", 0.001, 1),
    ("apostrophe", 0.005, 1),
    ("spaces", 0.003, 1),
    ("name_space", 0.003, 1),
    ("status_empty", 0.002, 1),  # empty 待遇状态 = 正常
    ("date_styles", 0.005, 2),  # 退休日期 / 上次认证日期 in the other formats of §5
    ("bad_check", 0.0002, 2),
    ("bad_cert_date", 0.0001, 1),  # 上次认证日期 on a day that does not exist
    ("no_person_no", 0.0001, 1),
    ("no_name", 0.0001, 1),
    ("no_id", 0.0001, 1),
    ("no_unit_no", 0.0001, 1),
)


def _roster_rows(prov: _Province, persons: list[_Person], n: int) -> list[list[str]]:
    """The roster rows in file order (by unit), with the quirks of spec §5 and §6."""
    rng, text = prov.rng, prov.text
    units = prov.units
    order = sorted(persons, key=lambda p: (units[p.unit].no, p.pid))
    serial = rng.randrange(100, 5000)
    for person in order:
        serial += rng.choice((1, 1, 1, 2, 3, 7))
        row = person.row
        row[_COL["个人编号"]] = f"{units[person.unit].no[:4]}{serial:09d}"
        row[_COL["待遇状态"]] = person.status
        row[_COL["状态变更日期"]] = text("iso", person.since) if person.since else ""
        row[_COL["停发原因"]] = person.reason
        row[_COL["退休日期"]] = text("iso", person.retired)
        row[_COL["上次认证日期"]] = text("iso", person.last_cert) if person.last_cert else ""
        row[_COL["是否境外居住"]] = "是" if person.abroad else "否"
    # Quirks go to ordinary people (the scenarios stay clean), one quirk a person.
    plain = [p for p in order if p.scenario == "recent"]
    rng.shuffle(plain)
    taken = 0
    for quirk, share, minimum in _ROSTER_QUIRKS:
        count = _count(n, share, minimum)
        for person in plain[taken : taken + count]:
            _roster_quirk(prov, person, quirk)
        taken += count
    lower = [p for p in plain[taken:] if p.row[_COL["身份证号"]].endswith("X")]
    for person in lower[: max(1, len(lower) // 10)]:
        person.row[_COL["身份证号"]] = person.row[_COL["身份证号"]].lower()
    taken += max(1, len(lower) // 10) if lower else 0
    # Rows beyond one per person, each under a row of the same unit.
    extra, host = iter(plain[taken:]), iter(order[:: max(1, len(order) // 97)])
    after: dict[int, list[list[str]]] = {}
    for _ in range(_count(n, *_EXTRA_ROWS["duplicate"])):  # the same row exported twice
        row = next(extra).row
        after.setdefault(id(row), []).append(list(row))
    for _ in range(_count(n, *_EXTRA_ROWS["person_no"])):  # one 个人编号, two rows that differ
        row = next(extra).row
        other = list(row)
        cents = rng.randrange(200_000, 600_000)
        other[_COL["月养老金（元）"]] = f"{cents // 100}.{cents % 100:02d}"
        other[_COL["联系电话"]] = _mobile(rng)
        after.setdefault(id(row), []).append(other)
    for _ in range(_count(n, *_EXTRA_ROWS["id_number"])):  # one ID drawing two pensions (重复领取)
        other = list(next(extra).row)
        neighbour = next(host)
        unit = units[neighbour.unit]
        serial += 1
        other[_COL["个人编号"]] = f"{unit.no[:4]}{serial:09d}"
        other[_COL["单位编号"]], other[_COL["单位名称"]] = unit.no, unit.name
        cents = rng.randrange(200_000, 400_000)
        other[_COL["月养老金（元）"]] = f"{cents // 100}.{cents % 100:02d}"
        after.setdefault(id(neighbour.row), []).append(other)
    rows = []
    for person in order:
        rows.append(person.row)
        rows.extend(after.get(id(person.row), ()))
    return rows


# Roster rows beyond one per person: (share of recipients, minimum).
_EXTRA_ROWS: dict[str, tuple[float, int]] = {
    "duplicate": (0.00004, 1),  # exact duplicates
    "person_no": (0.00002, 1),  # a second, different row under one 个人编号
    "id_number": (0.00004, 1),  # a second 个人编号 on one 身份证号
}


def _roster_extra_rows(n: int) -> int:
    return sum(_count(n, share, minimum) for share, minimum in _EXTRA_ROWS.values())


def _roster_quirk(prov: _Province, person: _Person, quirk: str) -> None:
    rng, row = prov.rng, person.row
    at_id, at_name = _COL["身份证号"], _COL["姓名"]
    id18 = row[at_id]
    if quirk in _BENIGN_ID:
        row[at_id] = _benign_id(id18, quirk, rng)
        if quirk == "spaces" and rng.random() < 0.5:
            row[at_name] = f" {row[at_name]} "
    elif quirk == "name_space":
        row[at_name] = _spaced_name(row[at_name])
    elif quirk == "status_empty":
        row[_COL["待遇状态"]] = ""
    elif quirk == "date_styles":
        style = rng.choice(("slash", "compact", "cn", "dot"))
        row[_COL["退休日期"]] = prov.text(style, person.retired)
        if person.last_cert:
            row[_COL["上次认证日期"]] = prov.text(style, person.last_cert)
    elif quirk == "bad_check":
        row[at_id] = _bad_check(id18, rng)
    elif quirk == "bad_cert_date":
        row[_COL["上次认证日期"]] = _DateText.impossible("iso", prov.as_of.year, rng)
    elif quirk == "no_person_no":
        row[_COL["个人编号"]] = ""
    elif quirk == "no_name":
        row[at_name] = ""
    elif quirk == "no_id":
        row[at_id] = ""
    elif quirk == "no_unit_no":
        row[_COL["单位编号"]] = ""


def _write_roster(path: Path, rows: list[list[str]], prov: _Province) -> None:
    as_of = prov.as_of
    with path.open("w", encoding="gb18030", newline="") as fh:
        out = csv.writer(fh, lineterminator="\r\n")
        out.writerow(
            [f"{prov.province_name}{as_of.year}年养老保险待遇领取人员名册"] + [""] * (len(ROSTER_HEADER) - 1)
        )
        out.writerow([f"制表单位：{prov.province_name}社会保险局", "", "", f"数据截至：{as_of.isoformat()}"])
        out.writerow(ROSTER_HEADER)
        out.writerows(rows)


# ---------------------------------------------------------------------------------------------


def generate_province(
    out_dir: Path,
    *,
    recipients: int = 50_000,
    as_of: date,
    seed: int = 2018,
    home_province: str = "14",
) -> DemoProvince:
    """Write `out_dir/roster.csv` and `out_dir/feeds/*` for a province of `recipients` pensioners.

    `recipients` is exactly the number of roster rows whose 待遇状态 is 正常 or 暂停 (or empty),
    deliberately broken and duplicated rows included; about 1% more rows are 终止. Feed files
    already in `out_dir/feeds` whose names a feed kind claims are removed first, so that a second
    run into the same directory leaves no stale feed behind.

    Roster quirks (spec §5, §6), small shares each: two title rows above the header; 15-digit old
    IDs; lowercase x; full-width digits; a leading apostrophe; spaces around or inside IDs and
    names; dates in the other formats of §5; an empty 待遇状态 (= 正常); bad check digits; an
    impossible 上次认证日期 (2026-02-30); a missing 个人编号, 姓名, 身份证号 or 单位编号; exact
    duplicate rows; two rows under one 个人编号 that differ; one 身份证号 under two 个人编号.

    Feed quirks: UTF-8, UTF-8 with BOM and GB18030 files; title rows (merged in XLSX); Chinese,
    alias and English headers; extra columns, and two date columns in one hospital file; every
    date format of §5, Excel date cells, a Parquet timestamp column; row-level ID variants as in
    the roster, a few 15-digit IDs stored as numbers in XLSX; bad check digits, impossible dates,
    missing values; exact duplicates and the same record written differently, within a file and
    across two files of one kind; blank lines and rows of empty cells.
    """
    if recipients < MIN_RECIPIENTS:
        raise ValueError(f"a demo province needs at least {MIN_RECIPIENTS} recipients, not {recipients}")
    if len(home_province) != 2 or home_province not in PROVINCES:
        raise ValueError(f"home_province must be a 2-digit province code, not {home_province!r}")
    rng = random.Random(seed)
    prov = _Province(rng, as_of, home_province)
    n = recipients
    people_count = n - _roster_extra_rows(n)
    weights = prov.make_units(max(3, round(n / 150)))
    unit_cum = list(itertools.accumulate(weights))
    unit_index = range(len(weights))
    scenarios = _scenario_list(people_count, rng, edges=people_count >= 200)
    scenarios += ["terminated"] * max(1, round(n / 99))
    builder = _RosterBuilder(prov)
    persons = [builder.person(s, rng.choices(unit_index, cum_weights=unit_cum)[0]) for s in scenarios]
    for person in persons:
        _play(prov, person)
        if person.scenario not in ("recent", "terminated"):
            prov.protected.add(person.pid)
        if person.status == "正常" and not person.since and rng.random() < 0.03:
            person.since = _month_start(prov.day_in(person.retired, prov.w.d))  # 恢复发放, long ago
    _outsiders(prov, round(0.3 * n))
    rows = _roster_rows(prov, persons, n)

    out_dir = Path(out_dir)
    feeds = out_dir / "feeds"
    feeds.mkdir(parents=True, exist_ok=True)
    kinds = tuple(BUILTIN_KINDS)
    for old in sorted(feeds.iterdir()):
        if old.is_file() and kind_for_filename(old.name, kinds) is not None:
            old.unlink()
    roster = out_dir / "roster.csv"
    _write_roster(roster, rows, prov)
    files = [roster]
    for spec in _layout(prov):
        files.extend(_Writer(prov, spec).write(feeds))
    return DemoProvince(roster=roster, feeds=feeds, recipients=n, files=tuple(sorted(files)))
