"""What a test does when a tool it needs (node, redis-server, chromium) is missing.

On a developer's machine it is skipped with the reason. Where everything must
run (CI sets ``COLLAB_TESTS_REQUIRE_ALL=1`` in ``.ci/run``) it fails instead,
so a missing package can never turn a suite green by skipping it.
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn

import pytest

REQUIRE_ALL = os.environ.get("COLLAB_TESTS_REQUIRE_ALL") == "1"


def unavailable(reason: str) -> NoReturn:
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (COLLAB_TESTS_REQUIRE_ALL=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def second_loopback_address() -> str:
    """127.0.0.2, for a second client address: Linux answers on all of
    127/8; macOS only on 127.0.0.1."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.2", 0))
        except OSError:
            unavailable("127.0.0.2 is not a local address here (Linux has all of 127/8)")
    return "127.0.0.2"
