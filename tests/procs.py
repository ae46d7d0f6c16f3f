"""Real processes for tests: redis-server (single or a 3-master cluster),
PostgreSQL and ``collab serve`` nodes, on free loopback ports, stopped by the
tests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.servers import redis_argv
from tests.waiting import until

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports: held open together while they
    are chosen, so none is handed out twice."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


class ProcessExited(RuntimeError):
    """A server process ended before it answered (its port was taken since
    it was chosen, most often)."""


class RedisProcess:
    """One redis-server without persistence (a restart comes back empty)."""

    def __init__(self, workdir: Path, *extra: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir / f"redis-{self.port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.extra = extra
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        assert REDIS_SERVER is not None, "redis-server is not installed"
        logfile = self.workdir / "redis.log"
        self.proc = await asyncio.create_subprocess_exec(
            *redis_argv(
                REDIS_SERVER,
                self.port,
                self.workdir,
                "--protected-mode",
                "no",
                "--logfile",
                str(logfile),
                *self.extra,
            ),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = aioredis.Redis(port=self.port, socket_connect_timeout=0.5)
        proc = self.proc

        async def answers() -> bool:
            if proc.returncode is not None:
                tail = logfile.read_text(errors="replace")[-500:] if logfile.exists() else ""
                raise ProcessExited(
                    f"redis-server on {self.port} exited ({proc.returncode}): {tail}"
                )
            with contextlib.suppress(OSError, aioredis.RedisError):
                return bool(await client.ping())
            return False

        try:
            await until(answers, timeout_s=10, what=f"redis-server on {self.port} answering")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None

    def client(self) -> aioredis.Redis:
        return aioredis.Redis(port=self.port)


async def _cluster_ok(client: aioredis.Redis) -> bool:
    return "cluster_state:ok" in str(await client.execute_command("CLUSTER", "INFO"))


class RedisClusterProcesses:
    """Three masters, slots split by redis-cli --cluster create."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.nodes = self._make_nodes()

    def _make_nodes(self) -> list[RedisProcess]:
        # Each node also needs a free cluster-bus port (by default port + 10000,
        # which a random free port can push past 65535 or onto a busy port);
        # all six are distinct.
        ports = free_ports(6)
        return [
            RedisProcess(
                self.workdir,
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                str(bus),
                "--cluster-config-file",
                f"nodes-{port}.conf",
                port=port,
            )
            for port, bus in zip(ports[:3], ports[3:], strict=True)
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    async def start(self) -> None:
        assert REDIS_CLI is not None, "redis-cli is not installed"
        for attempt in range(3):
            try:
                await asyncio.gather(*(n.start() for n in self.nodes))
                break
            except ProcessExited:
                # A port was taken between choosing and binding: other ports.
                await self.stop()
                if attempt == 2:
                    raise
                self.nodes = self._make_nodes()
            except BaseException:
                await self.stop()  # never leave the nodes that did start running
                raise
        create = await asyncio.create_subprocess_exec(
            REDIS_CLI,
            "--cluster",
            "create",
            *(f"127.0.0.1:{n.port}" for n in self.nodes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(create.communicate(), 60)
        assert create.returncode == 0, out.decode()
        for node in self.nodes:
            client = node.client()
            try:
                await until(partial(_cluster_ok, client), timeout_s=20, what="cluster_state:ok")
            finally:
                await client.aclose()

    async def stop(self) -> None:
        await asyncio.gather(*(n.stop() for n in self.nodes))


class CollabNode:
    """``collab serve`` as a real process."""

    def __init__(self, workdir: Path, *args: str, node_id: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.node_id = node_id
        self.args = args
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr_path = workdir / f"collab-{node_id}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLAB_")}
        self._stderr = self.stderr_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "collab",
            "serve",
            "--port",
            str(self.port),
            "--node-id",
            self.node_id,
            "--data-dir",
            str(self.workdir / self.node_id),
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if b"collab listening on" not in line:
            raise RuntimeError(f"node {self.node_id} did not start: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return None
        self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        self._stderr.close()
        return code

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


# -- PostgreSQL ----------------------------------------------------------------------


def _postgres_bindir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are: the newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian keeps them off PATH), else
    beside an ``initdb`` on PATH (Homebrew, other distributions)."""
    found: list[tuple[int, Path]] = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        with contextlib.suppress(ValueError):
            found.append((int(bindir.parent.name), bindir))
    initdb = shutil.which("initdb")
    candidates = [b for _, b in sorted(found, reverse=True)]
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    return None


POSTGRES_BIN = _postgres_bindir()


def _unprivileged() -> tuple[int, int] | None:
    """The (uid, gid) PostgreSQL runs as when the tests run as root (it
    refuses root): the ``postgres`` user if there is one, else ``nobody``."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists")


class PostgresProcess:
    """A PostgreSQL server of the tests' own: ``initdb`` into a fresh
    temporary directory (``/tmp/collab-pg-*``: pytest's own directories are
    root's alone), listening on a free loopback port and on a unix socket in
    that directory; stopped, restarted and removed by its pid. As root it runs
    as an unprivileged user (``setpriv``), who owns the directory.

    The superuser :attr:`USER` logs in with :attr:`PASSWORD` over TCP
    (scram-sha-256) and without one over the unix socket (trust). No fsync:
    a test server's data need not survive a power cut, and a clean stop
    writes everything.
    """

    USER = "collab"
    PASSWORD = "pg-test-password-" + "p" * 16

    def __init__(self, port: int | None = None) -> None:
        assert POSTGRES_BIN is not None, "PostgreSQL is not installed"
        self.bindir = POSTGRES_BIN
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="collab-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "run"
        self.logfile = self.root / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._owner = _unprivileged()
        self._databases = itertools.count(1)

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        """A TCP URL for ``database`` (with the password, or only the user)."""
        secret = f":{self.PASSWORD}" if password else ""
        return f"postgresql://{self.USER}{secret}@127.0.0.1:{self.port}/{database}"

    def socket_url(self, database: str = "postgres") -> str:
        """A URL for ``database`` over the unix socket (no password)."""
        return f"postgresql://{self.USER}@/{database}?host={self.sockets}&port={self.port}"

    def _as_owner(self, *argv: str) -> list[str]:
        if self._owner is None:
            return list(argv)
        uid, gid = self._owner
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]

    def _own(self, *paths: Path) -> None:
        if self._owner is not None:
            for path in paths:
                os.chown(path, *self._owner)

    def init(self) -> None:
        """``initdb`` (C locale, UTF-8), once."""
        self.sockets.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.PASSWORD + "\n")
        self._own(self.root, self.sockets, pwfile)
        subprocess.run(
            self._as_owner(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.USER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        pwfile.unlink()

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the server (after :meth:`init`) and wait until it answers."""
        if not self.data.exists():
            self.init()
        with self.logfile.open("ab") as log:
            self.proc = subprocess.Popen(
                self._as_owner(
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(self.sockets),
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres on {self.port} not ready: {self.log()[-2000:]}")
            time.sleep(0.05)  # polling a process we cannot await (a sync fixture)

    def _ready(self) -> bool:
        check = subprocess.run(
            [
                str(self.bindir / "pg_isready"),
                "-q",
                "-h",
                str(self.sockets),
                "-p",
                str(self.port),
                "-U",
                self.USER,
                "-d",
                "postgres",
            ],
            check=False,
            timeout=10,
        )
        return check.returncode == 0

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions are cut, everything committed is kept)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.thaw()  # a frozen server would not hear the signal
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def remove(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _pids(self) -> list[int]:
        """The postmaster and its children (the sessions, the background workers)."""
        assert self.proc is not None
        pids = [self.proc.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # "pid (comm) state ppid ...": comm may hold spaces; split after it.
                fields = stat.read_text().rpartition(")")[2].split()
                if int(fields[1]) == self.proc.pid:
                    pids.append(int(stat.parent.name))
        return pids

    def freeze(self) -> None:
        """SIGSTOP the server's processes: connections stay open, nothing answers
        (a hung server, or a network that drops everything)."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):  # a session that just ended
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):  # a session that just ended
                os.kill(pid, signal.SIGCONT)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    async def execute(self, sql: str, *args: object, database: str = "postgres") -> Any:
        """Run one statement as the superuser over the unix socket; its value."""
        import asyncpg

        conn = await asyncpg.connect(
            host=str(self.sockets), port=self.port, user=self.USER, database=database
        )
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def create_database(self) -> str:
        """A new empty database; its name."""
        name = f"t{next(self._databases)}"
        await self.execute(f'CREATE DATABASE "{name}"')
        return name

    async def drop_database(self, name: str) -> None:
        await self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
