"""Sans-I/O parts of the Redis security work: the connection options built
from the URL and settings, and the MACs (no Redis needed)."""

from __future__ import annotations

import pytest

from rooms.envelope import Envelope, EnvelopeKind, MalformedEnvelope
from rooms.integrity import ClusterMac, MacKind
from rooms.redis_conn import RedisConfigError, RedisOptions, describe_redis_error, redis_options

KEY = "k" * 40


def test_every_part_of_the_url_is_used():
    o = redis_options("rediss://ann:s%40cret@redis.internal:6380/4")
    assert (o.host, o.port, o.db, o.username, o.password, o.tls) == (
        "redis.internal",
        6380,
        4,
        "ann",
        "s@cret",
        True,
    )
    kwargs = o.connection_kwargs()
    assert kwargs["ssl"] is True and kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_check_hostname"] is True and kwargs["db"] == 4
    # A cluster node: its address, the same credentials and TLS, no database.
    node = o.connection_kwargs(host="10.0.0.7", port=7001)
    assert (node["host"], node["port"], node["password"], node["ssl"]) == (
        "10.0.0.7",
        7001,
        "s@cret",
        True,
    )
    assert "db" not in node
    assert "cret" not in o.display and "cret" not in repr(o)


def test_unix_socket_and_database():
    o = redis_options("unix://:pw@/run/redis/redis.sock?db=3")
    assert (o.path, o.db, o.password, o.host) == ("/run/redis/redis.sock", 3, "pw", None)
    kwargs = o.connection_kwargs()
    assert kwargs["unix_socket_path"] == "/run/redis/redis.sock" and "host" not in kwargs
    assert redis_options("unix:///tmp/r.sock").db == 0


def test_password_from_a_file(tmp_path):
    path = tmp_path / "pw"
    path.write_text("from-the-file\n")
    o = redis_options("redis://collab@10.0.0.5/0", password_file=path)
    assert (o.username, o.password) == ("collab", "from-the-file")
    with pytest.raises(RedisConfigError, match="both in the URL and in --redis-password-file"):
        redis_options("redis://:inline@10.0.0.5/0", password_file=path)
    with pytest.raises(RedisConfigError, match="cannot read --redis-password-file"):
        redis_options("redis://10.0.0.5/0", password_file=tmp_path / "missing")


def test_tls_settings(tmp_path):
    o = redis_options(
        "rediss://10.0.0.5",
        tls_ca=tmp_path / "ca.pem",
        tls_cert=tmp_path / "c.pem",
        tls_key=tmp_path / "c.key",
        tls_check_hostname=False,
    )
    kwargs = o.connection_kwargs()
    assert kwargs["ssl_ca_certs"] == str(tmp_path / "ca.pem")
    assert kwargs["ssl_certfile"] == str(tmp_path / "c.pem")
    assert kwargs["ssl_keyfile"] == str(tmp_path / "c.key")
    assert kwargs["ssl_check_hostname"] is False
    with pytest.raises(RedisConfigError, match="need a rediss:// URL"):
        redis_options("redis://10.0.0.5", tls_ca=tmp_path / "ca.pem")


@pytest.mark.parametrize(
    "url", ["http://x", "redis://x/0?ssl_cert_reqs=none", "redis://x:port/0", "unix://"]
)
def test_urls_collab_cannot_use(url):
    with pytest.raises(RedisConfigError):
        redis_options(url)


def test_error_messages_never_carry_the_password():
    o = RedisOptions(password="hunter2-password")
    text = describe_redis_error(OSError("bad hunter2-password here"), o)
    assert "hunter2" not in text


def test_macs_bind_every_part_of_the_context():
    mac = ClusterMac(KEY)
    context = {
        "room": "r",
        "doc": "chat",
        "origin": "A",
        "seq": 7,
        "position": "",
        "payload": b"\x01\x02",
    }
    good = mac.sign(MacKind.UPDATE, **context)
    assert len(good) == 32 and mac.verify(good, MacKind.UPDATE, **context)
    for change in (
        {"room": "other"},
        {"doc": "board"},
        {"origin": "B"},
        {"seq": 8},
        {"position": "1-0"},
        {"payload": b"\x01\x03"},
    ):
        assert not mac.verify(good, MacKind.UPDATE, **{**context, **change}), change
    assert not mac.verify(good, MacKind.AWARENESS, **context)
    assert not ClusterMac("x" * 40).verify(good, MacKind.UPDATE, **context)
    assert not mac.verify(b"", MacKind.UPDATE, **context)


def test_without_a_key_nothing_is_signed_and_everything_verifies():
    mac = ClusterMac(None)
    assert not mac.enabled
    assert mac.sign(MacKind.UPDATE, room="r") == b""
    assert mac.verify(b"", MacKind.SNAPSHOT, room="r", payload=b"anything")


def test_sealed_envelopes_round_trip_and_verify():
    mac = ClusterMac(KEY)
    envelope = mac.seal(Envelope(EnvelopeKind.AWARENESS, "A", "r", "board", 0, None, b"\x00"))
    parsed = Envelope.parse(envelope.serialize())
    assert parsed == envelope and mac.verify_envelope(parsed)
    moved = Envelope(
        parsed.kind, parsed.origin, "r2", parsed.doc, 0, None, parsed.payload, parsed.mac
    )
    assert not mac.verify_envelope(moved)


def test_version_one_envelopes_are_refused():
    import msgpack

    with pytest.raises(MalformedEnvelope, match="version"):
        Envelope.parse(msgpack.packb([1, 1, "n", "r", "d", 1, None, b""]))
    with pytest.raises(MalformedEnvelope, match="MAC"):
        Envelope.parse(msgpack.packb([2, 1, "n", "r", "d", 1, None, b"", 5]))
