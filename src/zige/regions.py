"""Administrative division codes (行政区划代码, GB/T 2260) used by the demo generator.

The first six digits of a resident ID number are the code of the county where it was first
issued. Codes of abolished or renamed counties stay valid on the IDs that carry them, so the
table keeps some (``current=False``): 忻州地区's 142201, 吕梁地区's 142301, the districts of 大同
and 长治 merged in 2018, and so on.

This is a small, hand-checked sample, not the full list: the engine never checks region codes
(see `zige.ids`), only the demo needs real-looking ones.
"""

from __future__ import annotations

from dataclasses import dataclass

PROVINCES: dict[str, str] = {
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "14": "山西省",
    "15": "内蒙古自治区",
    "21": "辽宁省",
    "22": "吉林省",
    "23": "黑龙江省",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "34": "安徽省",
    "35": "福建省",
    "36": "江西省",
    "37": "山东省",
    "41": "河南省",
    "42": "湖北省",
    "43": "湖南省",
    "44": "广东省",
    "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市",
    "51": "四川省",
    "52": "贵州省",
    "53": "云南省",
    "54": "西藏自治区",
    "61": "陕西省",
    "62": "甘肃省",
    "63": "青海省",
    "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
}


@dataclass(frozen=True)
class Region:
    """A county-level division: its 6-digit code and names."""

    code: str
    city: str  # 地级市 (empty for the districts of a municipality)
    county: str
    current: bool = True

    @property
    def province(self) -> str:
        return PROVINCES[self.code[:2]]

    @property
    def full_name(self) -> str:
        """山西省太原市小店区, 北京市东城区."""
        return f"{self.province}{self.city}{self.county}"


def _r(code: str, city: str, county: str, current: bool = True) -> Region:
    return Region(code, city, county, current)


SHANXI: tuple[Region, ...] = (
    _r("140105", "太原市", "小店区"),
    _r("140106", "太原市", "迎泽区"),
    _r("140107", "太原市", "杏花岭区"),
    _r("140108", "太原市", "尖草坪区"),
    _r("140109", "太原市", "万柏林区"),
    _r("140110", "太原市", "晋源区"),
    _r("140121", "太原市", "清徐县"),
    _r("140122", "太原市", "阳曲县"),
    _r("140181", "太原市", "古交市"),
    _r("140212", "大同市", "新荣区"),
    _r("140213", "大同市", "平城区"),
    _r("140214", "大同市", "云冈区"),
    _r("140215", "大同市", "云州区"),
    _r("140221", "大同市", "阳高县"),
    _r("140225", "大同市", "浑源县"),
    _r("140302", "阳泉市", "城区"),
    _r("140303", "阳泉市", "矿区"),
    _r("140311", "阳泉市", "郊区"),
    _r("140321", "阳泉市", "平定县"),
    _r("140322", "阳泉市", "盂县"),
    _r("140403", "长治市", "潞州区"),
    _r("140404", "长治市", "上党区"),
    _r("140406", "长治市", "潞城区"),
    _r("140423", "长治市", "襄垣县"),
    _r("140502", "晋城市", "城区"),
    _r("140522", "晋城市", "阳城县"),
    _r("140525", "晋城市", "泽州县"),
    _r("140581", "晋城市", "高平市"),
    _r("140602", "朔州市", "朔城区"),
    _r("140603", "朔州市", "平鲁区"),
    _r("140681", "朔州市", "怀仁市"),
    _r("140702", "晋中市", "榆次区"),
    _r("140703", "晋中市", "太谷区"),
    _r("140727", "晋中市", "祁县"),
    _r("140728", "晋中市", "平遥县"),
    _r("140781", "晋中市", "介休市"),
    _r("140802", "运城市", "盐湖区"),
    _r("140821", "运城市", "临猗县"),
    _r("140881", "运城市", "永济市"),
    _r("140882", "运城市", "河津市"),
    _r("140902", "忻州市", "忻府区"),
    _r("140922", "忻州市", "五台县"),
    _r("140981", "忻州市", "原平市"),
    _r("141002", "临汾市", "尧都区"),
    _r("141023", "临汾市", "襄汾县"),
    _r("141081", "临汾市", "侯马市"),
    _r("141082", "临汾市", "霍州市"),
    _r("141102", "吕梁市", "离石区"),
    _r("141181", "吕梁市", "孝义市"),
    _r("141182", "吕梁市", "汾阳市"),
)

# Abolished or renamed, still printed on the IDs of people registered there before the change.
SHANXI_ABOLISHED: tuple[Region, ...] = (
    _r("140202", "大同市", "城区", False),  # -> 平城区 140213 (2018)
    _r("140203", "大同市", "矿区", False),  # -> 云冈区 140214 (2018)
    _r("140211", "大同市", "南郊区", False),  # -> 云冈区 140214 (2018)
    _r("140402", "长治市", "城区", False),  # -> 潞州区 140403 (2018)
    _r("140411", "长治市", "郊区", False),  # -> 潞州区 140403 (2018)
    _r("140421", "长治市", "长治县", False),  # -> 上党区 140404 (2018)
    _r("140624", "朔州市", "怀仁县", False),  # -> 怀仁市 140681 (2018)
    _r("140726", "晋中市", "太谷县", False),  # -> 太谷区 140703 (2019)
    _r("142201", "忻州地区", "忻州市", False),  # -> 忻府区 140902 (2000)
    _r("142301", "吕梁地区", "离石市", False),  # -> 离石区 141102 (2003)
    _r("142401", "晋中地区", "榆次市", False),  # -> 榆次区 140702 (1999)
    _r("142601", "临汾地区", "临汾市", False),  # -> 尧都区 141002 (2000)
    _r("142701", "运城地区", "运城市", False),  # -> 盐湖区 140802 (2000)
)

# The current division that took over an abolished one (where people registered there live now).
SUCCESSORS: dict[str, str] = {
    "140202": "140213",
    "140203": "140214",
    "140211": "140214",
    "140402": "140403",
    "140411": "140403",
    "140421": "140404",
    "140624": "140681",
    "140726": "140703",
    "142201": "140902",
    "142301": "141102",
    "142401": "140702",
    "142601": "141002",
    "142701": "140802",
}

OTHER_PROVINCES: tuple[Region, ...] = (
    _r("110101", "", "东城区"),
    _r("110102", "", "西城区"),
    _r("110105", "", "朝阳区"),
    _r("110108", "", "海淀区"),
    _r("120101", "", "和平区"),
    _r("130102", "石家庄市", "长安区"),
    _r("130104", "石家庄市", "桥西区"),
    _r("130402", "邯郸市", "邯山区"),
    _r("150102", "呼和浩特市", "新城区"),
    _r("150202", "包头市", "东河区"),
    _r("210102", "沈阳市", "和平区"),
    _r("310101", "", "黄浦区"),
    _r("320102", "南京市", "玄武区"),
    _r("320103", "南京市", "白下区", False),  # -> 秦淮区 (2013)
    _r("370102", "济南市", "历下区"),
    _r("410102", "郑州市", "中原区"),
    _r("410105", "郑州市", "金水区"),
    _r("420102", "武汉市", "江岸区"),
    _r("510104", "成都市", "锦江区"),
    _r("610102", "西安市", "新城区"),
    _r("610113", "西安市", "雁塔区"),
    _r("620102", "兰州市", "城关区"),
)

REGIONS: tuple[Region, ...] = SHANXI + SHANXI_ABOLISHED + OTHER_PROVINCES
_BY_CODE: dict[str, Region] = {r.code: r for r in REGIONS}


def region(code: str) -> Region | None:
    """The region with this 6-digit code, if the table has it."""
    return _BY_CODE.get(code)
