"""A platform's templates in every store (collab/templates.py): kept as
blobs of the reserved room ``~templates``, seen by a second library on the
same store (another node), replaced by id, deleted; shipped ones stay."""

from __future__ import annotations

import json

import pytest

from collab.errors import Conflict, TemplatesUnavailable
from collab.templates import MAX_PLATFORM_TEMPLATES, TemplateLibrary
from crdt.errors import InvalidPayload
from rooms.errors import InvalidName, NotFound
from rooms.names import validate_room_id


def template(template_id: str, title: str = "Ours", shapes: int = 1) -> bytes:
    return json.dumps(
        {
            "id": template_id,
            "title": {"en": title},
            "shapes": [
                {"type": "rect", "x": i * 10, "y": 0, "w": 5, "h": 5} for i in range(shapes)
            ],
        }
    ).encode()


async def test_a_platform_template_is_kept_seen_replaced_and_deleted(opener):
    one = TemplateLibrary(store=await opener())
    two = TemplateLibrary(store=await opener())  # another node on the same store
    placed, created = await one.put(template("check-in"))
    assert created and placed.source == "platform"
    assert (await two.get("check-in")).title["en"] == "Ours"
    ids = [t.id for t in await two.all()]
    assert ids[-1] == "check-in" and "goal-ladder" in ids

    _, created = await two.put(template("check-in", "Ours, again", shapes=3))
    assert not created
    assert len((await one.get("check-in")).shapes) == 3
    assert [t.id for t in await one.all()].count("check-in") == 1

    assert await one.delete("check-in")
    with pytest.raises(NotFound):
        await two.get("check-in")
    assert not await two.delete("check-in")


async def test_refusals(opener):
    library = TemplateLibrary(store=await opener())
    with pytest.raises(Conflict):
        await library.put(template("goal-ladder"))
    with pytest.raises(InvalidPayload):
        await library.put(b'{"id": "x", "title": "t", "shapes": [{"type": "star"}]}')
    with pytest.raises(TemplatesUnavailable):
        await TemplateLibrary().put(template("anything"))
    assert "goal-ladder" in {t.id for t in await TemplateLibrary().all()}


async def test_at_most_so_many_platform_templates():
    from rooms.store_memory import MemoryStore

    library = TemplateLibrary(store=MemoryStore())
    for i in range(MAX_PLATFORM_TEMPLATES):
        await library.put(template(f"t{i}"))
    with pytest.raises(InvalidPayload, match="at most"):
        await library.put(template("one-more"))
    await library.put(template("t7", "replacing is fine"))


def test_no_room_may_take_the_templates_name():
    for room in ("~templates", "clinic/~templates"):
        with pytest.raises(InvalidName):
            validate_room_id(room)
