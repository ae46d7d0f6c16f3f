"""What a check-in asks and what an answer to it may be (protocol.md §6.9):
the four kinds, their limits, and the checks of a definition and an answer.

An answer is kept as the option indices it chose (0-based): one for a
single choice, a 0–10 scale (the index is the value) and a feeling, one or
more for a multiple choice. Results are a count per option.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from crdt.errors import InvalidPayload
from crdt.text import bad_name_character
from rooms.errors import InvalidAnswer

__all__ = [
    "FEELINGS",
    "MAX_OPTIONS",
    "MAX_OPTION_CHARS",
    "MAX_QUESTION_CHARS",
    "SCALE_MAX",
    "CheckinKind",
    "Definition",
    "parse_answer",
    "parse_definition",
]

#: Longest question, in characters (protocol.md §8.1).
MAX_QUESTION_CHARS = 300
#: Most options of a single or multiple choice (at least 2).
MAX_OPTIONS = 12
#: Longest option label, in characters.
MAX_OPTION_CHARS = 80
#: A scale runs from 0 to this.
SCALE_MAX = 10
#: The feelings a feelings pick offers (the web app words them).
FEELINGS = (
    "calm",
    "happy",
    "hopeful",
    "grateful",
    "tired",
    "anxious",
    "sad",
    "angry",
    "confused",
    "overwhelmed",
)


class CheckinKind(StrEnum):
    SINGLE = "single"
    MULTIPLE = "multiple"
    SCALE = "scale"
    FEELINGS = "feelings"


@dataclass(frozen=True, slots=True)
class Definition:
    """What a check-in asks: its kind, question and option labels."""

    kind: CheckinKind
    question: str
    options: tuple[str, ...]
    anonymous: bool


def _text(value: Any, what: str, limit: int, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidPayload(f"{what} must be a string")
    text = value.strip()
    if not text and not empty:
        raise InvalidPayload(f"{what} may not be empty")
    if len(text) > limit:
        raise InvalidPayload(f"{what} has {len(text)} characters, limit {limit}")
    bad = bad_name_character(text)
    if bad is not None:
        raise InvalidPayload(f"{what} holds a control, bidi or invalid character (at {bad})")
    return text


def parse_definition(fields: dict[str, Any]) -> Definition:
    """The check-in an ``open`` asks for: ``kind``, ``question``, ``options``
    (single and multiple choice only: 2–12 distinct labels) and
    ``anonymous``; InvalidPayload for anything outside the limits."""
    try:
        kind = CheckinKind(str(fields.get("kind")))
    except ValueError:
        raise InvalidPayload("kind must be single, multiple, scale or feelings") from None
    question = _text(fields.get("question"), "question", MAX_QUESTION_CHARS)
    anonymous = fields.get("anonymous", False)
    if not isinstance(anonymous, bool):
        raise InvalidPayload("anonymous must be true or false")
    raw = fields.get("options")
    if kind in (CheckinKind.SINGLE, CheckinKind.MULTIPLE):
        if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_OPTIONS:
            raise InvalidPayload(f"options must be a list of 2-{MAX_OPTIONS} labels")
        options = tuple(_text(o, "an option", MAX_OPTION_CHARS) for o in raw)
        if len(set(options)) != len(options):
            raise InvalidPayload("options must differ")
    elif raw is not None:
        raise InvalidPayload(f"a {kind.value} check-in takes no options")
    elif kind is CheckinKind.SCALE:
        options = tuple(str(v) for v in range(SCALE_MAX + 1))
    else:
        options = FEELINGS
    return Definition(kind, question, options, anonymous)


def _index(value: Any, size: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
        raise InvalidAnswer(f"an answer must be an option index 0-{size - 1}")
    return value


def parse_answer(kind: CheckinKind, options: int, value: Any) -> list[int]:
    """The option indices ``value`` chooses: an index (single), a list of
    distinct indices (multiple, at least one), an integer 0–10 (scale), a
    feeling's name (feelings); InvalidAnswer otherwise."""
    if kind is CheckinKind.MULTIPLE:
        if not isinstance(value, list) or not 1 <= len(value) <= options:
            raise InvalidAnswer(f"a multiple choice answer is a list of 1-{options} indices")
        chosen = sorted({_index(v, options) for v in value})
        if len(chosen) != len(value):
            raise InvalidAnswer("a multiple choice answer names each option once")
        return chosen
    if kind is CheckinKind.FEELINGS:
        if value not in FEELINGS:
            raise InvalidAnswer("a feeling must be one of " + ", ".join(FEELINGS))
        return [FEELINGS.index(value)]
    return [_index(value, options)]


def answer_value(kind: CheckinKind, options: tuple[str, ...], chosen: list[int]) -> Any:
    """The answer as ``checkin:answer`` sent it (for exports and receipts)."""
    if kind is CheckinKind.MULTIPLE:
        return list(chosen)
    if kind is CheckinKind.FEELINGS:
        return options[chosen[0]]
    return chosen[0]
