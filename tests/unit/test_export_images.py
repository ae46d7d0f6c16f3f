"""Images in the exports (collab.export): the SVG embeds each as a data: URL
at its shape's box, the JSON carries the image shapes and the images by
digest; an image no longer stored (redacted) is a frame, never a broken link."""

from __future__ import annotations

import base64
import hashlib
import io
from xml.etree import ElementTree

from PIL import Image

from collab.export import RoomExport, to_json, to_svg
from crdt.schemas import RoomMeta, Shape, ShapeType

SVG = "{http://www.w3.org/2000/svg}"


def png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(out, format="PNG")
    return out.getvalue()


RED, BLUE = png((255, 0, 0)), png((0, 0, 255))
RED_ID, BLUE_ID = hashlib.sha256(RED).hexdigest(), hashlib.sha256(BLUE).hexdigest()
GONE_ID = "e" * 64


def export() -> RoomExport:
    def image(sid: str, src: str, x: float, z: float) -> Shape:
        return Shape(id=sid, type=ShapeType.IMAGE, x=x, y=10, w=400, h=300, src=src, z=z)

    return RoomExport(
        room="clinic/g",
        meta=RoomMeta(title="Group"),
        messages=(),
        shapes=(
            Shape(id="r", type=ShapeType.RECT, x=0, y=0, w=10, h=10),
            image("i1", RED_ID, 20, 1),
            image("i2", BLUE_ID, -500, 2),
            image("i3", GONE_ID, 900, 3),
        ),
        exported_ms=0.0,
        images={RED_ID: (RED, "image/png"), BLUE_ID: (BLUE, "image/png")},
    )


def test_the_svg_embeds_each_image_at_its_box():
    root = ElementTree.fromstring(to_svg(export()))
    images = {e.get("data-id"): e for e in root.iter(f"{SVG}image")}
    assert set(images) == {"i1", "i2"}
    for sid, data, x in (("i1", RED, "20"), ("i2", BLUE, "-500")):
        e = images[sid]
        assert (e.get("x"), e.get("y"), e.get("width"), e.get("height")) == (x, "10", "400", "300")
        prefix = "data:image/png;base64,"
        assert e.get("href", "").startswith(prefix)
        assert base64.b64decode(e.get("href", "")[len(prefix) :]) == data
    (gone,) = [e for e in root.iter(f"{SVG}rect") if e.get("data-id") == "i3"]
    assert gone.get("stroke-dasharray") and gone.get("width") == "400"
    # The viewBox takes the images in.
    x0, _, width, _ = (float(v) for v in root.get("viewBox", "").split())
    assert x0 <= -500 and x0 + width >= 1300


def test_the_json_has_image_shapes_and_their_images():
    board = to_json(export())["board"]
    by_id = {s["id"]: s for s in board["shapes"]}
    assert by_id["i1"]["type"] == "image" and by_id["i1"]["src"] == RED_ID
    assert "src" not in by_id["r"]
    assert set(board["images"]) == {RED_ID, BLUE_ID}
    red = board["images"][RED_ID]
    assert red["mediaType"] == "image/png" and base64.b64decode(red["data"]) == RED
