"""The 开始认证 form of the runs page."""

from __future__ import annotations

from django import forms


class RunForm(forms.Form):
    as_of = forms.DateField(
        label="比对基准日",
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "class": "input"}, format="%Y-%m-%d"),
    )
