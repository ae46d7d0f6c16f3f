"""TLS (issue 13, finding 8): ``collab serve --tls-cert --tls-key`` serves
HTTPS and WSS, and nothing in clear.

A throw-away CA and a certificate for 127.0.0.1 are made here with the
``cryptography`` package; a real ``collab serve`` process uses them, and
clients that trust only that CA connect over ``wss://`` and sync a board.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pycrdt import Doc, Map

from collab.app import StartupError, tls_context
from collab.config import settings_from
from rooms.names import namespace_for
from tests.conftest import SECRET, mint
from tests.procs import CollabNode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOM = "clinic-7/patient-jane-doe"


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate it signed for 127.0.0.1 and localhost, and
    a second CA that signed nothing of ours."""
    directory = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("collab test CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        ca=directory / "ca.pem",
        cert=directory / "server.pem",
        key=directory / "server.key",
        other_ca=directory / "other-ca.pem",
    )
    pki.ca.write_bytes(_pem(ca_cert))
    pki.cert.write_bytes(_pem(cert) + _pem(ca_cert))
    pki.key.touch(mode=0o600)
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.other_ca.write_bytes(_pem(_ca("someone else's CA")[1]))
    return pki


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@pytest.fixture
async def node(tmp_path: Path, pki: Pki) -> AsyncIterator[CollabNode]:
    srv = CollabNode(
        tmp_path,
        "--jwt-secret-file",
        str(_secret_file(tmp_path)),
        "--tls-cert",
        str(pki.cert),
        "--tls-key",
        str(pki.key),
        "--log-level",
        "info",
        node_id="tls",
    )
    await srv.start()
    yield srv
    await srv.kill()


def _secret_file(directory: Path) -> Path:
    path = directory / "jwt-secret"
    path.touch(mode=0o600)
    path.write_text(SECRET)
    return path


def https(node: CollabNode) -> str:
    return f"https://127.0.0.1:{node.port}"


class WssBoard:
    """A board over ``wss://`` with a python-socketio client whose aiohttp
    WebSocket trusts ``ca`` only; it syncs as the y-socket.io provider does
    (protocol.md §4)."""

    def __init__(self, url: str, ca: Path, token: str) -> None:
        self.url, self.token = url, token
        self.doc: Doc[Any] = Doc()
        self.namespace = namespace_for(ROOM, "board")  # type: ignore[arg-type]
        self.sio = socketio.AsyncClient(
            reconnection=False, websocket_extra_options={"ssl": trusting(ca)}
        )
        self.changed = asyncio.Event()
        self.sio.on("sync-update", self._on_update, namespace=self.namespace)
        self.sio.on("sync-step-1", self._on_step_1, namespace=self.namespace)

    async def _on_update(self, update: bytes) -> None:
        self.doc.apply_update(update)
        self.changed.set()

    async def _on_step_1(self, state_vector: bytes) -> bytes:
        return bytes(self.doc.get_update(state_vector))

    async def connect(self) -> None:
        await self.sio.connect(
            self.url,
            namespaces=[self.namespace],
            auth={"token": self.token},
            transports=["websocket"],
            wait_timeout=10,
        )
        diff = await self.sio.call(
            "sync-step-1", bytes(self.doc.get_state()), namespace=self.namespace, timeout=10
        )
        self.doc.apply_update(diff)

    async def send(self, key: str, shape: dict[str, Any]) -> None:
        before = self.doc.get_state()
        self.doc.get("shapes", type=Map)[key] = shape
        await self.sio.emit(
            "sync-update", bytes(self.doc.get_update(before)), namespace=self.namespace
        )

    def shapes(self) -> dict[str, Any]:
        return self.doc.get("shapes", type=Map).to_py() or {}

    async def wait_for(self, key: str) -> None:
        async def seen() -> None:
            while key not in self.shapes():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(seen(), 10)


async def test_clients_sync_a_board_over_wss(node, pki):
    assert f"listening on {https(node)} " in node.log()
    url = https(node)
    ann = WssBoard(url, pki.ca, mint(ROOM, name="Ann", sub="ann"))
    bob = WssBoard(url, pki.ca, mint(ROOM, name="Bob", sub="bob"))
    try:
        await ann.connect()
        assert ann.sio.eio.base_url.startswith("wss://127.0.0.1:")
        await ann.send("s1", {"type": "rect", "x": 1.0})
        await bob.connect()  # the first sync brings Ann's shape
        assert bob.shapes() == {"s1": {"type": "rect", "x": 1.0}}
        await bob.send("s2", {"type": "ellipse"})
        await ann.wait_for("s2")  # and a live update, relayed over wss
        assert ann.shapes() == bob.shapes()
    finally:
        await ann.sio.disconnect()
        await bob.sio.disconnect()


async def test_https_answers_with_hsts_and_plain_http_gets_nothing(node, pki):
    connector = aiohttp.TCPConnector(ssl=trusting(pki.ca))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(https(node) + "/healthz") as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"
        assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{node.port}/healthz") as resp:
                await resp.read()
    # The server is still up and its log has no traceback from the clear-text attempt.
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting(pki.ca))) as http,
        http.get(https(node) + "/healthz") as resp,
    ):
        assert resp.status == 200
    assert "Traceback" not in node.log()


async def test_a_client_that_does_not_trust_the_ca_is_refused(node, pki):
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=trusting(pki.other_ca))
    ) as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with http.get(https(node) + "/healthz") as resp:
                await resp.read()


async def test_the_data_directory_of_a_served_process_is_private(node):
    await node.stop()
    data = node.workdir / node.node_id
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
    assert "collab.sqlite3" in files
    assert set(files.values()) == {0o600}, files


def test_the_context_refuses_tls_below_1_2(pki):
    settings = settings_from(
        None, {}, jwt_secret=SECRET, tls_cert=pki.cert, tls_key=pki.key, port=0
    )
    context = tls_context(settings)
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE, "no client certificate is asked for"


def test_no_tls_settings_no_context():
    assert tls_context(settings_from(None, {}, jwt_secret=SECRET)) is None


@pytest.mark.parametrize("broken", ["missing", "not-pem", "encrypted"])
def test_a_key_that_cannot_be_loaded_stops_the_start(tmp_path, pki, broken):
    key = tmp_path / "server.key"
    if broken == "not-pem":
        key.write_text("not a key")
    elif broken == "encrypted":
        private = serialization.load_pem_private_key(pki.key.read_bytes(), None)
        key.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"passphrase"),
            )
        )
    settings = settings_from(None, {}, jwt_secret=SECRET, tls_cert=pki.cert, tls_key=key)
    with pytest.raises(StartupError) as info:
        tls_context(settings)
    assert "--tls-key" in str(info.value)
