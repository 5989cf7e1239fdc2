"""Copy the browser libraries from node_modules/ into src/zige/web/static/vendor/.

Run by `make assets` after `npm ci`. The pages load these copies from the site itself (the
Content-Security-Policy allows scripts from 'self' only; nothing is fetched from a CDN at run
time). The copies are build output and are not committed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "src" / "zige" / "web" / "static" / "vendor"

# (file in node_modules, name under static/vendor/)
ASSETS: tuple[tuple[str, str], ...] = (
    ("echarts/dist/echarts.min.js", "echarts.min.js"),
    ("echarts/LICENSE", "echarts.LICENSE.txt"),
    ("htmx.org/dist/htmx.min.js", "htmx.min.js"),
    ("htmx.org/LICENSE", "htmx.LICENSE.txt"),
)


def main() -> int:
    modules = ROOT / "node_modules"
    missing = [src for src, _ in ASSETS if not (modules / src).is_file()]
    if missing:
        print(f"vendor_assets: missing {', '.join(missing)}; run `npm ci` first", file=sys.stderr)
        return 1
    VENDOR.mkdir(parents=True, exist_ok=True)
    for src, name in ASSETS:
        shutil.copyfile(modules / src, VENDOR / name)
        print(f"vendor_assets: {src} -> {(VENDOR / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
