"""``collab token`` prints tokens the server accepts."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from collab.tokens import KeySet, TokenAuthenticator
from crdt.types import RoomId

SECRET = "k" * 40


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collab", "token", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=30,
    )


def test_token_with_secret_from_the_environment():
    done = run(
        "--room",
        "clinic-7/*",
        "--role",
        "facilitator",
        "--name",
        "Dr K",
        "--sub",
        "k1",
        env={"COLLAB_JWT_SECRET": SECRET},
    )
    assert done.returncode == 0, done.stderr
    auth = TokenAuthenticator(KeySet.from_config(secret=SECRET, public_keys=()))
    identity = auth.authenticate({"token": done.stdout.strip()}, RoomId("clinic-7/a"))
    assert (identity.user_id, identity.name, identity.role.value) == ("k1", "Dr K", "facilitator")


def test_token_with_a_private_key(tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "key.pem").write_bytes(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    done = run(
        "--room",
        "r",
        "--role",
        "observer",
        "--name",
        "O",
        "--kid",
        "k-2027",
        "--jwt-private-key",
        str(tmp_path / "key.pem"),
    )
    assert done.returncode == 0, done.stderr
    auth = TokenAuthenticator(
        KeySet.from_config(secret=None, public_keys=[f"k-2027={public.decode()}"])
    )
    assert auth.authenticate({"token": done.stdout.strip()}, RoomId("r")).role.value == "observer"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((), "no signing key"),
        (("--jwt-secret", "short"), "32 bytes"),
        (("--jwt-private-key", "/nonexistent.pem"), "cannot load"),
    ],
)
def test_token_errors(args, needle):
    done = run("--room", "r", "--role", "participant", "--name", "A", *args)
    assert done.returncode == 2
    assert needle in done.stderr


def test_minted_tokens_carry_iat_and_jti_and_live_within_the_maximum():
    """issue 13, finding 5: ``collab token`` mints what the server accepts."""
    import jwt

    done = run(
        "--room",
        "r",
        "--role",
        "participant",
        "--name",
        "A",
        "--jti",
        "ops-42",
        env={"COLLAB_JWT_SECRET": SECRET},
    )
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["jti"] == "ops-42"
    assert claims["exp"] - claims["iat"] == 3600
    # A lower maximum lowers the default lifetime to it ...
    done = run(
        "--room",
        "r",
        "--role",
        "participant",
        "--name",
        "A",
        env={"COLLAB_JWT_SECRET": SECRET, "COLLAB_JWT_MAX_TTL_S": "600"},
    )
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 600 and len(claims["jti"]) >= 16
    # ... and a lifetime past it is refused, as the server would refuse the token.
    for ttl, code in (("14400", 0), ("14401", 2)):
        done = run(
            "--room",
            "r",
            "--role",
            "participant",
            "--name",
            "A",
            "--ttl-s",
            ttl,
            env={"COLLAB_JWT_SECRET": SECRET},
        )
        assert done.returncode == code, done.stderr
    assert "maximum lifetime" in done.stderr
