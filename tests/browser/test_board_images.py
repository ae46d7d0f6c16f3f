"""Images on the board in the web app (issue 16): a participant places a
picture with the Image button (a file picker) and by dropping a file on the
board; the other participant and an observer see it, each fetched with
their own token; an observer has no Image button. Pictures are made with
Pillow here."""

from __future__ import annotations

import base64
import io

from PIL import Image
from playwright.async_api import Page, expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "pictures"

#: The colour of a shown image's picture at its middle, sampled from the
#: object URL it is drawn from (so it is the stored picture, decoded).
PICTURE_COLOUR = """async (node) => {
  const href = node.querySelector('image').getAttribute('href')
  const img = new Image()
  img.src = href
  await img.decode()
  const canvas = document.createElement('canvas')
  canvas.width = img.naturalWidth
  canvas.height = img.naturalHeight
  const ctx = canvas.getContext('2d')
  ctx.drawImage(img, 0, 0)
  const [r, g, b] = ctx.getImageData(img.naturalWidth >> 1, img.naturalHeight >> 1, 1, 1).data
  return { href: href.slice(0, 5), size: [img.naturalWidth, img.naturalHeight], rgb: [r, g, b] }
}"""

#: Drop a PNG (base64) on the board at page point (x, y), as a file dragged from the desktop.
DROP = """async ([data, x, y]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0))
  const transfer = new DataTransfer()
  transfer.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }))
  const target = document.elementFromPoint(x, y)
  const init = { bubbles: true, cancelable: true, dataTransfer: transfer, clientX: x, clientY: y }
  for (const type of ['dragover', 'drop']) target.dispatchEvent(new DragEvent(type, init))
}"""


def png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


async def picture(page: Page, index: int) -> dict:
    node = page.locator('.shapes > [data-type="image"]').nth(index)
    await expect(node).to_have_attribute("data-state", "shown")
    return await node.evaluate(PICTURE_COLOUR)


async def test_a_participant_places_images_others_see_them(browsers: Browsers, collab: CollabNode):
    ann = SessionPage(await browsers.page())
    await ann.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    ben = SessionPage(await browsers.page())
    await ben.join_from_lobby(collab.url, ROOM, "Ben", "participant")
    olga = SessionPage(await browsers.page())
    await olga.join_from_lobby(collab.url, ROOM, "Olga", "observer")
    await expect(olga.tool("Image")).to_have_count(0)

    # The Image button: a file picker; 800 × 400 is placed 400 board units wide.
    async with ann.page.expect_file_chooser() as chooser:
        await ann.tool("Image").click()
    await (await chooser.value).set_files(
        {"name": "red.png", "mimeType": "image/png", "buffer": png((800, 400), (230, 20, 20))}
    )
    placed = ann.shapes("image")
    await expect(placed).to_have_count(1)
    frame = placed.first.locator("image")
    await expect(frame).to_have_attribute("width", "400")
    await expect(frame).to_have_attribute("height", "200")

    # A drop lands where it falls.
    x, y = await ann.board_point(0.25, 0.3)
    data = base64.b64encode(png((120, 90), (20, 20, 230))).decode()
    await ann.page.evaluate(DROP, [data, x, y])
    await expect(placed).to_have_count(2)

    for s in (ann, ben, olga):
        await expect(s.shapes("image")).to_have_count(2)
        first, second = await picture(s.page, 0), await picture(s.page, 1)
        by_size = {tuple(p["size"]): p for p in (first, second)}
        assert set(by_size) == {(800, 400), (120, 90)}
        assert all(p["href"] == "blob:" for p in by_size.values()), "fetched with the token"
        red, blue = by_size[(800, 400)]["rgb"], by_size[(120, 90)]["rgb"]
        assert red[0] > 200 and red[2] < 50 and blue[2] > 200 and blue[0] < 50

    # The dropped image is centred on the drop point (as drawn on Ann's board).
    dropped = ann.page.locator('.shapes > [data-type="image"] image[width="120"]')
    box = await dropped.bounding_box()
    assert box is not None
    assert abs(box["x"] + box["width"] / 2 - x) < 3 and abs(box["y"] + box["height"] / 2 - y) < 3
