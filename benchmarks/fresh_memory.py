"""What a fresh page of memory costs on this machine, against the same pages written again.

    .venv/bin/python benchmarks/fresh_memory.py [--gb 1] [--rounds 3]

Every figure of `zige bench` moves with it. On the development machines (virtual machines whose
balloon device reports free memory to the host, `VIRTIO_BALLOON_F_REPORTING`), memory the guest
has not written since the host took it back costs 1.2-2 s a GB to write the first time, and
0.1 s a GB after that: the native ingest spends about half its scan's CPU time in the kernel
zeroing such pages (`perf`: clear_page_erms under zige_scan), and runs minutes apart differ by
that much (docs/performance.md). For each round it prints the seconds a GB of:

- `fresh`: a new anonymous mapping, one byte written a page;
- `again`: the same mapping written again (the baseline: the pages are in memory);
- `fresh, huge pages`: a new mapping with `MADV_HUGEPAGE` (what NumPy asks for large arrays).

Each round unmaps its memory, so the next round's may be recycled pages rather than fresh ones:
the first round is the one a process that has just started pays.
"""

from __future__ import annotations

import argparse
import mmap
import time
from pathlib import Path

import numpy as np

BALLOON_FEATURES = Path("/sys/bus/virtio/drivers/virtio_balloon/virtio0/features")
FREE_PAGE_REPORTING = 5  # VIRTIO_BALLOON_F_REPORTING


def free_page_reporting() -> str:
    """Whether the guest reports free pages to its host (then they come back fresh)."""
    try:
        bits = BALLOON_FEATURES.read_text().strip()
    except OSError:
        return "no virtio balloon"
    on = len(bits) > FREE_PAGE_REPORTING and bits[FREE_PAGE_REPORTING] == "1"
    return "free page reporting on" if on else "balloon without free page reporting"


def touch_seconds(size: int, *, huge: bool) -> tuple[float, float]:
    """(first write, second write) of one byte a page over a new mapping of `size` bytes."""
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        if huge and hasattr(mmap, "MADV_HUGEPAGE"):
            area.madvise(mmap.MADV_HUGEPAGE)
        pages = np.frombuffer(area, dtype=np.uint8)[:: mmap.PAGESIZE]
        started = time.perf_counter()
        pages[:] = 1
        first = time.perf_counter() - started
        started = time.perf_counter()
        pages[:] = 2
        again = time.perf_counter() - started
        del pages
    finally:
        area.close()
    return first, again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="memory written each time (GB)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = int(args.gb * 1e9) // mmap.PAGESIZE * mmap.PAGESIZE
    print(f"{free_page_reporting()}; {args.gb:g} GB a time, seconds a GB")
    print(f"{'round':>5}  {'fresh':>7}  {'again':>7}  {'fresh, huge pages':>17}")
    for round_ in range(1, args.rounds + 1):
        fresh, again = touch_seconds(size, huge=False)
        huge, _ = touch_seconds(size, huge=True)
        gb = size / 1e9
        print(f"{round_:>5}  {fresh / gb:7.2f}  {again / gb:7.2f}  {huge / gb:17.2f}")


if __name__ == "__main__":
    main()
