"""`zige certify` with typing errors in a feed's IDs: suggested_matches.csv, and no effect on decisions.

A generated province is certified twice: as generated, and with one more rail file whose IDs carry
one keystroke error each (recipients' IDs with a digit changed or two digits swapped), plus rows
that must not be suggested (a recipient's ID with a typo under another name; a typo of a person
who draws no pension). The decisions must be identical (a suggestion is never evidence), the
typo rows rejected as `bad_id_checksum`, and every recipient's typo row suggested for them.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from zige.demo import generate_province
from zige.engine import fuzzy
from zige.engine.pipeline import CertifyConfig, certify
from zige.ids import check_digit

AS_OF = date(2026, 11, 30)
TYPOS = 60


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("fuzzy")
    generated = generate_province(base / "input", recipients=800, as_of=AS_OF, seed=23)
    plain = base / "plain"
    certify(CertifyConfig(roster=generated.roster, feeds=generated.feeds, as_of=AS_OF, out=plain))
    people = [r for r in read_csv(plain / "results.csv")]
    rng = random.Random(66)
    chosen = rng.sample(people, TYPOS + 1)
    injected: dict[int, tuple[str, str]] = {}  # row -> (person_no, broken ID)
    lines = [["身份证号", "姓名", "乘车日期", "车次"]]
    for person in chosen[:TYPOS]:
        broken, _, _ = fuzzy.typo(person["id_number"], rng)
        lines.append([broken, person["name"], "2026-10-01", "K601"])
        injected[len(lines)] = (person["person_no"], broken)
    other = chosen[TYPOS]
    lines.append([fuzzy.typo(other["id_number"], rng)[0], "某某某", "2026-10-02", "K602"])  # wrong name
    stranger = "14010519300101001"
    stranger += check_digit(stranger)
    lines.append([fuzzy.typo(stranger, rng)[0], "路人甲", "2026-10-03", "K603"])  # no such recipient
    with_typos = base / "feeds-typos"
    with_typos.mkdir()
    for path in generated.feeds.iterdir():
        (with_typos / path.name).symlink_to(path)
    with (with_typos / "rail_typos.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(lines)
    typos = base / "typos"
    certify(CertifyConfig(roster=generated.roster, feeds=with_typos, as_of=AS_OF, out=typos))
    return {"plain": plain, "typos": typos, "injected": injected, "rows": len(lines) - 1}


def test_every_injected_typo_of_a_recipient_is_suggested_for_that_recipient(runs: dict[str, object]) -> None:
    typos = runs["typos"]
    injected = runs["injected"]
    assert isinstance(typos, Path) and isinstance(injected, dict)
    lines = read_csv(typos / "suggested_matches.csv")
    assert list(lines[0]) == [
        "status", "file", "row", "kind", "date", "original_id", "name", "suggested_id", "person_no",
        "recipient_name", "edit", "position", "from", "to", "confirmed_by", "candidates",
    ]  # fmt: skip
    mine = {int(r["row"]): r for r in lines if r["file"] == "rail_typos.csv"}
    assert set(mine) == set(injected)  # neither the wrong name nor the stranger
    for row, (person_no, broken) in injected.items():
        line = mine[row]
        assert (line["status"], line["person_no"], line["original_id"]) == ("suggested", person_no, broken)
        assert line["kind"] == "rail" and line["date"] == "2026-10-01" and line["candidates"] == "1"
        assert line["confirmed_by"].startswith("name,id_birth_date")
        # the edit, applied to the broken ID, gives the suggested one
        pos, before, after = int(line["position"]), line["from"], line["to"]
        assert broken[pos - 1 : pos - 1 + len(before)] == before
        assert broken[: pos - 1] + after + broken[pos - 1 + len(after) :] == line["suggested_id"]


def test_typo_rows_stay_rejected_and_the_decisions_do_not_change(runs: dict[str, object]) -> None:
    plain, typos = runs["plain"], runs["typos"]
    assert isinstance(plain, Path) and isinstance(typos, Path)
    assert (plain / "results.csv").read_bytes() == (typos / "results.csv").read_bytes()
    assert (plain / "actions.csv").read_bytes() == (typos / "actions.csv").read_bytes()
    rejected = [r for r in read_csv(typos / "rejects.csv") if r["file"] == "rail_typos.csv"]
    assert len(rejected) == runs["rows"]
    assert {r["reason"] for r in rejected} == {"bad_id_checksum"}


def test_summary_counts_the_suggestions(runs: dict[str, object]) -> None:
    plain, typos = runs["plain"], runs["typos"]
    assert isinstance(plain, Path) and isinstance(typos, Path)
    before = json.loads((plain / "summary.json").read_text(encoding="utf-8"))["suggested_matches"]
    after = json.loads((typos / "summary.json").read_text(encoding="utf-8"))["suggested_matches"]
    assert after["rows_tried"] == before["rows_tried"] + runs["rows"]
    assert after["suggested"] == before["suggested"] + TYPOS
    assert after["unconfirmed"] == before["unconfirmed"] + 1  # the wrong name
    assert (
        after["rows_tried"]
        == after["suggested"] + after["ambiguous"] + after["unconfirmed"] + after["no_match"]
    )
    assert 0 < after["variants"] <= 35 * after["rows_tried"]


# ---------------------------------------------------------------------------------------------
# The system of record: suggestions kept per import, accepted or rejected by an operator


ROSTER_HEADER = ["个人编号", "姓名", "身份证号", "单位编号", "待遇状态", "出生日期"]
RAIL_HEADER = ["身份证号", "姓名", "乘车日期", "车次", "出发站", "到达站"]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


@pytest.fixture
def system(settings: Any, tmp_path: Path) -> dict[str, Any]:
    from tests.factories import NOW, UserFactory, make_id
    from zige.accounts.models import Role
    from zige.feeds import services

    settings.EVIDENCE_DIR = tmp_path / "data" / "evidence"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.RUNS_DIR = tmp_path / "data" / "runs"
    operator = UserFactory(role=Role.BUREAU_OPERATOR)
    ids = {"A": make_id(11, date(1950, 1, 1)), "B": make_id(12, date(1951, 2, 2))}
    # C and D: namesakes born the same day whose IDs are both one edit from one typo (ambiguous).
    rng = random.Random(3)
    while True:
        first17 = f"140105195003{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}"
        ambiguous = first17 + ("X" if check_digit(first17) != "X" else "0")
        near = sorted(
            v
            for v in {ambiguous[:i] + c + ambiguous[i + 1 :] for i in range(17) for c in "0123456789"}
            if check_digit(v[:17]) == v[17] and v[6:14] == ambiguous[6:14]
        )
        if len(near) >= 2:
            break
    ids["C"], ids["D"] = near[:2]
    roster = [
        ["P-A", "张三", ids["A"], "U1", "正常", "1950-01-01"],
        ["P-B", "李四", ids["B"], "U1", "正常", ""],
        ["P-C", "王芳", ids["C"], "U1", "正常", ""],
        ["P-D", "王芳", ids["D"], "U1", "正常", ""],
    ]

    def do_import(path: Path, kind: str | None = None) -> Any:
        batch = services.import_submit(
            source=path, file_name=path.name, kind=kind, user=operator, now=NOW, enqueue=False
        )
        return services.import_execute(batch_id=batch.pk, now=NOW)

    files = tmp_path / "files"
    files.mkdir()
    do_import(_write(files / "roster.csv", ROSTER_HEADER, roster), "roster")
    typo_a = fuzzy.typo(ids["A"], random.Random(1))[0]
    typo_b = ids["B"][:17] + ("X" if ids["B"][17] != "X" else "0")
    rail = [
        [typo_a, "张 三", "2026-10-01", "K601", "太原", "大同"],  # row 2: suggested for A
        [typo_b, "李四", "2026-10-02", "K602", "太原", "运城"],  # row 3: suggested for B
        [ambiguous, "王芳", "2026-10-03", "K603", "太原", "长治"],  # row 4: C or D
        [ids["A"], "张三", "2026-09-01", "K600", "太原", "大同"],  # row 5: a valid row
    ]
    batch = do_import(_write(files / "rail_2026q4.csv", RAIL_HEADER, rail))
    assert batch.rows_rejected == 3
    return {"operator": operator, "batch": batch, "ids": ids, "typo_a": typo_a, "do_import": do_import}


@pytest.mark.django_db
def test_find_keeps_suggested_and_ambiguous_matches_per_import(system: dict[str, Any]) -> None:
    from tests.factories import NOW
    from zige.audit.models import AuditEvent
    from zige.feeds import suggestions
    from zige.feeds.models import SuggestedMatch

    batch, operator = system["batch"], system["operator"]
    found = suggestions.suggestions_find(batch_id=batch.pk, user=operator, now=NOW)
    assert (found.rows_tried, found.suggested, found.ambiguous, found.new) == (3, 2, 1, 4)
    kept = {(s.row, s.recipient.person_no, s.candidates, s.status) for s in SuggestedMatch.objects.all()}
    assert kept == {
        (2, "P-A", 1, "open"),
        (3, "P-B", 1, "open"),
        (4, "P-C", 2, "open"),
        (4, "P-D", 2, "open"),
    }
    a = SuggestedMatch.objects.get(row=2)
    assert (a.original_id, a.suggested_id) == (system["typo_a"], system["ids"]["A"])
    assert a.confirmed_by == "name,id_birth_date,roster_birth_date"
    again = suggestions.suggestions_find(batch_id=batch.pk, user=operator, now=NOW)
    assert again.new == 0 and SuggestedMatch.objects.count() == 4
    assert AuditEvent.objects.filter(action="suggestions.found", target_id=str(batch.pk)).count() == 2


@pytest.mark.django_db
def test_accept_imports_the_corrected_row_and_reject_closes(system: dict[str, Any]) -> None:
    from tests.factories import NOW
    from zige.audit.models import AuditEvent
    from zige.feeds import selectors, services, suggestions
    from zige.feeds.models import ImportStatus, SuggestedMatch

    batch, operator = system["batch"], system["operator"]
    suggestions.suggestions_find(batch_id=batch.pk, user=operator, now=NOW)
    a = SuggestedMatch.objects.get(row=2)
    correction = suggestions.suggestion_accept(suggestion_id=a.pk, user=operator, now=NOW)
    assert correction.status == ImportStatus.QUEUED and correction.kind == "rail"
    done = services.import_execute(batch_id=correction.pk, now=NOW)
    assert (done.status, done.rows_read, done.rows_used, done.rows_rejected, done.unmatched) == (
        "succeeded",
        1,
        1,
        0,
        0,
    )
    records = selectors.evidence_for_person(id_number=system["ids"]["A"])
    corrected = [r for r in records if r["date"] == date(2026, 10, 1)]
    assert [(r["kind"], r["detail"], r["file_name"]) for r in corrected] == [
        ("rail", "K601|太原|大同", correction.file_name)
    ]
    a.refresh_from_db()
    assert (a.status, a.decided_by, a.correction_id) == ("accepted", operator, correction.pk)

    # Ambiguous row: accepting one candidate closes the other.
    c = SuggestedMatch.objects.get(row=4, recipient__person_no="P-C")
    suggestions.suggestion_accept(suggestion_id=c.pk, user=operator, now=NOW)
    assert SuggestedMatch.objects.get(row=4, recipient__person_no="P-D").status == "rejected"

    b = SuggestedMatch.objects.get(row=3)
    suggestions.suggestion_reject(suggestion_id=b.pk, user=operator, now=NOW)
    b.refresh_from_db()
    assert b.status == "rejected" and b.correction is None
    assert {e.action for e in AuditEvent.objects.filter(target_type="suggested_match")} == {
        "suggestion.accepted", "suggestion.rejected",
    }  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "then"),
    [("accept", "accept"), ("accept", "reject"), ("reject", "accept"), ("reject", "reject")],
)
def test_a_decided_suggestion_cannot_be_decided_again(system: dict[str, Any], first: str, then: str) -> None:
    from tests.factories import NOW
    from zige.feeds import suggestions
    from zige.feeds.models import SuggestedMatch

    suggestions.suggestions_find(batch_id=system["batch"].pk, user=system["operator"], now=NOW)
    pk = SuggestedMatch.objects.get(row=3).pk
    act = {"accept": suggestions.suggestion_accept, "reject": suggestions.suggestion_reject}
    act[first](suggestion_id=pk, user=system["operator"], now=NOW)
    with pytest.raises(suggestions.SuggestionRefused):
        act[then](suggestion_id=pk, user=system["operator"], now=NOW)


@pytest.mark.django_db
def test_only_bureau_staff_find_and_decide(system: dict[str, Any]) -> None:
    from django.core.exceptions import PermissionDenied

    from tests.factories import NOW, UserFactory
    from zige.accounts.models import Role
    from zige.feeds import suggestions
    from zige.feeds.models import SuggestedMatch

    auditor = UserFactory(role=Role.AUDITOR)
    with pytest.raises(PermissionDenied):
        suggestions.suggestions_find(batch_id=system["batch"].pk, user=auditor, now=NOW)
    suggestions.suggestions_find(batch_id=system["batch"].pk, user=system["operator"], now=NOW)
    pk = SuggestedMatch.objects.get(row=3).pk
    for act in (suggestions.suggestion_accept, suggestions.suggestion_reject):
        with pytest.raises(PermissionDenied):
            act(suggestion_id=pk, user=auditor, now=NOW)
    assert SuggestedMatch.objects.get(pk=pk).status == "open"


@pytest.mark.django_db
def test_the_page_lists_masked_suggestions_and_only_operators_get_the_buttons(
    system: dict[str, Any], client: Any
) -> None:
    from django.urls import reverse

    from tests.factories import UserFactory
    from zige.accounts.masking import mask_id
    from zige.accounts.models import Role

    batch = system["batch"]
    client.force_login(system["operator"])
    detail = client.get(reverse("feeds:detail", kwargs={"pk": batch.pk})).content.decode()
    assert reverse("feeds:suggestions", kwargs={"pk": batch.pk}) in detail
    before = client.get(reverse("feeds:suggestions", kwargs={"pk": batch.pk})).content.decode()
    assert "尚未查找纠错建议" in before and "没有纠错建议" not in before  # not looked for yet: said so
    response = client.post(reverse("feeds:suggestions_find", kwargs={"pk": batch.pk}))
    assert response.status_code == 302
    page = client.get(reverse("feeds:suggestions", kwargs={"pk": batch.pk})).content.decode()
    assert mask_id(system["ids"]["A"]) in page and system["ids"]["A"] not in page
    assert "有歧义（2 人）" in page and page.count("采纳</button>") == 4
    assert "姓名、建议号码中的出生日期" in page and "id_birth_date" not in page  # the basis in Chinese
    assert "按当时的名册查找" in page
    client.force_login(UserFactory(role=Role.AUDITOR))
    page = client.get(reverse("feeds:suggestions", kwargs={"pk": batch.pk})).content.decode()
    assert "P-A" in page and "采纳</button>" not in page and "查找纠错建议" not in page


def test_a_custom_kind_birth_date_column_confirms_or_refuses(tmp_path: Path) -> None:
    """`zige certify` with a custom kind that carries 出生日期: the feed's own birth date must agree."""
    from zige.engine.kinds import BUILTIN_KINDS, load_custom_kinds

    config = tmp_path / "kinds.toml"
    config.write_text(
        '[kinds.social_card_use]\nzh = "社保卡刷卡"\ndate = ["刷卡日期"]\nothers = { born = ["出生日期"] }\n',
        encoding="utf-8",
    )
    good = "14010519500101001"
    good += check_digit(good)
    typo = good[:17] + ("X" if good[17] != "X" else "0")
    roster = tmp_path / "roster.csv"
    roster.write_text(f"个人编号,姓名,身份证号,单位编号\nP1,张三,{good},U1\n", encoding="utf-8")
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "social_card_use_2026.csv").write_text(
        f"身份证号,姓名,刷卡日期,出生日期\n{typo},张三,2026-10-01,1950-01-01\n{typo},张三,2026-10-02,1950-02-01\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    kinds = (*BUILTIN_KINDS, *load_custom_kinds(config))
    certify(CertifyConfig(roster=roster, feeds=feeds, as_of=AS_OF, out=out, kinds=kinds))
    lines = read_csv(out / "suggested_matches.csv")
    assert [(r["row"], r["person_no"], r["confirmed_by"]) for r in lines] == [
        ("2", "P1", "name,id_birth_date,feed_birth_date")
    ]
    counts = json.loads((out / "summary.json").read_text(encoding="utf-8"))["suggested_matches"]
    assert (counts["rows_tried"], counts["suggested"], counts["unconfirmed"]) == (2, 1, 1)
