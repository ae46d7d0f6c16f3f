"""The web app shipped in collab/static is exactly what web/ builds.

``make web`` rebuilds it (npm ci in web/, then ``node web/build.mjs``); this
test builds into a temporary directory and compares byte for byte, so a
change to the sources without a rebuild (or a hand edit of the bundle) fails.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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
    for page in ("index.html", "session.html"):
        assert '<script type="module" src="/static/app.js">' in (STATIC / page).read_text()
