"""The web app shipped in collab/static is exactly what web/ builds.

``make web`` rebuilds it (npm ci in web/, then ``node web/build.mjs``); this
test builds into a temporary directory and compares byte for byte, so a
change to the sources without a rebuild (or a hand edit of the bundle) fails.
The build runs at another time than the shipped one did, so the comparison
also checks that the compressed files carry no timestamp.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

from collab.web import HASHED_NAME
from tests.prereqs import unavailable

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
STATIC = ROOT / "collab" / "static"
NODE = shutil.which("node")


def test_shipped_bundle_matches_its_sources(tmp_path: Path) -> None:
    if NODE is None:
        unavailable("node is not installed (make test installs what the web build needs)")
    if not (WEB / "node_modules" / "esbuild").is_dir():
        unavailable("web/node_modules is missing: run make web (make test does)")
    out = tmp_path / "static"
    subprocess.run(
        [NODE, str(WEB / "build.mjs"), str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    built = sorted(p.name for p in out.iterdir())
    shipped = sorted(p.name for p in STATIC.iterdir() if p.name != "__pycache__")
    assert built == shipped, "collab/static has other files than the build: run make web"
    stale = [name for name in built if (out / name).read_bytes() != (STATIC / name).read_bytes()]
    assert not stale, f"collab/static is not the build of web/ ({', '.join(stale)}): run make web"

    # The script and the stylesheet under hashed names, the pages naming them,
    # and a .gz and a .br next to every file.
    plain = [name for name in built if not name.endswith((".gz", ".br"))]
    hashed = [name for name in plain if HASHED_NAME.fullmatch(name)]
    assert sorted(Path(name).suffix for name in hashed) == [".css", ".js"], hashed
    for name in plain:
        assert name + ".gz" in built and name + ".br" in built, name
        assert gzip.decompress((out / (name + ".gz")).read_bytes()) == (out / name).read_bytes()
    (script,) = [name for name in hashed if name.endswith(".js")]
    for page in ("index.html", "session.html"):
        assert f'<script type="module" src="/static/{script}">' in (STATIC / page).read_text()


def test_a_build_removes_what_an_older_build_left(tmp_path: Path) -> None:
    if NODE is None:
        unavailable("node is not installed (make test installs what the web build needs)")
    if not (WEB / "node_modules" / "esbuild").is_dir():
        unavailable("web/node_modules is missing: run make web (make test does)")
    out = tmp_path / "static"
    out.mkdir()
    stale = [
        "app.js",
        "app.css",
        "app.0123456789abcdef.js",
        "app.0123456789abcdef.js.br",
        "old.svg.gz",
    ]
    kept = ["README", "notes.md", "__pycache__"]
    for name in stale + kept[:2]:
        (out / name).write_text("left over")
    (out / kept[2]).mkdir()
    subprocess.run(
        [NODE, str(WEB / "build.mjs"), str(out)], check=True, capture_output=True, timeout=120
    )
    left = {p.name for p in out.iterdir()}
    assert not left & set(stale)
    assert set(kept) <= left, "the build removes only names of the kinds it writes"
    assert left - set(kept) == {p.name for p in STATIC.iterdir() if p.name != "__pycache__"}
