"""Named admin keys (issue 13, finding 6): parsing, matching, the key file."""

from __future__ import annotations

import logging

import pytest

from collab.admin_keys import AdminKeys, parse_admin_key

A = "a" * 20
B = "b" * 20


def test_entries_and_names():
    assert parse_admin_key(f"ops={A}").name == "ops"
    assert parse_admin_key(A).name == "admin", "a key without a name"
    assert parse_admin_key(f" ci.bot-2={B} ").key == B.encode()
    for bad in ("short", "ops=short", f"bad name!={'k' * 20}", f"a=b={'k' * 20}"):
        with pytest.raises(ValueError) as info:
            parse_admin_key(bad)
        assert "short" not in str(info.value) and "kkk" not in str(info.value)
    assert A not in repr(parse_admin_key(f"ops={A}"))


def test_match_names_the_key():
    keys = AdminKeys.from_settings(f"ops={A},{B}", None)
    assert keys.match(A) == "ops" and keys.match(B) == "admin"
    assert keys.match("c" * 20) is None and keys.match("") is None
    assert keys.enabled and not AdminKeys.from_settings(None, None).enabled


def test_the_file_is_reread_when_it_changes(tmp_path, caplog):
    path = tmp_path / "keys"
    path.write_text(f"# ops\nops={A}\n")
    keys = AdminKeys.from_settings(f"boot={B}", path)
    assert keys.match(A) == "ops" and keys.match(B) == "boot"
    path.write_text(f"ops2={A}\nx=too-short\n")
    caplog.set_level(logging.INFO)
    assert keys.match(A) == "ops2"
    assert "line 2" in caplog.text and A not in caplog.text
    path.unlink()
    assert keys.match(A) is None, "a missing file grants nothing"
    assert keys.match(B) == "boot", "the fixed keys stay"
    with pytest.raises(ValueError, match="cannot read"):
        AdminKeys(path=path)
