"""The board templates a facilitator may place (rooms.templates,
protocol.md §5.4): the ones shipped in ``rooms/board_templates/``."""

from __future__ import annotations

from rooms.errors import NotFound
from rooms.templates import Template, shipped_templates

__all__ = ["TemplateLibrary"]


class TemplateLibrary:
    """Templates by id, for ``mod:template`` and ``templates:list``."""

    def __init__(self, shipped: dict[str, Template] | None = None) -> None:
        self.shipped = shipped if shipped is not None else shipped_templates()

    async def get(self, template_id: str) -> Template:
        """The template, or NotFound."""
        template = self.shipped.get(template_id)
        if template is None:
            raise NotFound("no such template")
        return template

    async def all(self) -> list[Template]:
        """Every template, by id."""
        return [self.shipped[key] for key in sorted(self.shipped)]
