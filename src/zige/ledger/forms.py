"""Forms of the ledger pages (field checks only; the rules live in the services)."""

from __future__ import annotations

from django import forms

from zige.ledger.models import MARKABLE_GROUPS, ExportFormat, Group, VisitOutcome

_DATE = forms.DateInput(attrs={"type": "date", "class": "input"}, format="%Y-%m-%d")  # what type=date reads


class MarkForm(forms.Form):
    group = forms.ChoiceField(
        label="类别", choices=[(g, Group(g).label) for g in MARKABLE_GROUPS],
        widget=forms.Select(attrs={"class": "select"}),
    )  # fmt: skip
    reason = forms.CharField(
        label="原因", max_length=300, widget=forms.TextInput(attrs={"class": "input input--wide"})
    )
    since = forms.DateField(label="起始日期", widget=_DATE)


class RemoveMarkForm(forms.Form):
    reason = forms.CharField(
        label="撤销原因",
        max_length=300,
        widget=forms.TextInput(attrs={"class": "input", "placeholder": "撤销原因"}),
    )


class VisitForm(forms.Form):
    visited_on = forms.DateField(label="走访日期", widget=_DATE)
    visitor = forms.CharField(
        label="走访人", max_length=100, widget=forms.TextInput(attrs={"class": "input"})
    )
    outcome = forms.ChoiceField(
        label="走访结果",
        choices=VisitOutcome.choices,
        widget=forms.Select(attrs={"class": "select"}),
        help_text="已死亡：保存后报社保局疑点核查，由社保局核实死亡日期后按规定停发；请在情况说明中写明死亡时间和信息来源。",
    )
    notes = forms.CharField(
        label="情况说明", required=False, max_length=2000,
        widget=forms.Textarea(attrs={"class": "input input--wide", "rows": 3}),
    )  # fmt: skip
    photo = forms.FileField(
        label="现场照片", required=False, help_text="JPEG、PNG 或 WebP 照片；按文件内容检查，改了扩展名的文件会被拒收。",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )  # fmt: skip


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=ExportFormat.choices)
    unit_no = forms.CharField(required=False, max_length=64)
