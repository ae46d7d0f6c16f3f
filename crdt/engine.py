"""The document engine interface: one Yjs document replica, sans-I/O.

An engine holds one Yjs document and speaks Yjs v1 encodings. Two
implementations wrap the same Rust core (yrs): :mod:`crdt.engine_pycrdt`
(default) and :mod:`crdt.engine_ypy` (the ``ypy`` extra). Updates are
interchangeable between them (tests/unit/test_engines.py).

Callers pass updates through :func:`crdt.updates.check_update` first; an
engine still turns any decoding or integration failure into
:class:`~crdt.errors.MalformedUpdate` and leaves its document unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from crdt.errors import InvalidPayload
from crdt.types import StateVector, Update

__all__ = ["ENGINES", "Engine", "EngineFactory", "engine_factory"]


class Engine(Protocol):
    """One Yjs document replica."""

    def apply_update(self, update: Update) -> None:
        """Integrate ``update``; raise MalformedUpdate if it cannot be applied.

        EnginePanic (a MalformedUpdate) means the Rust core panicked midway:
        the replica may then hold part of the update (see Document._recover).
        """

    def state_vector(self) -> StateVector:
        """``Y.encodeStateVector(doc)``."""

    def diff(self, state_vector: StateVector) -> Update:
        """``Y.encodeStateAsUpdate(doc, state_vector)``; MalformedUpdate on a bad vector."""

    def full_state(self) -> Update:
        """The whole document as one update (used for snapshots)."""

    def read_map(self, root: str) -> dict[str, Any]:
        """The JSON value of the root map ``root`` (nested types as JSON)."""

    def read_array(self, root: str) -> list[Any]:
        """The JSON value of the root array ``root`` (nested types as JSON)."""

    def set_map_fields(self, root: str, fields: Mapping[str, Any]) -> Update:
        """Set keys of the root map ``root`` in one transaction; return its update."""

    def append_map(self, root: str, fields: Mapping[str, Any]) -> Update:
        """Append a new Y.Map with ``fields`` to the root array ``root``; return the update."""

    def set_item_fields(self, root: str, index: int, fields: Mapping[str, Any]) -> Update:
        """Set keys of the Y.Map at ``index`` of the root array ``root``; return the update."""


EngineFactory = Callable[[], Engine]


def _pycrdt() -> EngineFactory:
    from crdt.engine_pycrdt import PycrdtEngine

    return PycrdtEngine


def _ypy() -> EngineFactory:
    try:
        from crdt.engine_ypy import YpyEngine
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise InvalidPayload("engine 'ypy' needs the ypy extra: pip install collab[ypy]") from exc
    return YpyEngine


#: Engine names accepted by ``--engine``.
ENGINES: dict[str, Callable[[], EngineFactory]] = {"pycrdt": _pycrdt, "ypy": _ypy}


def engine_factory(name: str) -> EngineFactory:
    """The constructor of the engine called ``name`` (``pycrdt`` or ``ypy``)."""
    try:
        loader = ENGINES[name]
    except KeyError:
        raise InvalidPayload(f"unknown engine {name!r}; choose from {sorted(ENGINES)}") from None
    return loader()
