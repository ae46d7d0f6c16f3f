"""``--dev`` cannot be production (issue 13, finding 4): its tokens are
signed with a key only that process trusts, a production server never mints,
no configured key is ever printed or logged, and /healthz says when dev is on."""

from __future__ import annotations

import logging

import aiohttp
import jwt
import pytest

from collab.app import create_app
from collab.auth import build_security
from collab.client import CollabClient, CollabClientError
from collab.config import settings_from
from rooms.errors import InternalError
from tests.conftest import ADMIN_KEY, SECRET


async def dev_token(url: str, **body: str) -> dict:
    async with aiohttp.ClientSession() as http, http.post(url + "/dev/token", json=body) as r:
        assert r.status == 200
        return await r.json()


async def healthz(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url + "/healthz") as r:
        return await r.json()


async def test_dev_tokens_are_trusted_by_their_own_process_only(server_factory):
    one = await server_factory(jwt_max_ttl_s=600)
    other = await server_factory()
    minted = await dev_token(one.url, room="r", name="Dee", role="facilitator")
    claims = jwt.decode(minted["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 600, "within the server's own maximum"
    assert claims["jti"]
    client = CollabClient(one.url, "r", auth={"token": minted["token"]})
    await client.connect()
    await client.close()
    with pytest.raises(CollabClientError) as info:
        await CollabClient(other.url, "r", auth={"token": minted["token"]}).connect()
    assert info.value.code == "invalid_token"
    # A token signed with any other key (say, a production secret) is no dev token.
    forged = jwt.encode({**claims, "jti": "x"}, SECRET, algorithm="HS256", headers={"typ": "JWT"})
    with pytest.raises(CollabClientError) as info:
        await CollabClient(one.url, "r", auth={"token": forged}).connect()
    assert info.value.code == "invalid_token"


async def test_healthz_says_when_dev_mode_is_on(server_factory):
    dev = await server_factory()
    prod = await server_factory(dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY)
    assert (await healthz(dev.url))["dev"] is True
    assert (await healthz(prod.url))["dev"] is False


def test_a_production_server_never_mints():
    security = build_security(settings_from(None, {}, jwt_secret=SECRET, admin_key=ADMIN_KEY))
    assert security.mint_secret is None and security.dev_admin_key is None
    with pytest.raises(InternalError):
        security.mint(sub="u", name="U", room="r", role="facilitator")


def test_no_configured_key_is_printed_or_logged(capfd, caplog):
    caplog.set_level(logging.DEBUG)
    create_app(settings_from(None, {}, jwt_secret=SECRET, admin_key=f"ops={ADMIN_KEY}"))
    out, err = capfd.readouterr()
    assert ADMIN_KEY not in out + err + caplog.text and SECRET not in out + err + caplog.text
    # --dev prints the admin key it made up (developers and tests read it), and
    # nothing else: not in the log either, where it would outlive the process.
    app = create_app(settings_from(None, {}, dev=True))
    dev_key = app.security.dev_admin_key
    assert dev_key and app.security.admin_keys.match(dev_key) == "dev"
    out, err = capfd.readouterr()
    assert f"Admin key: {dev_key}" in err
    assert dev_key not in caplog.text and "DEVELOPMENT MODE" in caplog.text
    assert app.security.mint_secret not in out + err + caplog.text
