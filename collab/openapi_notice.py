"""The OpenAPI description of the admin API's session notice route
(``PUT /api/rooms/{room}/notice``, protocol.md §6.6 and §10.1), part of the
document collab.openapi serves."""

from __future__ import annotations

from typing import Any

__all__ = ["NOTICE_PATHS", "NOTICE_SCHEMAS", "NOTICE_TEXT"]

#: A notice as the admin API takes it (``""`` clears it).
NOTICE_TEXT: dict[str, Any] = {
    "type": "string",
    "maxLength": 500,
    "description": "One line shown to everyone who joins (no line breaks, control, bidi or "
    "zero-width characters); white space at its ends is dropped; '' clears it.",
}

_ROOM = {
    "name": "room",
    "in": "path",
    "required": True,
    "description": "The room id, URL-encoded (clinic-7%2Fgroup-a).",
    "schema": {"type": "string", "maxLength": 128},
}
_BODY = {"$ref": "#/components/schemas/NoticeBody"}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _json(description: str, name: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{name}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


NOTICE_PATHS: dict[str, Any] = {
    "/api/rooms/{room}/notice": {
        "parameters": [_ROOM],
        "put": {
            "summary": "Set or clear the room's session notice (audited with its size)",
            "operationId": "putNotice",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _BODY}},
            },
            "responses": {
                "200": _json("The notice now.", "Notice"),
                "404": {"description": "No such room.", "content": _ERROR},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "400": {"$ref": "#/components/responses/BadRequest"},
            },
        },
    }
}

NOTICE_SCHEMAS: dict[str, Any] = {
    "NoticeBody": {
        "type": "object",
        "required": ["text"],
        "additionalProperties": False,
        "properties": {"text": NOTICE_TEXT},
    },
    "Notice": {
        "type": "object",
        "required": ["room", "notice"],
        "additionalProperties": False,
        "properties": {"room": {"type": "string"}, "notice": NOTICE_TEXT},
    },
}
