"""The OpenAPI description of the admin API's board templates
(collab.admin_templates, protocol.md §5.4 and §10.1), part of the document
collab.openapi serves."""

from __future__ import annotations

from typing import Any

__all__ = ["TEMPLATE_PATHS", "TEMPLATE_SCHEMAS"]

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "400": {"$ref": "#/components/responses/BadRequest"},
}
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The template id: 1-64 of [a-z0-9-].",
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _ERROR}


_WORDS = {
    "oneOf": [
        {"type": "string"},
        {"type": "object", "required": ["en"], "additionalProperties": {"type": "string"}},
    ]
}

TEMPLATE_SCHEMAS: dict[str, Any] = {
    "Template": {
        "type": "object",
        "description": "A board template (protocol.md §5.4): board shapes in the fields of §5.1.",
        "required": ["title", "shapes"],
        "properties": {
            "id": {"type": "string", "description": "Defaults to the path's id."},
            "title": _WORDS,
            "description": _WORDS,
            "shapes": {
                "type": "array",
                "minItems": 1,
                "maxItems": 500,
                "items": {"type": "object", "required": ["type"]},
            },
        },
    },
    "TemplateSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "source": {"enum": ["shipped", "platform"]},
            "title": {"type": "object"},
            "description": {"type": "object"},
            "shapes": {"type": "integer"},
        },
    },
}

TEMPLATE_PATHS: dict[str, Any] = {
    "/api/templates": {
        "get": {
            "summary": "Every template a facilitator may place, shipped and the platform's",
            "operationId": "listTemplates",
            "responses": {
                "200": _json(
                    "The templates.",
                    {
                        "type": "object",
                        "properties": {
                            "templates": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/TemplateSummary"},
                            }
                        },
                    },
                ),
                **_ERRORS,
            },
        }
    },
    "/api/templates/{id}": {
        "parameters": [_ID],
        "get": {
            "summary": "One template, whole",
            "operationId": "getTemplate",
            "responses": {
                "200": _json("The template.", {"$ref": "#/components/schemas/Template"}),
                "404": _error("No such template."),
                **_ERRORS,
            },
        },
        "put": {
            "summary": "Add or replace one of the platform's templates",
            "operationId": "putTemplate",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Template"}}
                },
            },
            "responses": {
                "201": _json("Added.", {"$ref": "#/components/schemas/TemplateSummary"}),
                "200": _json("Replaced.", {"$ref": "#/components/schemas/TemplateSummary"}),
                "409": _error("A shipped template has this id (conflict)."),
                "501": _error("This server's store keeps no platform templates."),
                **_ERRORS,
            },
        },
        "delete": {
            "summary": "Delete one of the platform's templates",
            "operationId": "deleteTemplate",
            "responses": {
                "200": _json("Deleted.", {"type": "object"}),
                "403": _error("A shipped template (permission_denied)."),
                "404": _error("No such platform template."),
                **_ERRORS,
            },
        },
    },
}
