"""Named admin keys (protocol.md §10.1): who may call the admin API, and by what name
the audit log records them.

Keys come from ``--admin-key`` (comma-separated ``[name=]key`` entries) and
from ``--admin-key-file`` (one ``[name=]key`` a line; blank lines and ``#``
comments ignored). The file is looked at again on every check and re-read
when its modification time, size or inode changed, so keys rotate without a
restart: add the new key, switch the callers, remove the old one.

A key without a name is recorded as ``admin``. Several keys may share a name
(one admin's old and new key while rotating). Keys are compared in constant
time against every configured key; a key never appears in a log line, an
audit record or an error message (only names and line numbers do).
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_NAME", "MIN_KEY_CHARS", "AdminKey", "AdminKeys", "parse_admin_key"]

log = logging.getLogger("collab.admin")

#: The name an admin key without ``name=`` is recorded under.
DEFAULT_NAME = "admin"
MIN_KEY_CHARS = 16
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class AdminKey:
    """One admin key and the name the audit log records for it."""

    name: str
    key: bytes = field(repr=False)


def parse_admin_key(entry: str) -> AdminKey:
    """``[name=]key`` → AdminKey; ValueError (naming no key material) if invalid.

    The rule collab.config checks ``--admin-key`` with: a key holds no ``=``,
    and what stands before one is a name of ``[A-Za-z0-9_.-]``.
    """
    name, _, key = entry.strip().rpartition("=")
    if (name and not _NAME.fullmatch(name)) or len(key) < MIN_KEY_CHARS:
        raise ValueError(
            f"admin keys are [name=]key entries: a name of [A-Za-z0-9_.-] and a key of "
            f"{MIN_KEY_CHARS}+ characters"
        )
    return AdminKey(name or DEFAULT_NAME, key.encode())


def _file_identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class AdminKeys:
    """Every admin key: fixed ones (``--admin-key``) and a file's (``--admin-key-file``)."""

    def __init__(self, fixed: Iterable[AdminKey] = (), *, path: Path | None = None) -> None:
        """Raise ValueError if the file cannot be read or holds an invalid line
        (at start the operator sees the problem; later reloads log it)."""
        self.fixed = tuple(fixed)
        self.path = path
        self._from_file: tuple[AdminKey, ...] = ()
        self._seen: tuple[int, int, int] | None = None
        if path is not None:
            self._seen = _file_identity(path)
            self._from_file = self._read(strict=True)

    @classmethod
    def from_settings(cls, admin_key: str | None, admin_key_file: Path | None) -> AdminKeys:
        entries = [e for e in (admin_key or "").split(",") if e.strip()]
        return cls([parse_admin_key(e) for e in entries], path=admin_key_file)

    @property
    def enabled(self) -> bool:
        """Whether any key is configured (a file counts, even while it is empty)."""
        return bool(self.fixed) or self.path is not None

    @property
    def keys(self) -> tuple[AdminKey, ...]:
        self._reload_if_changed()
        return self.fixed + self._from_file

    def match(self, given: str) -> str | None:
        """The name of the key ``given`` is, or None. Compares against every
        key (no early exit), each in constant time."""
        found: str | None = None
        candidate = given.encode()
        for key in self.keys:
            if hmac.compare_digest(candidate, key.key) and found is None:
                found = key.name
        return found

    def _reload_if_changed(self) -> None:
        if self.path is None:
            return
        seen = _file_identity(self.path)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            self._from_file = self._read(strict=False)
        except ValueError as exc:
            # Fail closed: a file that cannot be read grants nothing until fixed.
            self._from_file = ()
            log.error("admin key file unusable, its keys are off: %s", exc)
            return
        log.info(
            "admin key file re-read: %d keys (%s)",
            len(self._from_file),
            ", ".join(sorted({k.name for k in self._from_file})) or "none",
        )

    def _read(self, *, strict: bool) -> tuple[AdminKey, ...]:
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise ValueError(f"cannot read the admin key file {self.path}: {reason}") from None
        keys = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                keys.append(parse_admin_key(line))
            except ValueError:
                message = f"admin key file {self.path} line {number}: not a [name=]key entry"
                if strict:
                    raise ValueError(message) from None
                log.error("%s; the line is skipped", message)
        return tuple(keys)
