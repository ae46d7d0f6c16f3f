"""An anonymous check-in stores only the aggregate and who has answered,
never which answer was whose (protocol.md §6.9): shown by reading what the
store holds of the room's documents after several answers and a changed
one, with the servers' own key in hand."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map

from collab.client_checkins import Checkins
from rooms.checkin_seal import CheckinVault, SealBroken
from tests.conftest import ADMIN_KEY, SECRET, mint

ROOM = "clinic-7/anonymous"
USERS = ("ann", "bob", "cat", "dan")
#: A sealed value as it sits in an update: base64url, longer than any id.
_SEALED = re.compile(rb"[A-Za-z0-9_-]{40,}")


def token(sub: str, role: str = "participant") -> dict[str, str]:
    return {"token": mint(ROOM, role=role, name=sub.title(), sub=sub)}


def sealed_strings(blob: bytes) -> set[str]:
    """Every run of base64url characters, and the same without its first
    two (lib0 writes a string's length before it, which may be a letter)."""
    runs = {m.decode() for m in _SEALED.findall(blob)}
    return runs | {r[1:] for r in runs} | {r[2:] for r in runs}


def opened(vault: CheckinVault, text: str, contexts: list[str]) -> list[tuple[str, Any]]:
    """Each context ``text`` opens under, with what it holds."""
    found = []
    for context in contexts:
        try:
            found.append((context, vault.open(context, text)))
        except SealBroken:
            continue
    return found


async def test_the_store_holds_no_link_between_a_person_and_an_answer(
    server_factory, client_factory, tmp_path: Path
):
    data = tmp_path / "data"
    srv = await server_factory(
        dev=False, jwt_secret=SECRET, admin_key=ADMIN_KEY, store="sqlite", data_dir=data
    )
    fac = Checkins(await client_factory(srv.url, ROOM, auth=token("kim", "facilitator")))
    cid = (await fac.open("scale", "How anxious do you feel right now?", anonymous=True))["id"]
    members = {u: Checkins(await client_factory(srv.url, ROOM, auth=token(u))) for u in USERS}
    answers = {"ann": 9, "bob": 1, "cat": 5, "dan": 5}
    for user, value in answers.items():
        await members[user].answer(cid, value)
    await members["ann"].answer(cid, 2)  # a change: 9 → 2
    await members["bob"].answer(cid, 7)  # and another: 1 → 7
    receipts = [m.receipts[cid] for m in members.values()]
    expected = [0] * 11
    for value in (2, 7, 5, 5):
        expected[value] += 1
    assert (await fac.results(cid))["counts"] == expected

    # What the store holds of every document of the room: the snapshot and the log.
    store = srv.registry.store
    stored: list[tuple[str, bytes]] = []
    for name in await store.list_documents(ROOM):
        doc = await store.load(ROOM, name)
        if doc.snapshot is not None:
            stored.append((f"{name} snapshot", bytes(doc.snapshot)))
        stored.extend((f"{name} log {i}", bytes(u)) for i, u in enumerate(doc.updates))
    assert stored

    vault = CheckinVault.from_key_file(data)
    writer = srv.app.node_id
    base = f"{ROOM}|{cid}"
    tally_ctx = f"tally|{base}|{writer}"
    per_user = [f"{kind}|{base}|{u}" for u in USERS for kind in ("answer", "receipt")]
    tallies: list[Any] = []
    for where, blob in stored:
        for text in sealed_strings(blob):
            assert not opened(vault, text, per_user), f"a per-person sealed value in {where}"
            tallies.extend(value for _, value in opened(vault, text, [tally_ctx]))
        # No receipt was stored, anywhere.
        assert not any(r.encode() in blob for r in receipts), where
    # Only the newest counts survive: no older count to subtract from it,
    # so the order in which people answered says nothing about what.
    assert tallies == [expected]

    # Decoded, each stored state holds who answered (user id → a random
    # guard) and the sealed counts: no structure holds a user and an answer.
    for where, blob in stored:
        doc = Doc()
        doc.apply_update(blob)
        answered = doc.get("checkinAnswers", type=Map).to_py() or {}
        for key, value in answered.items():
            assert key.split("|", 1)[1] in USERS
            assert set(value) == {"g"} and re.fullmatch(r"[0-9a-f]{16}", value["g"]), where
        tallies_map = doc.get("checkinTallies", type=Map).to_py() or {}
        assert set(tallies_map) <= {f"{cid}|{writer}"}, where
    # The last answer compacted meta: its log is empty, the snapshot is all.
    meta = await store.load(ROOM, "meta")
    assert meta.snapshot is not None and meta.updates == ()
    await srv.stop()

    # The SQLite file itself (and its WAL) holds no older count either.
    raw = b"".join(p.read_bytes() for p in data.glob("collab.sqlite3*"))
    in_file = [t for t in sealed_strings(raw) if opened(vault, t, [tally_ctx])]
    assert in_file
    assert [vault.open(tally_ctx, t) for t in in_file] == [expected] * len(in_file)
