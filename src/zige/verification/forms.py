"""Forms of the verification pages (the unit's report, the bureau's review and finding, the workbook)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms

from zige.verification.models import Finding, Method, Result

_DATE = forms.DateInput(attrs={"type": "date", "class": "input"}, format="%Y-%m-%d")


def _not_after(form: forms.Form, names: tuple[str, ...], today: date) -> None:
    """Dates of what has already happened: the browser's date picker stops at today (the
    service refuses a later day whatever is posted)."""
    for name in names:
        form.fields[name].widget.attrs["max"] = today.isoformat()


class ReportForm(forms.Form):
    """附件1's fields for one person (the files come from `request.FILES`)."""

    method = forms.ChoiceField(label="确认方式", choices=[("", "请选择"), *list(Method.choices)])
    method_note = forms.CharField(label="其他方式说明", max_length=100, required=False)
    result = forms.ChoiceField(label="确认结果", choices=Result.choices, widget=forms.RadioSelect)
    confirmed_on = forms.DateField(label="确认日期", widget=_DATE)
    address = forms.CharField(label="现居住地", max_length=300, required=False)
    health = forms.CharField(label="健康状况", max_length=100, required=False)
    lost_reason = forms.CharField(label="丧失原因", max_length=200, required=False)
    lost_on = forms.DateField(label="丧失时间", required=False, widget=_DATE)
    note = forms.CharField(label="备注", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _not_after(self, ("confirmed_on", "lost_on"), today)


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(label="审核结论", choices=[("approve", "审核通过"), ("return", "退回单位")])
    note = forms.CharField(
        label="审核意见（退回时必填）", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ResolveForm(forms.Form):
    finding = forms.ChoiceField(
        label="核查结论", choices=Finding.choices, widget=forms.RadioSelect,
        help_text="确认健在：此人今日及以前的死亡、火化、宣告死亡、单位确认丧失资格和宣告失踪记录核销，"
        "以后的认证不再据此停发或列为疑点；日期在今日以后的此类记录照常比对。",
    )  # fmt: skip
    death_date = forms.DateField(label="死亡日期（确认死亡、疑似冒领时必填）", required=False, widget=_DATE)
    amount_obtained = forms.DecimalField(
        label="冒领金额（元，空则按死亡次月起已发月数计算）", required=False, min_value=0, decimal_places=2
    )
    note = forms.CharField(label="核查说明", widget=forms.Textarea(attrs={"rows": 3}))
    confirm_alive_after = forms.BooleanField(
        label="已核实死亡日期之后的生存信息", required=False,
        help_text="死亡日期之后仍有乘车、体检、刷脸认证等生存信息时须勾选：已逐条核实，确认死亡日期无误。",
    )  # fmt: skip
    confirm_later_death = forms.BooleanField(
        label="以本次核查的死亡日期为准", required=False,
        help_text="死亡日期晚于已有的死亡、火化、宣告死亡或丧失资格记录时须勾选，并在下栏说明理由。",
    )  # fmt: skip
    later_death_reason = forms.CharField(
        label="说明（死亡日期晚于已有记录的理由）", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _not_after(self, ("death_date",), today)


class BulkForm(forms.Form):
    workbook = forms.FileField(label="填好的附件1（.xlsx）")
    written = forms.FileField(label="盖章的书面确认材料（扫描件 PDF 或照片，可选）", required=False)
