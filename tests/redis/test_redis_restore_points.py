"""Restore points with several nodes on Redis (protocol.md §5.5): a point
kept on one node is listed and restored on another (its state is a blob in
Redis, read back and verified), and a template placed on one node arrives
locked on the other."""

from __future__ import annotations

import pytest
from pycrdt import Map, Text

from tests.boards import shapes
from tests.conftest import mint

pytestmark = pytest.mark.slow

ROOM = "clinic-5/history"


async def test_a_point_kept_on_one_node_is_restored_on_another(in_process_nodes, clients):
    a, b = await in_process_nodes("A", "B")
    fac_a = await clients(a.url, ROOM, auth={"token": mint(ROOM, role="facilitator", sub="fa")})
    fac_b = await clients(b.url, ROOM, auth={"token": mint(ROOM, role="facilitator", sub="fb")})
    meta_b = await clients(b.url, ROOM, "meta", auth={"token": mint(ROOM, sub="watch")})
    board = fac_a.doc.get("shapes", type=Map)
    board["n"] = Map({"type": "sticky", "x": 0, "y": 0, "text": Text("kept on A")})
    await fac_b.wait_for(lambda: "n" in shapes(fac_b), timeout_s=10)
    point = (await fac_a.call("mod:restore-point", {}))["point"]
    await meta_b.wait_for(
        lambda: point["id"] in (meta_b.doc.get("restorePoints", type=Map).to_py() or {}),
        timeout_s=10,
    )
    fac_b.doc.get("shapes", type=Map).pop("n")
    await fac_a.wait_for(lambda: "n" not in shapes(fac_a), timeout_s=10)
    listed = await fac_b.call("restore:shapes", {"pointId": point["id"]})
    assert [s["id"] for s in listed["shapes"]] == ["n"]
    await fac_b.call("mod:restore", {"pointId": point["id"], "shapeId": "n"})
    await fac_a.wait_for(lambda: shapes(fac_a).get("n", {}).get("text") == "kept on A")

    await fac_a.call("mod:template", {"templateId": "goal-ladder"})
    par_b = await clients(b.url, ROOM, auth={"token": mint(ROOM, sub="par")})
    await par_b.wait_for(lambda: len(shapes(par_b)) > 5, timeout_s=10)
    placed = next(k for k, v in shapes(par_b).items() if v.get("type") == "rect")
    par_b.doc.get("shapes", type=Map)[placed]["x"] = 999
    await par_b.wait_for(lambda: any(e["code"] == "shape_locked" for e in par_b.errors))
