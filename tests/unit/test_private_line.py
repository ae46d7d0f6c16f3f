"""The private line's names and rules (rooms.private_line, protocol.md §2,
§6.8), and its part of the export (collab.export)."""

from __future__ import annotations

import pytest

from collab.export import PrivateThread, RoomExport, to_json, to_markdown
from crdt.errors import InvalidPayload
from crdt.schemas import ChatMessage, DocKind, RoomMeta
from crdt.types import DocName, RoomId, UserId
from rooms.errors import InvalidName, PermissionDenied, PrivateLineForbidden
from rooms.identity import Identity, Role
from rooms.names import doc_kind, namespace_for, parse_namespace
from rooms.policy import RoomPolicy
from rooms.private_line import check_private_join, recipient, thread_doc

ROOM = RoomId("clinic-7/group-a")


def who(user: str, role: Role = Role.PARTICIPANT) -> Identity:
    return Identity(UserId(user), user.title(), role)


def test_a_thread_is_named_by_a_hash_of_room_and_user() -> None:
    doc = thread_doc(ROOM, "ann@example.org")
    assert doc.startswith("private:") and len(doc) == len("private:") + 32
    assert "ann" not in doc and "example" not in doc
    assert doc == thread_doc(ROOM, "ann@example.org")
    assert doc != thread_doc(RoomId("clinic-7/group-b"), "ann@example.org")
    assert doc != thread_doc(ROOM, "bob@example.org")
    # Any user id has one, whatever its characters.
    assert thread_doc(ROOM, "a|b:c+d@e").startswith("private:")
    assert parse_namespace(namespace_for(ROOM, doc)) == (ROOM, doc)
    assert doc_kind(doc) is DocKind.PRIVATE and DocKind.PRIVATE.server_written


@pytest.mark.parametrize(
    "name",
    [
        "private:",
        "private:" + "A" * 32,
        "private:" + "a" * 31,
        "private:" + "a" * 33,
        "private:ann",
        "private:" + "g" * 32,
    ],
)
def test_other_private_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        parse_namespace(f"/yjs|{ROOM}/{name}")


def test_who_may_join_a_thread() -> None:
    policy = RoomPolicy()
    doc = thread_doc(ROOM, "ann")
    check_private_join(policy, ROOM, doc, who("ann"))
    check_private_join(policy, ROOM, doc, who("kim", Role.FACILITATOR))
    for outsider in (who("bob"), who("eve", Role.OBSERVER), who("ann", Role.OBSERVER)):
        with pytest.raises(PrivateLineForbidden):
            check_private_join(policy, ROOM, doc, outsider)
    policy.roles[UserId("ann")] = Role.OBSERVER  # an override counts
    with pytest.raises(PrivateLineForbidden):
        check_private_join(policy, ROOM, doc, who("ann"))


def test_whose_thread_a_message_goes_to() -> None:
    policy = RoomPolicy()
    assert recipient(ROOM, policy, who("ann"), None) == "ann"
    assert recipient(ROOM, policy, who("ann"), "ann") == "ann"
    with pytest.raises(PrivateLineForbidden):
        recipient(ROOM, policy, who("ann"), "bob")
    with pytest.raises(PermissionDenied):
        recipient(ROOM, policy, who("eve", Role.OBSERVER), None)
    kim = who("kim", Role.FACILITATOR)
    assert recipient(ROOM, policy, kim, "ann@example.org") == "ann@example.org"
    for bad in (None, "", "kim", "a b", "x" * 129, 7):
        with pytest.raises(InvalidPayload):
            recipient(ROOM, policy, kim, bad)


def _message(i: int, author: str, role: str, text: str) -> ChatMessage:
    return ChatMessage(f"{i:020x}", author, author.title(), role, text, 1_700_000_000_000.0 + i)


def test_the_export_keeps_threads_apart_from_the_group_chat() -> None:
    doc = DocName(thread_doc(ROOM, "ann"))
    export = RoomExport(
        room=ROOM,
        meta=RoomMeta(),
        messages=(_message(1, "bob", "participant", "hello all"),),
        shapes=(),
        exported_ms=1_700_000_000_000.0,
        threads=(
            PrivateThread(
                doc,
                "ann",
                (
                    _message(2, "ann", "participant", "a private question"),
                    ChatMessage(
                        f"{3:020x}", "kim", "Kim", "facilitator", "", 1.7e12, redacted=True
                    ),
                ),
            ),
        ),
    )
    data = to_json(export)
    assert [m["text"] for m in data["chat"]] == ["hello all"]
    assert data["private"][0]["doc"] == doc and data["private"][0]["userId"] == "ann"
    assert [m["text"] for m in data["private"][0]["messages"]] == ["a private question", ""]
    markdown = to_markdown(export)
    group, _, private = markdown.partition("## Private thread with `ann`")
    assert "hello all" in group and "a private question" not in group
    assert "a private question" in private and "_message removed_" in private
