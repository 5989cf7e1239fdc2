"""`python -m zige.engine.native [--force]`: build the native ingest library (make setup runs it)."""

import sys

from zige.engine.native import build

if __name__ == "__main__":
    build(force="--force" in sys.argv[1:])
