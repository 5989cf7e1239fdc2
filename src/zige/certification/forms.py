"""The 开始认证 form of the runs page."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms


class RunForm(forms.Form):
    as_of = forms.DateField(
        label="比对基准日",
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "class": "input"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        """`today` (China Standard Time) caps the date picker: a run compares as of today or an
        earlier day, never a later one (`zige.certification.services.run_submit` refuses it)."""
        super().__init__(*args, **kwargs)
        self.fields["as_of"].widget.attrs["max"] = today.isoformat()
