"""The wheel carries the web app: ``pip install`` users need no node."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_wheel_ships_the_built_web_app(tmp_path):
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip_wheel, "-q", "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("collab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "collab/static").iterdir() if p.is_file()}
    assert {"index.html", "session.html", "index.html.br", "index.html.gz"} <= shipped
    assert {name.split(".")[-1] for name in shipped if name.startswith("app.")} >= {"js", "css"}
    assert {f"collab/static/{name}" for name in shipped} <= names
    assert "collab/py.typed" in names
    assert not any(n.startswith(("web/", "tests/")) for n in names)
