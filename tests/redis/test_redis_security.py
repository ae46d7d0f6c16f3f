"""Nodes on a secured Redis (issue 13, finding 1): a password (in the URL or a
file), an ACL user with only what collab needs, TLS with a CA and client
certificates, a unix socket with a database number. Two real nodes share a
room through each; a wrong password, no TLS or a wrong CA is refused at
start with a clear message."""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path

import aiohttp
import pytest
from PIL import Image
from pycrdt import Array, Map

from rooms.store_redis import RedisStore
from tests.boards import shapes
from tests.conftest import ADMIN_KEY, mint
from tests.prereqs import unavailable
from tests.procs import REDIS_CLI, CollabNode, RedisClusterProcesses
from tests.redis.conftest import CLUSTER_KEY
from tests.redis.secured import ADMIN_PASSWORD, SecuredRedis, make_pki

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
ACL_USER = "collab"
ACL_PASSWORD = "acl-password-for-tests-0123456789"


@pytest.fixture
async def secured(redis_binary, tmp_path):
    made: list[SecuredRedis] = []

    async def make(**kwargs) -> SecuredRedis:
        server = SecuredRedis(tmp_path, **kwargs)
        made.append(server)
        await server.start()
        return server

    yield make
    for server in made:
        await server.stop()


async def share_a_room(a: CollabNode, b: CollabNode, clients, room: str = "secured") -> None:
    """Board and chat written on node A reach a member on node B, and back."""
    on_a = await clients(a.url, room)
    on_b = await clients(b.url, room)
    chat_b = await clients(b.url, room, "chat")
    on_a.doc.get("shapes", type=Map)["from-a"] = {"type": "rect"}
    await on_b.wait_for(lambda: "from-a" in shapes(on_b), timeout_s=10)
    on_b.doc.get("shapes", type=Map)["from-b"] = {"type": "ellipse"}
    await on_a.wait_for(lambda: "from-b" in shapes(on_a), timeout_s=10)
    chat_a = await clients(a.url, room, "chat")
    await chat_a.send_chat("hello through a secured redis")
    await chat_b.wait_for(lambda: len(chat_b.doc.get("messages", type=Array)) == 1, timeout_s=10)


async def refused(node: CollabNode) -> str:
    """Start ``node``, which must fail: a non-zero exit and no traceback.
    Return its log."""
    with pytest.raises(RuntimeError, match="did not start"):
        await node.start()
    assert node.proc is not None
    assert await asyncio.wait_for(node.proc.wait(), 20) != 0
    text = node.log()
    assert "Traceback" not in text, text
    assert "cannot start" in text, text
    return text


def documented_acl_line() -> str:
    """The ``ACL SETUSER`` line README's Redis section gives operators."""
    lines = [line.strip() for line in README.read_text().splitlines()]
    found = [line for line in lines if line.startswith("ACL SETUSER collab ")]
    assert len(found) == 1, "README documents one ACL SETUSER line"
    return found[0]


async def admin_calls(a: CollabNode, b: CollabNode, delete: str) -> None:
    """What the admin API makes a node do in Redis: create, list, read the
    audit log, revoke and lift a revocation, delete room ``delete``."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(b.url + "/api/rooms", json={"id": "made", "title": "T"}) as resp:
            assert resp.status == 201, await resp.text()
        async with http.get(a.url + "/api/rooms/made/audit") as resp:
            assert resp.status == 200, await resp.text()
        until = (time.time() + 60) * 1000
        async with http.post(a.url + "/api/revocations", json={"sub": "x", "until": until}) as resp:
            assert resp.status == 201, await resp.text()
            revocation = (await resp.json())["id"]
        async with http.get(b.url + "/api/revocations") as resp:
            assert resp.status == 200, await resp.text()
        async with http.delete(b.url + f"/api/revocations/{revocation}") as resp:
            assert resp.status == 200, await resp.text()
        async with http.delete(a.url + f"/api/rooms/{delete}") as resp:
            assert resp.status == 200, await resp.text()
        async with http.get(b.url + "/api/rooms") as resp:
            assert resp.status == 200, await resp.text()


async def image_calls(a: CollabNode, b: CollabNode, fac, clients) -> None:
    """What images make a node do in Redis: an upload on one node, a read and
    the room's info on the other, a shape naming it and its redaction."""
    picture = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(picture, format="PNG")
    token = mint("acl", sub="painter")
    member = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        headers = {**member, "Content-Type": "image/png"}
        url = a.url + "/api/rooms/acl/images"
        async with http.post(url, data=picture.getvalue(), headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            digest = (await resp.json())["id"]
        image_url = b.url + f"/api/rooms/acl/images/{digest}"
        async with http.get(image_url, headers=member) as resp:
            assert resp.status == 200, await resp.text()
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with http.get(b.url + "/api/rooms/acl", headers=admin) as resp:
            assert (await resp.json())["images"] == 1
        painter = await clients(a.url, "acl", auth={"token": token})
        viewer = await clients(b.url, "acl")
        fields = {"type": "image", "x": 0, "y": 0, "w": 8, "h": 8, "src": digest}
        painter.doc.get("shapes", type=Map)["pic"] = Map(fields)
        await viewer.wait_for(lambda: "pic" in viewer.doc.get("shapes", type=Map), timeout_s=10)
        await fac.call("mod:redact-shape", {"shapeId": "pic"})
        async with http.get(image_url, headers=member) as resp:
            assert resp.status == 404, "the redaction deleted it"


async def test_password_in_the_url_or_in_a_file(secured, node_factory, clients, tmp_path):
    redis = await secured()
    password_file = tmp_path / "redis-password"
    password_file.write_text(ADMIN_PASSWORD + "\n")
    password_file.chmod(0o600)
    a = await node_factory(redis.url(password=ADMIN_PASSWORD), "A")
    b = await node_factory(redis.url(), "B", "--redis-password-file", str(password_file))
    await share_a_room(a, b, clients)

    wrong = await node_factory(redis.url(password="not-the-password"), "W", start=False)
    text = await refused(wrong)
    assert "Redis refused the credentials" in text, text
    assert "not-the-password" not in text
    missing = await node_factory(redis.url(), "M", start=False)
    assert "Redis refused the credentials" in await refused(missing)


async def test_acl_user_with_only_what_collab_needs(secured, node_factory, clients):
    redis = await secured()
    line = documented_acl_line().replace(">CHANGE-ME", ">" + ACL_PASSWORD)
    admin = redis.admin()
    try:
        await admin.execute_command(*line.split())
        await admin.execute_command("ACL", "LOG", "RESET")
        url = redis.url(ACL_USER, ACL_PASSWORD)
        a = await node_factory(url, "A", "--compact-after-updates", "5")
        b = await node_factory(url, "B", "--compact-after-updates", "5")
        await share_a_room(a, b, clients)
        # Everything else a node does: awareness, compaction, moderation with a
        # redaction (a forced compaction), an admin-created room, a deletion.
        fac = await clients(
            a.url, "acl", "chat", auth={"token": mint("acl", role="facilitator", sub="f")}
        )
        watcher = await clients(b.url, "acl", "chat")
        await fac.set_awareness({"cursor": [1, 2]})
        await watcher.wait_for(lambda: fac.doc.client_id in watcher.awareness, timeout_s=10)
        for i in range(8):
            await fac.send_chat(f"message {i}")
        ack = await fac.send_chat("redact me")
        await fac.call("mod:redact", {"messageId": ack["id"]})
        await image_calls(a, b, fac, clients)
        await admin_calls(a, b, "acl")
        await watcher.wait_for(lambda: not watcher.connected, timeout_s=10)
        # The probe a node writes while its writes fail (rooms.persistence).
        store = await RedisStore.open(url, node_id="A", cluster_key=CLUSTER_KEY)
        try:
            await store.check_writable(probe=True)
        finally:
            await store.close()
        # Nothing collab did was denied...
        assert await admin.execute_command("ACL", "LOG") == []
        # ...and the user can do little else.
        user = redis.admin()
        await user.execute_command("AUTH", ACL_USER, ACL_PASSWORD)
        for command in (
            ("GET", "not-collab"),
            ("FLUSHALL",),
            ("CONFIG", "GET", "requirepass"),
            ("KEYS", "*"),
            ("PUBLISH", "other", "x"),
            ("ACL", "LIST"),
        ):
            with pytest.raises(Exception, match=r"NOPERM|no permissions"):
                await user.execute_command(*command)
        await user.aclose()
    finally:
        await admin.aclose()

    wrong = await node_factory(redis.url(ACL_USER, "wrong-password"), "W", start=False)
    assert "Redis refused the credentials" in await refused(wrong)


async def test_tls_with_a_ca_and_client_certificates(secured, node_factory, clients, tmp_path):
    pki = make_pki(tmp_path / "pki")
    redis = await secured(pki=pki, client_certs=True)
    password_file = tmp_path / "redis-password"
    password_file.write_text(ADMIN_PASSWORD)
    tls = (
        "--redis-password-file",
        str(password_file),
        "--redis-tls-ca",
        str(pki.ca),
        "--redis-tls-cert",
        str(pki.client_cert),
        "--redis-tls-key",
        str(pki.client_key),
    )
    a = await node_factory(redis.url(), "A", *tls)
    b = await node_factory(redis.url(), "B", *tls)
    await share_a_room(a, b, clients)
    # Every connection of both nodes is TLS (the server has no plain port).
    admin = redis.admin()
    try:
        names = {c["name"] for c in await admin.client_list()}
        assert {"collab:sub:A", "collab:sub:B"} <= names
    finally:
        await admin.aclose()

    plain = await node_factory(redis.url().replace("rediss://", "redis://"), "P", *tls, start=False)
    text = await refused(plain)
    assert "rediss://" in text, text  # the message says what to change
    wrong_ca = list(tls)
    wrong_ca[3] = str(pki.other_ca)
    text = await refused(await node_factory(redis.url(), "C", *wrong_ca, start=False))
    assert re.search(r"certificate verify failed", text, re.IGNORECASE), text
    no_cert = await node_factory(redis.url(), "N", *tls[:4], start=False)
    await refused(no_cert)


async def test_unix_socket_with_a_database_number(secured, node_factory, clients):
    redis = await secured(unix=True)
    url = redis.url(password=ADMIN_PASSWORD, db=3)
    a = await node_factory(url, "A")
    b = await node_factory(url, "B")
    await share_a_room(a, b, clients)
    db0, db3 = redis.admin(), redis.admin(db=3)
    try:
        assert [k async for k in db0.scan_iter(match="collab:*")] == []
        assert [k async for k in db3.scan_iter(match="collab:{secured}:*")]
    finally:
        await db0.aclose()
        await db3.aclose()
    wrong = await node_factory(redis.url(password="nope", db=3), "W", start=False)
    assert "Redis refused the credentials" in await refused(wrong)


#: What README adds to the ACL line for a Redis Cluster.
CLUSTER_ADDITIONS = ("+spublish", "+ssubscribe", "+sunsubscribe", "+cluster|slots", "+command")


async def test_acl_user_on_a_cluster(redis_binary, tmp_path, node_factory, clients):
    """Every cluster node's connections, and each sharded subscriber, log in
    as the ACL user."""
    if REDIS_CLI is None:
        unavailable("redis-cli is not installed (needed to create the cluster)")
    readme = README.read_text()
    assert all(f"`{c}" in readme or f" {c}" in readme for c in CLUSTER_ADDITIONS)
    line = documented_acl_line().replace(">CHANGE-ME", ">" + ACL_PASSWORD)
    cluster = RedisClusterProcesses(tmp_path)
    await cluster.start()
    try:
        for node in cluster.nodes:
            rc = node.client()
            try:
                await rc.execute_command(*line.split(), *CLUSTER_ADDITIONS)
                await rc.execute_command("ACL", "LOG", "RESET")
            finally:
                await rc.aclose()
        url = f"redis://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{cluster.nodes[0].port}/0"
        a = await node_factory(url, "A")
        b = await node_factory(url, "B")
        for i in range(4):  # rooms on several masters
            await share_a_room(a, b, clients, room=f"cluster-{i}")
        await admin_calls(a, b, "cluster-0")
        for node in cluster.nodes:
            rc = node.client()
            try:
                assert await rc.execute_command("ACL", "LOG") == []
                names = {c["name"] for c in await rc.client_list()}
                users = {
                    c["user"] for c in await rc.client_list() if c["name"].startswith("collab:")
                }
            finally:
                await rc.aclose()
            if "collab:sub:A" in names:
                assert users == {ACL_USER}
    finally:
        await cluster.stop()
