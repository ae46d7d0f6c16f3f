"""Check-ins (protocol.md §6.9): a facilitator opens one (four kinds,
optionally anonymous), members answer once and may change their answer
until it closes, the facilitator sees the results live and shows them to
the group or not; roles and bad input are refused with typed errors; the
state survives a reconnect and a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from collab.client import CollabClientError
from collab.client_checkins import Checkins, answered_of, checkins_of
from collab.webhooks import Webhooks
from tests.conftest import ADMIN_KEY, SECRET, mint
from tests.integration.test_webhooks import FAST, Receiver, check_signed, clinic
from tests.waiting import until

ROOM = "clinic-7/checkins"


def token(sub: str, role: str = "participant") -> dict[str, str]:
    return {"token": mint(ROOM, role=role, name=sub.title(), sub=sub)}


async def code_of(call: Any) -> str:
    with pytest.raises(CollabClientError) as info:
        await call
    return info.value.code


async def records(server: Any, action: str) -> list[Any]:
    await server.registry.flush_audit()
    return [r for r in await server.registry.store.read_audit(ROOM) if r.action == action]


async def test_a_named_single_choice_from_open_to_reveal(token_server, client_factory):
    url = token_server.url
    fac_client = await client_factory(url, ROOM, "meta", auth=token("kim", "facilitator"))
    ann_client = await client_factory(url, ROOM, "meta", auth=token("ann"))
    bob_client = await client_factory(url, ROOM, auth=token("bob"))
    fac, ann, bob = Checkins(fac_client), Checkins(ann_client), Checkins(bob_client)

    opened = await fac.open("single", "Which exercise next?", ["Breathing", "Walk", "Talk"])
    cid = opened["id"]
    assert opened["state"] == "open" and opened["revealed"] is False
    await ann_client.wait_for(lambda: [c.id for c in checkins_of(ann_client)] == [cid])
    seen = checkins_of(ann_client)[0]
    assert seen.question == "Which exercise next?" and seen.options == ("Breathing", "Walk", "Talk")

    assert (await ann.answer(cid, 0)) == {"ok": True, "id": cid, "changed": False}
    await bob.answer(cid, 2)
    # Changing one's answer while it is open.
    assert (await ann.answer(cid, 2))["changed"] is True
    live = await fac.results(cid)
    assert live["counts"] == [0, 0, 2] and live["answered"] == 2
    # A named check-in: the facilitator sees who answered what.
    assert live["answers"] == {"ann": 2, "bob": 2}
    await fac_client.wait_for(lambda: answered_of(fac_client, cid) == {"ann", "bob"})

    # Participants see nothing until it is shown; then the counts, never who.
    assert await code_of(ann.results(cid)) == "permission_denied"
    assert (await ann.results()) == {"ok": True, "checkins": []}
    await fac.reveal(cid)
    shown = await ann.results(cid)
    assert shown["counts"] == [0, 0, 2] and "answers" not in shown
    await fac.hide(cid)
    assert await code_of(ann.results(cid)) == "permission_denied"

    # Closed: no answer or change any more; closing twice is refused.
    closed = await fac.close(cid)
    assert closed["checkin"]["state"] == "closed"
    assert await code_of(bob.answer(cid, 1)) == "checkin_closed"
    assert await code_of(fac.close(cid)) == "checkin_closed"

    audited = await records(token_server, "checkin")
    assert [(r.detail.split(" ")[0], r.outcome) for r in audited] == [
        ("open", "ok"),
        ("reveal", "ok"),
        ("hide", "ok"),
        ("close", "ok"),
        ("", "checkin_closed"),
    ]
    assert all("exercise" not in r.detail for r in audited)


async def test_kinds_scale_multiple_feelings(token_server, client_factory):
    url = token_server.url
    fac = Checkins(await client_factory(url, ROOM, auth=token("kim", "facilitator")))
    ann = Checkins(await client_factory(url, ROOM, auth=token("ann")))
    scale = await fac.open("scale", "How anxious do you feel right now?")
    assert scale["options"] == [str(v) for v in range(11)]
    await ann.answer(scale["id"], 7)
    assert (await fac.results(scale["id"]))["counts"][7] == 1
    await fac.close(scale["id"])
    multi = await fac.open("multiple", "What helps?", ["Sleep", "Friends", "Music"])
    await ann.answer(multi["id"], [0, 2])
    assert (await fac.results(multi["id"]))["counts"] == [1, 0, 1]
    await fac.close(multi["id"])
    feel = await fac.open("feelings", "How are you arriving?")
    await ann.answer(feel["id"], "hopeful")
    res = await fac.results(feel["id"])
    assert res["counts"][res["options"].index("hopeful")] == 1
    assert res["answers"] == {"ann": "hopeful"}


async def test_roles_and_bad_input_are_refused_with_typed_errors(server_factory, client_factory):
    # Many refusals in a row: more than the default events burst allows.
    srv = await server_factory(dev=False, jwt_secret=SECRET, event_burst=200)
    url = srv.url
    fac = Checkins(await client_factory(url, ROOM, auth=token("kim", "facilitator")))
    par = Checkins(await client_factory(url, ROOM, auth=token("ann")))
    obs = Checkins(await client_factory(url, ROOM, "meta", auth=token("eve", "observer")))

    assert await code_of(par.open("scale", "Q?")) == "permission_denied"
    bad_opens: list[dict[str, Any]] = [
        {"kind": "essay", "question": "Q?"},
        {"kind": "scale", "question": ""},
        {"kind": "scale", "question": "x" * 301},
        {"kind": "scale", "question": "Q?", "options": ["a", "b"]},
        {"kind": "single", "question": "Q?", "options": ["only one"]},
        {"kind": "single", "question": "Q?", "options": [str(i) for i in range(13)]},
        {"kind": "single", "question": "Q?", "options": ["a", "a"]},
        {"kind": "single", "question": "Q?", "options": ["a", "b" * 81]},
        {"kind": "single", "question": "Q?", "options": ["a", 3]},
        {"kind": "single", "question": "Q\u202e?", "options": ["a", "b"]},
        {"kind": "scale", "question": "Q?", "anonymous": "yes"},
        {"kind": "scale", "question": "Q?", "colour": "red"},
    ]
    for fields in bad_opens:
        assert await code_of(fac.moderate("open", **fields)) == "invalid_payload", fields
    assert await code_of(fac.moderate("explode")) == "invalid_payload"
    assert await code_of(fac.close("0" * 16)) == "checkin_unknown"
    assert await code_of(fac.close("nope")) == "invalid_payload"

    opened = await fac.open("single", "Q?", ["a", "b"])
    cid = opened["id"]
    # One open at a time.
    assert await code_of(fac.open("scale", "Another?")) == "checkin_limit"
    assert await code_of(obs.answer(cid, 0)) == "permission_denied"
    for value in (2, -1, "a", [0], True, None, 0.5):
        assert await code_of(par.answer(cid, value)) == "invalid_answer", value
    assert await code_of(par.client.call("checkin:answer", {"id": cid})) == "invalid_payload"
    assert await code_of(par.answer("f" * 16, 0)) == "checkin_unknown"
    assert (await par.answer(cid, 1))["ok"] is True
    # Delete: the check-in and its answers go.
    await fac.delete(cid)
    assert await code_of(par.answer(cid, 0)) == "checkin_unknown"
    # After the end: no new check-in, no answer.
    second = await fac.open("scale", "Q?")
    await fac.client.call("mod:end", {})
    await fac.client.wait_for(lambda: fac.client.room_state.get("ended") is True)
    assert await code_of(par.answer(second["id"], 3)) == "session_ended"
    await fac.close(second["id"])
    assert await code_of(fac.open("scale", "Q?")) == "session_ended"


async def test_an_anonymous_answer_changes_only_with_its_receipt(token_server, client_factory):
    url = token_server.url
    fac = Checkins(await client_factory(url, ROOM, auth=token("kim", "facilitator")))
    ann = Checkins(await client_factory(url, ROOM, auth=token("ann")))
    bob = Checkins(await client_factory(url, ROOM, auth=token("bob")))
    cid = (await fac.open("scale", "How anxious?", anonymous=True))["id"]
    first = await ann.answer(cid, 8)
    assert isinstance(first["receipt"], str) and first["changed"] is False
    await bob.answer(cid, 3)
    changed = await ann.answer(cid, 2)
    assert changed["changed"] is True and changed["receipt"] != first["receipt"]
    res = await fac.results(cid)
    counts = res["counts"]
    assert counts[2] == 1 and counts[3] == 1 and sum(counts) == 2 and res["answered"] == 2
    assert "answers" not in res  # nobody sees who answered what, facilitators neither
    # Without a receipt, with another's, or with an old one: refused, nothing changes.
    fresh = Checkins(ann.client)
    assert await code_of(fresh.answer(cid, 5)) == "invalid_receipt"
    fresh.receipts[cid] = bob.receipts[cid]
    assert await code_of(fresh.answer(cid, 5)) == "invalid_receipt"
    fresh.receipts[cid] = first["receipt"]
    assert await code_of(fresh.answer(cid, 5)) == "invalid_receipt"
    fresh.receipts[cid] = "x" * 40
    assert await code_of(fresh.answer(cid, 5)) == "invalid_receipt"
    assert (await fac.results(cid))["counts"] == counts


async def test_answers_are_rate_limited(token_server, client_factory):
    fac = Checkins(await client_factory(token_server.url, ROOM, auth=token("kim", "facilitator")))
    ann = Checkins(await client_factory(token_server.url, ROOM, auth=token("ann")))
    cid = (await fac.open("scale", "Q?"))["id"]
    codes = []
    for value in range(8):
        try:
            await ann.answer(cid, value)
            codes.append("ok")
        except CollabClientError as exc:
            codes.append(exc.code)
    assert codes[:5] == ["ok"] * 5 and "rate_limited" in codes[5:]


async def test_checkins_survive_a_reconnect_and_a_restart(server_factory, client_factory, tmp_path):
    options = {
        "dev": False,
        "jwt_secret": SECRET,
        "admin_key": ADMIN_KEY,
        "store": "sqlite",
        "data_dir": tmp_path / "data",
    }
    srv = await server_factory(**options)
    fac = Checkins(await client_factory(srv.url, ROOM, auth=token("kim", "facilitator")))
    ann = Checkins(await client_factory(srv.url, ROOM, auth=token("ann")))
    named = await fac.open("single", "Q?", ["a", "b"])
    await ann.answer(named["id"], 1)
    await fac.close(named["id"])
    await fac.reveal(named["id"])
    anon = await fac.open("scale", "How anxious?", anonymous=True)
    await ann.answer(anon["id"], 6)
    # A reconnect: the state and results are there.
    await ann.client.close()
    again = await client_factory(srv.url, ROOM, "meta", auth=token("ann"))
    assert [c.id for c in checkins_of(again)] == [named["id"], anon["id"]]
    assert answered_of(again, anon["id"]) == {"ann"}
    assert (await Checkins(again).results(named["id"]))["counts"] == [0, 1]
    await again.close()
    await fac.client.close()
    await srv.stop()

    # A restart on the same SQLite file (and key file): results open again,
    # and the kept receipt still changes the anonymous answer.
    srv2 = await server_factory(**options)
    fac2 = Checkins(await client_factory(srv2.url, ROOM, "meta", auth=token("kim", "facilitator")))
    assert [(c.id, c.open, c.revealed) for c in checkins_of(fac2.client)] == [
        (named["id"], False, True),
        (anon["id"], True, False),
    ]
    assert (await fac2.results(named["id"]))["answers"] == {"ann": 1}
    assert (await fac2.results(anon["id"]))["counts"][6] == 1
    ann2 = Checkins(await client_factory(srv2.url, ROOM, auth=token("ann")))
    ann2.receipts = dict(ann.receipts)
    assert (await ann2.answer(anon["id"], 4))["changed"] is True
    counts = (await fac2.results(anon["id"]))["counts"]
    assert counts[4] == 1 and counts[6] == 0 and sum(counts) == 1


async def test_results_are_part_of_the_export(token_server, client_factory):
    import aiohttp

    url = token_server.url
    fac = Checkins(await client_factory(url, ROOM, auth=token("kim", "facilitator")))
    ann = Checkins(await client_factory(url, ROOM, auth=token("ann")))
    bob = Checkins(await client_factory(url, ROOM, auth=token("bob")))
    named = await fac.open("multiple", "What helps?", ["Sleep", "Friends", "Music"])
    await ann.answer(named["id"], [0, 2])
    await bob.answer(named["id"], [1])
    await fac.close(named["id"])
    anon = await fac.open("scale", "How anxious do you feel right now?", anonymous=True)
    await ann.answer(anon["id"], 4)
    await bob.answer(anon["id"], 6)

    headers = {"Authorization": f"Bearer {mint(ROOM, role='facilitator', sub='kim')}"}
    base = f"{url}/api/rooms/clinic-7%2Fcheckins/export"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "?format=json", headers=headers) as resp:
            assert resp.status == 200
            body = await resp.json()
        async with http.get(base + "?format=markdown", headers=headers) as resp:
            markdown = await resp.text()
    first, second = body["checkins"]
    assert first["question"] == "What helps?" and first["state"] == "closed"
    assert first["results"] == [
        {"option": "Sleep", "count": 1},
        {"option": "Friends", "count": 1},
        {"option": "Music", "count": 1},
    ]
    assert first["answers"] == {"ann": ["Sleep", "Music"], "bob": ["Friends"]}
    assert second["anonymous"] is True and second["answered"] == 2
    assert [r["count"] for r in second["results"]][4:7] == [1, 0, 1]
    assert "answers" not in second
    assert "## Check-ins" in markdown and "### What helps?" in markdown
    assert "- Music: 1" in markdown and "- `ann`: Sleep, Music" in markdown
    assert "anonymous · open · 2 answered" in markdown
    anon_part = markdown.split("How anxious")[1]
    assert "`ann`" not in anon_part and "`bob`" not in anon_part


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A platform's webhook endpoint (tests.integration.test_webhooks)."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def test_closing_is_told_to_webhooks_without_words(receiver, server_factory, client_factory):
    hooks = Webhooks([clinic(receiver, ["checkin.closed", "moderation.checkin"])], **FAST)
    srv = await server_factory(extensions=[hooks], dev=False, jwt_secret=SECRET)
    fac = Checkins(await client_factory(srv.url, ROOM, auth=token("kim", "facilitator")))
    ann = Checkins(await client_factory(srv.url, ROOM, auth=token("ann")))
    cid = (await fac.open("single", "Which exercise next?", ["Breathing", "Walk"]))["id"]
    await ann.answer(cid, 1)
    await fac.close(cid)
    await until(lambda: len(receiver.delivered("clinic")) == 3, what="three events")
    bodies = [check_signed(d) for d in receiver.to("clinic")]
    assert sorted(b["type"] for b in bodies) == [
        "checkin.closed",
        "moderation.checkin",
        "moderation.checkin",
    ]
    closed = next(b for b in bodies if b["type"] == "checkin.closed")
    assert closed["data"] == {
        "id": cid,
        "answered": 1,
        "by": {"userId": "kim", "role": "facilitator"},
    }
    assert all(b"exercise" not in d.body and b"Walk" not in d.body for d in receiver.to("clinic"))
