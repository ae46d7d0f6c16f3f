"""The PostgreSQL settings and URL (no server needed): what is refused at
start, and that the password never shows (README: The PostgreSQL store)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from collab.config import ConfigError, parse_settings
from rooms.postgres_conn import PostgresConfigError, display_url, postgres_options

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("url", "shown", "password"),
    [
        (
            "postgresql://collab:s3cret@db:5432/collab",
            "postgresql://collab@db:5432/collab",
            "s3cret",
        ),
        ("postgres://collab:s%40cret@db/collab", "postgres://collab@db/collab", "s@cret"),
        (
            "postgresql://collab@db/collab?password=s3cret&sslmode=verify-full",
            "postgresql://collab@db/collab?sslmode=verify-full",
            "s3cret",
        ),
        ("postgresql://:s3cret@db/collab", "postgresql://db/collab", "s3cret"),
        (
            "postgresql:///collab?host=/run/postgresql&port=5433",
            "postgresql:///collab?host=/run/postgresql&port=5433",
            None,
        ),
        (
            "postgresql://a:s3cret@h1:5432,h2:5433/collab",
            "postgresql://a@h1:5432,h2:5433/collab",
            "s3cret",
        ),
    ],
)
def test_the_url_is_shown_without_its_password(url, shown, password):
    assert display_url(url) == shown
    options = postgres_options(url)
    assert options.display == shown
    if password is not None:
        assert password not in repr(options)
        assert options.scrub(f"failed for {password}!") == "failed for ***!"


def test_a_password_file_is_read_and_may_not_repeat_the_urls(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-the-file\n")
    options = postgres_options("postgresql://collab@db/collab", password_file=secret)
    assert options.connect_kwargs() == {
        "dsn": "postgresql://collab@db/collab",
        "password": "from-the-file",
    }
    assert "from-the-file" not in repr(options)
    assert options.scrub("x from-the-file y") == "x *** y"
    for twice in ("postgresql://collab:pw@db/collab", "postgresql://collab@db/c?password=pw"):
        with pytest.raises(PostgresConfigError, match="both in the URL"):
            postgres_options(twice, password_file=secret)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(PostgresConfigError, match="is empty"):
        postgres_options("postgresql://db/c", password_file=tmp_path / "empty")
    with pytest.raises(PostgresConfigError, match="cannot read"):
        postgres_options("postgresql://db/c", password_file=tmp_path / "missing")
    with pytest.raises(PostgresConfigError, match="must start with postgresql://"):
        postgres_options("mysql://db/c")


def test_settings_need_a_postgresql_url_for_the_postgres_store():
    with pytest.raises(ConfigError, match="--store postgres needs --postgres-url"):
        parse_settings(["--dev", "--store", "postgres"], {})
    with pytest.raises(ConfigError, match="must start with postgresql://"):
        parse_settings(["--dev", "--store", "postgres", "--postgres-url", "redis://x"], {})
    settings = parse_settings(
        ["--dev", "--store", "postgres", "--postgres-password-file", "/etc/collab/pg"],
        {"COLLAB_POSTGRES_URL": "postgresql://collab:hunter22@db/collab"},
    )
    assert settings.postgres_url == "postgresql://collab:hunter22@db/collab"
    assert settings.postgres_password_file == Path("/etc/collab/pg")
    assert "hunter22" not in repr(settings)


@pytest.mark.slow
def test_the_wheel_ships_the_migrations(tmp_path):
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip_wheel, "-q", "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("collab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "rooms/migrations/postgres").glob("*.sql")}
    assert shipped and {f"rooms/migrations/postgres/{n}" for n in shipped} <= names
    assert "rooms/postgres_migrations.py" in names and "rooms/store_postgres.py" in names
