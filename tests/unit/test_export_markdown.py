"""The Markdown transcript's times: UTC ISO 8601 by default, or local times
with their UTC offset in the reader's IANA time zone (collab.export)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collab.export import RoomExport, time_zone, to_markdown
from crdt.errors import InvalidPayload
from crdt.schemas import ChatMessage, RoomMeta

# 2026-11-30 13:05:00 UTC (winter: Madrid is +01:00) and 2026-07-01 09:30 UTC (summer: +02:00).
WINTER_MS = datetime(2026, 11, 30, 13, 5, tzinfo=UTC).timestamp() * 1000
SUMMER_MS = datetime(2026, 7, 1, 9, 30, tzinfo=UTC).timestamp() * 1000


def _export() -> RoomExport:
    def msg(id_: str, ts: float) -> ChatMessage:
        return ChatMessage(
            id=id_, author_id="p", author_name="Pat", role="participant", text=id_, ts=ts
        )

    return RoomExport(
        room="clinic/g",
        meta=RoomMeta(title="Grupo"),
        messages=(msg("winter", WINTER_MS), msg("summer", SUMMER_MS)),
        shapes=(),
        exported_ms=WINTER_MS,
    )


def test_without_a_zone_times_are_utc_iso() -> None:
    md = to_markdown(_export())
    assert "**Pat** (participant) · 2026-11-30T13:05:00.000+00:00" in md
    assert "**Pat** (participant) · 2026-07-01T09:30:00.000+00:00" in md
    assert "times in" not in md


def test_local_times_carry_the_offset_of_their_date() -> None:
    md = to_markdown(_export(), time_zone("Europe/Madrid"))
    assert "**Pat** (participant) · 2026-11-30 14:05 (+01:00)" in md
    assert "**Pat** (participant) · 2026-07-01 11:30 (+02:00)" in md
    assert "exported 2026-11-30 14:05 (+01:00)" in md and "times in Europe/Madrid" in md


@pytest.mark.parametrize(
    ("zone", "winter", "summer"),
    [
        ("America/Mexico_City", "2026-11-30 07:05 (-06:00)", "2026-07-01 03:30 (-06:00)"),
        ("Asia/Kolkata", "2026-11-30 18:35 (+05:30)", "2026-07-01 15:00 (+05:30)"),
        ("UTC", "2026-11-30 13:05 (+00:00)", "2026-07-01 09:30 (+00:00)"),
    ],
)
def test_other_zones(zone: str, winter: str, summer: str) -> None:
    md = to_markdown(_export(), time_zone(zone))
    assert f"· {winter}\n" in md and f"· {summer}\n" in md


def test_no_zone_is_none() -> None:
    assert time_zone(None) is None


@pytest.mark.parametrize(
    "name",
    ["", "Nowhere/Special", "../../etc/passwd", "/etc/localtime", "Europe/Madrid\n", "A" * 65],
)
def test_what_is_not_a_zone_is_refused(name: str) -> None:
    with pytest.raises(InvalidPayload):
        time_zone(name)
