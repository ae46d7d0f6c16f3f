"""A real redis-server secured as a deployment would be: a password, an ACL
user, TLS (with a throw-away CA and certificates made here), a unix socket.

Started on free loopback ports (or a socket in the test's directory), never
the system's 6379; stopped by the tests. ``admin()`` is a client with the
server's own credentials, for the tests' assertions and set-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.servers import redis_argv
from tests.procs import REDIS_SERVER, free_port
from tests.waiting import until

__all__ = ["Pki", "SecuredRedis", "make_pki"]

#: The password of the server's ``default`` user (``requirepass``).
ADMIN_PASSWORD = "admin-password-for-tests-0123456789"


@dataclass(frozen=True)
class Pki:
    """PEM files: a CA, a server certificate for 127.0.0.1 and localhost, a
    client certificate, and a second CA that signed neither."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    names: tuple[str, ...] = (),
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer is not None else (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        alt: list[x509.GeneralName] = []
        for n in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """Generate a throw-away CA and certificates in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, other_key, server_key, client_key = _key(), _key(), _key(), _key()
    ca = _cert("collab test CA", ca_key, None, ca=True)
    other = _cert("some other CA", other_key, None, ca=True)
    server = _cert("127.0.0.1", server_key, (ca.subject, ca_key), names=("127.0.0.1", "localhost"))
    client = _cert("collab node", client_key, (ca.subject, ca_key))
    pki = Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.pem",
    )
    for path, cert in (
        (pki.ca, ca),
        (pki.other_ca, other),
        (pki.server_cert, server),
        (pki.client_cert, client),
    ):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.server_key, server_key)
    _write_key(pki.client_key, client_key)
    return pki


class SecuredRedis:
    """redis-server with ``requirepass`` and, as asked, TLS only (``--port
    0``), client certificates required, and/or a unix socket only."""

    def __init__(
        self,
        workdir: Path,
        *,
        pki: Pki | None = None,
        client_certs: bool = False,
        unix: bool = False,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.workdir = workdir / f"secured-redis-{self.port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.client_certs = client_certs
        self.socket = self.workdir / "redis.sock" if unix else None
        self.extra = extra
        self.proc: asyncio.subprocess.Process | None = None

    def url(self, user: str | None = None, password: str | None = None, *, db: int = 0) -> str:
        """A URL for collab; credentials only if given (quoted as they are)."""
        auth = ""
        if user is not None or password is not None:
            auth = f"{user or ''}{':' + password if password is not None else ''}@"
        if self.socket is not None:
            return f"unix://{auth}{self.socket}?db={db}"
        scheme = "rediss" if self.pki is not None else "redis"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/{db}"

    def admin(self, db: int = 0) -> aioredis.Redis:
        """A client with the server's own password (the ``default`` user)."""
        common: dict[str, object] = {
            "password": ADMIN_PASSWORD,
            "socket_connect_timeout": 2,
            "db": db,
        }
        if self.socket is not None:
            return aioredis.Redis(unix_socket_path=str(self.socket), **common)  # type: ignore[arg-type]
        if self.pki is not None:
            return aioredis.Redis(
                port=self.port,
                ssl=True,
                ssl_ca_certs=str(self.pki.ca),
                ssl_certfile=str(self.pki.client_cert),
                ssl_keyfile=str(self.pki.client_key),
                **common,  # type: ignore[arg-type]
            )
        return aioredis.Redis(port=self.port, **common)  # type: ignore[arg-type]

    async def start(self) -> None:
        assert REDIS_SERVER is not None, "redis-server is not installed"
        args = ["--requirepass", ADMIN_PASSWORD, *self.extra]
        if self.pki is not None:
            args += [
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.pki.server_cert),
                "--tls-key-file",
                str(self.pki.server_key),
                "--tls-ca-cert-file",
                str(self.pki.ca),
                "--tls-auth-clients",
                "yes" if self.client_certs else "no",
            ]
        if self.socket is not None:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        plain_port = 0 if self.pki is not None or self.socket is not None else self.port
        self.proc = await asyncio.create_subprocess_exec(
            *redis_argv(REDIS_SERVER, plain_port, self.workdir, *args),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = self.admin()

        async def answers() -> bool:
            with contextlib.suppress(OSError, aioredis.RedisError):
                return bool(await client.ping())
            return False

        try:
            await until(answers, timeout_s=10, what="the secured redis-server answering")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None
