"""Webhook signatures, the retry schedule and endpoint configuration
(collab.webhooks, rooms.outbox; protocol.md §10.5). No network."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest

from collab.config import ConfigError, Settings, settings_from
from collab.webhooks import (
    EVENT_TYPES,
    Endpoint,
    Webhooks,
    load_webhooks_file,
    parse_endpoints,
    verify_signature,
)
from rooms.outbox import OutboxEntry, OutboxMac, RetryPolicy, parse_signature, signature_header

SECRET = "whsec-" + "s" * 40
BODY = b'{"id":"evt_1","type":"session.ended","created_ms":1,"room":"r","data":{}}'
NOW = 1_700_000_000


def endpoint(**fields) -> dict:
    base = {
        "name": "clinic",
        "url": "https://platform.example/hooks",
        "secret": SECRET,
        "events": ["session.ended"],
    }
    return {**base, **fields}


# -- signatures ------------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_the_timestamp_and_body():
    header = signature_header(SECRET, BODY, timestamp=NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify_signature(SECRET, header, BODY, now_s=NOW)


def test_a_wrong_secret_fails():
    header = signature_header(SECRET, BODY, timestamp=NOW)
    assert not verify_signature("another-secret-" + "x" * 40, header, BODY, now_s=NOW)


def test_a_tampered_body_fails():
    header = signature_header(SECRET, BODY, timestamp=NOW)
    assert not verify_signature(SECRET, header, BODY.replace(b"ended", b"endeD"), now_s=NOW)
    assert not verify_signature(SECRET, header, BODY + b" ", now_s=NOW)


def test_an_old_or_future_timestamp_fails():
    header = signature_header(SECRET, BODY, timestamp=NOW)
    assert verify_signature(SECRET, header, BODY, now_s=NOW + 300)
    assert not verify_signature(SECRET, header, BODY, now_s=NOW + 301), "replayed later"
    assert not verify_signature(SECRET, header, BODY, now_s=NOW - 301), "from the future"
    assert verify_signature(SECRET, header, BODY, now_s=NOW + 900, tolerance_s=1000)


def test_a_timestamp_changed_in_the_header_fails():
    header = signature_header(SECRET, BODY, timestamp=NOW)
    moved = header.replace(f"t={NOW}", f"t={NOW + 100}")
    assert not verify_signature(SECRET, moved, BODY, now_s=NOW + 100)


@pytest.mark.parametrize(
    "header",
    ["", "garbage", f"t={NOW}", "v1=abc", f"t=x{NOW},v1=ab", f"t={NOW},t={NOW},v1=ab", "t=٣,v1=a"],
)
def test_malformed_headers_fail(header):
    assert not verify_signature(SECRET, header, BODY, now_s=NOW)


def test_any_of_several_v1_signatures_may_match():
    """A receiver rotating its secret, or a later sender with two secrets."""
    good = signature_header(SECRET, BODY, timestamp=NOW).split("v1=")[1]
    header = f"t={NOW},v1={'0' * 64},v1={good},v2=ignored"
    assert parse_signature(header) == (NOW, ["0" * 64, good])
    assert verify_signature(SECRET, header, BODY, now_s=NOW)


# -- the retry schedule ----------------------------------------------------------------


def outbox_entry(created_ms: float, attempts: int = 0) -> OutboxEntry:
    return OutboxEntry(
        "e:x", "e", "session.ended", "x", "r", BODY, created_ms, created_ms, attempts
    )


def test_backoff_doubles_with_jitter_up_to_the_bound():
    policy = RetryPolicy(initial_s=1.0, max_s=3600.0)
    assert [policy.delay_s(n, lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [policy.delay_s(n, lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert policy.delay_s(40, lambda: 1.0) == 3600.0
    assert policy.delay_s(10_000, lambda: 0.0) == 1800.0


def test_an_entry_is_given_up_after_the_bounded_time():
    policy = RetryPolicy(initial_s=1.0, max_s=3600.0, give_up_after_s=86_400.0)
    young = outbox_entry(created_ms=0.0, attempts=3)
    assert policy.next_ms(young, 10_000.0, lambda: 1.0) == 10_000.0 + 8_000.0, "4th failure: 8 s"
    assert not policy.expired(young, 86_399_999.0)
    assert policy.expired(young, 86_400_000.0)
    # A retry that would fall past the bound is not scheduled: given up.
    assert policy.next_ms(outbox_entry(0.0, 30), 86_000_000.0, lambda: 1.0) is None


def test_retry_policy_checks_its_values():
    with pytest.raises(ValueError):
        RetryPolicy(initial_s=0)
    with pytest.raises(ValueError):
        RetryPolicy(initial_s=10, max_s=1)
    with pytest.raises(ValueError):
        RetryPolicy(give_up_after_s=0)


def test_a_sealed_record_opens_only_under_its_key():
    record = outbox_entry(1.0).record()
    mac = OutboxMac("c" * 40)
    sealed = mac.seal(record)
    assert mac.open(sealed) == record
    assert OutboxMac("d" * 40).open(sealed) is None
    assert mac.open(sealed.replace(b"session", b"sessiom")) is None
    assert mac.open(b"." + record) is None, "unsigned"
    assert OutboxMac(None).open(b"." + record) == record, "--dev: nothing is signed"
    assert OutboxEntry.from_record(record, next_ms=5.0, attempts=2) == OutboxEntry(
        "e:x", "e", "session.ended", "x", "r", BODY, 1.0, 5.0, 2
    )


# -- endpoint configuration ------------------------------------------------------------


def test_a_valid_endpoint_file_parses(tmp_path):
    path = tmp_path / "hooks.json"
    path.write_text(
        json.dumps(
            {
                "endpoints": [
                    endpoint(events=["session.ended", "moderation.*"]),
                    endpoint(
                        name="records",
                        url="http://127.0.0.1:9000/in",
                        events=["chat.message", "export.ready", "checkin.closed"],
                        include_content=True,
                    ),
                ]
            }
        )
    )
    path.chmod(0o600)
    first, second = load_webhooks_file(path)
    assert first.wants("moderation.mute") and first.wants("session.ended")
    assert not first.wants("chat.message") and not first.include_content
    assert second.wants("chat.message") and second.include_content
    assert SECRET not in repr(first), "the secret never shows in a repr"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660])
def test_a_webhooks_file_others_may_use_is_refused(tmp_path, mode):
    path = tmp_path / "hooks.json"
    path.write_text(json.dumps([endpoint()]))
    path.chmod(mode)
    with pytest.raises(ValueError, match="chmod 600"):
        load_webhooks_file(path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://platform.example/x"}, "http:// or https://"),
        ({"url": "file:///etc/passwd"}, "http:// or https://"),
        ({"url": "https://"}, "with a host"),
        ({"url": "https://h.example:99999/"}, "http:// or https://"),
        ({"url": "https://user:pw@h.example/"}, "no credentials"),
        ({"secret": "short"}, "at least 32 bytes"),
        ({"secret": "x" * 31}, "at least 32 bytes"),
        ({"events": []}, "at least one event"),
        ({"events": ["session.started"]}, "unknown event"),
        ({"events": ["moderation.ban"]}, "unknown event"),
        ({"events": ["chat.message"]}, "needs include_content"),
        ({"events": ["chat.message"], "include_content": "yes"}, "true or false"),
        ({"name": "has space"}, "name must be"),
        ({"name": ""}, "name must be"),
        ({"extra": 1}, "unknown endpoint field"),
        ({"events": "session.ended"}, "list of event names"),
    ],
)
def test_invalid_endpoints_are_refused(fields, message):
    with pytest.raises(ValueError, match=message) as refused:
        parse_endpoints([endpoint(**fields)])
    assert SECRET not in str(refused.value)


def test_endpoint_lists_are_checked_whole():
    with pytest.raises(ValueError, match="share a name"):
        parse_endpoints([endpoint(), endpoint()])
    with pytest.raises(ValueError, match="non-empty list"):
        parse_endpoints([])
    with pytest.raises(ValueError, match="non-empty list"):
        parse_endpoints({"hooks": []})
    with pytest.raises(ValueError, match="name, url, secret and events"):
        parse_endpoints([{"name": "x"}])


def test_every_moderation_action_has_an_event():
    from rooms.moderation import ACTIONS

    for action in ACTIONS:
        assert "moderation." + action.removeprefix("mod:") in EVENT_TYPES


def test_settings_read_the_webhooks_file(tmp_path):
    path = tmp_path / "hooks.json"
    path.write_text(json.dumps([endpoint()]))
    path.chmod(0o600)
    settings = settings_from(
        None, {"COLLAB_WEBHOOKS_FILE": str(path), "COLLAB_WEBHOOK_TIMEOUT_S": "3"}, dev=True
    )
    assert [e.name for e in settings.webhooks] == ["clinic"]
    assert settings.webhook_timeout_s == 3.0
    assert SECRET not in repr(settings)
    hooks = Webhooks.from_settings(settings)
    assert hooks.timeout_s == 3.0 and hooks.retry.give_up_after_s == 3 * 86_400.0


def test_settings_refuse_a_bad_webhooks_file(tmp_path):
    path = tmp_path / "hooks.json"
    path.write_text(json.dumps([endpoint(secret="short")]))
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="webhooks-file: endpoint clinic: secret"):
        settings_from(None, {}, dev=True, webhooks_file=path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        settings_from(None, {}, dev=True, webhooks_file=path)
    with pytest.raises(ConfigError, match="cannot read"):
        settings_from(None, {}, dev=True, webhooks_file=Path(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="must be positive"):
        Settings(dev=True, webhook_timeout_s=0)


def test_webhooks_check_their_own_settings():
    with pytest.raises(ValueError, match="shorter than the lease"):
        Webhooks([endpoint()], timeout_s=30, lease_s=10)
    with pytest.raises(ValueError, match="needs include_content"):
        Webhooks([endpoint(events=["chat.message"])])
    hooks = Webhooks([Endpoint("a", "https://a.example/", SECRET, frozenset({"room.purged"}))])
    assert hooks.lease_s >= 60.0
    with pytest.raises(ValueError, match="keeps their outbox"):
        hooks.use_store(object())
