"""What a test does when a tool it needs (node, redis-server, chromium) is missing.

On a developer's machine it is skipped with the reason. Where everything must
run (CI sets ``COLLAB_TESTS_REQUIRE_ALL=1`` in ``.ci/run``) it fails instead,
so a missing package can never turn a suite green by skipping it.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ALL = os.environ.get("COLLAB_TESTS_REQUIRE_ALL") == "1"


def unavailable(reason: str) -> NoReturn:
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (COLLAB_TESTS_REQUIRE_ALL=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)
