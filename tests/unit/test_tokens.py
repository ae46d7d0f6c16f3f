"""Token verification: algorithms, key ids, claims, room patterns, attacks."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from collab.errors import ExpiredToken, InvalidToken, MissingToken, WrongRoom
from collab.tokens import KeySet, TokenAuthenticator, load_public_keys, mint_token, room_matches
from crdt.types import RoomId
from rooms.identity import Role

SECRET = "s" * 48
ROOM = RoomId("clinic-7/group-a")


def pem_public(private_key) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key_2():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def hs_auth(**kwargs) -> TokenAuthenticator:
    return TokenAuthenticator(KeySet.from_config(secret=SECRET, public_keys=()), **kwargs)


def token(key=SECRET, algorithm="HS256", **overrides) -> str:
    claims = {"sub": "u1", "name": "Ann", "room": str(ROOM), "role": "participant"}
    claims.update(overrides)
    kid = claims.pop("kid", None)
    ttl = claims.pop("ttl_s", 3600)
    return mint_token(key, algorithm=algorithm, ttl_s=ttl, kid=kid, **claims)


def test_valid_hs256_token():
    identity = hs_auth().authenticate({"token": token(role="facilitator")}, ROOM)
    assert identity.user_id == "u1" and identity.name == "Ann"
    assert identity.role is Role.FACILITATOR
    assert identity.expires_at is not None and identity.expires_at > time.time() + 3000


@pytest.mark.parametrize("auth", [None, {}, {"token": ""}, {"name": "Ann"}, "token"])
def test_missing_token(auth):
    with pytest.raises(MissingToken):
        hs_auth().authenticate(auth, ROOM)


@pytest.mark.parametrize("value", [42, ["a"], "not-a-jwt", "a.b.c", "x" * 9000])
def test_malformed_token(value):
    with pytest.raises(InvalidToken):
        hs_auth().authenticate({"token": value}, ROOM)


def test_wrong_signature():
    with pytest.raises(InvalidToken, match="signature"):
        hs_auth().authenticate({"token": token(key="t" * 48)}, ROOM)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused():
    claims = {
        "sub": "u1",
        "name": "A",
        "room": str(ROOM),
        "role": "facilitator",
        "exp": int(time.time()) + 60,
    }
    forged = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    with pytest.raises(InvalidToken):
        hs_auth().authenticate({"token": forged}, ROOM)


def test_hmac_signed_with_the_public_key_is_refused(rsa_key):
    """The algorithm confusion attack: HS256 keyed with the RS256 public key."""
    public_pem = pem_public(rsa_key)
    auth = TokenAuthenticator(KeySet.from_config(secret=None, public_keys=[public_pem]))
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64(
        {
            "sub": "u1",
            "name": "A",
            "room": str(ROOM),
            "role": "facilitator",
            "exp": int(time.time()) + 60,
        }
    )
    import hashlib
    import hmac

    signature = hmac.new(public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    forged = (
        f"{header}.{payload}." + base64.urlsafe_b64encode(signature.digest()).rstrip(b"=").decode()
    )
    with pytest.raises(InvalidToken):
        auth.authenticate({"token": forged}, ROOM)
    # and a legitimate RS256 token still works
    good = token(key=rsa_key, algorithm="RS256")
    assert auth.authenticate({"token": good}, ROOM).user_id == "u1"


@pytest.mark.parametrize("curve", ["es256", "eddsa"])
def test_es256_and_eddsa(curve):
    if curve == "es256":
        key, alg = ec.generate_private_key(ec.SECP256R1()), "ES256"
    else:
        key, alg = ed25519.Ed25519PrivateKey.generate(), "EdDSA"
    auth = TokenAuthenticator(KeySet.from_config(secret=None, public_keys=[pem_public(key)]))
    assert auth.authenticate({"token": token(key=key, algorithm=alg)}, ROOM).name == "Ann"


def test_key_rotation_by_kid(rsa_key, rsa_key_2, tmp_path):
    old, new = tmp_path / "old.pem", tmp_path / "new.pem"
    old.write_text(pem_public(rsa_key))
    new.write_text(pem_public(rsa_key_2))
    auth = TokenAuthenticator(
        KeySet.from_config(secret=None, public_keys=[f"2026-a={old}", f"2026-b={new}"])
    )
    for key, kid in ((rsa_key, "2026-a"), (rsa_key_2, "2026-b")):
        assert auth.authenticate({"token": token(key=key, algorithm="RS256", kid=kid)}, ROOM)
    with pytest.raises(InvalidToken):  # signed with a, labelled b
        auth.authenticate({"token": token(key=rsa_key, algorithm="RS256", kid="2026-b")}, ROOM)
    with pytest.raises(InvalidToken, match="no configured key"):
        auth.authenticate({"token": token(key=rsa_key, algorithm="RS256", kid="retired")}, ROOM)


def test_expired_and_leeway():
    now = time.time()
    expired_long_ago = token(ttl_s=-120)
    with pytest.raises(ExpiredToken):
        hs_auth(leeway_s=30).authenticate({"token": expired_long_ago}, ROOM)
    just_expired = token(ttl_s=-5)
    assert hs_auth(leeway_s=30).authenticate({"token": just_expired}, ROOM)
    with pytest.raises(ExpiredToken):
        hs_auth(leeway_s=0).authenticate({"token": just_expired}, ROOM)
    assert now > 0


def test_not_yet_valid():
    future = jwt.encode(
        {
            "sub": "u1",
            "name": "A",
            "room": str(ROOM),
            "role": "participant",
            "iat": int(time.time()),
            "nbf": int(time.time()) + 600,
            "exp": int(time.time()) + 3600,
        },
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken, match="nbf"):
        hs_auth().authenticate({"token": future}, ROOM)


def test_audience_and_issuer_when_configured():
    auth = hs_auth(audience="collab", issuer="https://platform.example")
    good = token(audience="collab", issuer="https://platform.example")
    assert auth.authenticate({"token": good}, ROOM)
    for bad in (
        token(audience="other", issuer="https://platform.example"),
        token(audience="collab", issuer="https://evil.example"),
        token(),
    ):
        with pytest.raises(InvalidToken):
            auth.authenticate({"token": bad}, ROOM)


@pytest.mark.parametrize(
    "claims",
    [
        {"role": "admin"},
        {"sub": ""},
        {"sub": "has space"},
        {"name": ""},
        {"name": "x" * 65},
        {"room": ""},
        {"sub": 5},
    ],
)
def test_bad_claims(claims):
    with pytest.raises(InvalidToken):
        hs_auth().authenticate({"token": token(**claims)}, ROOM)


def test_missing_required_claim():
    bare = jwt.encode({"sub": "u1", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="missing claim"):
        hs_auth().authenticate({"token": bare}, ROOM)


def test_wrong_room_and_patterns():
    auth = hs_auth()
    with pytest.raises(WrongRoom):
        auth.authenticate({"token": token(room="clinic-7/group-b")}, ROOM)
    assert auth.authenticate({"token": token(room="clinic-7/*")}, ROOM)
    for room in ("clinic-70/*", "clinic-7", "*", "/*"):
        with pytest.raises(WrongRoom):
            auth.authenticate({"token": token(room=room)}, ROOM)


@pytest.mark.parametrize(
    ("pattern", "room", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/*", "a/b", True),
        ("a/*", "a/b/c", True),
        ("a/*", "a", False),
        ("a/*", "ab/c", False),
        ("*", "a", False),
        ("a/b", "a/bc", False),
    ],
)
def test_room_matches(pattern, room, expected):
    assert room_matches(pattern, room) is expected


def test_load_public_keys_forms(rsa_key, rsa_key_2, tmp_path):
    two = pem_public(rsa_key) + pem_public(rsa_key_2)
    assert [k.algorithm for k in load_public_keys(two)] == ["RS256", "RS256"]
    path = tmp_path / "k.pem"
    path.write_text(pem_public(rsa_key))
    (key,) = load_public_keys(f"main={path}")
    assert key.kid == "main" and key.algorithm == "RS256"
    with pytest.raises(ValueError, match="cannot read"):
        load_public_keys(str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="P-256"):
        load_public_keys(pem_public(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(ValueError, match="at least 32 bytes"):
        KeySet.from_config(secret="short", public_keys=())
