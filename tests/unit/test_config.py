"""Settings: one object from flags, environment and defaults, validated at start."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from collab.config import OPTIONS, ConfigError, Settings, add_arguments, settings_from


def parse(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return settings_from(parser.parse_args(argv), env or {})


def test_refuses_to_start_without_a_key():
    with pytest.raises(ConfigError, match="--jwt-secret"):
        parse([])
    assert parse(["--dev"]).dev is True
    assert parse(["--jwt-secret", "x" * 32]).jwt_secret == "x" * 32


def test_secrets_are_not_in_the_repr():
    s = parse(["--jwt-secret", "s" * 40, "--admin-key", "k" * 20])
    assert "s" * 40 not in repr(s) and "k" * 20 not in repr(s)


def test_defaults():
    s = parse(["--dev"])
    assert s == Settings(dev=True)
    assert s.store == "sqlite" and s.port == 8000 and s.max_message_bytes == 1 << 20
    assert s.websocket_compression is False


def test_environment_then_flags():
    env = {
        "COLLAB_DEV": "1",
        "COLLAB_PORT": "9001",
        "COLLAB_STORE": "memory",
        "COLLAB_STRICT_BOARD": "true",
        "COLLAB_DATA_DIR": "/tmp/x",
        "COLLAB_CORS_ORIGINS": "https://a.example, https://b.example",
    }
    s = parse([], env)
    assert s.port == 9001 and s.store == "memory" and s.strict_board is True
    assert s.data_dir == Path("/tmp/x")
    assert s.cors_origins == ("https://a.example", "https://b.example")
    s = parse(["--port", "9002", "--no-strict-board"], env)
    assert s.port == 9002 and s.strict_board is False and s.store == "memory"


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["--store", "postgres"], {}, "store"),
        (["--jwt-secret", "short"], {}, "32 bytes"),
        (["--admin-key", "short"], {}, "admin keys"),
        (["--admin-key", "bad name!=" + "k" * 20], {}, "admin keys"),
        (["--store", "redis"], {}, "--cluster-key"),
        (["--store", "redis", "--cluster-key", "short"], {}, "32 bytes"),
        (["--tls-cert", "c.pem"], {}, "--tls-key"),
        (["--log-format", "xml"], {}, "log format"),
        (["--access-log", "everything"], {}, "access log"),
        (["--awareness-fields", "user,bad field"], {}, "awareness field"),
        (["--port", "70000"], {}, "port"),
        (["--listen-backlog", "0"], {}, "listen-backlog"),
        ([], {"COLLAB_PORT": "eighty"}, "COLLAB_PORT"),
        (["--engine", "automerge"], {}, "engine"),
        (["--max-message-bytes", "10"], {}, "max message bytes"),
        ([], {"COLLAB_STRICT_BOARD": "maybe"}, "COLLAB_STRICT_BOARD"),
    ],
)
def test_invalid_values_name_the_setting(argv, env, needle):
    with pytest.raises(ConfigError, match=needle):
        parse(["--jwt-secret", "x" * 32, *argv], env)


@pytest.mark.parametrize(
    "argv",
    [
        ["--jwt-secret", "x" * 32],
        ["--admin-key", "k" * 20],
        ["--cluster-key", "c" * 32],
        ["--metrics-token", "m" * 20],
    ],
)
def test_dev_refuses_production_keys(argv):
    with pytest.raises(ConfigError, match="--dev refuses production keys"):
        parse(["--dev", *argv])


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "collab.example"])
def test_dev_serves_loopback_only(host):
    with pytest.raises(ConfigError, match="loopback"):
        parse(["--dev", "--host", host])
    assert parse(["--dev", "--host", "::1"]).host == "::1"
    assert parse(["--dev", "--host", "localhost"]).host == "localhost"


def test_secrets_come_from_files(tmp_path):
    secret = tmp_path / "jwt"
    secret.write_text("s" * 40 + "\n")
    cluster = tmp_path / "cluster"
    cluster.write_text("c" * 40)
    s = parse(
        ["--jwt-secret-file", str(secret), "--store", "redis", "--cluster-key-file", str(cluster)]
    )
    assert s.jwt_secret == "s" * 40 and s.cluster_key == "c" * 40
    assert "s" * 40 not in repr(s) and "c" * 40 not in repr(s)
    with pytest.raises(ConfigError, match="not both"):
        parse(["--jwt-secret", "x" * 32, "--jwt-secret-file", str(secret)])
    with pytest.raises(ConfigError, match="cannot read"):
        parse(["--jwt-secret-file", str(tmp_path / "missing")])
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        parse(["--jwt-secret-file", str(tmp_path / "empty")])


def test_every_option_is_a_settings_field_and_documented():
    fields = set(Settings.__dataclass_fields__)
    assert {o.name for o in OPTIONS} <= fields
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for option in OPTIONS:
        assert option.flag in readme, f"{option.flag} missing from the README settings table"
        assert option.env in readme, f"{option.env} missing from the README settings table"
