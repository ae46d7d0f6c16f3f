"""What a flood may leave behind, read off this process (the in-process
server and its test clients): open descriptors and resident memory."""

from __future__ import annotations

import os

__all__ = ["open_fds", "rss_bytes"]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")
