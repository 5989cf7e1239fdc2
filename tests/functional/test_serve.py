"""`zige serve`: gunicorn and the task worker start together and stop together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    env = {k: v for k, v in os.environ.items() if k not in ("ZIGE_DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env["ZIGE_DATA_DIR"] = str(tmp_path / "data")
    port = _free_port()
    zige = Path(sys.executable).with_name("zige")
    proc = subprocess.Popen(
        [str(zige), "serve", "--port", str(port), "--workers", "1", "--grace", "10"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=30) as response:
                assert response.status == 200
                break
        # A busy machine can keep the first request (the worker loading every app) past the socket
        # timeout: that is "not up yet", like a refused connection, until the deadline.
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("zige serve did not start")
            time.sleep(0.3)
    yield proc, port
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _web_and_worker(pid: int) -> tuple[int, int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        kids = {_cmdline(child): child for child in _children(pid)}
        web = next((p for c, p in kids.items() if "gunicorn" in c), None)
        worker = next((p for c, p in kids.items() if c.rstrip().endswith("zige worker")), None)
        if web and worker:
            return web, worker
        time.sleep(0.2)
    raise AssertionError(f"children of zige serve: {_children(pid)}")


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_both_stop_together_on_a_signal(served: tuple[subprocess.Popen[bytes], int], sig: int) -> None:
    proc, port = served
    web, worker = _web_and_worker(proc.pid)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:
        assert "Content-Security-Policy" in response.headers
    proc.send_signal(sig)
    assert proc.wait(timeout=40) == 0
    assert _gone(web) and _gone(worker)


def test_if_the_worker_dies_the_web_server_stops_too(served: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, _port = served
    web, worker = _web_and_worker(proc.pid)
    os.kill(worker, signal.SIGKILL)
    assert proc.wait(timeout=40) == 1
    assert _gone(web)
