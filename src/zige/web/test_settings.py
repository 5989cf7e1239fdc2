"""Settings for the test suite: a private data directory per test process, fast password hashing."""

import os
import tempfile
from pathlib import Path

# pytest-xdist's workers inherit the controller's environment, so each takes a directory of its
# own under the controller's: two workers' databases number their rows alike, and files named
# after a row (a payment export's batch number, say) would otherwise be written by both at once.
_base = os.environ.get("ZIGE_DATA_DIR") or tempfile.mkdtemp(prefix="zige-test-")
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
os.environ["ZIGE_DATA_DIR"] = str(Path(_base) / _worker) if _worker else _base

from zige.web.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
