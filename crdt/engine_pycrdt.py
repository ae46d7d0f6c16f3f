"""The default engine: a pycrdt ``Doc``."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from pycrdt import Array, Doc, Map, Text, TransactionEvent

from crdt.engine import contained, engine_fault, shape_parts, writable
from crdt.errors import MalformedUpdate
from crdt.types import StateVector, Update
from crdt.updates import check_state_vector

__all__ = ["PycrdtEngine"]


class PycrdtEngine:
    """An :class:`crdt.engine.Engine` over ``pycrdt.Doc`` (garbage collection on,
    so deleted content is dropped from the encoded state)."""

    __slots__ = ("_doc",)

    def __init__(self) -> None:
        # 32-bit client ids, as Yjs in JavaScript makes them: yrs makes
        # 53-bit ones, which y-py (and older yrs) order differently when
        # two inserts conflict, so replicas would not converge.
        self._doc: Doc[Any] = Doc(client_id=secrets.randbits(32))

    @property
    def client_id(self) -> int:
        return int(self._doc.client_id)

    def apply_update(self, update: Update) -> None:
        try:  # (not ``with contained``: an update's hot path)
            self._doc.apply_update(update)
        except BaseException as exc:  # noqa: BLE001 - sorted by engine_fault
            raise engine_fault("update", exc) from None

    def state_vector(self) -> StateVector:
        return bytes(self._doc.get_state())

    def diff(self, state_vector: StateVector) -> Update:
        check_state_vector(state_vector)  # y-py aborts on a forged entry count
        with contained("state vector"):
            return bytes(self._doc.get_update(state_vector))

    def full_state(self) -> Update:
        return bytes(self._doc.get_update())

    def read_map(self, root: str) -> dict[str, Any]:
        value = self._doc.get(root, type=Map).to_py()
        return dict(value) if isinstance(value, dict) else {}

    def map_size(self, root: str) -> int:
        return len(self._doc.get(root, type=Map))

    def read_array(self, root: str) -> list[Any]:
        value = self._doc.get(root, type=Array).to_py()
        return list(value) if isinstance(value, list) else []

    def set_map_fields(self, root: str, fields: Mapping[str, Any]) -> Update:
        writable(fields)
        target = self._doc.get(root, type=Map)

        def write() -> None:
            for key, value in fields.items():
                target[key] = value

        return self._capture(write)

    def delete_map_keys(self, root: str, keys: Iterable[str]) -> Update:
        target = self._doc.get(root, type=Map)
        present = [key for key in keys if key in target]

        def write() -> None:
            for key in present:
                del target[key]

        return self._capture(write)

    def append_map(self, root: str, fields: Mapping[str, Any]) -> Update:
        writable(fields)
        target = self._doc.get(root, type=Array)
        return self._capture(lambda: target.append(Map(dict(fields))))

    def set_item_fields(self, root: str, index: int, fields: Mapping[str, Any]) -> Update:
        writable(fields)
        item = self._doc.get(root, type=Array)[index]
        if not isinstance(item, Map):
            raise MalformedUpdate(f"item {index} of {root!r} is not a map")

        def write() -> None:
            for key, value in fields.items():
                item[key] = value

        return self._capture(write)

    def put_shapes(
        self, root: str, shapes: Mapping[str, Mapping[str, Any]], delete: Iterable[str] = ()
    ) -> Update:
        made = {key: _shape_map(fields) for key, fields in shapes.items()}
        target = self._doc.get(root, type=Map)
        gone = [key for key in delete if key in target]

        def write() -> None:
            for key in gone:
                del target[key]
            for key, value in made.items():
                target[key] = value

        return self._capture(write)

    def _capture(self, write: Any) -> Update:
        """Run ``write`` in one transaction and return the update it produced.

        Raises MalformedUpdate or EnginePanic if the engine fails midway; the
        transaction has then committed whatever it wrote before (yrs has no
        rollback), so the caller rebuilds the replica."""
        captured: list[bytes] = []

        def on_commit(event: TransactionEvent) -> None:
            captured.append(bytes(event.update))

        subscription = self._doc.observe(on_commit)
        try:
            with contained("write"), self._doc.transaction():
                write()
        finally:
            self._doc.unobserve(subscription)
        return captured[0] if captured else b"\x00\x00"


def _shape_map(fields: Mapping[str, Any]) -> Map[Any]:
    prelim: dict[str, Any] = {}
    for key, kind, value in shape_parts(fields):
        prelim[key] = Text(value) if kind == "text" else Array(value) if kind == "array" else value
    return Map(prelim)
