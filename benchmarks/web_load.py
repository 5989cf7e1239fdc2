"""Page response times (p50/p95/p99) of the web application on a province, under load from another process.

    .venv/bin/python benchmarks/web_load.py                                   # 500,000 recipients, both
    .venv/bin/python benchmarks/web_load.py --recipients 50000 --database sqlite
    .venv/bin/python benchmarks/web_load.py --database postgres --reuse       # measure again, no reload

For each database (SQLite, PostgreSQL or both) it:

1. generates a demo province with `zige.demo.generate_province` (cached in bench-data/web-<n>/province);
2. loads it into a fresh data directory bench-data/web-<n>/<database>/ (for PostgreSQL also a fresh
   database `zige_load_<n>`, dropped first) through the real command line, each a child process:
   `zige migrate`, `zige import roster`, `zige import feed` for every feed file, `zige run --as-of`,
   and `printf password | zige user create … --role bureau_operator`; `--reuse` skips this when a
   previous load completed (a new migration is then applied by `zige serve`, timed as "serve start");
3. starts `zige serve --host 127.0.0.1 --port <free port> --workers 2` (ZIGE_SCHEDULE=0: no scheduled
   run or SMS sending in the background while measuring), logs in over HTTP (the login page's CSRF
   token, then the form) and keeps the session cookie;
4. drives each page from a separate process for a fixed time at a fixed concurrency, after a few
   seconds of the same load that do not count (every web process has rendered the page): `wrk` (a Lua
   script rotates the URLs and prints the percentiles in its `done()` hook; `apt-get install wrk`),
   or, when wrk is missing or with `--client python`, a bounded Python client (threads,
   http.client) in a child process. Pages: the dashboard `/`, the person page (200 people in
   turn), the unit page of the unit with most recipients (first page and a deep page, ¾ of the way
   down: page 150 of a 10,000-person unit), the list of units, a search by the most common
   surname and searches by 个人编号 (the 200 people in turn), the verification task list (all, the
   unit's, each of the 200 people's) and each unit's verification progress. Every response must be a 200 (a
   redirect to the login page counts as an error);
5. stops the server and prints a table page × database: requests, requests/s, p50, p95, p99, max,
   errors, one request alone before the load, the page's size, the machine's load while measuring
   (CPU: share of all cores busy, the load client included; load1: the 1-minute load average at
   the end), and the time of each loading step.

Results are also written to bench-data/web-<n>/results-<database>.json. Only 127.0.0.1 is used;
every child process has a time limit. PostgreSQL: `--pg-url` names the server (default
postgres://postgres@127.0.0.1); only databases named zige_load_<n> are ever dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

AS_OF = date(2026, 11, 30)
SEED = 7
ZIGE = ROOT / ".venv" / "bin" / "zige"
USERNAME = "bench-operator"
PERSONS = 200
HOST = "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# The province and loading it


def province(size: int) -> tuple[Path, list[Path]]:
    """The roster and the feed files of a generated province (cached)."""
    from zige.demo import generate_province

    target = ROOT / "bench-data" / f"web-{size}" / "province"
    marker = target / ".complete"
    if not marker.exists():
        print(f"generating a province of {size:,} recipients in {target} …", flush=True)
        started = time.perf_counter()
        generate_province(target, recipients=size, as_of=AS_OF, seed=SEED)
        marker.write_text(f"{time.perf_counter() - started:.1f}s\n", encoding="utf-8")
    feeds = sorted(p for p in (target / "feeds").iterdir() if p.is_file() and not p.name.startswith("."))
    return target / "roster.csv", feeds


@dataclass
class Target:
    database: str  # sqlite | postgres
    data_dir: Path
    url: str = ""  # ZIGE_DATABASE_URL (PostgreSQL)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZIGE_")}
        env["ZIGE_DATA_DIR"] = str(self.data_dir)
        if self.url:
            env["ZIGE_DATABASE_URL"] = self.url
        return env


def _pg_admin(pg_url: str) -> Any:
    import psycopg

    return psycopg.connect(f"{pg_url.rstrip('/')}/postgres", autocommit=True)


def pg_database_exists(pg_url: str, name: str) -> bool:
    with _pg_admin(pg_url) as con:
        return con.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def pg_recreate(pg_url: str, name: str) -> None:
    if not re.fullmatch(r"zige_load_\d+", name):  # never anything else
        raise SystemExit(f"refusing to drop database {name!r}")
    with _pg_admin(pg_url) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')


def zige(target: Target, args: Sequence[str], *, timeout: float, stdin: str | None = None) -> float:
    """Run `zige ARGS` as a child process; its output goes to the data directory's load.log."""
    started = time.perf_counter()
    with (target.data_dir / "load.log").open("a", encoding="utf-8") as log:
        log.write(f"$ zige {' '.join(args)}\n")
        log.flush()
        result = subprocess.run(
            [str(ZIGE), *args], env=target.env(), input=stdin, text=True, stdout=log, stderr=log,
            timeout=timeout, check=False,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(
            f"zige {' '.join(args)} failed (exit {result.returncode}); see {target.data_dir}/load.log"
        )
    return seconds


def load(target: Target, roster: Path, feeds: list[Path], password: str) -> dict[str, float]:
    """Load the province through the command line; the time of each step in seconds."""
    times: dict[str, float] = {}
    times["migrate"] = zige(target, ["migrate"], timeout=900)
    print(f"  [{target.database}] import roster …", flush=True)
    times["import roster"] = zige(target, ["import", "roster", str(roster)], timeout=3600)
    print(f"  [{target.database}] import {len(feeds)} feed files …", flush=True)
    total = 0.0
    for path in feeds:
        total += zige(target, ["import", "feed", str(path)], timeout=3600)
    times[f"import feeds ({len(feeds)} files)"] = total
    print(f"  [{target.database}] run …", flush=True)
    times["run"] = zige(target, ["run", "--as-of", AS_OF.isoformat()], timeout=3600)
    zige(
        target, ["user", "create", USERNAME, "--role", "bureau_operator"], timeout=300, stdin=password + "\n"
    )
    return times


def load_fresh(target: Target, roster: Path, feeds: list[Path], password: str) -> dict[str, float]:
    """`load` into an emptied data directory (and database: the caller's), then the marker
    (`.loaded`, the steps' times) that says the load completed."""
    if target.data_dir.exists():
        shutil.rmtree(target.data_dir)
    target.data_dir.mkdir(parents=True)
    load_s = load(target, roster, feeds, password)
    (target.data_dir / ".loaded").write_text(json.dumps(load_s), encoding="utf-8")
    return load_s


# ---------------------------------------------------------------------------------------------
# What to request


@dataclass
class Picks:
    unit_no: str
    unit_people: int
    persons: list[str]
    surname: str
    surname_people: int


_PICK_SQL = {
    "unit": "SELECT u.unit_no, count(*) FROM roster_recipient r JOIN roster_unit u ON u.id = r.unit_id "
    "GROUP BY u.unit_no ORDER BY 2 DESC, 1 LIMIT 1",
    "persons": "SELECT person_no FROM roster_recipient ORDER BY id",
    "surname": "SELECT substr(name, 1, 1), count(*) FROM roster_recipient GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
}


def picks(target: Target) -> Picks:
    """The unit with most recipients, 200 people and the most common surname (read directly)."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    if target.url:
        import psycopg

        with psycopg.connect(target.url.replace("postgres://", "postgresql://", 1)) as con:
            for key, sql in _PICK_SQL.items():
                rows[key] = list(con.execute(sql).fetchall())
    else:
        path = target.data_dir / "zige.sqlite3"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            for key, sql in _PICK_SQL.items():
                rows[key] = con.execute(sql).fetchall()
    people = [r[0] for r in rows["persons"]]
    return Picks(
        unit_no=rows["unit"][0][0],
        unit_people=int(rows["unit"][0][1]),
        persons=random.Random(SEED).sample(people, min(PERSONS, len(people))),
        surname=rows["surname"][0][0],
        surname_people=int(rows["surname"][0][1]),
    )


def pages(p: Picks) -> list[tuple[str, list[str]]]:
    """(label, paths) of every page measured; a page with several paths requests them in turn."""
    q = urllib.parse.quote
    last = max(1, math.ceil(p.unit_people / 50))
    deep = max(1, round(last * 0.75))
    return [
        ("dashboard /", ["/"]),
        (f"person ×{len(p.persons)}", [f"/roster/people/{q(n)}/" for n in p.persons]),
        (f"unit ({p.unit_people:,} people) p.1", [f"/roster/units/{q(p.unit_no)}/"]),
        (f"unit p.{deep}/{last}", [f"/roster/units/{q(p.unit_no)}/?page={deep}"]),
        ("units list", ["/roster/units/"]),
        (f"search {p.surname} ({p.surname_people:,})", [f"/roster/?q={q(p.surname)}"]),
        ("search 个人编号", [f"/roster/?q={q(n)}" for n in p.persons]),
        ("verification tasks", ["/verification/"]),
        (f"verification tasks of the unit ({p.unit_no})", [f"/verification/?unit={q(p.unit_no)}"]),
        ("verification tasks of a person", [f"/verification/?q={q(n)}" for n in p.persons]),
        ("verification units' progress", ["/verification/units/"]),
    ]


# ---------------------------------------------------------------------------------------------
# The server and the session


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(target: Target, *, workers: int, startup_timeout: float) -> Iterator[tuple[int, float]]:
    """`zige serve` on a free port; yields (port, seconds until the login page answered)."""
    port = free_port()
    log = (target.data_dir / "serve.log").open("a", encoding="utf-8")
    started = time.perf_counter()
    server = subprocess.Popen(
        [str(ZIGE), "serve", "--host", HOST, "--port", str(port), "--workers", str(workers), "--grace", "10"],
        env=target.env() | {"ZIGE_SCHEDULE": "0"}, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"zige serve exited ({server.returncode}); see {target.data_dir}/serve.log")
            if time.perf_counter() - started > startup_timeout:
                raise SystemExit(f"zige serve did not answer within {startup_timeout:.0f} s")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if fetch(port, "/accounts/login/")[0] == 200:
                    break
            time.sleep(0.5)
        yield port, time.perf_counter() - started
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)  # zige serve stops gunicorn and the worker
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.close()


def fetch(
    port: int, path: str, *, method: str = "GET", cookie: str = "", body: str | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    con = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        headers = {"Cookie": cookie} if cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        con.request(method, path, body=body, headers=headers)
        resp = con.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        con.close()


def _cookies(headers: http.client.HTTPMessage) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for value in headers.get_all("Set-Cookie") or []:
        jar.load(value)
    return {k: m.value for k, m in jar.items()}


def login(port: int, password: str) -> str:
    """Log in through the form; returns the `sessionid` cookie."""
    status, headers, body = fetch(port, "/accounts/login/")
    csrf = _cookies(headers).get("csrftoken", "")
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    if status != 200 or not csrf or not match:
        raise SystemExit(f"the login page did not give a CSRF token (HTTP {status})")
    form = urllib.parse.urlencode(
        {"username": USERNAME, "password": password, "csrfmiddlewaretoken": match.group(1).decode()}
    )
    status, headers, _ = fetch(port, "/accounts/login/", method="POST", cookie=f"csrftoken={csrf}", body=form)
    session = _cookies(headers).get("sessionid", "")
    if status != 302 or not session:
        raise SystemExit(f"login failed (HTTP {status})")
    return session


# ---------------------------------------------------------------------------------------------
# Load from another process

_WRK_LUA = """
local paths = %(paths)s
local threads = {}
local counter = 0
bad = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter = tid * 53
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end

function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local non200 = 0
  for _, t in ipairs(threads) do non200 = non200 + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%.3f, "p50_ms": %%.2f, "p95_ms": %%.2f, "p99_ms": %%.2f, '
    .. '"max_ms": %%.2f, "non200": %%d, "socket_errors": %%d, "timeouts": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, non200, e.connect + e.read + e.write, e.timeout))
end
"""


def drive_wrk(port: int, cookie: str, paths: list[str], *, seconds: int, connections: int) -> dict[str, Any]:
    lua_paths = "{" + ", ".join(json.dumps(p) for p in paths) + "}"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, encoding="utf-8") as script:
        script.write(_WRK_LUA % {"paths": lua_paths})
    try:
        result = subprocess.run(
            ["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{seconds}s",
             "--timeout", "60s", "-s", script.name, "-H", f"Cookie: {cookie}", f"http://{HOST}:{port}"],
            capture_output=True, text=True, timeout=seconds + 90, check=False,
        )  # fmt: skip
    finally:
        Path(script.name).unlink(missing_ok=True)
    return _result_line(result)


def _result_line(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            data: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return data
    raise SystemExit(f"the load client printed no result (exit {result.returncode}): {result.stderr[-500:]}")


def drive_python(
    port: int, cookie: str, paths: list[str], *, seconds: int, connections: int
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as spec:
        json.dump({"port": port, "cookie": cookie, "paths": paths, "seconds": seconds,
                   "connections": connections}, spec)  # fmt: skip
    try:
        result = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--client-spec", spec.name],
            capture_output=True, text=True, timeout=seconds + 90, check=False,
        )  # fmt: skip
    finally:
        Path(spec.name).unlink(missing_ok=True)
    return _result_line(result)


def python_client(spec_file: Path) -> None:
    """The Python load client (a child process): `connections` threads, each with a keep-alive
    connection (reopened when the server closes it), for `seconds`; prints one RESULT line."""
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    paths: list[str] = spec["paths"]
    deadline = time.perf_counter() + spec["seconds"]
    latencies: list[float] = []
    counts = {"non200": 0, "socket_errors": 0, "timeouts": 0}
    lock = threading.Lock()

    def worker(n: int) -> None:
        con = http.client.HTTPConnection(HOST, spec["port"], timeout=60)
        i = n * 53
        while time.perf_counter() < deadline:
            i += 1
            started = time.perf_counter()
            try:
                con.request("GET", paths[i % len(paths)], headers={"Cookie": spec["cookie"]})
                resp = con.getresponse()
                resp.read()
                status = resp.status
                if resp.will_close:
                    con.close()
            except TimeoutError:
                status = -2
                con.close()
            except (OSError, http.client.HTTPException):
                status = -1
                con.close()
            elapsed = time.perf_counter() - started
            with lock:
                if status == -2:
                    counts["timeouts"] += 1
                elif status == -1:
                    counts["socket_errors"] += 1
                else:
                    latencies.append(elapsed)
                    counts["non200"] += status != 200
        con.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(spec["connections"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, math.ceil(q * len(latencies)) - 1)] * 1000 if latencies else 0.0
        )

    result = {"requests": len(latencies), "seconds": round(seconds, 3), "p50_ms": pct(0.50),
              "p95_ms": pct(0.95), "p99_ms": pct(0.99), "max_ms": pct(1.0), **counts}  # fmt: skip
    print("RESULT " + json.dumps(result))


# ---------------------------------------------------------------------------------------------
# The machine's load


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), idle


@dataclass
class PageResult:
    page: str
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    first_ms: float  # one request alone, before the load
    size_kb: float
    cpu_busy: float  # share of all cores busy during the load
    load1: float


def measure(
    port: int,
    cookie: str,
    label: str,
    paths: list[str],
    *,
    seconds: int,
    warmup: int,
    connections: int,
    client: str,
) -> PageResult:
    sizes, first = [], []
    for path in paths[:3]:  # check that the page answers a 200 (not the login page)
        started = time.perf_counter()
        status, _, body = fetch(port, path, cookie=f"sessionid={cookie}")
        first.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"{path}: HTTP {status} before the load")
        sizes.append(len(body))
    drive = drive_wrk if client == "wrk" else drive_python
    if warmup > 0:  # every web process renders the page once or more before it counts
        drive(port, f"sessionid={cookie}", paths, seconds=warmup, connections=connections)
    total0, idle0 = _cpu_times()
    r = drive(port, f"sessionid={cookie}", paths, seconds=seconds, connections=connections)
    total1, idle1 = _cpu_times()
    busy = 1 - (idle1 - idle0) / max(1, total1 - total0)
    return PageResult(
        page=label, requests=r["requests"], rps=r["requests"] / max(r["seconds"], 1e-9),
        p50_ms=r["p50_ms"], p95_ms=r["p95_ms"], p99_ms=r["p99_ms"], max_ms=r["max_ms"],
        errors=r["non200"] + r["socket_errors"] + r["timeouts"], first_ms=first[-1],
        size_kb=sum(sizes) / len(sizes) / 1024, cpu_busy=busy, load1=os.getloadavg()[0],
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------


@dataclass
class DatabaseResult:
    database: str
    load_s: dict[str, float]
    serve_start_s: float
    picks: dict[str, Any]
    pages: list[PageResult] = field(default_factory=list)


def bench_database(
    database: str, args: argparse.Namespace, roster: Path, feeds: list[Path]
) -> DatabaseResult:
    n = args.recipients
    base = ROOT / "bench-data" / f"web-{n}"
    name = f"zige_load_{n}"
    target = Target(
        database, base / database, f"{args.pg_url.rstrip('/')}/{name}" if database == "postgres" else ""
    )
    marker = target.data_dir / ".loaded"
    password = secrets.token_urlsafe(18)
    reusable = marker.exists() and (database == "sqlite" or pg_database_exists(args.pg_url, name))
    if args.reuse and reusable:
        print(f"[{database}] reusing the province loaded in {target.data_dir}", flush=True)
        load_s = json.loads(marker.read_text(encoding="utf-8"))
        zige(target, ["user", "set-password", USERNAME], timeout=300, stdin=password + "\n")
    else:
        print(f"[{database}] loading {n:,} recipients into {target.data_dir}", flush=True)
        if database == "postgres":
            pg_recreate(args.pg_url, name)
        load_s = load_fresh(target, roster, feeds, password)
    chosen = picks(target)
    if chosen.unit_people < 10_000:
        print(
            f"[{database}] note: the largest unit ({chosen.unit_no}) has {chosen.unit_people:,} recipients, "
            "fewer than 10,000; its pages are measured instead",
            flush=True,
        )
    with serving(target, workers=args.workers, startup_timeout=1800) as (port, start_s):
        session = login(port, password)
        result = DatabaseResult(database, load_s, start_s, asdict(chosen) | {"persons": len(chosen.persons)})
        for label, paths in pages(chosen):
            if args.pages and not any(word in label for word in args.pages):
                continue
            print(f"[{database}] {label}: {args.seconds} s at {args.connections} connections …", flush=True)
            result.pages.append(
                measure(port, session, label, paths, seconds=args.seconds, warmup=args.warmup,
                        connections=args.connections, client=args.client)
            )  # fmt: skip
    out = base / f"results-{database}.json"
    out.write_text(json.dumps(asdict(result), indent=2, ensure_ascii=False), encoding="utf-8")
    return result


def _pad(text: str, width: int) -> str:
    """Left-aligned in `width` terminal columns (a Chinese character takes two)."""
    wide = sum(unicodedata.east_asian_width(c) in "WF" for c in text)
    return text + " " * max(0, width - len(text) - wide)


def report(results: list[DatabaseResult], args: argparse.Namespace) -> None:
    print()
    print(
        f"{args.recipients:,} recipients; {args.client}, {args.connections} connections, {args.seconds} s a page "
        f"after {args.warmup} s of warm-up; "
        f"zige serve --workers {args.workers}; {os.cpu_count()} CPUs"
    )
    head = (
        f"{'page':<30} {'db':<8} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>6} {'alone ms':>8} {'KB':>6} {'CPU':>5} {'load1':>5}"
    )
    print(head)
    print("-" * len(head))
    labels = list(dict.fromkeys(p.page for r in results for p in r.pages))
    for label in labels:
        for r in results:
            for p in r.pages:
                if p.page == label:
                    print(
                        f"{_pad(p.page, 30)} {r.database:<8} {p.requests:>8} {p.rps:>7.1f} {p.p50_ms:>8.1f} "
                        f"{p.p95_ms:>8.1f} {p.p99_ms:>8.1f} {p.max_ms:>8.1f} {p.errors:>6} {p.first_ms:>8.1f} "
                        f"{p.size_kb:>6.1f} {p.cpu_busy:>5.0%} {p.load1:>5.2f}"
                    )
    print()
    for r in results:
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in r.load_s.items())
        print(f"{r.database}: {steps}; serve start {r.serve_start_s:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=500_000)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1", help="the PostgreSQL server")
    parser.add_argument("--seconds", type=int, default=20, help="load time per page")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load per page before measuring")
    parser.add_argument("--connections", type=int, default=4, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="zige serve --workers")
    parser.add_argument(
        "--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python"
    )
    parser.add_argument("--reuse", action="store_true", help="measure the province loaded by an earlier run")
    parser.add_argument("--pages", nargs="*", default=[], help="only pages whose label contains a word")
    parser.add_argument("--client-spec", type=Path, help=argparse.SUPPRESS)  # the Python client's child
    args = parser.parse_args(argv)
    if args.client_spec:
        python_client(args.client_spec)
        return
    started = time.perf_counter()
    roster, feeds = province(args.recipients)
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    results = [bench_database(db, args, roster, feeds) for db in databases]
    report(results, args)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
