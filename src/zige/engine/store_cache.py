"""A process's parsed store manifests and compaction records (`zige.engine.store`), so that a
person page does not read and parse every import's manifest on every request.

Both kinds of file are written once under a temporary name and renamed into place (a manifest is
replaced only by `zige store upgrade`, by a rename too); a compaction record is removed by the
sweep, never changed. So a parsed file stays right as long as the file at its path is the same
file: each lookup `stat`s the path (2-6 µs on the bench machine, where reading and parsing the
JSON took 60-160 µs) and reads it again when its identity — device, inode, size, modification
and change times — differs. A file replaced by a rename has another inode; one rewritten in
place (a test, an operator's editor) another size or time — unless rewritten with the same size
within one tick of the file system's clock, which nothing in zige does. A path that is gone
raises `FileNotFoundError`, as reading it would, and leaves the cache.

New files need no notice: a reader lists the directory (`os.scandir`) or is given the paths (the
system of record's succeeded imports), and what it has not parsed before it reads. Each process
(gunicorn's workers are processes) has its own cache; within one, a lock guards the dictionary
(pages are served from threads), never the file I/O. No Django here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")

# What identifies one file at a path: device, inode, size, mtime and ctime in nanoseconds.
Identity = tuple[int, int, int, int, int]


def identity(result: os.stat_result) -> Identity:
    return (result.st_dev, result.st_ino, result.st_size, result.st_mtime_ns, result.st_ctime_ns)


class ParsedFiles(Generic[T]):
    """Parsed immutable files by directory and name (`parse` of the file's UTF-8 text), checked
    by identity."""

    def __init__(self, parse: Callable[[str], T]) -> None:
        self._parse = parse
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, tuple[Identity, T]]] = {}
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # A lock held by another thread at the fork would stay held in the child forever.
        self._lock = threading.Lock()

    def get(self, directory: str, name: str) -> T:
        """The parsed file `name` in `directory`; `FileNotFoundError` when there is none."""
        path = f"{directory}/{name}"  # POSIX (the store locks with fcntl): no os.path.join per file
        try:
            now = os.stat(path)  # noqa: PTH116 - a str: no Path made per file (10,000 a request)
        except FileNotFoundError:
            with self._lock:
                self._entries.get(directory, {}).pop(name, None)
            raise
        # Read without the lock: a dictionary lookup is atomic, and entries are only replaced whole.
        entries = self._entries.get(directory)
        entry = None if entries is None else entries.get(name)
        if entry is not None and entry[0] == identity(now):
            return entry[1]
        # The identity of the file actually read (it may have been replaced since the stat).
        with open(path, encoding="utf-8") as handle:  # noqa: PTH123 - as the stat above
            found = identity(os.fstat(handle.fileno()))
            text = handle.read()
        value = self._parse(text)
        with self._lock:
            self._entries.setdefault(directory, {})[name] = (found, value)
        return value

    def every(self, directory: str, prefix: str, suffix: str = ".json") -> list[T]:
        """Every file of `directory` named `prefix`...`suffix`, parsed. A file removed between the
        listing and its reading is left out (a failed import's manifest discarded, a superseded
        compaction record swept: neither is live); entries of files gone are dropped."""
        names = listing(directory, prefix, suffix)
        found = []
        for name in names:
            try:
                found.append(self.get(directory, name))
            except FileNotFoundError:
                continue
        self.keep_only(directory, names)
        return found

    def keep_only(self, directory: str, names: Iterable[str]) -> None:
        """Drop the entries of `directory` whose file is not among `names` (a listing of it):
        removed files do not stay in memory."""
        keep = set(names)
        with self._lock:
            entries = self._entries.get(directory)
            if entries is not None:
                for name in [n for n in entries if n not in keep]:
                    del entries[name]
                if not entries:
                    del self._entries[directory]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def listing(directory: str, prefix: str, suffix: str) -> list[str]:
    """The names in `directory` starting with `prefix` and ending with `suffix` (no hidden
    temporary files: they start with a dot), none when it does not exist."""
    try:
        with os.scandir(directory) as entries:
            return [e.name for e in entries if e.name.startswith(prefix) and e.name.endswith(suffix)]
    except FileNotFoundError:
        return []
