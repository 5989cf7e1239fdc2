"""Settings for the test suite: a private data directory per test process, fast password hashing."""

import os
import tempfile

os.environ.setdefault("ZIGE_DATA_DIR", tempfile.mkdtemp(prefix="zige-test-"))

from zige.web.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
