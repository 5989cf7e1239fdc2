"""The web application in real headless Chromium (Debian's, driven by Playwright) against a real
`zige serve`: login, the dashboard and its charts, the person page, a unit operator's isolation,
and logout.

The module builds its own system, as a bureau would: a small generated province imported with
`zige import roster|feed`, certified with `zige run`, users made with `zige user create`, all in
child processes with a fresh data directory and, in the PostgreSQL pass (`ZIGE_DATABASE_URL`
set), a fresh database of its own on the same server (never pytest-django's, never the
developer's), dropped at the end.

Every page is watched for console errors, uncaught exceptions and Content-Security-Policy
violations. Screenshots of each step go to a temporary directory, or to
`$ZIGE_BROWSER_SCREENSHOTS` when set.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    expect,
    sync_playwright,
)
from psycopg import sql

from zige.demo import generate_province
from zige.engine.kinds import BUILTIN_KINDS, kind_for_filename

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,  # the server gets a database of its own in the PostgreSQL pass
    pytest.mark.xdist_group("browser"),  # one server for the module (`-n … --dist loadgroup`)
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium "
        "(apt-get install -y chromium fonts-noto-cjk; .ci/run installs it)",
    ),
]

AS_OF = date(2026, 11, 30)
ZIGE = [sys.executable, "-m", "zige"]
PASSWORD = "Zige-browser-" + secrets.token_hex(6)
STATUSES = ("eligible", "pending", "review", "suspend", "stop")

# Runs inside the server's environment once the province is certified: whom the tests look for.
# A is a unit small enough that its people fit on one page; every person chosen has a name that
# no other person's name starts with (the search matches leading characters), an 18-digit ID and
# a current decision that rests on an evidence record.
PICK = r"""
import json
from django.db.models import Count
from zige.web.bootstrap import setup_django
setup_django(migrate=False)
from zige.accounts.masking import mask_id
from zige.certification.models import Decision, Run, RunStatus
from zige.roster.models import Recipient, Unit

run = Run.objects.filter(status=RunStatus.SUCCEEDED).latest("pk")
units = list(Unit.objects.annotate(n=Count("recipients")).filter(n__gte=5).order_by("-n", "unit_no"))
unit_a = next(u for u in units if u.n <= 50)
unit_b = next(u for u in units if u.pk != unit_a.pk)

def person(unit, preference):
    decisions = Decision.objects.filter(run=run, evidence_date__isnull=False).exclude(
        evidence_kind__in=["", "last_certified", "retirement"]  # roster dates: no evidence record
    ).select_related("recipient", "recipient__unit")
    if unit is not None:
        decisions = decisions.filter(unit=unit)
    for status, kind in preference:
        chosen = decisions.filter(status=status)
        if kind:
            chosen = chosen.filter(evidence_kind=kind)
        for d in chosen.order_by("recipient__person_no"):
            r = d.recipient
            if len(r.name) >= 2 and len(r.id_number) == 18 and Recipient.objects.filter(name__startswith=r.name).count() == 1:
                return {
                    "pk": r.pk, "person_no": r.person_no, "name": r.name, "id_number": r.id_number,
                    "masked_id": mask_id(r.id_number), "unit_no": r.unit.unit_no, "status": d.status,
                    "evidence_kind": d.evidence_kind, "evidence_date": d.evidence_date.isoformat(),
                }
    raise SystemExit(f"no suitable person in {unit}")

ANY = [(s, None) for s in ("eligible", "pending", "review", "suspend", "stop")]
print(json.dumps({
    "run": run.pk,
    "unit_a": {
        "unit_no": unit_a.unit_no, "name": unit_a.name, "people": unit_a.n,
        "certified": Decision.objects.filter(run=run, unit=unit_a).count(),
    },
    "unit_b": {"unit_no": unit_b.unit_no, "name": unit_b.name, "people": unit_b.n},
    "searched": person(None, [("stop", "death"), *ANY[::-1]]),
    "person_a": person(unit_a, ANY),
    "person_b": person(unit_b, ANY),
}, ensure_ascii=False))
"""


@dataclass(frozen=True)
class Site:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    counts: dict[str, int]  # the run's recipients ("total") and people per status, as `zige run` printed
    picked: dict[str, Any]  # PICK's answer
    users: dict[str, str]  # "bureau", "unit_a", "unit_b" -> username
    timings: dict[str, float]


# --- the server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _zige(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [*ZIGE, *args], input=stdin, capture_output=True, text=True, env=env, check=False, timeout=300
    )
    assert done.returncode == 0, f"zige {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
    return done.stdout


def _own_database(url: str) -> tuple[str, str]:
    """A new, empty database on the server of `url`: (its URL, its name)."""
    name = f"zige_browser_{secrets.token_hex(4)}"
    parts = urllib.parse.urlsplit(url)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as con:
        con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return parts._replace(path=f"/{name}").geturl(), name


def _drop_database(url: str, name: str) -> None:
    maintenance = urllib.parse.urlsplit(url)._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as con:
        con.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _fill(env: dict[str, str], work: Path, timings: dict[str, float]) -> dict[str, int]:
    """Generate a province, import it, certify it; the run's counts as `zige run` printed them."""
    started = time.monotonic()
    province = generate_province(work / "province", recipients=600, as_of=AS_OF)
    _zige(env, "import", "roster", str(province.roster))
    feeds = sorted(p for p in province.feeds.iterdir() if kind_for_filename(p.name, BUILTIN_KINDS))
    assert len({kind_for_filename(p.name, BUILTIN_KINDS) for p in feeds}) >= 10
    _zige(env, "import", "feed", *map(str, feeds))  # one process: the operator's `zige import feed feeds/*`
    timings["import"] = time.monotonic() - started
    started = time.monotonic()
    line = _zige(env, "run", "--as-of", AS_OF.isoformat())
    timings["run"] = time.monotonic() - started
    found = re.match(r"run #\d+ as of [\d-]+: ([\d,]+) recipients \(([^)]*)\)", line)
    assert found, line
    counts = {"total": int(found.group(1).replace(",", ""))}
    for part in found.group(2).split(", "):
        status, n = part.split()
        counts[status] = int(n.replace(",", ""))
    assert set(STATUSES) <= set(counts), line
    return counts


def _pick(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PICK], capture_output=True, text=True, env=env, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/accounts/login/", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            pytest.fail(f"zige serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    begun = time.monotonic()
    work = tmp_path_factory.mktemp("browser")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZIGE_", "DJANGO_"))}
    env["ZIGE_DATA_DIR"] = str(work / "data")
    # Some forty child processes each import Django: let them share compiled bytecode (kept out of
    # the source tree) even where the environment turns writing it off.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["ZIGE_SCHEDULE"] = "0"  # no scheduled job of the worker changes the data under the tests
    database: tuple[str, str] | None = None
    if url := os.environ.get("ZIGE_DATABASE_URL"):
        database = _own_database(url)
        env["ZIGE_DATABASE_URL"] = database[0]
    proc: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = {}
    try:
        counts = _fill(env, work, timings)
        picked = json.loads(_pick(env))
        port = _free_port()
        log = work / "serve.log"
        serve = [*ZIGE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--grace", "5"]
        with log.open("wb") as out:
            proc = subprocess.Popen(serve, env=env, stdout=out, stderr=subprocess.STDOUT)
        users = {
            "bureau": ("browser_ops", "bureau_operator", "", "王晓燕"),
            "unit_a": ("browser_unit_a", "unit_operator", picked["unit_a"]["unit_no"], "李红梅"),
            "unit_b": ("browser_unit_b", "unit_operator", picked["unit_b"]["unit_no"], "赵志刚"),
        }

        def create_user(name: str, role: str, unit_no: str, full_name: str) -> str:
            unit = ["--unit", unit_no] if unit_no else []
            args = ["user", "create", name, "--role", role, *unit, "--full-name", full_name]
            return _zige(env, *args, stdin=f"{PASSWORD}\n")

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=3) as pool:  # while the server starts
            for created in pool.map(lambda spec: create_user(*spec), users.values()):
                assert "created user" in created
        timings["users"] = time.monotonic() - started
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(proc, base, log)
        timings["serve"] = time.monotonic() - started
        yield Site(
            url=base,
            counts=counts,
            picked=picked,
            users={key: value[0] for key, value in users.items()},
            timings=timings,
        )
    finally:
        started = time.monotonic()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        timings["stop"] = time.monotonic() - started
        if database is not None:
            _drop_database(os.environ["ZIGE_DATABASE_URL"], database[1])
        timings["total"] = time.monotonic() - begun
        print("browser fixture, seconds:", ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


# --- the browser ---------------------------------------------------------------------------

# Reports every Content-Security-Policy violation of the page to the test (the init script runs
# through the DevTools protocol, outside the page's CSP).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__zigeCspViolation(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
}, true);
"""


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if where := os.environ.get("ZIGE_BROWSER_SCREENSHOTS"):
        path = Path(where)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


@dataclass
class Tab:
    """A fresh browser context (own cookies) and its page, with everything that went wrong."""

    page: Page
    site: Site
    shots: Path
    problems: list[str] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)  # URL -> the error status it should answer

    def go(self, path: str, *, status: int = 200) -> Response:
        url = self.site.url + path
        if status != 200:
            self.expected[url] = status
        response = self.page.goto(url)
        assert response is not None
        assert response.status == status, f"{path}: {response.status}, expected {status}"
        return response

    def shot(self, name: str, *, full_page: bool = True) -> None:
        self.page.screenshot(path=self.shots / f"{name}.png", full_page=full_page)

    def login(self, who: str, password: str = PASSWORD) -> None:
        self.go("/accounts/login/")
        self.submit_login(self.site.users[who], password)
        expect(self.page).to_have_url(self.site.url + "/")

    def submit_login(self, username: str, password: str) -> None:
        self.page.get_by_label("用户名", exact=True).fill(username)
        self.page.get_by_label("密码", exact=True).fill(password)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="登录", exact=True).click()

    def on_response(self, response: Response) -> None:
        if response.status >= 400 and self.expected.get(response.url) != response.status:
            self.problems.append(f"HTTP {response.status} {response.url}")

    def on_console(self, message: ConsoleMessage) -> None:
        # A failed load is judged by on_response (an expected 404 is not a problem).
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console error: {message.text} ({message.location.get('url')})")

    def assert_clean(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


@pytest.fixture
def new_tab(browser: Browser, site: Site, shots: Path) -> Iterator[Any]:
    contexts: list[BrowserContext] = []

    def make() -> Tab:
        context = browser.new_context(
            viewport={"width": 1366, "height": 860}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        contexts.append(context)
        context.set_default_timeout(10_000)
        page = context.new_page()
        tab = Tab(page=page, site=site, shots=shots)
        context.expose_function("__zigeCspViolation", lambda text: tab.problems.append(f"CSP: {text}"))
        context.add_init_script(CSP_LISTENER)
        page.on("console", tab.on_console)
        page.on("pageerror", lambda error: tab.problems.append(f"uncaught: {error}"))
        page.on("response", tab.on_response)
        return tab

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def tab(new_tab: Any) -> Tab:
    made: Tab = new_tab()
    return made


# --- the tests -----------------------------------------------------------------------------


def people(page: Page, title: str) -> Locator:
    """The body of the people table in the panel titled `title`."""
    panel = page.locator("section.panel").filter(has=page.locator("h2.panel__title", has_text=title))
    return panel.locator("table tbody")


def test_login_through_the_form(site: Site, tab: Tab) -> None:
    page = tab.page
    tab.go("/")  # not logged in: the login page, which will come back here
    expect(page).to_have_url(site.url + "/accounts/login/?next=/")
    expect(page.locator("h1")).to_have_text("养老保险待遇资格认证系统")
    tab.shot("01-login")

    tab.submit_login(site.users["bureau"], PASSWORD + "x")
    expect(page.get_by_role("alert")).to_have_text(
        "用户名或密码错误，或账户已被暂时锁定。请稍后再试，或联系社保局管理员。"
    )
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.locator("nav.mainnav")).to_have_count(0)
    tab.shot("01-login-wrong-password")

    tab.submit_login(site.users["bureau"], PASSWORD)
    expect(page).to_have_url(site.url + "/")
    expect(page.locator("h1")).to_contain_text("资格认证概况")
    expect(page.locator(".userbox__name")).to_have_text("王晓燕")
    expect(page.locator(".userbox__role")).to_have_text("社保局经办人员")
    tab.assert_clean()


def test_dashboard_shows_the_run_and_draws_its_charts(site: Site, tab: Tab) -> None:
    page = tab.page
    tab.login("bureau")
    expect(page.locator("h1")).to_contain_text(
        f"认证批次 #{site.picked['run']} · 比对基准日 {AS_OF.isoformat()}"
    )
    expect(page.locator(".kpi--total .kpi__value")).to_have_text(f"{site.counts['total']:,}")
    for status in STATUSES:
        expect(page.locator(f".kpi--{status} .kpi__value")).to_have_text(f"{site.counts[status]:,}")
    for chart in ("reasons", "trend"):
        container = page.locator(f'[data-chart="{chart}"]')
        canvas = container.locator("canvas, svg").first
        expect(canvas).to_be_visible()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100, (chart, box)
        painted = canvas.evaluate(
            """(c) => {
                 const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                 let n = 0;
                 for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) { n += 1; } }
                 return n;
               }"""
        )
        assert painted > 2000, f"the {chart} chart drew {painted} pixels"
    # The tooltip (a <div> ECharts styles from script) shows up, and the CSP lets it.
    page.locator('[data-chart="reasons"] canvas').first.hover()
    expect(page.locator('[data-chart="reasons"] div').filter(has_text=re.compile(r"\d 人$"))).to_be_visible()
    tab.shot("02-dashboard")
    tab.assert_clean()


def test_person_page_from_the_search_box(site: Site, tab: Tab) -> None:
    page = tab.page
    person = site.picked["searched"]
    tab.login("bureau")
    page.locator("nav.mainnav").get_by_role("link", name="人员查询").click()
    expect(page).to_have_url(site.url + "/roster/")
    page.get_by_label("姓名 / 个人编号 / 身份证号").fill(person["name"])
    with page.expect_navigation():
        page.get_by_role("button", name="查询", exact=True).click()
    rows = people(page, "查询结果").locator("tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(person["masked_id"])
    assert person["id_number"] not in page.content()
    tab.shot("03-search")

    with page.expect_navigation():
        rows.first.get_by_role("link", name=person["name"], exact=True).click()
    expect(page).to_have_url(f"{site.url}/roster/people/{person['person_no']}/")
    expect(page.locator("h1")).to_have_text(person["name"])
    explanation = page.get_by_test_id("explanation")
    expect(explanation).to_contain_text(person["evidence_date"])
    if person["status"] == "stop":
        expect(explanation).to_contain_text("停发")
    assert re.search(r"[\u4e00-\u9fff]{4}", explanation.inner_text())
    timeline = page.locator("ol.timeline")
    expect(timeline.locator("li.tl--decision")).to_have_count(1)  # one run so far
    expect(timeline.locator("li.tl--evidence").first).to_be_visible()
    expect(timeline.locator("li.tl--key")).to_contain_text("本次认证依据")
    id_number = page.locator(f"#pii-recipient-{person['pk']}-id_number")
    expect(id_number.locator(".pii__value")).to_have_text(person["masked_id"])
    assert person["id_number"] not in page.content()
    tab.shot("03-person")

    id_number.get_by_role("button", name="查看").click()
    expect(id_number.locator(".pii--revealed")).to_have_text(person["id_number"])
    tab.shot("03-person-id-revealed")
    tab.assert_clean()


def test_a_unit_operator_sees_their_unit_only(site: Site, new_tab: Any) -> None:
    tab: Tab = new_tab()
    page = tab.page
    unit_a, unit_b = site.picked["unit_a"], site.picked["unit_b"]
    mine, foreign = site.picked["person_a"], site.picked["person_b"]
    tab.login("unit_a")
    menu = set(page.locator("nav.mainnav a").all_inner_texts())
    assert {"首页", "人员查询", "本单位"} <= menu, menu
    assert not menu & {"数据导入", "认证批次", "审计日志", "用户管理"}, menu
    expect(page.locator("h1")).to_contain_text(unit_a["name"])
    expect(page.locator(".kpi--total .kpi__value")).to_have_text(str(unit_a["certified"]))
    # A unit's counts are small: the people axis of the trend has whole numbers only.
    ticks = page.locator('[data-chart="trend"]').evaluate(
        """(el) => window.echarts.getInstanceByDom(el).getModel().getComponent("yAxis", 0)
                     .axis.scale.getTicks().map((t) => t.value)"""
    )
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    tab.shot("04-unit-dashboard")

    with page.expect_navigation():
        page.locator("nav.mainnav").get_by_role("link", name="本单位").click()
    expect(page).to_have_url(f"{site.url}/roster/units/{unit_a['unit_no']}/")
    rows = people(page, "本单位待遇领取人员").locator("tr")
    expect(rows).to_have_count(unit_a["people"])
    my_row = rows.filter(has=page.get_by_role("link", name=mine["name"], exact=True))
    expect(my_row).to_have_count(1)
    expect(my_row).to_contain_text(mine["masked_id"])
    assert foreign["name"] not in page.content()
    tab.shot("04-unit-page", full_page=False)  # the first screen (docs/img/unit_operator.png)

    # Another unit's person, straight by URL: the plain 404, nothing of the person.
    tab.go(f"/roster/people/{foreign['person_no']}/", status=404)
    expect(page.locator(".error-page h1")).to_have_text("页面或记录不存在")
    html = page.content()
    for secret in (foreign["name"], foreign["id_number"], foreign["masked_id"], foreign["person_no"]):
        assert secret not in html
    tab.shot("04-foreign-person-404")
    tab.go(f"/roster/units/{unit_b['unit_no']}/", status=404)
    assert foreign["name"] not in page.content()

    # The search box finds their own person, and nobody of the other unit (by name or ID number).
    tab.go("/roster/")
    search = page.get_by_label("姓名 / 个人编号 / 身份证号")
    for query, found in ((mine["name"], mine["name"]), (foreign["name"], None), (foreign["id_number"], None)):
        search.fill(query)
        with page.expect_navigation():
            page.get_by_role("button", name="查询", exact=True).click()
        table = people(page, "查询结果")
        if found:
            expect(table.locator("tr")).to_have_count(1)
            expect(table).to_contain_text(found)
        else:
            expect(table).to_have_text("没有符合条件的人员")
            assert foreign["person_no"] not in page.content()
            assert foreign["masked_id"] not in page.content()
    tab.shot("04-foreign-search")

    # The bureau's sections are closed (403: they exist for everybody to know).
    for path in ("/imports/", "/runs/", "/imports/upload/", "/audit/", "/accounts/users/"):
        tab.go(path, status=403)
        expect(page.locator(".error-page h1")).to_have_text("无权访问此页面")
    tab.shot("04-imports-403")
    tab.assert_clean()

    # The URL was right: unit B's operator sees the person, and not A's.
    other: Tab = new_tab()
    other.login("unit_b")
    other.go(f"/roster/people/{foreign['person_no']}/")
    expect(other.page.locator("h1")).to_have_text(foreign["name"])
    other.go(f"/roster/people/{mine['person_no']}/", status=404)
    assert mine["name"] not in other.page.content()
    other.assert_clean()


def test_logout_ends_the_session(site: Site, tab: Tab) -> None:
    page = tab.page
    person = site.picked["person_a"]
    tab.login("unit_a")
    tab.go(f"/roster/people/{person['person_no']}/")
    expect(page.locator("h1")).to_have_text(person["name"])
    assert "sessionid" in {c["name"] for c in page.context.cookies()}

    with page.expect_navigation():
        page.get_by_role("button", name="退出", exact=True).click()
    expect(page).to_have_url(site.url + "/accounts/login/")
    assert "sessionid" not in {c["name"] for c in page.context.cookies()}
    tab.shot("05-logged-out")

    page.go_back()  # the page is not kept (no-store): asked for again, it is the login page
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    assert person["name"] not in page.content()
    tab.go("/")
    expect(page).to_have_url(site.url + "/accounts/login/?next=/")
    tab.assert_clean()
