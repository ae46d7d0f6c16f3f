"""The web app's files over HTTP (issue 16): precompressed by the build and
chosen by Accept-Encoding, cached for a year under a hashed name, revalidated
under any other, and nothing outside collab/static.

Every test runs a real server on a loopback port and speaks HTTP to it; the
client neither adds an Accept-Encoding nor decompresses, so each test sees the
bytes the server sent.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

import collab.web
from collab.web import HASHED_NAME, IMMUTABLE, STATIC_DIR
from tests.prereqs import unavailable

PAGES = {"/": "index.html", "/r/clinic-7/a": "session.html"}
REFERENCE = re.compile(r'(?:src|href)="/static/([^"]+)"')


async def fetch(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.request(method, url, headers=headers, skip_auto_headers=["Accept-Encoding"]) as resp,
    ):
        return resp.status, CIMultiDict(resp.headers), await resp.read()


def referenced(page: str) -> list[str]:
    """The /static/ files a built page names (script, stylesheet, icon)."""
    return REFERENCE.findall((STATIC_DIR / page).read_text())


def script_name() -> str:
    (name,) = [n for n in referenced("index.html") if n.endswith(".js")]
    return name


def unbrotli(data: bytes) -> bytes:
    """Python has no brotli decoder in its standard library; node has one."""
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed (it decodes brotli for this test)")
    script = (
        "process.stdout.write(require('zlib').brotliDecompressSync(require('fs').readFileSync(0)))"
    )
    done = subprocess.run([node, "-e", script], input=data, capture_output=True, check=True)
    return done.stdout


# -- what the pages reference -----------------------------------------------------------


def test_the_pages_reference_hashed_files_that_exist():
    for page in PAGES.values():
        names = referenced(page)
        assert {Path(n).suffix for n in names} == {".js", ".css", ".svg"}, names
        for name in names:
            assert (STATIC_DIR / name).is_file(), name
            assert bool(HASHED_NAME.fullmatch(name)) == (name != "favicon.svg"), name


async def test_every_file_a_page_references_is_served(server):
    for path in PAGES:
        status, _, body = await fetch(server.url + path)
        assert status == 200
        for name in REFERENCE.findall(body.decode()):
            status, _, served = await fetch(f"{server.url}/static/{name}")
            assert status == 200, name
            assert served == (STATIC_DIR / name).read_bytes(), name


# -- Accept-Encoding ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("br", "br"),
        ("gzip, deflate", "gzip"),
        ("GZIP", "gzip"),
        ("deflate", None),
        (None, None),
    ],
)
async def test_the_coding_follows_accept_encoding(server, accept, coding):
    headers = {"Accept-Encoding": accept} if accept is not None else {}
    name = script_name()
    for path in (f"/static/{name}", "/static/favicon.svg", "/static/THIRD_PARTY_LICENSES.txt"):
        status, got, body = await fetch(server.url + path, headers=headers)
        assert status == 200
        plain = (STATIC_DIR / path.removeprefix("/static/")).read_bytes()
        assert got.get("Content-Encoding") == coding, path
        assert got["Vary"] == "Accept-Encoding", path
        assert int(got["Content-Length"]) == len(body), path
        decoded = {"br": unbrotli, "gzip": gzip.decompress, None: bytes}[coding](body)
        assert decoded == plain, path
        if coding is not None:
            assert len(body) < len(plain), path
    status, got, _ = await fetch(f"{server.url}/static/{name}", headers=headers)
    assert got["Content-Type"] in ("text/javascript", "application/javascript")


async def test_the_pages_are_compressed_too(server):
    for path, page in PAGES.items():
        status, got, body = await fetch(server.url + path, headers={"Accept-Encoding": "gzip"})
        assert status == 200
        assert got["Content-Encoding"] == "gzip"
        assert got["Content-Type"].startswith("text/html")
        assert got["Vary"] == "Accept-Encoding"
        assert gzip.decompress(body) == (STATIC_DIR / page).read_bytes()
        status, got, body = await fetch(server.url + path)
        assert "Content-Encoding" not in got
        assert got["Vary"] == "Accept-Encoding"
        assert body == (STATIC_DIR / page).read_bytes()


async def test_head_sends_the_headers_of_get_and_no_body(server):
    path = f"{server.url}/static/{script_name()}"
    for accept in ("br", "gzip", "identity"):
        _, get_headers, get_body = await fetch(path, headers={"Accept-Encoding": accept})
        status, headers, body = await fetch(
            path, method="HEAD", headers={"Accept-Encoding": accept}
        )
        assert status == 200 and body == b""
        for header in (
            "Content-Length",
            "Content-Encoding",
            "Content-Type",
            "ETag",
            "Cache-Control",
        ):
            assert headers.get(header) == get_headers.get(header), (accept, header)
        assert int(headers["Content-Length"]) == len(get_body)


async def test_a_cached_copy_revalidates_with_its_etag(server):
    path = f"{server.url}/static/favicon.svg"
    _, first, _ = await fetch(path, headers={"Accept-Encoding": "br"})
    status, _, body = await fetch(
        path, headers={"Accept-Encoding": "br", "If-None-Match": first["ETag"]}
    )
    assert status == 304 and body == b""
    # The plain file is another representation, with another ETag.
    _, plain, _ = await fetch(path)
    assert plain["ETag"] != first["ETag"]


# -- Cache-Control ------------------------------------------------------------------------


async def test_hashed_names_are_immutable_and_the_others_revalidate(server):
    css = next(n for n in referenced("index.html") if n.endswith(".css"))
    for name in (script_name(), css):
        for accept in ("br", "gzip", "identity"):
            status, got, _ = await fetch(
                f"{server.url}/static/{name}", headers={"Accept-Encoding": accept}
            )
            assert status == 200
            assert got["Cache-Control"] == IMMUTABLE, (name, accept)
            # The rest of the web app's headers stay.
            assert "frame-ancestors" in got["Content-Security-Policy"]
            assert got["X-Content-Type-Options"] == "nosniff"
    for path in ("/", "/r/clinic-7/a", "/static/favicon.svg", "/static/THIRD_PARTY_LICENSES.txt"):
        status, got, _ = await fetch(server.url + path, headers={"Accept-Encoding": "br"})
        assert status == 200
        assert got["Cache-Control"] == "no-cache", path
        assert "frame-ancestors" in got["Content-Security-Policy"], path


async def test_a_missing_file_is_a_404_that_no_cache_keeps(server):
    """A hashed name from another build (a node not yet upgraded behind the
    same cache) must not be remembered as missing for a year."""
    assert script_name() != "app.0123456789abcdef.js"
    for path in ("/static/app.0123456789abcdef.js", "/static/nothing.txt", "/static/favicon.svg/x"):
        for method in ("GET", "HEAD"):
            status, got, _ = await fetch(
                server.url + path, method=method, headers={"Accept-Encoding": "br"}
            )
            assert status == 404, (path, method)
            assert got.get("Cache-Control") != IMMUTABLE, (path, method)
            assert "Content-Encoding" not in got


# -- nothing outside collab/static ----------------------------------------------------------


async def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as written: an HTTP client would normalise ``..``."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: br, gzip\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        response = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/static/../web.py",
        "/static/%2e%2e/web.py",
        "/static/..%2fweb.py",
        "/static/%2e%2e%2fweb.py",
        "/static/../../collab/web.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ],
)
async def test_traversal_is_refused(server, target):
    status, body = await raw_get(server.url, target)
    assert status in (403, 404), target
    assert b"content_security_policy" not in body and b"root:" not in body


@pytest.fixture
def static_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """collab/static copied, with symlinks out of it: one under its own name,
    one standing in for a precompressed sibling."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    static = tmp_path / "static"
    shutil.copytree(STATIC_DIR, static)
    (static / "leak.txt").symlink_to(secret)
    (static / "favicon.svg.br").unlink()
    (static / "favicon.svg.br").symlink_to(secret)
    monkeypatch.setattr(collab.web, "STATIC_DIR", static)
    return {"static": static, "secret": secret}


async def test_symlinks_are_not_followed(server_factory, static_copy):
    srv = await server_factory()
    status, _, _ = await fetch(srv.url + "/static/leak.txt")
    assert status == 404
    # A symlinked sibling is not sent: the gzip one is, or the plain file.
    status, got, body = await fetch(
        srv.url + "/static/favicon.svg", headers={"Accept-Encoding": "br"}
    )
    assert status == 200 and "Content-Encoding" not in got
    assert body == (static_copy["static"] / "favicon.svg").read_bytes()
    status, got, body = await fetch(
        srv.url + "/static/favicon.svg", headers={"Accept-Encoding": "br, gzip"}
    )
    assert got["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == (static_copy["static"] / "favicon.svg").read_bytes()
