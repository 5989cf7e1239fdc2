"""A unit operator completes a verification with a photo and a bureau officer approves it, in
real headless Chromium (Debian's, driven by Playwright) against a real `zige serve`.

The system is built as in `test_browser.py` (a generated province imported and certified with
`zige` commands in child processes, a fresh data directory and, in the PostgreSQL pass, a fresh
database); the run opens the verification tasks. Screenshots of the task form and the review
page go to `$ZIGE_BROWSER_SCREENSHOTS` (or a temporary directory).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, expect, sync_playwright

from tests.functional.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CSP_LISTENER,
    PASSWORD,
    ZIGE,
    Site,
    Tab,
    _drop_database,
    _fill,
    _free_port,
    _own_database,
    _zige,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
    ),
]

# Inside the server's environment after the run: an open unit task of a person under 80 (no
# special-group paperwork), in a unit with few people.
PICK = r"""
import json
from datetime import date
from zige.web.bootstrap import setup_django
setup_django(migrate=False)
from zige.verification.models import VerificationTask
from zige.verification.services import special_reasons

tasks = VerificationTask.objects.filter(kind="unit", status="open").select_related("recipient", "unit")
total = tasks.count()
for t in tasks.order_by("unit__unit_no", "pk"):
    if not special_reasons(t.recipient, as_of=t.as_of) and len(t.recipient.name) >= 2:
        print(json.dumps({"task": t.pk, "name": t.recipient.name, "unit_no": t.unit.unit_no,
                          "deadline": t.deadline.isoformat(), "open_tasks": total}, ensure_ascii=False))
        break
else:
    raise SystemExit("no open unit task of a person under 80")
"""


def _wait_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """As the harness's, with patience for a loaded machine (a slow first answer is not a failure)."""
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/accounts/login/", timeout=30) as response:
                if response.status == 200:
                    return
        except OSError:  # refused, reset, timed out
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"zige serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def vsite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("browser-verification")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZIGE_", "DJANGO_"))}
    env["ZIGE_DATA_DIR"] = str(work / "data")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["ZIGE_SCHEDULE"] = "0"
    database = None
    if url := os.environ.get("ZIGE_DATABASE_URL"):
        database = _own_database(url)
        env["ZIGE_DATABASE_URL"] = database[0]
    proc: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = {}
    try:
        counts = _fill(env, work, timings)
        done = subprocess.run(
            [sys.executable, "-c", PICK], capture_output=True, text=True, env=env, check=False, timeout=120
        )
        assert done.returncode == 0, done.stderr
        picked = json.loads(done.stdout)
        users = {"unit": ("v_unit", "unit_operator", picked["unit_no"], "刘秀英"),
                 "bureau": ("v_officer", "bureau_operator", "", "陈立新")}  # fmt: skip
        for name, role, unit_no, full_name in users.values():
            unit = ["--unit", unit_no] if unit_no else []
            _zige(
                env,
                "user",
                "create",
                name,
                "--role",
                role,
                *unit,
                "--full-name",
                full_name,
                stdin=f"{PASSWORD}\n",
            )
        port = _free_port()
        log = work / "serve.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*ZIGE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--grace", "5"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        _wait_up(proc, base, log)
        yield Site(
            url=base, counts=counts, picked=picked, users={k: v[0] for k, v in users.items()}, timings=timings
        )
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if database is not None:
            _drop_database(os.environ["ZIGE_DATABASE_URL"], database[1])


@pytest.fixture(scope="module")
def vbrowser(vsite: Site) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


def _tab(browser: Browser, site: Site, shots: Path) -> Tab:
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    tab = Tab(page=page, site=site, shots=shots)
    context.expose_function("__zigeCspViolation", lambda text: tab.problems.append(f"CSP: {text}"))
    context.add_init_script(CSP_LISTENER)
    page.on("console", tab.on_console)
    page.on("pageerror", lambda error: tab.problems.append(f"uncaught: {error}"))
    page.on("response", tab.on_response)
    return tab


def _photo(path: Path) -> Path:
    image = Image.new("RGB", (640, 480), (235, 228, 210))
    for x in range(0, 640, 40):  # something to look at: a tiled floor
        for y in range(0, 480, 40):
            if (x // 40 + y // 40) % 2:
                image.paste((180, 150, 110), (x, y, x + 40, y + 40))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    path.write_bytes(buffer.getvalue())
    return path


def test_unit_completes_a_verification_with_a_photo_and_the_bureau_approves(
    vsite: Site, vbrowser: Browser, tmp_path: Path
) -> None:
    shots = Path(os.environ.get("ZIGE_BROWSER_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    picked: dict[str, Any] = vsite.picked
    task_url = f"{vsite.url}/verification/tasks/{picked['task']}/"

    unit = _tab(vbrowser, vsite, shots)
    page = unit.page
    unit.login("unit")
    with page.expect_navigation():
        page.locator("nav.mainnav").get_by_role("link", name="核实任务").click()
    expect(page.locator("h1")).to_contain_text("核实任务")
    row = page.get_by_test_id("tasks").locator("tbody tr").filter(has_text=picked["name"])
    expect(row).to_have_count(1)
    expect(row).to_contain_text(picked["deadline"])
    with page.expect_navigation():
        row.get_by_role("link", name=picked["name"], exact=True).click()
    expect(page).to_have_url(task_url)
    page.get_by_label("确认方式").select_option(label="上门走访")
    page.get_by_label("具备资格").check()
    page.get_by_label("现居住地").fill("太原市小店区坞城路 92 号 3 单元 501")
    page.get_by_label("健康状况").fill("良好，能自理")
    page.get_by_label("备注").fill("社区网格员陪同上门，本人在家")
    page.get_by_label("现场确认图片或视频").set_input_files(str(_photo(tmp_path / "visit.jpg")))
    page.evaluate("window.scrollTo(0, 0)")
    unit.shot("verification-form")
    with page.expect_navigation():
        page.get_by_role("button", name="上报", exact=True).click()
    expect(page.locator(".message--success")).to_contain_text("已上报")
    expect(page.locator(".vtask-status").first).to_have_text("已上报待审核")
    unit.assert_clean()

    bureau = _tab(vbrowser, vsite, shots)
    page = bureau.page
    bureau.login("bureau")
    bureau.go("/verification/review/")
    entry = page.get_by_test_id("queue").locator("tbody tr").filter(has_text=picked["name"])
    expect(entry).to_contain_text("具备资格")
    with page.expect_navigation():
        entry.get_by_role("link", name=picked["name"], exact=True).click()
    thumb = page.locator("img.vtask-thumb").first
    expect(thumb).to_be_visible()
    assert thumb.evaluate("(img) => img.complete && img.naturalWidth") == 640  # the photo, served by the view
    expect(page.get_by_test_id("submission").first).to_contain_text("太原市小店区坞城路")
    page.get_by_label("审核结论").select_option("approve")
    page.get_by_label("审核意见（退回时必填）").fill("照片清晰，信息属实")
    page.evaluate("window.scrollTo(0, 0)")
    bureau.shot("verification-review")
    with page.expect_navigation():
        page.get_by_role("button", name="提交审核").click()
    expect(page.locator(".message--success")).to_contain_text("审核通过")
    expect(page.locator(".vtask-status").first).to_have_text("已审核通过")
    history = page.get_by_test_id("history")
    expect(history).to_contain_text("已上报待审核 → 已审核通过")
    expect(history).to_contain_text("陈立新")
    expect(page.get_by_test_id("submission").first).to_contain_text(re.compile(r"比对数据导入 #\d+"))
    bureau.assert_clean()
