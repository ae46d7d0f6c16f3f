"""The OpenAPI description of the image routes (collab.images, protocol.md
§10.6), part of the document collab.openapi serves: they sit under
``/api/`` but take a room member's token, not an admin key."""

from __future__ import annotations

from typing import Any

__all__ = ["IMAGE_PATHS", "IMAGE_SCHEMAS", "ROOM_TOKEN"]

#: The security scheme of the image routes.
ROOM_TOKEN = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "The room member's own token, as a connect sends it (protocol.md §9).",
}

_ROOM = {
    "name": "room",
    "in": "path",
    "required": True,
    "description": "The room id, URL-encoded (clinic-7%2Fgroup-a).",
    "schema": {"type": "string", "maxLength": 128},
}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _ERROR}


_REFUSED = {
    "401": _error("No token, or one that does not verify or has expired."),
    "403": _error(
        "Another room's token, revoked, removed from the room; for an upload also an "
        "observer, a locked board (participants) or an ended session."
    ),
    "503": _error("The store cannot be reached, or the server is starting: retry."),
    "501": _error("This server's store keeps no images (images_unavailable)."),
}

IMAGE_PATHS: dict[str, Any] = {
    "/api/rooms/{room}/images": {
        "parameters": [_ROOM],
        "post": {
            "summary": "Upload an image (PNG, JPEG or WebP) for the room's boards",
            "operationId": "uploadImage",
            "security": [{"roomToken": []}],
            "requestBody": {
                "required": True,
                "description": "The image's bytes; what they decode as decides the format.",
                "content": {
                    kind: {"schema": {"type": "string", "format": "binary"}}
                    for kind in (
                        "image/png",
                        "image/jpeg",
                        "image/webp",
                        "application/octet-stream",
                    )
                },
            },
            "responses": {
                "201": {
                    "description": "Stored (decoded and re-encoded without metadata).",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Image"}}
                    },
                },
                "200": {
                    "description": "The room holds this image already.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Image"}}
                    },
                },
                "409": _error("The room's images would pass --max-room-image-bytes."),
                "413": _error("Past --max-image-bytes or --max-image-pixels."),
                "415": _error("Not a PNG, JPEG or WebP image that decodes in full."),
                "429": _error("Past the uploads allowed per user and room."),
                **_REFUSED,
            },
        },
    },
    "/api/rooms/{room}/images/{id}": {
        "parameters": [
            _ROOM,
            {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
        ],
        "get": {
            "summary": "An image of the room, for anyone who may read it",
            "operationId": "getImage",
            "security": [{"roomToken": []}],
            "responses": {
                "200": {
                    "description": "The image (Cache-Control: private, no-cache; ETag: its id).",
                    "content": {
                        kind: {"schema": {"type": "string", "format": "binary"}}
                        for kind in ("image/png", "image/jpeg", "image/webp")
                    },
                },
                "304": {"description": "Not modified (If-None-Match named its id)."},
                "404": _error("No such image in this room."),
                **_REFUSED,
            },
        },
    },
}

IMAGE_SCHEMAS: dict[str, Any] = {
    "Image": {
        "type": "object",
        "required": ["id", "width", "height", "mediaType", "bytes"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "mediaType": {"enum": ["image/png", "image/jpeg", "image/webp"]},
            "bytes": {"type": "integer", "minimum": 1},
        },
    }
}
