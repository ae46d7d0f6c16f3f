"""Token lifetime (issue 13, finding 5): iat required, a maximum lifetime,
one leeway for exp, iat and nbf, jti exposed; and key floors (finding 9)."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from collab.errors import ExpiredToken, InvalidToken
from collab.tokens import MIN_RSA_BITS, KeySet, TokenAuthenticator, load_public_keys, mint_token
from crdt.types import RoomId

SECRET = "s" * 48
ROOM = RoomId("r")
NOW = 1_800_000_000.0
MAX_TTL = 4 * 3600.0
LEEWAY = 30.0


def auth(*, max_ttl_s: float = MAX_TTL, leeway_s: float = LEEWAY) -> TokenAuthenticator:
    return TokenAuthenticator(
        KeySet.from_config(secret=SECRET, public_keys=()),
        leeway_s=leeway_s,
        max_ttl_s=max_ttl_s,
        clock=lambda: NOW,
    )


def signed(**claims: object) -> str:
    base: dict[str, object] = {"sub": "u1", "name": "Ann", "room": "r", "role": "participant"}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, algorithm="HS256")


def verify(token: str, **kwargs: float) -> object:
    return auth(**kwargs).authenticate({"token": token}, ROOM)


def test_iat_is_required():
    with pytest.raises(InvalidToken, match="missing claim 'iat'"):
        verify(signed(exp=int(NOW) + 60))


@pytest.mark.parametrize("iat", ["yesterday", True, None])
def test_iat_must_be_a_number(iat):
    token = signed(iat=iat, exp=int(NOW) + 60) if iat is not None else signed(exp=int(NOW) + 60)
    with pytest.raises(InvalidToken):
        verify(token)


def test_lifetime_at_the_maximum_and_one_past():
    iat = int(NOW) - 10
    identity = verify(signed(iat=iat, exp=iat + int(MAX_TTL)))
    assert identity.expires_at == iat + MAX_TTL + LEEWAY
    with pytest.raises(InvalidToken, match="lifetime"):
        verify(signed(iat=iat, exp=iat + int(MAX_TTL) + 1))


def test_a_token_for_a_hundred_years_is_refused():
    century = 100 * 365 * 86400
    with pytest.raises(InvalidToken, match="lifetime"):
        verify(signed(iat=int(NOW), exp=int(NOW) + century))
    # ... and so is one that claims to be issued a century on, to pass the lifetime check.
    with pytest.raises(InvalidToken, match="iat"):
        verify(signed(iat=int(NOW) + century - 60, exp=int(NOW) + century))


def test_a_future_iat_is_an_iat_error_not_nbf():
    with pytest.raises(InvalidToken, match=r"issued in the future \(iat\)") as info:
        verify(signed(iat=int(NOW) + 120, exp=int(NOW) + 600))
    assert "nbf" not in str(info.value)
    # Within the leeway: accepted (clocks differ a little).
    assert verify(signed(iat=int(NOW) + LEEWAY, exp=int(NOW) + 600))
    with pytest.raises(InvalidToken, match=r"issued in the future \(iat\)"):
        verify(signed(iat=int(NOW) + LEEWAY + 1, exp=int(NOW) + 600))


def test_nbf_with_the_same_leeway():
    assert verify(signed(iat=int(NOW), nbf=int(NOW) + LEEWAY, exp=int(NOW) + 600))
    with pytest.raises(InvalidToken, match=r"nbf"):
        verify(signed(iat=int(NOW), nbf=int(NOW) + LEEWAY + 1, exp=int(NOW) + 600))


def test_exp_with_the_leeway_at_the_edge_and_one_past():
    iat = int(NOW) - 600
    at_edge = signed(iat=iat, exp=int(NOW) - int(LEEWAY) + 1)
    identity = verify(at_edge)
    assert identity.expires_at == NOW + 1, "expires_at is exp plus the leeway"
    with pytest.raises(ExpiredToken):
        verify(signed(iat=iat, exp=int(NOW) - int(LEEWAY)))
    with pytest.raises(ExpiredToken):
        verify(at_edge, leeway_s=0)


def test_jti_is_the_identity_token_id():
    identity = verify(signed(iat=int(NOW), exp=int(NOW) + 60, jti="t-123"))
    assert identity.token_id == "t-123"
    assert verify(signed(iat=int(NOW), exp=int(NOW) + 60)).token_id is None
    for bad in (5, "", "x" * 129, "has space"):
        with pytest.raises(InvalidToken, match="jti"):
            verify(signed(iat=int(NOW), exp=int(NOW) + 60, jti=bad))


def test_minted_tokens_carry_iat_and_jti():
    token = mint_token(SECRET, algorithm="HS256", sub="u", name="N", room="r", role="observer")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert isinstance(claims["iat"], int) and isinstance(claims["jti"], str)
    assert claims["exp"] - claims["iat"] == 3600
    other = mint_token(SECRET, algorithm="HS256", sub="u", name="N", room="r", role="observer")
    assert jwt.decode(other, SECRET, algorithms=["HS256"])["jti"] != claims["jti"]


def _rsa_pem(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_rsa_keys_under_2048_bits_are_refused_at_start():
    assert MIN_RSA_BITS == 2048
    with pytest.raises(ValueError, match="2048"):
        load_public_keys(_rsa_pem(1024))
    with pytest.raises(ValueError, match="2048"):
        KeySet.from_config(secret=None, public_keys=[_rsa_pem(1536)])
    (key,) = load_public_keys(_rsa_pem(2048))
    assert key.algorithm == "RS256"


def test_max_ttl_must_be_positive():
    with pytest.raises(ValueError):
        auth(max_ttl_s=0)
