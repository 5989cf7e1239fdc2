"""Pages, API and command line after decision retention archived the older runs: a person's
history still shows every run's decision, a run's page says its per-person rows are archived,
unit staff still see their own unit only."""

from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.factories import UnitOperatorFactory, UserFactory
from tests.functional.test_api import bearer, get_json
from tests.functional.test_cli_records import env, zige  # noqa: F401 - `env` is a fixture
from tests.integration.test_retention import History, make_history, prune, use_data_dirs
from tests.integration.test_runs import do_run
from zige.accounts.models import Role, User
from zige.certification.models import Run
from zige.demo import generate_province

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dirs(settings: Any, tmp_path: Path) -> Path:
    return use_data_dirs(settings, tmp_path)


@pytest.fixture
def history(tmp_path: Path) -> History:
    return make_history(tmp_path)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _html(client: Client, url: str) -> tuple[int, str]:
    response = client.get(url)
    return response.status_code, response.content.decode("utf-8")


def test_a_persons_page_shows_the_archived_runs_decisions(history: History) -> None:
    r1, r2, r3, r4, r5 = history.runs
    prune(history)
    url = reverse("roster:person", args=["P002"])
    for user in (UserFactory(role=Role.AUDITOR), UnitOperatorFactory(unit=history.u1)):
        status, html = _html(_client(user), url)
        assert status == 200
        archived = re.findall(r'data-testid="archived-decision">(.*?)</li>', html, re.S)
        assert len(archived) == 2, html
        newest, oldest = (re.sub(r"<[^>]+>|\s+", " ", a) for a in archived)
        assert f"认证批次 #{r3.pk}" in newest and "丧失资格" in newest and "已归档" in newest
        assert "2026-10 起" in newest and "此后至批次" not in newest
        assert f"认证批次 #{r1.pk}" in oldest and "具备资格" in oldest
        assert f"此后至批次 #{r2.pk}（2026-08-31）结论未变，共 2 个批次" in oldest
        # The runs kept in the database, as before.
        assert f"认证批次 #{r5.pk}" in html and f"认证批次 #{r4.pk}" in html
        assert (
            html.index(f"认证批次 #{r4.pk}")
            < html.index(f"认证批次 #{r3.pk}")
            < html.index(f"认证批次 #{r1.pk}")
        )
    # Another unit's staff: no such person, archived or not.
    assert _client(UnitOperatorFactory(unit=history.u2)).get(url).status_code == 404


def test_a_persons_page_says_when_an_archived_runs_copy_is_missing(history: History) -> None:
    prune(history)
    from zige.feeds import store

    store.run_decisions_file(history.runs[0].pk).unlink()
    status, html = _html(_client(UserFactory()), reverse("roster:person", args=["P001"]))
    assert status == 200 and "归档文件缺失" in html


def test_an_archived_runs_page_says_so_and_keeps_its_summary_and_changes(history: History) -> None:
    r3 = history.runs[2]
    prune(history)
    status, html = _html(
        _client(UserFactory(role=Role.AUDITOR)), reverse("certification:detail", args=[r3.pk])
    )
    assert status == 200
    notice = re.search(r'data-testid="archived">(.*?)</div>', html, re.S)
    assert notice and "该批次的逐人结果已归档至 Parquet 文件" in notice.group(1)
    assert f"runs/{r3.pk}/decisions.parquet" in notice.group(1)
    assert re.search(r'kpi__value">3<', html)  # the summary's count
    assert "P002" in html and "李四" in html  # the change of this run, from DecisionChange
    status, kept = _html(_client(UserFactory()), reverse("certification:detail", args=[history.runs[4].pk]))
    assert status == 200 and 'data-testid="archived"' not in kept

    status, listing = _html(_client(UserFactory()), reverse("certification:list"))
    assert status == 200 and listing.count(">已归档</span>") == 3


def test_a_units_dashboard_counts_archived_runs_from_their_copies(history: History) -> None:
    prune(history)
    response = _client(UnitOperatorFactory(unit=history.u2)).get(reverse("reports:dashboard"))
    assert response.status_code == 200
    trend = response.context["charts"]["trend"]
    assert trend["series"]["eligible"] == [1, 1, 1, 1, 1] and trend["series"]["stop"] == [0] * 5
    mine = _client(UnitOperatorFactory(unit=history.u1)).get(reverse("reports:dashboard"))
    assert mine.context["charts"]["trend"]["series"]["stop"] == [0, 0, 1, 1, 1]


def test_retention_keeps_the_current_run_that_back_dated_runs_finished_after(history: History) -> None:
    # Two runs for an earlier day finish last: the run with the latest as-of date (the current
    # one, which the pages and the API read) is then the fifth to finish. Retention archived it,
    # and a unit's page counted nothing from it; it now keeps it in the database.
    for day in (1, 2):
        do_run(as_of=date(2026, 6, 30), now=datetime(2026, 12, day, 20, tzinfo=UTC))
    prune(history)
    fifth = Run.objects.get(pk=history.runs[4].pk)
    assert not fifth.decisions_archived and fifth.decisions.exists()
    assert Run.objects.get(pk=history.runs[3].pk).decisions_archived  # the keep of 2: the two look-backs
    status, body = get_json("/api/v1/persons/P002", **bearer(UserFactory()))
    assert status == 200
    assert body["decision"]["run_id"] == fifth.pk and body["decision"]["as_of"] == "2026-11-30"
    assert (body["decision"]["status"], body["decision"]["reason"], body["decision"]["action"]) == (
        "stop", "death", "stop"
    )  # fmt: skip
    assert body["decision"]["evidence_date"] == "2026-09-02" and body["decision"]["months"] == 2
    assert get_json("/api/v1/persons/P002", **bearer(UnitOperatorFactory(unit=history.u2)))[0] == 404
    assert (
        get_json("/api/v1/persons/P003", **bearer(UnitOperatorFactory(unit=history.u2)))[1]["decision"][
            "status"
        ]
        == "eligible"
    )


@pytest.mark.django_db(transaction=True)
def test_prune_and_export_from_the_command_line(tmp_path: Path, env: dict[str, str]) -> None:  # noqa: F811
    province = generate_province(tmp_path / "input", recipients=120, as_of=date(2026, 11, 30), seed=3)
    assert zige(env, "import", "roster", str(province.roster)).returncode == 0
    runs = []
    for _ in range(3):
        done = zige(env, "run", "--as-of", "2026-11-30")
        assert done.returncode == 0, done.stderr
        found = re.match(r"run #(\d+) as of 2026-11-30: ([\d,]+) recipients", done.stdout)
        assert found
        runs.append(found.group(1))
    recipients = found.group(2)

    pruned = zige(env, "decisions", "prune", "--keep", "2", "--vacuum")
    assert pruned.returncode == 0, pruned.stderr
    assert f"run #{runs[0]} as of 2026-11-30: archived, {recipients} decisions deleted" in pruned.stdout
    assert f"kept the latest 2 runs' decisions (#{runs[2]}, #{runs[1]}); 1 run(s) pruned" in pruned.stdout
    assert "VACUUM" in pruned.stdout
    if connection.vendor == "sqlite":
        assert "SQLite file" in pruned.stdout and "GB ->" in pruned.stdout
    again = zige(env, "decisions", "prune", "--keep", "2")
    assert again.returncode == 0 and "0 run(s) pruned" in again.stdout

    out = tmp_path / "run1.csv"
    exported = zige(env, "decisions", "export", runs[0], "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert f"{len(rows):,}" == recipients and all(r["person_no"] and r["unit_no"] for r in rows)
    assert exported.stdout.startswith(f"run #{runs[0]}: {recipients} decisions written")

    # A run whose copy is gone keeps its rows; the command says why and exits 1.
    data = Path(env["ZIGE_DATA_DIR"])
    (data / "runs" / runs[1] / "decisions.parquet").unlink()
    assert zige(env, "run", "--as-of", "2026-11-30").returncode == 0
    refused = zige(env, "decisions", "prune", "--keep", "2")
    assert refused.returncode == 1
    assert f"run #{runs[1]} as of 2026-11-30 keeps its decisions: no copy" in refused.stderr
    assert zige(env, "decisions", "prune", "--keep", "1").returncode == 2  # never fewer than 2
    missing = zige(env, "decisions", "export", runs[1], "--out", str(tmp_path / "run2.csv"))
    assert missing.returncode == 1 and "no decisions copy" in missing.stderr
