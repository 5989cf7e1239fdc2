"""A second database session on a thread of its own, for tests of two sessions at once
(PostgreSQL): the test's own session holds a lock, starts the second one's call and waits until
that call waits on the lock (seen with `pg_blocking_pids`, never a sleep) or is done."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


class SecondSession:
    """`call` on a thread with a session of its own: `outcome` gets its result or exception."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.pid: list[int] = []
        self.outcome: list[Any] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid.append(cursor.fetchone()[0])
            self.outcome.append(self.call())
        except BaseException as exc:
            self.outcome.append(exc)
        finally:
            connection.close()

    @property
    def started(self) -> bool:
        return self.thread.is_alive() or bool(self.outcome)

    def start_until_blocked(self, seconds: float = 60) -> None:
        """Start the call; return once it waits for a lock of another session, or is done
        (at most `seconds`)."""
        self.thread.start()
        for _ in range(int(seconds * 10)):
            if self.outcome:
                return
            if self.pid:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT cardinality(pg_blocking_pids(%s))", [self.pid[0]])
                    if cursor.fetchone()[0]:
                        return
            self.thread.join(timeout=0.1)

    def join(self, seconds: float = 60) -> None:
        self.thread.join(timeout=seconds)
