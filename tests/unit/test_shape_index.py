"""crdt/shape_index.py: which shapes a Yjs update touches, checked against
what pycrdt itself reports when the update is applied (observe_deep)."""

from __future__ import annotations

import random

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt.shape_index import ShapeIndex, read_structure
from crdt.updates import check_update


def board(doc: Doc) -> Map:
    return doc.get("shapes", type=Map)


def note(text: str = "", **fields: object) -> Map:
    return Map({"type": "sticky", "x": 0, "y": 0, "text": Text(text), **fields})


class Board:
    """A server replica with its index, and clients that sync from it."""

    def __init__(self) -> None:
        self.doc = Doc()
        self.index = ShapeIndex("shapes")

    def take(self, update: bytes) -> None:
        check_update(update)
        self.doc.apply_update(update)
        self.index.add(update)

    def client(self) -> Doc:
        doc = Doc()
        doc.apply_update(self.doc.get_update())
        return doc

    def edit(self, client: Doc, change) -> bytes:  # type: ignore[no-untyped-def]
        """``change(client)`` as one update, not yet taken."""
        before = client.get_state()
        change(client)
        return client.get_update(before)

    def touched_by_applying(self, update: bytes) -> set[str]:
        """The oracle: the shapes pycrdt reports changed when ``update`` is applied."""
        copy = Doc()
        copy.apply_update(self.doc.get_update())
        changed: set[str] = set()

        def seen(events) -> None:  # type: ignore[no-untyped-def]
            for event in events:
                if event.path:
                    changed.add(str(event.path[0]))
                else:
                    changed.update(event.keys)

        subscription = board(copy).observe_deep(seen)  # held: collected, it unsubscribes
        copy.apply_update(update)
        del subscription
        return changed


def seeded() -> tuple[Board, Doc]:
    server = Board()
    facilitator = Doc()
    shapes = board(facilitator)
    shapes["a"] = note("Our group goal: ")
    shapes["b"] = Map({"type": "rect", "x": 1, "y": 2, "points": Array([1, 2, 3])})
    shapes["c"] = note("keep")
    server.take(facilitator.get_update())
    return server, facilitator


def test_each_kind_of_edit_touches_its_shape():
    server, _ = seeded()
    ann = server.client()
    cases = {
        "type into a note": (lambda d: board(d)["a"]["text"].insert(5, "new "), {"a"}),
        "delete from a note": (lambda d: board(d)["a"]["text"].__delitem__(slice(0, 3)), {"a"}),
        "move a shape": (lambda d: board(d)["b"].__setitem__("x", 50), {"b"}),
        "grow a nested array": (lambda d: board(d)["b"]["points"].append(9), {"b"}),
        "delete a shape": (lambda d: board(d).pop("c"), {"c"}),
        "replace a shape": (lambda d: board(d).__setitem__("a", note("mine")), {"a"}),
        "add a shape": (lambda d: board(d).__setitem__("d", note("new")), {"d"}),
    }
    for what, (change, expected) in cases.items():
        client = Doc()
        client.apply_update(ann.get_update())
        update = server.edit(client, change)
        assert server.index.touched([update]) == expected, what
        assert server.touched_by_applying(update) == expected, what


def test_an_answer_with_the_whole_delete_set_counts_only_new_deletions():
    """A sync answer (encodeStateAsUpdate against the server's state vector)
    carries every deletion the sender knows, also old ones: those are not
    touches."""
    server, facilitator = seeded()
    before = facilitator.get_state()
    del board(facilitator)["a"]["text"][0:4]  # an old correction, taken by the server
    server.take(facilitator.get_update(before))
    ben = server.client()
    board(ben)["b"]["x"] = 7
    answer = ben.get_update(server.doc.get_state())
    assert read_structure(answer).deletes, "the answer repeats the old deletion"
    assert server.index.touched([answer]) == {"b"}


def test_references_to_items_the_document_lacks_cannot_be_placed():
    server, _ = seeded()
    elsewhere = Doc()
    board(elsewhere)["x"] = note("unseen")
    hidden = elsewhere.get_update()
    before = elsewhere.get_state()
    board(elsewhere)["x"]["text"].insert(0, "more ")
    depends = elsewhere.get_update(before)
    assert server.index.touched([depends]) is None  # its origin is not on the server
    assert server.index.touched([hidden, depends]) == {"x"}  # in order, one answer

    # A deletion of items the server does not have yet would wait in the
    # engine and strike whatever arrives with those ids later.
    before = elsewhere.get_state()
    board(elsewhere).pop("x")
    pending_delete = elsewhere.get_update(before)
    assert server.index.touched([pending_delete]) is None


def test_a_long_chain_of_typing_resolves_without_recursion():
    server, facilitator = seeded()
    text = board(facilitator)["a"]["text"]
    for i in range(3000):  # one update per keystroke, each its own struct
        before = facilitator.get_state()
        text.insert(len(str(text)), "abc"[i % 3])
        server.take(facilitator.get_update(before))
    ben = server.client()
    update = server.edit(ben, lambda d: board(d)["a"]["text"].insert(2500, "!"))
    assert server.index.touched([update]) == {"a"}


def test_built_from_a_full_state_as_from_its_updates():
    server, facilitator = seeded()
    for i in range(20):
        before = facilitator.get_state()
        board(facilitator)["a"]["text"].insert(0, str(i))
        board(facilitator)[f"n{i}"] = note(str(i))
        server.take(facilitator.get_update(before))
    rebuilt = ShapeIndex.from_updates("shapes", [server.doc.get_update()])
    ben = server.client()
    update = server.edit(ben, lambda d: (board(d)["n7"]["text"].insert(0, "x"), board(d).pop("n3")))
    assert rebuilt.touched([update]) == server.index.touched([update]) == {"n7", "n3"}


@pytest.mark.parametrize("seed", range(12))
def test_random_edits_match_what_the_engine_reports(seed):
    """Several clients edit, delete and replace shapes at random; every
    update the server takes touches exactly the shapes pycrdt says change."""
    rng = random.Random(seed)
    server, _ = seeded()
    clients = [server.client() for _ in range(3)]
    for _ in range(60):
        client = rng.choice(clients)
        client.apply_update(server.doc.get_update(client.get_state()))
        keys = sorted(board(client).keys())

        def change(d: Doc, keys: list[str] = keys) -> None:
            shapes = board(d)
            for _ in range(rng.randint(1, 3)):
                op = rng.random()
                key = rng.choice(keys) if keys else None
                if key is None or op < 0.2:
                    shapes[f"s{rng.randrange(10**6)}"] = note("hi")
                elif op < 0.35 and key in shapes:
                    shapes.pop(key)
                elif key in shapes and isinstance(shapes[key].get("text"), Text):
                    text = shapes[key]["text"]
                    if len(str(text)) > 2 and rng.random() < 0.4:
                        start = rng.randrange(len(str(text)) - 1)
                        del text[start : start + 1]
                    else:
                        text.insert(rng.randint(0, len(str(text))), "xy")
                elif key in shapes:
                    shapes[key]["x"] = rng.random()

        update = server.edit(client, change)
        expected = server.touched_by_applying(update)
        assert server.index.touched([update]) == expected
        server.take(update)
