"""protocol.md and the code agree on error codes, events and limits."""

from __future__ import annotations

import re
from pathlib import Path

from collab import sync
from collab.errors import ALL_CODES
from crdt.errors import CollabError
from rooms.limits import Limits

DOC = (Path(__file__).resolve().parents[2] / "protocol.md").read_text()


def section(number: int) -> str:
    match = re.search(rf"^## {number}\. .*?(?=^## {number + 1}\. |\Z)", DOC, re.S | re.M)
    assert match, f"protocol.md has no section {number}"
    return match.group(0)


def test_error_table_matches_the_codes():
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section(7), re.M))
    assert documented == {code.value for code in ALL_CODES}


def test_every_error_class_has_a_documented_code():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    documented = set(re.findall(r"`([a-z_]+)`", section(7)))
    for cls in subclasses(CollabError):
        assert cls.code.value in documented, cls.__name__


def test_events_are_documented():
    for event in (sync.SYNC_STEP_1, sync.SYNC_UPDATE, sync.AWARENESS_UPDATE):
        assert f"`{event}`" in section(3)
    assert f"`{sync.CHAT_SEND}`" in section(6)
    assert "`collab:error`" in section(6)
    assert f"`{sync.ROOM_STATE}`" in section(6)
    from rooms.moderation import ACTIONS

    for event in ACTIONS:
        assert f"`{event}`" in section(6), event


def test_audit_actions_are_documented():
    from rooms.audit import AuditAction

    text = section(10)
    for action in AuditAction:
        assert f"`{action.value}`" in text, action


def test_limits_are_documented():
    limits = Limits()
    text = section(8)
    assert "1 MiB" in text and limits.max_message_bytes == 1 << 20
    assert str(limits.max_chat_chars) in text
    assert f"| {limits.max_awareness_entries} |" in text
    assert "16 KiB" in text and limits.max_awareness_state_bytes == 16 << 10
    assert f"| {limits.max_awareness_clients_per_connection} |" in text
    assert limits.max_clock == 2**31 and "2³¹" in text


def test_every_limit_setting_is_in_the_limits_table():
    from collab.config import OPTIONS

    text = section(8)
    limit_settings = [
        o
        for o in OPTIONS
        if o.name.startswith(("max_", "update_", "awareness_", "chat_", "event_"))
        or o.name in ("connect_timeout_s", "trusted_proxies")
        if o.name
        not in ("event_loop", "max_send_buffer_bytes", "awareness_timeout_s", "awareness_fields")
    ]
    assert len(limit_settings) >= 24
    for option in limit_settings:
        assert f"`{option.flag}`" in text, option.flag


def test_every_limit_counted_in_metrics_is_named_in_the_table():
    root = Path(__file__).resolve().parents[2]
    names = set()
    for path in [*root.glob("collab/*.py"), *root.glob("rooms/*.py")]:
        code = path.read_text()
        names |= set(re.findall(r"refused\(\s*\"([a-z_]+)\"", code))
        names |= set(re.findall(r"rate_limited\([^()]*\"([a-z_]+)\"\)", code))
        names |= set(re.findall(r"(?:CrdtCode|RoomCode|AppCode)\.[A-Z_]+: \"([a-z_]+)\"", code))
    assert {"updates", "chat", "packets", "document_size", "connect_timeout"} <= names
    text = section(8)
    for name in names:
        assert f"`{name}`" in text, name
