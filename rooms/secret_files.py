"""Reading a secret from a file (a password, a key): one place, so every
``--*-file`` setting says the same thing when it cannot (the file's name and
the reason, never its content)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["read_secret_file"]


def read_secret_file(path: Path, flag: str) -> str:
    """The secret in ``path``, surrounding whitespace stripped; ValueError
    naming ``flag`` and the file if it cannot be read or is empty."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(
            f"cannot read {flag} {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    if not text:
        raise ValueError(f"{flag} {path} is empty")
    return text
