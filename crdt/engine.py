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

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from crdt.errors import EnginePanic, InvalidPayload, MalformedUpdate
from crdt.types import StateVector, Update

__all__ = [
    "ENGINES",
    "Engine",
    "EngineFactory",
    "contained",
    "engine_factory",
    "engine_fault",
    "shape_parts",
    "writable",
]


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

    def map_size(self, root: str) -> int:
        """How many keys the root map ``root`` has (without reading them)."""

    def set_map_fields(self, root: str, fields: Mapping[str, Any]) -> Update:
        """Set keys of the root map ``root`` in one transaction; return its update."""

    def delete_map_keys(self, root: str, keys: Iterable[str]) -> Update:
        """Delete ``keys`` (those present) from the root map ``root`` in one
        transaction; return the update (empty if none was there)."""

    def append_map(self, root: str, fields: Mapping[str, Any]) -> Update:
        """Append a new Y.Map with ``fields`` to the root array ``root``; return the update."""

    def set_item_fields(self, root: str, index: int, fields: Mapping[str, Any]) -> Update:
        """Set keys of the Y.Map at ``index`` of the root array ``root``; return the update."""

    def put_shapes(
        self, root: str, shapes: Mapping[str, Mapping[str, Any]], delete: Iterable[str] = ()
    ) -> Update:
        """Delete the keys ``delete`` (those present) from the root map
        ``root``, then set each of ``shapes`` (key → fields) as a new Y.Map,
        as the web app writes shapes (protocol.md §5.1): a ``text`` string
        becomes a nested Y.Text, a ``points`` list a nested Y.Array. One
        transaction; return its update."""


EngineFactory = Callable[[], Engine]

#: What is never turned into an engine error: the process is being stopped.
_NOT_ENGINE_FAULTS = (KeyboardInterrupt, SystemExit, GeneratorExit)


@contextlib.contextmanager
def contained(what: str) -> Iterator[None]:
    """Run an engine call; whatever the Rust core raises becomes a CollabError
    (:func:`engine_fault`)."""
    try:
        yield
    except BaseException as exc:  # noqa: BLE001 - sorted by engine_fault
        raise engine_fault(what, exc) from None


def engine_fault(what: str, exc: BaseException) -> BaseException:
    """What an engine call that raised ``exc`` raises in turn.

    An ``Exception`` becomes :class:`MalformedUpdate` (``what`` names the
    call, never the data); anything else, pyo3's ``PanicException`` above
    all (a ``BaseException``, so ``except Exception`` misses it), becomes
    :class:`EnginePanic`: the replica may then hold part of the change, and
    the caller must rebuild it (rooms.document.Document does). A
    MalformedUpdate, and what stops the process, pass as they are.
    """
    if isinstance(exc, (MalformedUpdate, *_NOT_ENGINE_FAULTS)):
        return exc
    if isinstance(exc, Exception):
        return MalformedUpdate(f"{what} rejected by the engine ({type(exc).__name__})")
    return EnginePanic(f"{what} rejected by the engine (panic)")


def writable(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """``fields``, if the engine can store every string in them (keys and
    nested values too); InvalidPayload otherwise. A lone surrogate cannot be
    encoded as UTF-8, and pycrdt panics (printing the string) on one."""
    _check_value(dict(fields))
    return fields


def shape_parts(fields: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """``fields`` of a shape as (key, kind, value), kind ``text`` (a nested
    Y.Text), ``array`` (a nested Y.Array) or ``value`` (anything else)."""
    writable(fields)
    for key, value in fields.items():
        if key == "text" and isinstance(value, str):
            yield key, "text", value
        elif key == "points" and isinstance(value, list):
            yield key, "array", value
        else:
            yield key, "value", value


def _check_value(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPayload("text is not valid Unicode (a lone surrogate)") from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_value(key)
            _check_value(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_value(item)


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
