"""The OpenAPI 3.1 description of the admin API, served at ``/api/openapi.json``.

tests/integration/test_admin_api.py validates this document and checks every
response of the API against the schemas here.
"""

from __future__ import annotations

from typing import Any

from collab import __version__
from collab.errors import ALL_CODES
from collab.openapi_images import IMAGE_PATHS, IMAGE_SCHEMAS, ROOM_TOKEN
from collab.openapi_notice import NOTICE_PATHS, NOTICE_SCHEMAS, NOTICE_TEXT
from collab.openapi_templates import TEMPLATE_PATHS, TEMPLATE_SCHEMAS
from rooms.audit import AuditAction

__all__ = ["OPENAPI"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "400": {"$ref": "#/components/responses/BadRequest"},
}
_ROOM_PARAM = {
    "name": "room",
    "in": "path",
    "required": True,
    "description": "The room id, URL-encoded (clinic-7%2Fgroup-a).",
    "schema": {"type": "string", "maxLength": 128},
}
_NULLABLE_NUMBER = {"type": ["number", "null"]}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "collab admin API",
        "version": __version__,
        "description": "Rooms, exports, deletion, role overrides, revocations and the audit "
        "log. protocol.md §10.",
    },
    "security": [{"adminKey": []}],
    "paths": {
        "/api/rooms": {
            "get": {
                "summary": "List rooms",
                "operationId": "listRooms",
                "responses": {"200": _json_response("The rooms.", _ref("RoomList")), **_ERRORS},
            },
            "post": {
                "summary": "Create a room",
                "operationId": "createRoom",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreateRoom")}},
                },
                "responses": {
                    "201": _json_response("The created room.", _ref("RoomInfo")),
                    "409": _json_response("The room exists.", _ref("Error")),
                    **_ERRORS,
                },
            },
        },
        "/api/rooms/{room}": {
            "parameters": [_ROOM_PARAM],
            "get": {
                "summary": "Room info: who is online, document sizes, state",
                "operationId": "getRoom",
                "responses": {
                    "200": _json_response("The room.", _ref("RoomInfo")),
                    "404": _json_response("No such room.", _ref("Error")),
                    **_ERRORS,
                },
            },
            "delete": {
                "summary": "Delete a room everywhere (the audit log keeps the record)",
                "operationId": "deleteRoom",
                "responses": {
                    "200": _json_response("Deleted.", _ref("Deleted")),
                    "404": _json_response("No such room.", _ref("Error")),
                    **_ERRORS,
                },
            },
        },
        "/api/rooms/{room}/export": {
            "parameters": [
                _ROOM_PARAM,
                {
                    "name": "format",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "string",
                        "enum": ["json", "markdown", "svg"],
                        "default": "json",
                    },
                },
                {
                    "name": "tz",
                    "in": "query",
                    "required": False,
                    "description": "The Markdown transcript's time zone (IANA, such as "
                    "Europe/Madrid): local times with their UTC offset; UTC ISO 8601 when "
                    "omitted. An unknown zone is refused with 400 invalid_payload.",
                    "schema": {"type": "string", "maxLength": 64},
                },
            ],
            "get": {
                "summary": "Export: JSON, Markdown transcript or SVG board",
                "operationId": "exportRoom",
                "responses": {
                    "200": {
                        "description": "The export.",
                        "content": {
                            "application/json": {"schema": _ref("Export")},
                            "text/markdown": {"schema": {"type": "string"}},
                            "image/svg+xml": {"schema": {"type": "string"}},
                        },
                    },
                    "403": _json_response(
                        "A facilitator's token that may not export this room (a prefix "
                        "token, another role or room, removed, revoked).",
                        _ref("Error"),
                    ),
                    "404": _json_response("No such room.", _ref("Error")),
                    **_ERRORS,
                },
            },
        },
        "/api/rooms/{room}/roles": {
            "parameters": [_ROOM_PARAM],
            "post": {
                "summary": "Set or clear a user's role override in the room (as mod:role)",
                "operationId": "setRole",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SetRole")}},
                },
                "responses": {
                    "200": _json_response("The override and the room state.", _ref("RoleSet")),
                    "404": _json_response("No such room.", _ref("Error")),
                    **_ERRORS,
                },
            },
        },
        "/api/revocations": {
            "get": {
                "summary": "Revocations in force",
                "operationId": "listRevocations",
                "responses": {
                    "200": _json_response("The revocations.", _ref("RevocationList")),
                    **_ERRORS,
                },
            },
            "post": {
                "summary": "Revoke a token (jti) or a user (sub), in one room or all, until a time",
                "operationId": "revoke",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreateRevocation")}},
                },
                "responses": {
                    "201": _json_response("The revocation.", _ref("Revocation")),
                    **_ERRORS,
                },
            },
        },
        "/api/revocations/{id}": {
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "delete": {
                "summary": "Lift a revocation before its time",
                "operationId": "unrevoke",
                "responses": {
                    "200": _json_response("Lifted.", _ref("RevocationDeleted")),
                    "404": _json_response("No such revocation.", _ref("Error")),
                    **_ERRORS,
                },
            },
        },
        "/api/rooms/{room}/audit": {
            "parameters": [
                _ROOM_PARAM,
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000},
                },
            ],
            "get": {
                "summary": "The room's audit log, oldest first (kept after deletion)",
                "operationId": "getAudit",
                "responses": {"200": _json_response("Records.", _ref("AuditLog")), **_ERRORS},
            },
        },
        **IMAGE_PATHS,
        **TEMPLATE_PATHS,
        **NOTICE_PATHS,
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "getOpenApi",
                "security": [],
                "responses": {"200": _json_response("OpenAPI 3.1.", {"type": "object"})},
            }
        },
    },
    "components": {
        "securitySchemes": {
            "adminKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An admin key (--admin-key, --admin-key-file); the export route "
                "also takes a facilitator's token for that exact room.",
            },
            "roomToken": ROOM_TOKEN,
        },
        "responses": {
            "Unauthorized": _json_response("Missing or wrong admin key.", _ref("Error")),
            "BadRequest": _json_response("Malformed request.", _ref("Error")),
        },
        "schemas": {
            **IMAGE_SCHEMAS,
            **TEMPLATE_SCHEMAS,
            **NOTICE_SCHEMAS,
            "Error": {
                "type": "object",
                "required": ["error"],
                "additionalProperties": False,
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "additionalProperties": False,
                        "properties": {
                            "code": {"type": "string", "enum": [c.value for c in ALL_CODES]},
                            "message": {"type": "string"},
                        },
                    }
                },
            },
            "CreateRoom": {
                "type": "object",
                "required": ["id"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "maxLength": 128},
                    "title": {"type": "string", "maxLength": 200},
                    "retentionDays": {
                        "type": ["number", "null"],
                        "exclusiveMinimum": 0,
                        "maximum": 36500,
                    },
                    "notice": NOTICE_TEXT,
                },
            },
            "RoomSummary": {
                "type": "object",
                "required": [
                    "id",
                    "title",
                    "retentionDays",
                    "createdAt",
                    "lastActivityAt",
                    "connections",
                ],
                "properties": {
                    "id": {"type": "string"},
                    "title": {"type": "string"},
                    "retentionDays": _NULLABLE_NUMBER,
                    "createdAt": _NULLABLE_NUMBER,
                    "lastActivityAt": _NULLABLE_NUMBER,
                    "connections": {"type": "integer", "minimum": 0},
                },
            },
            "RoomList": {
                "type": "object",
                "required": ["rooms"],
                "additionalProperties": False,
                "properties": {"rooms": {"type": "array", "items": _ref("RoomSummary")}},
            },
            "RoomState": {
                "type": "object",
                "required": ["title", "locked", "ended", "muted", "removed"],
                "additionalProperties": False,
                "properties": {
                    "title": {"type": "string"},
                    "locked": {"type": "boolean"},
                    "ended": {"type": "boolean"},
                    "muted": {"type": "array", "items": {"type": "string"}},
                    "removed": {"type": "array", "items": {"type": "string"}},
                    "roles": {
                        "type": "object",
                        "description": "Role overrides: user id → participant or observer "
                        "(protocol.md §6.3).",
                        "additionalProperties": {"enum": ["participant", "observer"]},
                    },
                    "full": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Documents at their size limit (protocol.md §8.3).",
                    },
                    "saving": {
                        "enum": ["ok", "delayed", "read_only"],
                        "description": "Whether the store has the room's changes "
                        "(protocol.md §11).",
                    },
                },
            },
            "RoomInfo": {
                "allOf": [
                    _ref("RoomSummary"),
                    {
                        "type": "object",
                        "required": [
                            "state",
                            "online",
                            "documentBytes",
                            "pendingBytes",
                            "retentionDefaultDays",
                            "images",
                            "imageBytes",
                        ],
                        "properties": {
                            "state": _ref("RoomState"),
                            "online": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["userId", "name", "role", "documents"],
                                    "properties": {
                                        "userId": {"type": "string"},
                                        "name": {"type": "string"},
                                        "role": {
                                            "enum": ["facilitator", "participant", "observer"]
                                        },
                                        "documents": {"type": "array", "items": {"type": "string"}},
                                    },
                                },
                            },
                            "documentBytes": {
                                "type": "object",
                                "additionalProperties": {"type": "integer", "minimum": 0},
                            },
                            "pendingBytes": {
                                "type": "object",
                                "description": "Bytes of updates each document holds that "
                                "wait for updates they depend on (protocol.md §8.3).",
                                "additionalProperties": {"type": "integer", "minimum": 0},
                            },
                            "retentionDefaultDays": _NULLABLE_NUMBER,
                            "images": {
                                "type": ["integer", "null"],
                                "minimum": 0,
                                "description": "Images the room holds (protocol.md §10.6); "
                                "null when the store keeps none.",
                            },
                            "imageBytes": {
                                "type": ["integer", "null"],
                                "minimum": 0,
                                "description": "Their bytes, counted in the room's size and "
                                "held to --max-room-image-bytes.",
                            },
                        },
                    },
                ]
            },
            "ChatEntry": {
                "type": "object",
                "required": [
                    "id",
                    "authorId",
                    "authorName",
                    "role",
                    "ts",
                    "time",
                    "text",
                    "redacted",
                ],
                "properties": {
                    "id": {"type": "string"},
                    "authorId": {"type": "string"},
                    "authorName": {"type": "string"},
                    "role": {"type": "string"},
                    "ts": {"type": "number"},
                    "time": {"type": "string", "format": "date-time"},
                    "text": {"type": "string"},
                    "redacted": {"type": "boolean"},
                },
            },
            "Shape": {
                "type": "object",
                "required": [
                    "id",
                    "type",
                    "x",
                    "y",
                    "w",
                    "h",
                    "points",
                    "color",
                    "width",
                    "text",
                    "z",
                ],
                "properties": {
                    "id": {"type": "string"},
                    "type": {
                        "enum": [
                            "pen",
                            "line",
                            "arrow",
                            "rect",
                            "ellipse",
                            "sticky",
                            "text",
                            "image",
                        ]
                    },
                    "x": {"type": "number"},
                    "y": {"type": "number"},
                    "w": {"type": "number"},
                    "h": {"type": "number"},
                    "points": {
                        "type": "array",
                        "items": {
                            "type": "array",
                            "items": {"type": "number"},
                            "minItems": 2,
                            "maxItems": 2,
                        },
                    },
                    "color": {"type": "string"},
                    "fill": {"type": ["string", "null"]},
                    "width": {"type": "number"},
                    "text": {"type": "string"},
                    "fontSize": {
                        "type": "number",
                        "description": "Text size of sticky notes and text (16 when unset).",
                    },
                    "author": {"type": ["string", "null"]},
                    "z": {"type": "number"},
                    "src": {
                        "type": "string",
                        "pattern": "^[0-9a-f]{64}$",
                        "description": "An image's stored image (its digest); images only.",
                    },
                },
            },
            "Export": {
                "type": "object",
                "required": ["room", "exportedAt", "meta", "chat", "board"],
                "properties": {
                    "room": {"type": "string"},
                    "exportedAt": {"type": "string", "format": "date-time"},
                    "meta": _ref("RoomState"),
                    "chat": {"type": "array", "items": _ref("ChatEntry")},
                    "checkins": {"type": "array", "items": _ref("CheckinExport")},
                    "board": {
                        "type": "object",
                        "required": ["shapes", "images"],
                        "properties": {
                            "shapes": {"type": "array", "items": _ref("Shape")},
                            "images": {
                                "type": "object",
                                "description": "The stored images the shapes name, by digest.",
                                "additionalProperties": {
                                    "type": "object",
                                    "required": ["mediaType", "data"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "mediaType": {
                                            "enum": ["image/png", "image/jpeg", "image/webp"]
                                        },
                                        "data": {"type": "string", "contentEncoding": "base64"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
            "CheckinExport": {
                "type": "object",
                "description": "A check-in and its results (protocol.md §6.9); `answers` "
                "(user id → answer) only for a named one.",
                "required": ["id", "kind", "question", "anonymous", "state", "results"],
                "properties": {
                    "id": {"type": "string"},
                    "kind": {"enum": ["single", "multiple", "scale", "feelings"]},
                    "question": {"type": "string"},
                    "anonymous": {"type": "boolean"},
                    "state": {"enum": ["open", "closed"]},
                    "revealed": {"type": "boolean"},
                    "answered": {"type": "integer"},
                    "by": {"type": "string"},
                    "openedAt": {"type": "string", "format": "date-time"},
                    "closedAt": {"type": "string", "format": "date-time"},
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["option", "count"],
                            "properties": {
                                "option": {"type": "string"},
                                "count": {"type": "integer"},
                            },
                        },
                    },
                    "answers": {"type": "object"},
                },
            },
            "Deleted": {
                "type": "object",
                "required": ["deleted", "connectionsClosed"],
                "additionalProperties": False,
                "properties": {
                    "deleted": {"type": "string"},
                    "connectionsClosed": {"type": "integer", "minimum": 0},
                },
            },
            "SetRole": {
                "type": "object",
                "required": ["userId", "role"],
                "additionalProperties": False,
                "properties": {
                    "userId": {"type": "string", "maxLength": 128},
                    "role": {"enum": ["participant", "observer", None]},
                },
            },
            "RoleSet": {
                "type": "object",
                "required": ["userId", "role", "state"],
                "additionalProperties": False,
                "properties": {
                    "userId": {"type": "string"},
                    "role": {"enum": ["participant", "observer", None]},
                    "state": _ref("RoomState"),
                },
            },
            "CreateRevocation": {
                "type": "object",
                "required": ["until"],
                "additionalProperties": False,
                "description": "Exactly one of jti and sub.",
                "properties": {
                    "jti": {"type": "string", "maxLength": 128},
                    "sub": {"type": "string", "maxLength": 128},
                    "room": {"type": "string", "maxLength": 128},
                    "until": {
                        "type": "number",
                        "description": "Milliseconds since the Unix epoch; in the future, "
                        "at most 366 days away.",
                    },
                },
            },
            "Revocation": {
                "type": "object",
                "required": ["id", "jti", "sub", "room", "until", "createdAt", "by"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string"},
                    "jti": {"type": ["string", "null"]},
                    "sub": {"type": ["string", "null"]},
                    "room": {"type": ["string", "null"]},
                    "until": {"type": "number"},
                    "createdAt": {"type": "number"},
                    "by": {"type": "string", "description": "The admin key's name."},
                },
            },
            "RevocationList": {
                "type": "object",
                "required": ["revocations"],
                "additionalProperties": False,
                "properties": {"revocations": {"type": "array", "items": _ref("Revocation")}},
            },
            "RevocationDeleted": {
                "type": "object",
                "required": ["deleted"],
                "additionalProperties": False,
                "properties": {"deleted": {"type": "string"}},
            },
            "AuditRecord": {
                "type": "object",
                "required": ["ts", "room", "user_id", "role", "action", "outcome", "detail"],
                "additionalProperties": False,
                "properties": {
                    "ts": {"type": "number"},
                    "room": {"type": ["string", "null"]},
                    "user_id": {"type": ["string", "null"]},
                    "role": {"type": ["string", "null"]},
                    "action": {"enum": [a.value for a in AuditAction]},
                    "outcome": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
            "AuditLog": {
                "type": "object",
                "required": ["room", "records"],
                "additionalProperties": False,
                "properties": {
                    "room": {"type": "string"},
                    "records": {"type": "array", "items": _ref("AuditRecord")},
                },
            },
        },
    },
}
