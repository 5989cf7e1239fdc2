"""The upload form of the imports page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from zige.engine.kinds import BUILTIN_KINDS

KIND_CHOICES: list[tuple[str, str]] = [
    ("", "按文件名自动识别"),
    ("roster", "待遇领取人员名册"),
    *((k.code, f"{k.zh}（{k.code}）") for k in BUILTIN_KINDS),
]


class UploadForm(forms.Form):
    file = forms.FileField(label="数据文件", help_text="CSV、XLSX、XLS 或 Parquet 文件")
    kind = forms.ChoiceField(label="数据类型", choices=KIND_CHOICES, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = filesizeformat(int(settings.ZIGE_MAX_IMPORT_BYTES))
        self.fields["file"].help_text = f"CSV、XLSX、XLS 或 Parquet 文件，不超过 {limit}"

    def clean_file(self) -> object:
        upload = self.cleaned_data["file"]
        limit = int(settings.ZIGE_MAX_IMPORT_BYTES)
        if upload.size > limit:
            raise forms.ValidationError(
                f"文件大小 {filesizeformat(upload.size)}，超过 {filesizeformat(limit)} 的上限"
            )
        if upload.size == 0:
            raise forms.ValidationError("文件为空")
        return upload

    def clean(self) -> dict[str, Any]:
        """按文件名自动识别 as the page explains it: a name that starts with a kind, `roster`
        (roster.csv, roster_2026-11.xlsx) among them. Only here: the inbox takes rosters from
        inbox/roster/ alone, and `zige import roster` names the kind."""
        cleaned = super().clean() or {}
        upload = cleaned.get("file")
        if upload is not None and not cleaned.get("kind") and _roster_named(str(upload.name)):
            cleaned["kind"] = "roster"
        return cleaned


def _roster_named(file_name: str) -> bool:
    name = Path(file_name.replace("\\", "/")).name.lower()
    return name.startswith("roster") and name[len("roster") : len("roster") + 1] in ("_", "-", ".")
